"""Offline generation: run a fixed set of prompts through the engine and print the completions.

The prompt set is deterministic and built to exercise prefix caching: prompts share a system prompt,
some repeat, extend or left-truncate earlier prompts, lengths are not multiples of the block size, and
the KV-cache pool is small enough that blocks get evicted. For every prompt it prints how many prompt
tokens were served from the cache and the generated text, so two builds of the engine can be compared
line by line.

Run with ``python -m minillm.entrypoints.generate``.
"""

from __future__ import annotations

import argparse
import random

from minillm.engine import EngineConfig, LLMEngine, RequestMetrics, SamplingParams


def build_prompts(engine: LLMEngine, num_prompts: int, seed: int) -> list[list[int]]:
    """Token-id prompts: fresh prompts behind a shared system prompt, repeats, follow-ups, truncations."""
    rng = random.Random(seed)
    vocab = range(3, engine.tokenizer.vocab_size)
    block = engine.config.block_size
    system = rng.choices(vocab, k=8 * block + 5)
    prompts: list[list[int]] = []
    for i in range(num_prompts):
        kind = i % 5
        if kind == 2:  # a follow-up turn of the previous conversation
            prompts.append(prompts[-1] + rng.choices(vocab, k=rng.randint(1, 40)))
        elif kind == 3:  # an exact repeat of an earlier prompt
            prompts.append(list(prompts[-2]))
        elif kind == 4:  # the previous conversation with its oldest blocks cut off
            prompts.append(prompts[-1][3 * block :])
        else:
            prompts.append(system + rng.choices(vocab, k=rng.randint(1, 300)))
    return prompts


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-prompts", type=int, default=24)
    parser.add_argument("--max-tokens", type=int, default=12)
    parser.add_argument("--num-gpu-blocks", type=int, default=64)
    parser.add_argument("--block-size", type=int, default=EngineConfig.block_size)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    engine = LLMEngine(
        EngineConfig(block_size=args.block_size, num_gpu_blocks=args.num_gpu_blocks, seed=args.seed)
    )
    params = SamplingParams(max_tokens=args.max_tokens)
    for i, prompt in enumerate(build_prompts(engine, args.num_prompts, args.seed)):
        metrics = RequestMetrics()
        text = "".join(out.text for out in engine.generate(prompt, params, metrics))
        print(
            f"[{i:02d}] prompt={metrics.num_prompt_tokens} cached={metrics.num_cached_tokens} "
            f"generated={metrics.num_output_tokens}:{text}"
        )
    stats = engine.block_manager.stats
    print(
        f"prefix cache: queried={stats.queried_tokens} hit={stats.hit_tokens} "
        f"hit_rate={stats.hit_rate:.4f} evictions={stats.evictions}"
    )


if __name__ == "__main__":
    main()
