"""Percentiles, rates and the median of repeated runs: the arithmetic of the reports."""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping, Sequence

Figures = dict[str, float | int | str | None]
"""One measurement: figure name → value (numbers, plus a few labels such as `process`)."""

PERCENTILES = (50, 90, 99)


def percentile(ordered: Sequence[float], share: float) -> float:
    """The nearest-rank percentile (`share` in 0-100) of an ascending, non-empty sequence."""
    if not ordered:
        raise ValueError("no samples")
    rank = max(1, math.ceil(share / 100 * len(ordered)))
    return ordered[rank - 1]


def latency_figures(prefix: str, samples_ms: Iterable[float]) -> Figures:
    """`{prefix}_p50_ms`, `_p90_ms`, `_p99_ms`, `_max_ms` (None each when there is no sample)."""
    ordered = sorted(samples_ms)
    figures: Figures = {}
    for share in PERCENTILES:
        figures[f"{prefix}_p{share}_ms"] = round(percentile(ordered, share), 3) if ordered else None
    figures[f"{prefix}_max_ms"] = round(ordered[-1], 3) if ordered else None
    return figures


def rate(count: int, seconds: float) -> float:
    """Events per second, 0 for an empty window."""
    return round(count / seconds, 1) if seconds > 0 else 0.0


def cpu_percent(cpu_seconds: float, wall_seconds: float) -> float:
    """CPU use as a percentage of one core over the window."""
    return round(100 * cpu_seconds / wall_seconds, 1) if wall_seconds > 0 else 0.0


def median_figures(runs: Sequence[Mapping[str, float | int | str | None]]) -> Figures:
    """Per figure, the median over repeated runs (labels and gaps are taken from the first)."""
    if not runs:
        return {}
    merged: Figures = {}
    for name, first in runs[0].items():
        values = [run[name] for run in runs if isinstance(run.get(name), int | float)]
        if isinstance(first, bool) or not isinstance(first, int | float) or not values:
            merged[name] = first
            continue
        middle = statistics.median(float(v) for v in values if isinstance(v, int | float))
        merged[name] = (
            round(middle) if all(isinstance(v, int) for v in values) else round(middle, 3)
        )
    return merged
