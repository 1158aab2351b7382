"""Benchmark-output parsers on composed samples of every supported format (real labels, made-up numbers)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from pytest_isobench.measure.parsers import collect_metrics, parse_result_file, parse_text

DATA = Path(__file__).parent / "data" / "bench_outputs"


def sample(name: str) -> str:
    """A sample's text exactly as stored (carriage returns kept: tqdm redraws use them)."""
    with (DATA / name).open(encoding="utf-8", newline="") as handle:
        return handle.read()


# --- vLLM serving ------------------------------------------------------------------------------


def test_vllm_serving_2024_input_token_throughput_and_nothing_else() -> None:
    assert parse_text(sample("vllm_serving_2024.txt")) == {
        "completed": 1000.0,
        "successful_requests": 1000.0,
        "duration": 52.57,
        "total_input_tokens": 217393.0,
        "total_output_tokens": 201524.0,
        "request_throughput": 19.02,
        "input_throughput": 4135.27,
        "output_throughput": 3833.43,
        "mean_ttft_ms": 18254.61,
        "median_ttft_ms": 17533.02,
        "p99_ttft_ms": 41027.93,
        "mean_tpot_ms": 71.39,
        "median_tpot_ms": 63.88,
        "p99_tpot_ms": 237.81,
    }


def test_vllm_serving_2025_capital_token_spelling_goodput_and_itl() -> None:
    metrics = parse_text(sample("vllm_serving_2025.txt"))
    assert metrics["total_token_throughput"] == 8577.77
    assert metrics["total_throughput"] == 8577.77
    assert metrics["request_goodput"] == 11.38
    assert metrics["output_throughput"] == 4114.12
    assert (metrics["mean_itl_ms"], metrics["median_itl_ms"], metrics["p99_itl_ms"]) == (38.9, 30.12, 210.45)
    assert metrics["p99_tpot_ms"] == 120.33
    # "Burstiness factor: 1.0 (Poisson process)" and "Maximum request concurrency: None" are settings.
    assert not {"burstiness", "max_concurrency", "request_rate"} & metrics.keys()


def test_vllm_bench_serve_2026_new_rows_percentiles_and_e2el() -> None:
    metrics = parse_text(sample("vllm_bench_serve_2026.txt"))
    assert metrics["completed"] == 510.0
    assert metrics["failed"] == 2.0
    assert metrics["total_token_throughput"] == 17569.38  # lower-case "Total token throughput"
    assert metrics["max_output_tokens_per_s"] == 2816.0
    assert metrics["max_concurrent_requests"] == 71.0
    assert metrics["p50_ttft_ms"] == 79.95
    assert metrics["p90_ttft_ms"] == 131.07
    assert metrics["p99.9_ttft_ms"] == 301.66
    assert metrics["p99.9_itl_ms"] == 101.56
    assert metrics["mean_e2el_ms"] == 1969.52
    assert metrics["p99_e2el_ms"] == 2519.11
    assert metrics["spec_decode_acceptance_rate"] == 61.25
    assert metrics["spec_decode_acceptance_length"] == 2.84
    assert metrics["spec_decode_num_drafts"] == 23014.0
    assert metrics["spec_decode_accepted_tokens"] == 42288.0
    assert "max_concurrency" not in metrics


@pytest.mark.parametrize(
    "label",
    ["Total Token throughput (tok/s):", "Total token throughput (tok/s):", "Total throughput (tok/s):"],
)
def test_every_total_throughput_spelling_gives_both_keys(label: str) -> None:
    metrics = parse_text(f"{label:<40} 1234.50   \n")
    assert metrics == {"total_token_throughput": 1234.5, "total_throughput": 1234.5}


def test_labels_are_case_insensitive_and_tolerant_of_spacing() -> None:
    text = "MEAN   TTFT (MS):\t12.5   \n  median ttft (ms):1.5\nP99.0 TPOT (ms):    3e1\n"
    assert parse_text(text) == {"mean_ttft_ms": 12.5, "median_ttft_ms": 1.5, "p99_tpot_ms": 30.0}


def test_non_numeric_values_are_skipped() -> None:
    text = (
        "Max request concurrency:                 not set\n"
        "Request goodput (req/s):                 None\n"
        "Mean TTFT (ms):                          nan\n"
        "Median TTFT (ms):                        12abc\n"
    )
    assert parse_text(text) == {}


