"""Turn what an LLM-inference benchmark prints or saves into one flat ``{metric: float}`` mapping.

Task files name their primary metric with the normalised keys below, whichever script version
produced the numbers, so every spelling a supported script has used maps onto the same key.

Printed output (``parse_text``): each line is stripped (the scripts pad rows, so lines carry
trailing spaces) and matched case-insensitively against a table of label patterns; runs of spaces
in a label match any whitespace. Carriage returns split lines too (tqdm redraws its bar with
``\\r``). When a label occurs more than once the LAST value wins: warm-up blocks come first.
Unknown text is ignored.

Supported formats and their keys:

* vLLM serving (``benchmarks/benchmark_serving.py`` 2024-2025, ``vllm bench serve``): ``completed``
  (Successful requests), ``failed``, ``duration`` (Benchmark duration (s)), ``total_input_tokens``,
  ``total_output_tokens`` (Total generated tokens), ``request_throughput``, ``request_goodput``,
  ``output_throughput``, ``total_token_throughput`` (``Total Token throughput`` and
  ``Total token throughput``), ``input_throughput`` (2024 "Input token throughput"),
  ``max_output_tokens_per_s`` (Peak output token throughput), ``max_concurrent_requests`` (Peak
  concurrent requests), the speculative-decoding block as ``spec_decode_acceptance_rate``,
  ``spec_decode_acceptance_length``, ``spec_decode_num_drafts``, ``spec_decode_draft_tokens``,
  ``spec_decode_accepted_tokens`` (the JSON names), and
  ``<stat>_<m>_ms`` for stat in mean/median/std/min/max/pNN/pNN.N and m in ttft/tpot/itl/e2el
  (``P99.9 TTFT (ms)`` gives ``p99.9_ttft_ms``).
* vLLM offline throughput (``benchmark_throughput.py``, ``vllm bench throughput``): the line
  ``Throughput: X requests/s, Y [total] tokens/s[, Z output tokens/s]`` gives
  ``requests_per_second``, ``tokens_per_second``, ``output_tokens_per_second``;
  ``total_num_prompt_tokens``, ``total_num_output_tokens``.
* vLLM latency (``benchmark_latency.py``, ``vllm bench latency``): ``avg_latency``, ``std_latency``
  and ``pNN_latency`` from ``NN% percentile latency``, all in seconds as printed.
* vLLM prefix caching (old ``benchmarks/benchmark_prefix_caching.py``): ``cost_time`` (seconds of
  the ``cost time X`` line; the measured pass prints it after the warm-up one), and the
  ``LLM.generate`` progress bar's ``est. speed input: X toks/s, output: Y toks/s`` as
  ``est_input_toks_per_s`` / ``est_output_toks_per_s`` (its final redraw wins).
* SGLang ``bench_serving``: the vLLM keys where the meaning is the same, plus ``input_throughput``
  (also "Input throughput"), ``total_output_tokens_retokenized``, ``concurrency``,
  ``accept_length``, ``total_token_throughput`` also from "Total throughput (tok/s)", and E2E as
  ``<stat>_e2e_latency_ms`` (``mean_e2e_latency_ms``, ``median_e2e_latency_ms``, ...).
* SGLang ``bench_one_batch`` (and its older name ``bench_latency``): ``prefill_latency``,
  ``prefill_throughput``, ``median_decode_latency``, ``median_decode_throughput`` (old:
  ``avg_decode_latency``, ``avg_decode_throughput``), ``total_latency``, ``overall_throughput``.
  Per-step ``Decode.  latency`` lines are ignored. With a sweep the last point printed wins.
* SGLang ``bench_offline_throughput``: the serving-style block (``completed``, ``duration``, the
  throughputs).

Result files (``parse_result_file``): one JSON object, or JSONL of which the last non-empty line
counts (SGLang and ``--append-result`` append). Known keys are kept (the script's own names, so
they match the printed keys above), ``"request_goodput:"`` (a colon in one vLLM version) becomes
``request_goodput``, the latency script's ``percentiles`` object becomes ``pNN_latency``; nulls,
strings, booleans, lists and non-finite numbers are skipped.

Workload figures (``WORKLOAD_KEYS``, read by ``workload``): what the benchmark did, as opposed to how
fast: completed and failed requests (``completed``, ``failed``, ``successful_requests``,
``num_requests``), input tokens (``total_input_tokens``, ``total_num_prompt_tokens``) and output
tokens (``total_output_tokens``, ``total_output_tokens_retokenized``, ``total_num_output_tokens``,
``total_num_tokens``). They are parsed like every other figure and compared between human and agent
(``workload.py``).

Aliases, added to both sources so one task metric fits every version:
``requests_per_second`` -> ``request_throughput``, ``tokens_per_second`` -> ``total_token_throughput``,
``output_tokens_per_second`` -> ``output_throughput``; ``total_token_throughput`` <->
``total_throughput``; ``completed`` <-> ``successful_requests``; and, for one-batch results
(recognised by ``prefill_latency``), ``overall_throughput`` <-> ``total_throughput``.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

Metrics = dict[str, float]

# A number not glued to more word characters ("12abc" and "1.2.3" are not numbers).
_NUM = r"([-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)(?![\w.])"
_PERCENT = r"\d+(?:\.\d+)?"
_STAT = rf"mean|median|std|min|max|p{_PERCENT}"


@dataclass(frozen=True)
class _Row:
    """One printed-output rule: a label pattern and the key (template) for each number in it.

    Key templates are formatted with the pattern's named groups (``{stat}``, ``{m}``, ``{pct}``),
    normalised by ``_slot``; the numbers are the unnamed groups, in order.
    """

    pattern: re.Pattern[str]
    keys: tuple[str, ...]
    anywhere: bool = False  # search the whole line instead of matching at its start

    def read(self, line: str) -> Metrics:
        found = self.pattern.search(line) if self.anywhere else self.pattern.match(line)
        if found is None:
            return {}
        slots = {name: _slot(value) for name, value in found.groupdict().items() if value is not None}
        named = set(self.pattern.groupindex.values())
        numbers = [found.group(i) for i in range(1, self.pattern.groups + 1) if i not in named]
        return {
            key.format(**slots): float(number)
            for key, number in zip(self.keys, numbers, strict=True)
            if number is not None
        }


def _row(label: str, *keys: str, anywhere: bool = False) -> _Row:
    """Compile a table row: ``#`` stands for a number, a space for whitespace (optional after
    ``:``, ``,`` or ``.``, required between words)."""
    regex = re.sub(r"(?<=[:,.]) ", r"\\s*", label).replace(" ", r"\s+").replace("#", _NUM)
    return _Row(re.compile(regex, re.IGNORECASE), keys, anywhere)


# Label pattern -> metric key(s). A plain "label: #" row takes the value after the colon.
_TEXT_ROWS: tuple[_Row, ...] = (
    # Serving blocks (vLLM benchmark_serving / vllm bench serve, SGLang bench_serving and offline).
    _row(r"successful requests: #", "completed"),
    _row(r"failed requests: #", "failed"),
    _row(r"benchmark duration \(s\): #", "duration"),
    _row(r"total input tokens: #", "total_input_tokens"),
    _row(r"total (?:generated|output) tokens: #", "total_output_tokens"),
    _row(r"total generated tokens \(retokenized\): #", "total_output_tokens_retokenized"),
    _row(r"request throughput \(req/s\): #", "request_throughput"),
    _row(r"request goodput \(req/s\): #", "request_goodput"),
    _row(r"input (?:token )?throughput \(tok/s\): #", "input_throughput"),
    _row(r"output (?:token )?throughput \(tok/s\): #", "output_throughput"),
    _row(r"total (?:token )?throughput \(tok/s\): #", "total_token_throughput"),
    _row(r"peak output token throughput \(tok/s\): #", "max_output_tokens_per_s"),
    _row(r"peak concurrent requests: #", "max_concurrent_requests"),
    _row(r"concurrency: #", "concurrency"),
    _row(r"accept length: #", "accept_length"),
    _row(r"acceptance rate \(%\): #", "spec_decode_acceptance_rate"),
    _row(r"acceptance length: #", "spec_decode_acceptance_length"),
    _row(r"drafts: #", "spec_decode_num_drafts"),
    _row(r"draft tokens: #", "spec_decode_draft_tokens"),
    _row(r"accepted tokens: #", "spec_decode_accepted_tokens"),
    _row(rf"(?P<stat>{_STAT}) (?P<m>ttft|tpot|itl|e2el|e2e latency) \(ms\): #", "{stat}_{m}_ms"),
    # vLLM offline throughput.
    _row(
        r"throughput: # requests/s, # (?:total )?tokens/s(?:, # output tokens/s)?",
        "requests_per_second",
        "tokens_per_second",
        "output_tokens_per_second",
    ),
    _row(r"total num prompt tokens: #", "total_num_prompt_tokens"),
    _row(r"total num output tokens: #", "total_num_output_tokens"),
    # vLLM latency (seconds).
    _row(r"avg latency: #", "avg_latency"),
    _row(r"std latency: #", "std_latency"),
    _row(rf"(?P<pct>{_PERCENT})% percentile latency: #", "p{pct}_latency"),
    # vLLM prefix caching (old script): wall time of a generate() pass and the progress-bar speeds.
    _row(r"cost time:? #", "cost_time"),
    _row(
        r"est\. speed input: # toks/s, output: # toks/s",
        "est_input_toks_per_s",
        "est_output_toks_per_s",
        anywhere=True,
    ),
    # SGLang bench_one_batch / bench_latency.
    _row(r"prefill\. latency: # s, throughput: # token/s", "prefill_latency", "prefill_throughput"),
    _row(
        r"decode\. median latency: # s, median throughput: # token/s",
        "median_decode_latency",
        "median_decode_throughput",
    ),
    _row(
        r"decode\. avg latency: # s, avg throughput: # token/s",
        "avg_decode_latency",
        "avg_decode_throughput",
    ),
    _row(r"total\. latency: # s, throughput: # token/s", "total_latency", "overall_throughput"),
)

# Result-file keys kept as they are (the scripts' own names); anything else is ignored.
_JSON_KEYS = frozenset(
    {
        # vLLM serving
        "duration",
        "completed",
        "failed",
        "total_input_tokens",
        "total_output_tokens",
        "request_throughput",
        "request_goodput",
        "output_throughput",
        "total_token_throughput",
        "max_output_tokens_per_s",
        "max_concurrent_requests",
        "rtfx",
        # vLLM throughput and latency
        "elapsed_time",
        "num_requests",
        "total_num_tokens",
        "requests_per_second",
        "tokens_per_second",
        "output_tokens_per_second",
        "total_num_prompt_tokens",
        "total_num_output_tokens",
        "avg_latency",
        "std_latency",
        # SGLang serving, one-batch and offline
        "input_throughput",
        "total_throughput",
        "total_output_tokens_retokenized",
        "concurrency",
        "accept_length",
        "prefill_latency",
        "prefill_throughput",
        "median_decode_latency",
        "median_decode_throughput",
        "avg_decode_latency",
        "avg_decode_throughput",
        "total_latency",
        "overall_throughput",
        "successful_requests",
    }
)
_JSON_KEY_PATTERNS = (
    re.compile(rf"^(?:{_STAT})_(?:ttft|tpot|itl|e2el|e2e_latency)_ms$"),
    re.compile(rf"^p{_PERCENT}_latency$"),
    re.compile(r"^spec_decode_[a-z_]+$"),
)

# (source, alias): the alias is added when missing, never the other way round.
_ONE_WAY_ALIASES = (
    ("requests_per_second", "request_throughput"),
    ("tokens_per_second", "total_token_throughput"),
    ("output_tokens_per_second", "output_throughput"),
)
# Groups of names for the same figure: each missing one takes the first present one's value.
_SAME_FIGURE = (
    ("total_token_throughput", "total_throughput"),
    ("completed", "successful_requests"),
)
# SGLang one-batch: "overall" (new) and "total" (old bench_latency) throughput are one figure.
_ONE_BATCH_MARKER = "prefill_latency"
_ONE_BATCH_SAME = ("overall_throughput", "total_throughput")


WORKLOAD_KEYS = (
    "completed",
    "failed",
    "successful_requests",
    "num_requests",
    "total_input_tokens",
    "total_num_prompt_tokens",
    "total_output_tokens",
    "total_output_tokens_retokenized",
    "total_num_output_tokens",
    "total_num_tokens",
)


def workload(metrics: Mapping[str, float]) -> dict[str, float]:
    """The workload figures among a run's metrics (requests, prompts, tokens; see WORKLOAD_KEYS)."""
    return {key: metrics[key] for key in WORKLOAD_KEYS if key in metrics}


