"""The Runs pages' charts, as data: metric histories on one x axis for uPlot, and parallel coordinates as
inline SVG (uPlot draws no such chart). Every text from a run is escaped here; the SVG is the page's own."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from html import escape
from typing import Any

from markupsafe import Markup

# Distinct on white and for the common colour-vision deficiencies (Okabe-Ito, then Tableau's).
COLOURS = ("#0072b2", "#e69f00", "#009e73", "#d55e00", "#cc79a7", "#56b4e9", "#7f7f7f", "#8c564b", "#bcbd22",
           "#000000")  # fmt: skip
MAX_POINTS = 2000  # per chart: a browser draws this many steps at once without a pause
MAX_AXES = 30


def colour(i: int) -> str:
    return COLOURS[i % len(COLOURS)]


def aligned_curves(histories: Sequence[Sequence[tuple[int, datetime, float]]]) -> dict[str, Any]:
    """One metric's histories (one per run) as uPlot data: ``{"x": steps, "y": [values per run]}``, with
    null where a run has no point at a step (or NaN/infinity, which JSON cannot carry). A step logged
    twice keeps its last value, as the run's latest value does. Over :data:`MAX_POINTS` steps, every
    k-th step is kept (the last always), so a long run stays drawable."""
    per_run = [{step: value for step, _, value in history} for history in histories]
    steps = sorted({step for values in per_run for step in values})
    if len(steps) > MAX_POINTS:
        stride = math.ceil(len(steps) / MAX_POINTS)
        steps = steps[::stride] + ([steps[-1]] if (len(steps) - 1) % stride else [])
    y = [[_finite(values.get(step)) for step in steps] for values in per_run]
    return {"x": steps, "y": y}


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def parallel_coordinates(axes: Sequence[tuple[str, Sequence[Any]]], labels: Sequence[str]) -> Markup:
    """An SVG with one vertical axis per ``(name, value per run)`` and one line per run through its values:
    numbers on a linear scale from their min to their max, anything else as evenly spaced categories in
    sorted order. A run without a value on an axis has a gap there."""
    # NaN and infinity have no place on a scale: drawn as missing, as uPlot draws them.
    axes = [(name, [None if isinstance(v, float) and not math.isfinite(v) else v for v in values])
            for name, values in list(axes)[:MAX_AXES]]  # fmt: skip
    if not axes:
        return Markup('<p class="muted">These runs have no params or metrics to draw.</p>')
    top, bottom, left, gap = 40, 300, 60, 130
    width = left * 2 + gap * (len(axes) - 1)
    parts = [
        f'<svg class="parcoords" role="img" viewBox="0 0 {width} {bottom + 30}" width="{width}" '
        f'height="{bottom + 30}" xmlns="http://www.w3.org/2000/svg"><title>Parallel coordinates of '
        f"{len(labels)} runs over {len(axes)} params and metrics</title>"
    ]
    positions: list[list[float | None]] = [[] for _ in labels]
    for a, (name, values) in enumerate(axes):
        x = left + a * gap
        scale, ticks = _scale(values)
        for run, value in enumerate(values):
            positions[run].append(None if value is None else bottom - scale(value) * (bottom - top))
        parts.append(f'<line x1="{x}" y1="{top}" x2="{x}" y2="{bottom}" stroke="#8896a5"/>')
        parts.append(f'<text x="{x}" y="{top - 14}" text-anchor="middle" font-size="11" '
                     f'font-weight="600">{escape(_short(name, 22))}</text>')  # fmt: skip
        for share, text in ticks:
            tick = bottom - share * (bottom - top)
            parts.append(f'<text x="{x + 4}" y="{tick + 4:.1f}" font-size="10" fill="#5d6b7a">'
                         f"{escape(_short(text, 16))}</text>")  # fmt: skip
    for run, ys in enumerate(positions):
        segment: list[str] = []
        for a, at in enumerate([*ys, None]):
            if at is not None:
                segment.append(f"{left + a * gap},{at:.1f}")
                continue
            if segment:
                shape = "polyline" if len(segment) > 1 else "circle"
                if shape == "polyline":
                    parts.append(f'<polyline points="{" ".join(segment)}" fill="none" stroke="{colour(run)}" '
                                 f'stroke-width="2" opacity="0.85"><title>{escape(labels[run])}</title></polyline>')  # fmt: skip
                else:
                    cx, cy = segment[0].split(",")
                    parts.append(f'<circle cx="{cx}" cy="{cy}" r="3" fill="{colour(run)}">'
                                 f"<title>{escape(labels[run])}</title></circle>")  # fmt: skip
            segment = []
    parts.append("</svg>")
    return Markup("".join(parts))  # every run-supplied text above went through escape()


def _scale(values: Sequence[Any]) -> tuple[Any, list[tuple[float, str]]]:
    """``(value -> share of the axis from the bottom, [(share, tick label)])`` for one axis."""
    present = [v for v in values if v is not None]
    numbers = [_number(v) for v in present]
    if present and all(n is not None for n in numbers):
        finite = [n for n in numbers if n is not None]
        low, high = min(finite), max(finite)
        span = high - low

        def linear(value: Any) -> float:
            number = _number(value)
            return 0.5 if not span or number is None else (number - low) / span

        ticks = [(0.5, _text(low))] if not span else [(0.0, _text(low)), (1.0, _text(high))]
        return linear, ticks
    categories = sorted({str(v) for v in present})
    step = 1 / max(1, len(categories) - 1)

    def category(value: Any) -> float:
        return 0.5 if len(categories) == 1 else categories.index(str(value)) * step

    return category, [(category(c), c) for c in categories[:12]]


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _text(number: float) -> str:
    return f"{number:.4g}"


def _short(text: str, size: int) -> str:
    return text if len(text) <= size else text[: size - 1] + "…"
