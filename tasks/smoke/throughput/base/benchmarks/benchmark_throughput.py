"""Benchmark offline inference throughput.

Generates completions for a batch of synthetic prompts with the offline engine and reports requests,
total tokens (prompt + output) and output tokens per second.

The time is the CPU time generation costs (this process and any it starts), in reference seconds (see
``cpu_clock``): what the code costs, not how busy the machine was. The output format is vLLM's.

Example::

    python benchmarks/benchmark_throughput.py --input-len 128 --output-len 256 --num-prompts 200
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys

# The clock first: from this folder (before the checkout goes on the path), and before the code it
# measures, so that it holds the clock functions as they are.
from cpu_clock import CpuTimer

# Let the script run from a source checkout without installing the package.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from minillm import LLM, EngineConfig, SamplingParams
from minillm.tokenizer import FIRST_PIECE_ID


def sample_prompts(num_prompts: int, input_len: int, vocab_size: int, seed: int) -> list[list[int]]:
    """Random word-piece prompts of ``input_len`` tokens each."""
    rng = random.Random(seed)
    return [[rng.randrange(FIRST_PIECE_ID, vocab_size) for _ in range(input_len)] for _ in range(num_prompts)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input-len", type=int, default=128, help="prompt length in tokens")
    parser.add_argument("--output-len", type=int, default=256, help="output length in tokens")
    parser.add_argument("--num-prompts", type=int, default=200)
    parser.add_argument("--max-num-seqs", type=int, default=EngineConfig.max_num_seqs)
    parser.add_argument("--max-num-batched-tokens", type=int, default=EngineConfig.max_num_batched_tokens)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output-json", default=None, help="write the results to this JSON file")
    args = parser.parse_args()
    print(args)

    llm = LLM(
        EngineConfig(
            max_num_seqs=args.max_num_seqs, max_num_batched_tokens=args.max_num_batched_tokens, seed=args.seed
        )
    )
    prompts = sample_prompts(args.num_prompts, args.input_len, llm.tokenizer.vocab_size, args.seed)
    params = SamplingParams(max_tokens=args.output_len, ignore_eos=True)

    with CpuTimer() as timer:
        outputs = llm.generate(prompts, params)
    elapsed_time = timer.elapsed

    total_prompt_tokens = sum(len(out.prompt_token_ids) for out in outputs)
    total_output_tokens = sum(len(out.output_token_ids) for out in outputs)
    total_num_tokens = total_prompt_tokens + total_output_tokens
    print(
        f"Throughput: {len(outputs) / elapsed_time:.2f} requests/s, "
        f"{total_num_tokens / elapsed_time:.2f} total tokens/s, "
        f"{total_output_tokens / elapsed_time:.2f} output tokens/s"
    )
    if args.output_json:
        results = {
            "elapsed_time": elapsed_time,
            "num_requests": len(outputs),
            "total_num_tokens": total_num_tokens,
            "requests_per_second": len(outputs) / elapsed_time,
            "tokens_per_second": total_num_tokens / elapsed_time,
        }
        with open(args.output_json, "w", encoding="utf-8") as handle:
            json.dump(results, handle, indent=4)


if __name__ == "__main__":
    main()
