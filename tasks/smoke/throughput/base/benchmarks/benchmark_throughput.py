"""Benchmark offline inference throughput.

Generates completions for a batch of synthetic prompts with the offline engine and reports requests,
total tokens (prompt + output) and output tokens per second.

The time is the CPU time generation costs (this process and any it starts), in reference seconds (see
``cpu_clock``, measured in slices of a few milliseconds): what the code costs, not how busy the
machine was. The workload runs ``--num-iters`` times, each time with new prompts of the same sizes,
and the figures are those of the median run. The output format is vLLM's.

Example::

    python benchmarks/benchmark_throughput.py --input-len 128 --output-len 256 --num-prompts 200
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys

# The clock first: from this folder (before the checkout goes on the path), and before the code it
# measures, so that it holds the clock functions as they are.
from cpu_clock import CpuTimer

# Let the script run from a source checkout without installing the package.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from minillm import LLM, EngineConfig, SamplingParams
from minillm.tokenizer import FIRST_PIECE_ID

# CPU time of the measured code between two calibrations (see ``cpu_clock.CpuTimer``).
SLICE_S = 0.01


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
    parser.add_argument("--num-iters", type=int, default=5, help="measured runs of the workload (median)")
    parser.add_argument("--output-json", default=None, help="write the results to this JSON file")
    args = parser.parse_args()
    print(args)

    llm = LLM(
        EngineConfig(
            max_num_seqs=args.max_num_seqs, max_num_batched_tokens=args.max_num_batched_tokens, seed=args.seed
        )
    )
    params = SamplingParams(max_tokens=args.output_len, ignore_eos=True)
    timer = CpuTimer(slice_s=SLICE_S)
    runs = []
    for index in range(args.num_iters):
        # New prompts every time: nothing the engine keeps from one run can serve the next.
        prompts = sample_prompts(args.num_prompts, args.input_len, llm.tokenizer.vocab_size, args.seed + index)
        with timer:
            outputs = llm.generate(prompts, params)
        prompt_tokens = sum(len(out.prompt_token_ids) for out in outputs)
        output_tokens = sum(len(out.output_token_ids) for out in outputs)
        runs.append((timer.elapsed, len(outputs), prompt_tokens, output_tokens))
    # The workload figures of the smallest run (a run that skipped work shows), the time of the median.
    _, num_requests, total_prompt_tokens, total_output_tokens = min(runs, key=lambda run: run[1:])
    elapsed_time = statistics.median(run[0] for run in runs)
    total_num_tokens = total_prompt_tokens + total_output_tokens
    print(
        f"Throughput: {num_requests / elapsed_time:.2f} requests/s, "
        f"{total_num_tokens / elapsed_time:.2f} total tokens/s, "
        f"{total_output_tokens / elapsed_time:.2f} output tokens/s"
    )
    if args.output_json:
        results = {
            "elapsed_time": elapsed_time,
            "num_requests": num_requests,
            "total_num_tokens": total_num_tokens,
            "requests_per_second": num_requests / elapsed_time,
            "tokens_per_second": total_num_tokens / elapsed_time,
        }
        with open(args.output_json, "w", encoding="utf-8") as handle:
            json.dump(results, handle, indent=4)


if __name__ == "__main__":
    main()