def parse_text(text: str) -> dict[str, float]:
    """Metrics found in a benchmark's printed output (any supported format; unknown text is ignored)."""
    found: Metrics = {}
    for line in _lines(text):
        for row in _TEXT_ROWS:
            found.update(row.read(line))  # later lines overwrite: the last value wins
    return _with_aliases(found)


def parse_result_file(path: Path) -> dict[str, float]:
    """Metrics from one JSON or JSONL result file (JSONL: the LAST non-empty line). Unknown keys ignored;
    raises nothing for garbage: returns {} for unreadable/invalid files."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except (OSError, ValueError):
        return {}
    record = _last_record(text)
    return {} if record is None else _with_aliases(_record_metrics(record))


def collect_metrics(stdout: str, result_dir: Path | None = None) -> dict[str, float]:
    """All metrics of one benchmark run: JSON/JSONL files in result_dir (sorted by name, skipping
    `*.pytorch.json`) take precedence, the printed output fills the gaps.

    Among the files a later name overrides an earlier one (timestamped names sort oldest first).
    """
    merged: Metrics = {}
    for path in _result_files(result_dir):
        merged.update(parse_result_file(path))
    for key, value in parse_text(stdout).items():
        merged.setdefault(key, value)
    return merged


def _lines(text: str) -> Iterator[str]:
    """Stripped, non-empty lines; ``\\r`` counts as a line break (progress-bar redraws)."""
    for line in re.split(r"\r\n|\r|\n", text):
        stripped = line.strip()
        if stripped:
            yield stripped


def _slot(value: str) -> str:
    """Normalise a captured label part for a key: ``P99`` -> ``p99``, ``E2E Latency`` -> ``e2e_latency``."""
    lowered = "_".join(value.lower().split())
    if re.fullmatch(rf"p{_PERCENT}", lowered):
        return "p" + _percent(lowered[1:])
    return _percent(lowered)


def _percent(text: str) -> str:
    """``99`` and ``99.0`` -> ``99``, ``99.9`` stays; anything that is not a number is left alone."""
    try:
        number = float(text)
    except ValueError:
        return text
    return str(int(number)) if number.is_integer() else str(number)


def _last_record(text: str) -> Mapping[str, object] | None:
    """The JSON object of a file: the whole text, else its last non-empty line (JSONL)."""
    for candidate in (text, _last_line(text)):
        try:
            value = json.loads(candidate)
        except (ValueError, RecursionError):
            continue
        return value if isinstance(value, dict) else None
    return None


def _last_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def _record_metrics(record: Mapping[str, object]) -> Metrics:
    """Known numeric keys of one result object, plus the latency script's ``percentiles`` object."""
    found: Metrics = {}
    for raw_key, value in record.items():
        key = str(raw_key).strip().rstrip(":").strip()
        if key == "percentiles" and isinstance(value, Mapping):
            found.update(_latency_percentiles(value))
        elif _known_json_key(key):
            number = _finite(value)
            if number is not None:
                found[key] = number
    return found


