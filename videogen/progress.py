"""What a person is told about a job's progress (pure): lines and rows drawn from a
:meth:`videogen.api.VideoGenerator.job_forecast` answer and the time now.

``videogen status`` prints these lines; ``videogen submit --wait`` prints them as they change
(plain output) or draws them in a live view (on a terminal). Kept apart from both, so that what
is said is tested as a table, with no terminal, no Redis and no clock.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any

from .models import SceneState

SUMMARY_EVERY = 10.0
"""Seconds between two job summary lines in plain output: often enough to watch a job move in
a log, rarely enough that a long job's log stays readable."""


@dataclass(frozen=True)
class SceneView:
    """One scene as the forecast shows it."""

    id: str
    state: SceneState
    backend: str | None = None
    place: int | None = None
    """1-based place in the whole backlog, while it waits there."""
    start: float | None = None
    """Expected start while it waits; when it started once it runs (Unix time)."""
    finish: float | None = None
    """Expected finish; when it finished once it has (Unix time)."""
    error: str | None = None

    @classmethod
    def of(cls, scene: Mapping[str, Any]) -> SceneView:
        return cls(
            id=scene["id"],
            state=SceneState(scene["state"]),
            backend=scene.get("backend"),
            place=scene.get("place"),
            start=scene.get("expected_start"),
            finish=scene.get("expected_finish"),
            error=scene.get("error"),
        )

    @property
    def key(self) -> tuple[SceneState, str | None]:
        """What a change of which is worth a line: the state, and the backend it is on."""
        return self.state, self.backend


@dataclass(frozen=True)
class JobView:
    """One job as the forecast shows it."""

    id: str
    priority: int
    scenes: tuple[SceneView, ...]
    completion: float | None
    """The last scene's expected (or actual) finish; ``None``: unknown."""
    backlog: int
    """Scenes waiting in the whole backlog, of every job."""

    @classmethod
    def of(cls, forecast: Mapping[str, Any]) -> JobView:
        return cls(
            id=forecast["job_id"],
            priority=int(forecast.get("priority") or 0),
            scenes=tuple(SceneView.of(s) for s in forecast["scenes"]),
            completion=forecast.get("expected_completion"),
            backlog=int(forecast.get("backlog") or 0),
        )

    @property
    def total(self) -> int:
        return len(self.scenes)

    @property
    def done(self) -> int:
        return sum(1 for s in self.scenes if s.state.terminal)

    @property
    def finished(self) -> bool:
        return self.done == self.total

    def count(self, *states: SceneState) -> int:
        return sum(1 for s in self.scenes if s.state in states)


@dataclass(frozen=True)
class RunningRow:
    """A row of the live view's table of running scenes."""

    scene: str
    backend: str
    elapsed: str
    finish: str


# -- times ----------------------------------------------------------------------------------


