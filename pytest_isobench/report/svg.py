"""Small hand-made inline SVG charts for the HTML report: bars with error whiskers, dot plots.

Each chart is an ``<svg role="img">`` with a ``<title>`` and a ``<desc>`` that says in words what it
draws (the text alternative); the numbers are also in the tables beside it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from statistics import median

from markupsafe import Markup, escape

WIDTH = 420
LABEL_W = 130
ROW_H = 22
PAD = 8
COLORS = ("#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860", "#da8bc3", "#8c8c8c")


@dataclass(frozen=True)
class Bar:
    """One bar: a percentage with an optional interval ``(low, high)``."""

    label: str
    value: float | None
    interval: tuple[float, float] | None = None


def _fmt(value: float) -> str:
    return f"{value:+.1f} %"


def _scale(lo: float, hi: float, left: float, right: float) -> tuple[float, float, float, float]:
    if hi - lo < 1e-9:
        lo, hi = lo - 1.0, hi + 1.0
    pad = (hi - lo) * 0.05
    lo, hi = lo - pad, hi + pad
    return lo, hi, left, (right - left) / (hi - lo)


def bar_chart(title: str, bars: Sequence[Bar], *, band: float | None = None) -> Markup:
    """Horizontal bars from 0, whiskers for intervals, dashed lines at ±band; None values say n/a."""
    values = [b.value for b in bars if b.value is not None]
    ends = [x for b in bars if b.interval for x in b.interval] + values + [0.0]
    if band is not None:
        ends += [band, -band]
    lo, hi, x0, k = _scale(min(ends), max(ends), LABEL_W, WIDTH - PAD)

    def x(v: float) -> float:
        return round(x0 + (v - lo) * k, 1)

    height = PAD * 2 + ROW_H * len(bars) + 14
    words = []
    parts = [f'<line x1="{x(0)}" y1="{PAD}" x2="{x(0)}" y2="{height - 14}" class="axis"/>']
    if band is not None:
        for edge in (band, -band):
            parts.append(f'<line x1="{x(edge)}" y1="{PAD}" x2="{x(edge)}" y2="{height - 14}" class="band"/>')
    for i, bar in enumerate(bars):
        y = PAD + i * ROW_H
        parts.append(
            f'<text x="{LABEL_W - 6}" y="{y + 15}" text-anchor="end">{escape(bar.label[:20])}</text>'
        )
        if bar.value is None:
            parts.append(f'<text x="{x(0) + 4}" y="{y + 15}" class="na">n/a</text>')
            words.append(f"{bar.label}: not measured")
            continue
        left, right = sorted((x(0), x(bar.value)))
        color = COLORS[i % len(COLORS)]
        parts.append(
            f'<rect x="{left}" y="{y + 4}" width="{max(right - left, 1)}" height="{ROW_H - 8}"'
            f' fill="{color}"/>'
        )
        text = f"{bar.label}: {_fmt(bar.value)}"
        if bar.interval:
            a, b = x(bar.interval[0]), x(bar.interval[1])
            mid = y + ROW_H / 2
            parts.append(
                f'<path d="M{a} {mid}H{b}M{a} {mid - 5}V{mid + 5}M{b} {mid - 5}V{mid + 5}" class="whisker"/>'
            )
            text += f" (interval {_fmt(bar.interval[0])} to {_fmt(bar.interval[1])})"
        words.append(text)
    parts.append(f'<text x="{x(lo)}" y="{height - 2}" class="tick">{_fmt(lo)}</text>')
    parts.append(f'<text x="{x(hi)}" y="{height - 2}" text-anchor="end" class="tick">{_fmt(hi)}</text>')
    if band is not None:
        words.append(f"dashed lines at ±{band:g} %")
    return _svg(title, "; ".join(words), height, parts)


def dot_plot(title: str, rows: Sequence[tuple[str, Sequence[float]]], unit: str = "") -> Markup:
    """One row of dots per variant (every measured round), a tick at each row's median."""
    values = [v for _, vs in rows for v in vs]
    if not values:
        return Markup("")
    lo, hi, x0, k = _scale(min(values), max(values), LABEL_W, WIDTH - PAD)

    def x(v: float) -> float:
        return round(x0 + (v - lo) * k, 1)

    height = PAD * 2 + ROW_H * len(rows) + 14
    parts = []
    words = []
    for i, (label, vs) in enumerate(rows):
        y = PAD + i * ROW_H + ROW_H / 2
        color = COLORS[i % len(COLORS)]
        parts.append(f'<text x="{LABEL_W - 6}" y="{y + 4}" text-anchor="end">{escape(label[:20])}</text>')
        parts.append(f'<line x1="{LABEL_W}" y1="{y}" x2="{WIDTH - PAD}" y2="{y}" class="grid"/>')
        for v in vs:
            parts.append(f'<circle cx="{x(v)}" cy="{y}" r="3.5" fill="{color}" fill-opacity="0.7"/>')
        if vs:
            med = median(vs)
            parts.append(f'<path d="M{x(med)} {y - 8}V{y + 8}" class="median"/>')
            words.append(f"{label}: {len(vs)} rounds from {min(vs):.4g} to {max(vs):.4g}, median {med:.4g}")
        else:
            words.append(f"{label}: no rounds")
    parts.append(f'<text x="{x(lo)}" y="{height - 2}" class="tick">{lo:.4g}{escape(unit)}</text>')
    parts.append(
        f'<text x="{x(hi)}" y="{height - 2}" text-anchor="end" class="tick">{hi:.4g}{escape(unit)}</text>'
    )
    return _svg(title, "; ".join(words), height, parts)


def _svg(title: str, desc: str, height: float, parts: list[str]) -> Markup:
    return Markup(
        f'<svg class="chart" role="img" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}"'
        f"><title>{escape(title)}</title><desc>{escape(desc)}</desc>" + "".join(parts) + "</svg>"
    )
