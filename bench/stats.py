"""Small statistics over plain lists: percentiles, medians, ratios, rounding for the report."""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence
from typing import Any


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100), linearly interpolated; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def median(values: Iterable[float]) -> float:
    finite = [v for v in values if v is not None and not math.isnan(v)]
    return statistics.median(finite) if finite else math.nan


def ratio(value: float, baseline: float) -> float:
    return value / baseline if baseline else math.nan


def rounded(value: Any, digits: int = 4) -> Any:
    """Floats rounded (NaN becomes None, for JSON), recursively through dicts and lists."""
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else round(value, digits)
    if isinstance(value, dict):
        return {key: rounded(item, digits) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [rounded(item, digits) for item in value]
    return value


def medians_of(runs: list[dict[str, Any]], keys: Iterable[str]) -> dict[str, float]:
    """For each key, the median of that number over the runs."""
    return {key: median(run[key] for run in runs) for key in keys}


def binned(values: Sequence[float], bins: int) -> list[float]:
    """Medians of ``bins`` consecutive equal slices of ``values`` (in their order)."""
    if not values:
        return []
    size = max(1, len(values) // bins)
    slices = [values[i : i + size] for i in range(0, len(values), size)][:bins]
    return [statistics.median(part) for part in slices]