def test_last_value_wins_when_a_block_is_printed_twice() -> None:
    warmup = sample("vllm_serving_2025.txt").replace("1234.56", "9999.99").replace("20.74", "1.11")
    metrics = parse_text(warmup + sample("vllm_serving_2025.txt"))
    assert metrics["mean_ttft_ms"] == 1234.56
    assert metrics["request_throughput"] == 20.74
    reversed_order = parse_text(sample("vllm_serving_2025.txt") + warmup)
    assert reversed_order["mean_ttft_ms"] == 9999.99


def test_vllm_serving_result_json() -> None:
    assert parse_result_file(DATA / "vllm_serving_result.json") == {
        "duration": 48.21,
        "completed": 1000.0,
        "successful_requests": 1000.0,
        "total_input_tokens": 215196.0,
        "total_output_tokens": 198343.0,
        "request_throughput": 20.74,
        "output_throughput": 4114.12,
        "total_token_throughput": 8577.77,
        "total_throughput": 8577.77,
        "mean_ttft_ms": 1234.56,
        "median_ttft_ms": 1102.3,
        "std_ttft_ms": 812.4,
        "p99_ttft_ms": 3456.78,
        "mean_tpot_ms": 45.67,
        "median_tpot_ms": 41.2,
        "std_tpot_ms": 12.9,
        "p99_tpot_ms": 120.33,
        "mean_itl_ms": 38.9,
        "median_itl_ms": 30.12,
        "std_itl_ms": 44.1,
        "p99_itl_ms": 210.45,
    }  # "request_goodput:": null is skipped; settings and strings are not metrics


def test_goodput_key_with_colon_lists_and_booleans() -> None:
    metrics = parse_result_file(DATA / "vllm_serving_result_goodput.json")
    assert metrics["request_goodput"] == 6.92
    assert "request_goodput:" not in metrics
    assert metrics["std_ttft_ms"] == 20.7
    assert not {"ttfts", "errors", "ok", "max_concurrency", "request_rate"} & metrics.keys()


# --- vLLM throughput and latency -----------------------------------------------------------------


def test_vllm_throughput_2024_two_numbers() -> None:
    metrics = parse_text(sample("vllm_throughput_2024.txt"))
    assert metrics["requests_per_second"] == 22.11
    assert metrics["tokens_per_second"] == 25472.37
    assert metrics["request_throughput"] == 22.11
    assert metrics["total_token_throughput"] == 25472.37
    assert "output_tokens_per_second" not in metrics
    assert "output_throughput" not in metrics


def test_vllm_throughput_2025_three_numbers_and_token_totals() -> None:
    metrics = parse_text(sample("vllm_throughput_2025.txt"))
    assert metrics["requests_per_second"] == 24.68
    assert metrics["tokens_per_second"] == 28432.9
    assert metrics["output_tokens_per_second"] == 3159.21
    assert metrics["output_throughput"] == 3159.21
    assert metrics["total_num_prompt_tokens"] == 1024000.0
    assert metrics["total_num_output_tokens"] == 128000.0


def test_vllm_throughput_json_with_aliases() -> None:
    assert parse_result_file(DATA / "throughput.json") == {
        "elapsed_time": 40.5191,
        "num_requests": 1000.0,
        "total_num_tokens": 1152000.0,
        "requests_per_second": 24.679,
        "tokens_per_second": 28430.61,
        "request_throughput": 24.679,
        "total_token_throughput": 28430.61,
        "total_throughput": 28430.61,
    }


LATENCY_PERCENTILES = {
    "p10_latency": 1.8302145883999765,
    "p25_latency": 1.8354106210003374,
    "p50_latency": 1.8411053674998767,
    "p75_latency": 1.8488729747500474,
    "p90_latency": 1.8566120148000236,
    "p99_latency": 1.8747001225299263,
}


def test_vllm_latency_text() -> None:
    assert parse_text(sample("vllm_latency.txt")) == {
        "avg_latency": 1.8423519253730774,
        "std_latency": 0.011920843218423515,
        **LATENCY_PERCENTILES,
    }


def test_vllm_latency_2024_text_without_std() -> None:
    metrics = parse_text(sample("vllm_latency_2024.txt"))
    assert metrics["avg_latency"] == 0.22271394749994
    assert metrics["p99_latency"] == 0.2301201458
    assert "std_latency" not in metrics