def _latency_percentiles(table: Mapping[object, object]) -> Metrics:
    found: Metrics = {}
    for raw_pct, value in table.items():
        pct = _percent(str(raw_pct).strip())
        number = _finite(value)
        if number is not None and re.fullmatch(_PERCENT, pct):
            found[f"p{pct}_latency"] = number
    return found


def _known_json_key(key: str) -> bool:
    return key in _JSON_KEYS or any(pattern.match(key) for pattern in _JSON_KEY_PATTERNS)


def _finite(value: object) -> float | None:
    """A JSON number as float; None for null, booleans, strings, containers, NaN and infinities."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _with_aliases(found: Metrics) -> Metrics:
    """Add the other names of the figures present (see the module docstring), never overwriting."""
    result = dict(found)
    for source, alias in _ONE_WAY_ALIASES:
        if source in result:
            result.setdefault(alias, result[source])
    groups = list(_SAME_FIGURE)
    if _ONE_BATCH_MARKER in result:
        groups.insert(0, _ONE_BATCH_SAME)
    for group in groups:
        present = [name for name in group if name in result]
        if present:
            for name in group:
                result.setdefault(name, result[present[0]])
    return result


def _result_files(result_dir: Path | None) -> list[Path]:
    """JSON/JSONL files directly in result_dir, by name; PyTorch-benchmark duplicates left out."""
    if result_dir is None or not result_dir.is_dir():
        return []
    try:
        entries = list(result_dir.iterdir())
    except OSError:
        return []
    return sorted(
        (
            path
            for path in entries
            if path.suffix.lower() in (".json", ".jsonl")
            and not path.name.lower().endswith(".pytorch.json")
            and path.is_file()
        ),
        key=lambda path: path.name,
    )
