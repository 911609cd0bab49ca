"""How the dashboard writes numbers and times (pure; Jinja2 filters)."""

from __future__ import annotations

import time


def usd(value: float | None) -> str:
    if value is None:
        return "–"
    return f"${value:,.2f}" if abs(value) >= 1 or value == 0 else f"${value:.4f}"


def _span(seconds: float) -> str:
    seconds = abs(seconds)
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def when(at: float | None, now: float) -> str:
    """A past time: ``12 s ago``; the clock time (UTC) after a day."""
    if at is None:
        return "–"
    if now - at > 86400:
        return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(at))
    return f"{_span(now - at)} ago"


def eta(at: float | None, now: float) -> str:
    """A time to come: ``in 40 s``; ``now`` when it is due."""
    if at is None:
        return "unknown (no backend can take it now)"
    return "now" if at <= now else f"in {_span(at - now)}"


def seconds(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f} s"


def percent(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.0f} %"
