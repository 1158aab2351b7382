"""What a judge call costs: the APIs report tokens, never money, so we price them ourselves.

``DEFAULT_PRICES`` is USD per million (input, output) tokens, keyed by model name or by full judge
spec. Callers pass their own table to ``run_judges(prices=...)``; it is laid over the defaults.
A dated model id (``claude-sonnet-4-5-20250929``) falls back to the longest key it starts with.
Prices drift: treat the defaults as a convenience, and override them for accounting that matters.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping
from pathlib import Path

DEFAULT_PRICES: dict[str, tuple[float, float]] = {
    "claude-opus-4-1": (15.0, 75.0),
    "claude-opus-4": (15.0, 75.0),
    "claude-opus-4-5": (5.0, 25.0),
    "claude-sonnet-4-5": (3.0, 15.0),
    "claude-sonnet-4": (3.0, 15.0),
    "claude-haiku-4-5": (1.0, 5.0),
    "claude-3-5-haiku": (0.8, 4.0),
    "gpt-5": (1.25, 10.0),
    "gpt-5-mini": (0.25, 2.0),
    "gpt-5-nano": (0.05, 0.4),
    "gpt-4.1": (2.0, 8.0),
    "gpt-4.1-mini": (0.4, 1.6),
    "gpt-4.1-nano": (0.1, 0.4),
    "gpt-4o": (2.5, 10.0),
    "gpt-4o-mini": (0.15, 0.6),
}


def price_table(overrides: Mapping[str, tuple[float, float]] | None = None) -> dict[str, tuple[float, float]]:
    """The defaults with ``overrides`` laid over them."""
    return {**DEFAULT_PRICES, **(overrides or {})}


def lookup_price(spec: str, table: Mapping[str, tuple[float, float]]) -> tuple[float, float] | None:
    """Price of a judge spec: the full spec, then the model name, then the longest matching prefix."""
    model = spec.partition(":")[2] or spec
    for key in (spec, model):
        if key in table:
            return table[key]
    prefixes = [key for key in table if model.startswith(key)]
    return table[max(prefixes, key=len)] if prefixes else None


def cost_usd(
    spec: str, input_tokens: int, output_tokens: int, table: Mapping[str, tuple[float, float]]
) -> float | None:
    """Dollars for the tokens, or None when the model is not in the table."""
    price = lookup_price(spec, table)
    if price is None:
        return None
    return round((input_tokens * price[0] + output_tokens * price[1]) / 1_000_000, 8)


def load_prices(path: Path) -> dict[str, tuple[float, float]]:
    """A price table from a JSON or TOML file: ``{"MODEL or SPEC": [usd_per_M_input, usd_per_M_output]}``.

    Raises ValueError naming the file and the bad entry (for an option's usage error).
    """
    try:
        text = path.read_text(encoding="utf-8")
        data = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: cannot read the price table: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a table of MODEL = [input, output] prices")
    table: dict[str, tuple[float, float]] = {}
    for model, pair in data.items():
        ok = isinstance(pair, list | tuple) and len(pair) == 2
        if not ok or not all(isinstance(x, int | float) and not isinstance(x, bool) and x >= 0 for x in pair):
            raise ValueError(
                f"{path}: {model!r}: expected [input, output] USD per million tokens, got {pair!r}"
            )
        table[str(model)] = (float(pair[0]), float(pair[1]))
    return table