def test_vllm_latency_json_percentiles_object() -> None:
    assert parse_result_file(DATA / "latency.json") == {
        "avg_latency": 1.8423519253730774,
        "std_latency": 0.011920843218423515,
        **LATENCY_PERCENTILES,
    }


def test_vllm_prefix_caching_measured_pass_wins() -> None:
    assert "\r" in sample("vllm_prefix_caching.txt")  # the sample keeps tqdm's redraws
    assert parse_text(sample("vllm_prefix_caching.txt")) == {
        "cost_time": 2.40211820602417,
        "est_input_toks_per_s": 10428.57,
        "est_output_toks_per_s": 40.74,
    }


# --- SGLang ----------------------------------------------------------------------------------------


def test_sglang_serving_text() -> None:
    metrics = parse_text(sample("sglang_serving.txt"))
    assert metrics["completed"] == 1000.0
    assert metrics["total_output_tokens"] == 198343.0
    assert metrics["total_output_tokens_retokenized"] == 197920.0
    assert metrics["input_throughput"] == 5363.81
    assert metrics["total_token_throughput"] == metrics["total_throughput"] == 10307.55
    assert metrics["concurrency"] == 612.4
    assert metrics["accept_length"] == 3.12
    assert metrics["mean_e2e_latency_ms"] == 24567.89
    assert metrics["median_e2e_latency_ms"] == 23012.34
    assert metrics["p95_itl_ms"] == 250.34
    assert metrics["max_itl_ms"] == 2100.78
    assert metrics["p99_ttft_ms"] == 12345.67
    assert "max_concurrency" not in metrics  # "Max request concurrency: not set"


def test_sglang_serving_2024_total_throughput_and_tpot() -> None:
    metrics = parse_text(sample("sglang_serving_2024.txt"))
    assert metrics["total_throughput"] == metrics["total_token_throughput"] == 11889.79
    assert metrics["mean_tpot_ms"] == 97.33
    assert metrics["median_itl_ms"] == 61.37
    assert "concurrency" not in metrics


def test_sglang_serving_jsonl_last_line_wins() -> None:
    metrics = parse_result_file(DATA / "sglang_serving.jsonl")
    assert metrics["duration"] == 40.12
    assert metrics["request_throughput"] == 24.93
    assert metrics["total_throughput"] == metrics["total_token_throughput"] == 10307.55
    assert metrics["accept_length"] == 3.12
    assert metrics["p95_itl_ms"] == 250.34
    assert metrics["std_e2e_latency_ms"] == 8011.7
    assert metrics["total_output_tokens_retokenized"] == 197920.0
    assert "request_rate" not in metrics  # Infinity is a setting, and not finite


def test_sglang_one_batch_benchmark_section_wins_over_warmup() -> None:
    assert parse_text(sample("sglang_one_batch.txt")) == {
        "prefill_latency": 0.04512,
        "prefill_throughput": 45390.07,
        "median_decode_latency": 0.00794,
        "median_decode_throughput": 1007.56,
        "total_latency": 0.295,
        "overall_throughput": 7159.32,
        "total_throughput": 7159.32,
        "total_token_throughput": 7159.32,
    }


def test_sglang_one_batch_jsonl_last_line_wins() -> None:
    metrics = parse_result_file(DATA / "sglang_one_batch.jsonl")
    assert metrics["prefill_latency"] == 0.04512
    assert metrics["median_decode_latency"] == 0.00794
    assert metrics["overall_throughput"] == metrics["total_throughput"] == 7159.32
    assert not {"batch_size", "input_len", "output_len", "run_name"} & metrics.keys()


def test_sglang_bench_latency_old_avg_decode_and_total_throughput() -> None:
    text = parse_text(sample("sglang_bench_latency_old.txt"))
    assert text["avg_decode_latency"] == 0.01013
    assert text["avg_decode_throughput"] == 789.74
    assert text["prefill_throughput"] == 108488.91
    assert text["total_latency"] == 0.667
    assert text["total_throughput"] == text["overall_throughput"] == 3452.79
    assert "median_decode_latency" not in text
    saved = parse_result_file(DATA / "sglang_bench_latency_old.jsonl")
    assert saved["avg_decode_latency"] == 0.01013
    assert saved["overall_throughput"] == saved["total_throughput"] == 3452.79


