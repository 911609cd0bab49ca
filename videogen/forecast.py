"""What users are told about waiting work: each scene's place in the backlog and its expected
start and finish, and each job's expected completion (from :mod:`videogen.scheduler`'s fluid
estimate, the backlog's counts and the learned job times)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .classes import ScClass
from .context import Context
from .eta import forecast_waiting
from .models import SceneState
from .record import SceneRecord
from .routing import views


@dataclass(frozen=True)
class SceneEta:
    scene_id: str
    state: SceneState
    place: int | None
    """1-based place in the whole backlog, while it waits there."""
    start: float | None
    finish: float | None
    """Expected (or actual, once finished) times; ``None``: unknown (no backend up)."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "place": self.place,
            "expected_start": _round(self.start),
            "expected_finish": _round(self.finish),
        }


def etas(ctx: Context, records: list[SceneRecord]) -> list[SceneEta]:
    """Every record's place and expected times, read in a few round trips."""
    now = ctx.clock()
    backend_views = views(ctx, probe=False)
    times = ctx.job_times()
    waiting = [r for r in records if r.state is SceneState.PENDING and r.queue]
    ahead = ctx.store.ahead([(r.queue or "", r.rank or 0.0) for r in waiting])
    ahead_of = dict(zip([r.id for r in waiting], ahead, strict=True))
    out = []
    for record in records:
        duration = record.spec.duration
        if record.id in ahead_of:
            cls = ScClass.parse(record.queue or "")
            f = forecast_waiting(cls, ahead_of[record.id], backend_views, times, now)
            out.append(SceneEta(record.id, record.state, f.place, f.start, f.finish))
        elif record.state is SceneState.ROUTED and record.backend:
            finish = now + times.seconds(record.backend, duration)
            out.append(SceneEta(record.id, record.state, None, now, finish))
        elif record.state is SceneState.RUNNING and record.backend:
            started = record.started_at or now
            finish = max(now, started + times.seconds(record.backend, duration))
            out.append(SceneEta(record.id, record.state, None, started, finish))
        elif record.finished:
            out.append(
                SceneEta(record.id, record.state, None, record.started_at, record.finished_at)
            )
        else:
            out.append(SceneEta(record.id, record.state, None, None, None))
    return out


def completion(scene_etas: list[SceneEta]) -> float | None:
    """A job's expected completion: its last scene's expected finish (``None`` when one is
    unknown)."""
    finishes = [e.finish for e in scene_etas]
    if not finishes or any(f is None for f in finishes):
        return None
    return max(f for f in finishes if f is not None)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)
