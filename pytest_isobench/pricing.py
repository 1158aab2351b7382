"""What model tokens cost, for judges and CLI agents: the APIs report tokens, rarely money.

``DEFAULT_PRICES`` is USD per million tokens: ``(input, output, cached input)``, keyed by model name
or by full judge spec. The cached figure prices the input tokens a provider served from its prompt
cache (Anthropic: cache reads, 10 % of input; OpenAI: "cached input", 10 % of input for the gpt-5
family, 25 % for gpt-4.1, 50 % for gpt-4o); an entry with only ``(input, output)`` prices cached
tokens as ordinary input. Anthropic's cache writes (1.25 x input) are not told apart: they count as
input. A dated model id (``claude-sonnet-4-5-20250929``) falls back to the longest key it starts with.

Prices drift and differ between providers and gateways: the defaults are the providers' list prices
when this table was written, a convenience. Override them (``--isobench-prices FILE``, or
``price_table(overrides)``) for accounting that matters.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping
from pathlib import Path

# (input, output) or (input, output, cached input), USD per million tokens
Price = tuple[float, ...]
PriceTable = Mapping[str, Price]

DEFAULT_PRICES: dict[str, Price] = {
    "claude-opus-4-1": (15.0, 75.0, 1.5),
    "claude-opus-4": (15.0, 75.0, 1.5),
    "claude-opus-4-5": (5.0, 25.0, 0.5),
    "claude-sonnet-4-5": (3.0, 15.0, 0.3),
    "claude-sonnet-4": (3.0, 15.0, 0.3),
    "claude-haiku-4-5": (1.0, 5.0, 0.1),
    "claude-3-5-haiku": (0.8, 4.0, 0.08),
    "gpt-5": (1.25, 10.0, 0.125),
    "gpt-5-mini": (0.25, 2.0, 0.025),
    "gpt-5-nano": (0.05, 0.4, 0.005),
    "gpt-4.1": (2.0, 8.0, 0.5),
    "gpt-4.1-mini": (0.4, 1.6, 0.1),
    "gpt-4.1-nano": (0.1, 0.4, 0.025),
    "gpt-4o": (2.5, 10.0, 1.25),
    "gpt-4o-mini": (0.15, 0.6, 0.075),
}


def price_table(overrides: PriceTable | None = None) -> dict[str, Price]:
    """The defaults with ``overrides`` laid over them (an overriding entry replaces the whole price)."""
    return {**DEFAULT_PRICES, **(overrides or {})}


def lookup_price(spec: str, table: PriceTable) -> Price | None:
    """Price of a model or judge spec: the full spec, then the model name, then the longest prefix."""
    model = spec.partition(":")[2] or spec
    for key in (spec, model):
        if key in table:
            return table[key]
    prefixes = [key for key in table if model.startswith(key)]
    return table[max(prefixes, key=len)] if prefixes else None


def cost_usd(
    spec: str,
    input_tokens: int,
    output_tokens: int,
    cached_tokens: int = 0,
    *,
    table: PriceTable | None = None,
) -> float | None:
    """Dollars for the tokens, or None when the model is not in the table (default: the defaults).

    ``input_tokens`` counts every input token, the ``cached_tokens`` among them included; those are
    priced at the table's cached figure where it has one, else as input.
    """
    price = lookup_price(spec, DEFAULT_PRICES if table is None else table)
    if price is None:
        return None
    cached = max(0, min(cached_tokens, input_tokens))
    cached_rate = price[2] if len(price) > 2 else price[0]
    dollars = (input_tokens - cached) * price[0] + cached * cached_rate + output_tokens * price[1]
    return round(dollars / 1_000_000, 8)


def load_prices(path: Path) -> dict[str, Price]:
    """A price table from a JSON or TOML file, USD per million tokens:
    ``{"MODEL or SPEC": [input, output]}`` or ``[input, output, cached_input]``.

    Raises ValueError naming the file and the bad entry (for an option's usage error).
    """
    try:
        text = path.read_text(encoding="utf-8")
        data = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: cannot read the price table: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a table of MODEL = [input, output, cached input] prices")
    table: dict[str, Price] = {}
    for model, figures in data.items():
        ok = isinstance(figures, list | tuple) and len(figures) in (2, 3)
        if not ok or not all(_price_figure(x) for x in figures):
            raise ValueError(
                f"{path}: {model!r}: expected [input, output] or [input, output, cached input] USD per"
                f" million tokens, got {figures!r}"
            )
        table[str(model)] = tuple(float(x) for x in figures)
    return table


def _price_figure(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value >= 0