def span(seconds: float) -> str:
    """A duration as people say it: ``42 s``, ``3 min 5 s``, ``2 h 10 min``."""
    total = max(0, round(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    if minutes:
        return f"{minutes} min {secs} s" if secs else f"{minutes} min"
    return f"{secs} s"


def clock_time(t: float, now: float, tz: tzinfo | None = None) -> str:
    """``14:03:21`` (local time unless ``tz``), with the date when it is not today's."""
    at = datetime.fromtimestamp(t, tz)
    same_day = at.date() == datetime.fromtimestamp(now, tz).date()
    return at.strftime("%H:%M:%S" if same_day else "%Y-%m-%d %H:%M:%S")


def moment(t: float | None, now: float, tz: tzinfo | None = None) -> str:
    """A time relative to ``now`` and on the clock: ``in 12 s (14:03:21)``, ``now (...)``,
    ``5 s ago (...)``; ``unknown`` for ``None``. A future time is rounded up, so that what
    is still to come never reads as ``now``."""
    if t is None:
        return "unknown"
    delta = t - now
    at = clock_time(t, now, tz)
    if delta > 0:
        return f"in {span(math.ceil(delta))} ({at})"
    if delta > -1:
        return f"now ({at})"
    return f"{span(math.floor(-delta))} ago ({at})"


# -- lines ----------------------------------------------------------------------------------


def scene_line(scene: SceneView, now: float, tz: tzinfo | None = None) -> str:
    """One line for a scene: its state, its backend, and while it is not finished when it is
    expected to start and finish (and, while it waits, its place in the backlog)."""
    state = scene.state
    if state is SceneState.PENDING and scene.place is not None:
        return (
            f"{scene.id} pending: place {scene.place} in the backlog; expected start "
            f"{moment(scene.start, now, tz)}, finish {moment(scene.finish, now, tz)}"
        )
    if state is SceneState.ROUTED and scene.backend:
        finish = moment(scene.finish, now, tz)
        return f"{scene.id} routed to {scene.backend}; expected finish {finish}"
    if state is SceneState.RUNNING and scene.backend:
        started = "" if scene.start is None else f"started {span(now - scene.start)} ago, "
        return (
            f"{scene.id} running on {scene.backend}; "
            f"{started}expected finish {moment(scene.finish, now, tz)}"
        )
    # A pending scene's backend is the one it last ran on: not where it is.
    where = f" on {scene.backend}" if scene.backend and state is not SceneState.PENDING else ""
    tail = f": {scene.error}" if state is SceneState.FAILED and scene.error else ""
    return f"{scene.id} {state.value}{where}{tail}"


def job_line(job: JobView, now: float, tz: tzinfo | None = None) -> str:
    """One line for a job: done of total (by outcome), running, waiting, the backlog, and
    its expected completion (or, once finished, when it did)."""
    outcomes = ", ".join(
        f"{job.count(state)} {state.value}"
        for state in (SceneState.SUCCEEDED, SceneState.FAILED, SceneState.CANCELLED)
        if job.count(state)
    )
    head = f"job {job.id}: {job.done}/{job.total} done" + (f" ({outcomes})" if outcomes else "")
    if job.finished:
        return f"{head}; {eta(job, now, tz)}"
    return f"{head}, {load(job)}; {eta(job, now, tz)}"


def load(job: JobView) -> str:
    """What of a job is not finished, and the backlog it waits in: ``1 running, 2 waiting;
    backlog 7`` (with its priority, when not the default)."""
    running = job.count(SceneState.RUNNING)
    waiting = job.count(SceneState.PENDING, SceneState.ROUTED)
    priority = f"; priority {job.priority}" if job.priority else ""
    return f"{running} running, {waiting} waiting{priority}; backlog {job.backlog}"


def eta(job: JobView, now: float, tz: tzinfo | None = None) -> str:
    """``ETA in 2 min (14:05:00)`` while the job runs; ``finished 3 s ago (...)`` after."""
    if job.finished:
        return f"finished {moment(job.completion, now, tz)}"
    return f"ETA {moment(job.completion, now, tz)}"


def running_rows(job: JobView, now: float, tz: tzinfo | None = None) -> list[RunningRow]:
    """The live view's table: every running scene, its backend, how long it has run, and
    when it is expected to finish."""
    return [
        RunningRow(
            scene=s.id,
            backend=s.backend or "-",
            elapsed="-" if s.start is None else span(now - s.start),
            finish=moment(s.finish, now, tz),
        )
        for s in job.scenes
        if s.state is SceneState.RUNNING
    ]


# -- what changed ---------------------------------------------------------------------------


def changed(before: JobView | None, after: JobView) -> list[SceneView]:
    """The scenes of ``after`` whose state or backend differ from ``before`` (every scene,
    the first time): what plain output gives a line each."""
    seen = {} if before is None else {s.id: s.key for s in before.scenes}
    return [s for s in after.scenes if seen.get(s.id) != s.key]


def summary_due(last: float | None, now: float, every: float = SUMMARY_EVERY) -> bool:
    """Whether plain output prints the job's summary line again (the first time, always)."""
    return last is None or now - last >= every
