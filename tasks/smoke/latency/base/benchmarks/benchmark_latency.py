"""Benchmark the latency of processing a single batch of requests to completion.

Runs ``--num-iters-warmup`` untimed and ``--num-iters`` timed generations of one batch of dummy prompts
and reports the average latency and its percentiles.

Latencies are the CPU time a generation costs (this process and any it starts), in reference seconds
(see ``cpu_clock``): what the code costs, not how busy the machine was. The output format is vLLM's.

Example::

    python benchmarks/benchmark_latency.py --input-len 32 --output-len 128 --batch-size 8
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys

# The clock first: from this folder (before the checkout goes on the path), and before the code it
# measures, so that it holds the clock functions as they are.
from cpu_clock import CpuTimer

# Let the script run from a source checkout without installing the package.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from minillm import LLM, EngineConfig, SamplingParams


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile with linear interpolation between closest ranks."""
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    low = math.floor(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input-len", type=int, default=32)
    parser.add_argument("--output-len", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--vocab-size", type=int, default=EngineConfig.vocab_size)
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--top-k", type=int, default=-1)
    parser.add_argument("--top-p", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--num-iters-warmup", type=int, default=10, help="iterations before measuring")
    parser.add_argument("--num-iters", type=int, default=30, help="measured iterations")
    parser.add_argument("--output-json", default=None, help="write the latency results to this JSON file")
    args = parser.parse_args()
    print(args)

    llm = LLM(EngineConfig(vocab_size=args.vocab_size, seed=args.seed))
    rng = random.Random(args.seed)
    prompts = [
        [rng.randrange(args.vocab_size) for _ in range(args.input_len)] for _ in range(args.batch_size)
    ]
    params = SamplingParams(
        temperature=args.temperature,
        top_k=args.top_k,
        top_p=args.top_p,
        seed=args.seed,
        max_tokens=args.output_len,
        ignore_eos=True,
    )

    timer = CpuTimer()

    def run_to_completion() -> float:
        with timer:
            llm.generate(prompts, params)
        return timer.elapsed

    print("Warming up...")
    for _ in range(args.num_iters_warmup):
        run_to_completion()

    latencies = [run_to_completion() for _ in range(args.num_iters)]
    percentages = [10, 25, 50, 75, 90, 99]
    percentiles = [percentile(latencies, p) for p in percentages]
    avg_latency = sum(latencies) / len(latencies)
    print(f"Avg latency: {avg_latency} seconds")
    for percentage, value in zip(percentages, percentiles, strict=True):
        print(f"{percentage}% percentile latency: {value} seconds")

    if args.output_json:
        results = {
            "avg_latency": avg_latency,
            "latencies": latencies,
            "percentiles": dict(zip(percentages, percentiles, strict=True)),
        }
        with open(args.output_json, "w", encoding="utf-8") as handle:
            json.dump(results, handle, indent=4)


if __name__ == "__main__":
    main()
