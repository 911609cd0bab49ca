"""What a waiting scene is told (pure): its place in the backlog and when it is expected to
start and finish, a fluid estimate from the scenes ahead of it, the busy slots and the learned
job times.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from .classes import ScClass
from .jobtimes import JobTimes
from .scheduler import BackendView, available, free_slots


@dataclass(frozen=True)
class Forecast:
    """A waiting scene's place in the backlog and when it is expected to start and finish
    (``None``: none of its backends is up now)."""

    place: int
    start: float | None
    finish: float | None


def forecast_waiting(
    c: ScClass,
    ahead: Mapping[ScClass, int],
    views: Iterable[BackendView],
    times: JobTimes,
    now: float,
) -> Forecast:
    """A fluid estimate for a scene of class ``c``: the scenes ahead of it that its backends
    could also take, plus half of their busy slots, over their rate; ``ahead``: per class,
    how many scenes are ahead of it."""
    up = {v.name: v for v in views if available(v)}
    place = sum(ahead.values()) + 1
    mine = [b for b in c.backends if b in up]
    if not mine:
        return Forecast(place, None, None)
    pool, before = set(mine), 0
    for other, count in ahead.items():
        if pool.intersection(other.backends):
            before += count
    rate = sum(up[b].capacity / times.seconds(b, c.duration) for b in pool)
    busy = sum(up[b].in_flight + up[b].queued for b in pool) / 2
    slots = sum(up[b].capacity for b in pool)
    free = sum(free_slots(up[b]) for b in pool)
    wait = 0.0 if before < free else (before - free + busy) / rate
    start = now + wait
    return Forecast(place, start, start + slots / rate)
