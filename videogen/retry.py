"""Retry and backoff policy (pure): how long to wait, and whether to try again.

Adapters make single attempts; this module is the one place that decides what happens next.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

MAX_RETRY_AFTER = 600.0
"""A vendor asking for more than ten minutes is treated as down, not waited for."""


def parse_retry_after(
    value: str | None, *, milliseconds: str | None = None, now: datetime | None = None
) -> float | None:
    """Seconds to wait from ``Retry-After`` (delta-seconds or HTTP-date) or ``retry-after-ms``.

    Returns ``None`` when absent or unparsable; never negative; capped at ``MAX_RETRY_AFTER``.
    """
    if milliseconds is not None:
        try:
            return _clamp(float(milliseconds) / 1000.0)
        except ValueError:
            pass
    if value is None or not value.strip():
        return None
    value = value.strip()
    try:
        return _clamp(float(value))
    except ValueError:
        return _from_http_date(value, now or datetime.now(UTC))


def _from_http_date(value: str, now: datetime) -> float | None:
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return _clamp((when - now).total_seconds())


def _clamp(seconds: float) -> float | None:
    if seconds != seconds:  # NaN
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


def backoff_delay(
    attempt: int,
    *,
    retry_after: float | None = None,
    base: float = 1.0,
    cap: float = 60.0,
    jitter: Callable[[], float] = random.random,
) -> float:
    """Seconds to wait before try number ``attempt + 1`` (``attempt`` counts from 1).

    Exponential (``base * 2**(attempt-1)``, capped) with up to 50 % added jitter; a vendor's
    ``Retry-After`` is a floor, never shortened by the jitter.
    """
    exponential = min(cap, base * 2.0 ** max(attempt - 1, 0))
    delay = exponential * (1.0 + 0.5 * jitter())
    return max(delay, retry_after) if retry_after is not None else delay