def test_sglang_offline_text_and_jsonl() -> None:
    text = parse_text(sample("sglang_offline.txt"))
    assert text["completed"] == text["successful_requests"] == 1000.0
    assert text["duration"] == 61.37
    assert text["request_throughput"] == 16.29
    assert text["total_token_throughput"] == text["total_throughput"] == 16685.68
    saved = parse_result_file(DATA / "sglang_offline.jsonl")
    assert saved["successful_requests"] == saved["completed"] == 1000.0
    assert saved["total_latency"] == 61.37
    assert saved["total_throughput"] == saved["total_token_throughput"] == 16685.68
    assert saved["input_throughput"] == 8342.84


# --- garbage -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "",
        "\n\n   \n",
        "Traceback (most recent call last):\nRuntimeError: CUDA error: out of memory\n",
        "\x00\xff",
    ],
)
def test_garbage_text_gives_nothing(text: str) -> None:
    assert parse_text(text) == {}


@pytest.mark.parametrize("name", ["garbage.json", "truncated.json", "not_an_object.json"])
def test_invalid_result_files_give_nothing(name: str) -> None:
    assert parse_result_file(DATA / name) == {}


def test_unreadable_result_paths_give_nothing(tmp_path: Path) -> None:
    (tmp_path / "empty.json").write_text("")
    (tmp_path / "binary.json").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    assert parse_result_file(tmp_path / "empty.json") == {}
    assert parse_result_file(tmp_path / "binary.json") == {}
    assert parse_result_file(tmp_path / "missing.json") == {}
    assert parse_result_file(tmp_path) == {}  # a directory


def test_jsonl_with_a_broken_last_line_gives_nothing(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    path.write_text('{"request_throughput": 3.0}\n{"request_throughput": 4.\n')
    assert parse_result_file(path) == {}


# --- collect_metrics -----------------------------------------------------------------------------------


def test_json_takes_precedence_and_stdout_fills_gaps(tmp_path: Path) -> None:
    shutil.copy(DATA / "vllm_serving_result.json", tmp_path)
    stdout = sample("vllm_serving_2025.txt").replace("1234.56", "777.0")
    stdout += "Peak output token throughput (tok/s):    5000.00\n"
    metrics = collect_metrics(stdout, tmp_path)
    assert metrics["mean_ttft_ms"] == 1234.56  # from the JSON, not the printed 777.0
    assert metrics["std_ttft_ms"] == 812.4  # only in the JSON
    assert metrics["max_output_tokens_per_s"] == 5000.0  # only printed
    assert metrics["request_goodput"] == 11.38  # null in the JSON, printed value fills it


def test_pytorch_json_is_skipped(tmp_path: Path) -> None:
    shutil.copy(DATA / "throughput.json", tmp_path)
    # Sorts after throughput.json, so it would win were it read.
    (tmp_path / "throughput.pytorch.json").write_text(json.dumps({"requests_per_second": 999.0}))
    metrics = collect_metrics("", tmp_path)
    assert metrics["requests_per_second"] == 24.679


def test_result_files_are_read_in_name_order_later_wins(tmp_path: Path) -> None:
    (tmp_path / "b-run.json").write_text(json.dumps({"request_throughput": 2.0}))
    (tmp_path / "a-run.json").write_text(json.dumps({"request_throughput": 1.0, "duration": 9.0}))
    (tmp_path / "c-run.jsonl").write_text("not json at all\n")
    (tmp_path / "notes.txt").write_text(json.dumps({"request_throughput": 3.0}))
    (tmp_path / "nested").mkdir()
    (tmp_path / "nested" / "z.json").write_text(json.dumps({"request_throughput": 4.0}))
    assert collect_metrics("", tmp_path) == {"request_throughput": 2.0, "duration": 9.0}


def test_collect_without_result_dir_uses_stdout(tmp_path: Path) -> None:
    stdout = sample("vllm_throughput_2025.txt")
    assert collect_metrics(stdout) == parse_text(stdout)
    assert collect_metrics(stdout, tmp_path / "absent") == parse_text(stdout)
    assert collect_metrics("", None) == {}


def test_collect_combines_throughput_json_and_printed_output_tokens(tmp_path: Path) -> None:
    shutil.copy(DATA / "throughput.json", tmp_path)
    metrics = collect_metrics(sample("vllm_throughput_2025.txt"), tmp_path)
    assert metrics["tokens_per_second"] == 28430.61  # JSON
    assert metrics["output_tokens_per_second"] == 3159.21  # printed only
    assert metrics["output_throughput"] == 3159.21
