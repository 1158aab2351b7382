"""Offline generation over a fixed prompt set; prints every completion.

The prompts and sampling settings are deterministic and cover the paths a change to the engine could
break: text and token-id prompts, end-of-sequence, stop strings (ASCII and non-ASCII), ``max_tokens``
limits, and outputs with non-ASCII characters and malformed bytes. Completions are printed with
``repr`` so invisible differences show.

Run with ``python -m minillm.generate``.
"""

from __future__ import annotations

import argparse
import random

from minillm.engine import LLM, EngineConfig
from minillm.sequence import SamplingParams
from minillm.tokenizer import FIRST_PIECE_ID

TEXT_PROMPTS = (
    "the model was first used in the city",
    "a request for the national university cache",
    "serving latency and throughput of the engine",
    "über naïve café — the prompt was known",
)
STOPS = ((), (".",), ("é", "!"), ("ing",), ("?", ";"), ("😀",))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-prompts", type=int, default=36)
    parser.add_argument("--max-num-seqs", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    llm = LLM(EngineConfig(max_num_seqs=args.max_num_seqs, seed=args.seed))
    rng = random.Random(args.seed)
    prompts: list[str | list[int]] = []
    params: list[SamplingParams] = []
    for i in range(args.num_prompts):
        if i < len(TEXT_PROMPTS):
            prompts.append(TEXT_PROMPTS[i])
        else:
            prompts.append(
                [rng.randrange(FIRST_PIECE_ID, llm.tokenizer.vocab_size) for _ in range(rng.randint(1, 64))]
            )
        params.append(
            SamplingParams(
                max_tokens=rng.choice((1, 7, 60, 200, 400)),
                stop=STOPS[i % len(STOPS)],
                ignore_eos=i % 3 == 0,
            )
        )
    for out in llm.generate(prompts, params):
        print(
            f"[{out.request_id:02d}] {out.finish_reason} tokens={len(out.output_token_ids)} text={out.text!r}"
        )


if __name__ == "__main__":
    main()
