"""Generation over fixed prompts with a range of sampling settings; prints every output's token ids.

Covers greedy decoding, pure temperature sampling, top-k, top-p, and their combinations (including
``top_k`` of 1 and larger than the vocabulary), with end-of-sequence enabled. The model's logits are
low-precision, so ties between candidates occur and their order is checked too.

Run with ``python -m minillm.generate``.
"""

from __future__ import annotations

import argparse
import random

from minillm.engine import LLM, EngineConfig
from minillm.sampling_params import SamplingParams

SETTINGS = (
    {"temperature": 0.0},
    {"temperature": 1.0},
    {"temperature": 0.7, "top_k": 1},
    {"temperature": 1.0, "top_k": 5},
    {"temperature": 0.8, "top_k": 50},
    {"temperature": 1.3, "top_k": 50, "top_p": 0.9},
    {"temperature": 1.0, "top_p": 0.5},
    {"temperature": 2.0, "top_k": 1_000_000},
    {"temperature": 0.25, "top_k": 200, "top_p": 0.99},
)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vocab-size", type=int, default=EngineConfig.vocab_size)
    parser.add_argument("--max-tokens", type=int, default=6)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    llm = LLM(EngineConfig(vocab_size=args.vocab_size, seed=args.seed))
    rng = random.Random(args.seed)
    prompts = [[rng.randrange(args.vocab_size) for _ in range(rng.randint(1, 24))] for _ in range(4)]
    for n, setting in enumerate(SETTINGS):
        params = SamplingParams(seed=args.seed + n, max_tokens=args.max_tokens, **setting)  # type: ignore[arg-type]
        for out in llm.generate(prompts, params):
            print(f"{setting} [{out.request_id}] {out.finish_reason}: {out.output_token_ids}")


if __name__ == "__main__":
    main()
