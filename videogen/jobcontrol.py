"""Steering a job after submit: cancel what is no longer wanted, retry what failed.

**Cancel** moves each chosen live scene to ``cancelled`` in one atomic step wherever it is:
waiting (it leaves the backlog: its entry is dropped as stale), bound (the slot it reserved
comes back) or running (its lease goes, so its slot comes back at once). A running scene's
vendor job is handed to the orphan sweep (:mod:`videogen.orphans`), which asks the vendor to
cancel it, and a sweep is asked for now; the worker that ran it stops at its next heartbeat.
Spend stops: a waiting or bound scene's reservation is released; a running one's is settled
(the vendor may bill what it already did), and refunded if the vendor reports the job failed.
A finished scene stays as it is.

**Retry** sends failed or cancelled scenes back to the backlog, at their old place, with every
backend open to them again and their history of tries kept; succeeded ones are untouched.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from . import routing
from .context import Context
from .errors import JobControlError, UnknownJobError
from .models import SceneState
from .record import SceneRecord
from .spend import Settle
from .states import Event

log = logging.getLogger("videogen")

MOVE_TRIES = 5
"""Times a cancel re-reads a scene that moved under it (a worker started or resumed it)."""
RETRYABLE = (SceneState.FAILED, SceneState.CANCELLED)


@dataclass
class Report:
    """What a cancel or a retry did, scene by scene."""

    done: list[str] = field(default_factory=list)
    """Scenes cancelled (or sent back to the backlog)."""
    untouched: list[str] = field(default_factory=list)
    """Scenes left as they were (finished already; for a retry, not failed)."""
    vendor_jobs: list[str] = field(default_factory=list)
    """Running vendor jobs whose cancel was asked of the vendor."""

    def as_dict(self) -> dict[str, Any]:
        return {"done": self.done, "untouched": self.untouched, "vendor_jobs": self.vendor_jobs}


def chosen(ctx: Context, job_id: str, scene_ids: list[str] | None) -> list[SceneRecord]:
    """The job's scenes named by ``scene_ids`` (ids, or indexes as strings), all when
    ``None``; an unknown job or scene is an error naming it."""
    if ctx.store.job(job_id) is None:
        raise UnknownJobError(job_id)
    records = ctx.store.scenes(ctx.store.job_scene_ids(job_id))
    if not scene_ids:
        return records
    by_name = {r.id: r for r in records} | {str(r.index): r for r in records}
    unknown = [s for s in scene_ids if s not in by_name]
    if unknown:
        raise JobControlError(f"job {job_id} has no scene {', '.join(map(repr, unknown))}")
    return list({by_name[s].id: by_name[s] for s in scene_ids}.values())


def cancel(
    ctx: Context, job_id: str, scene_ids: list[str] | None = None, reason: str = ""
) -> Report:
    """Cancel a job's live scenes (all, or those named); see the module's docstring."""
    why = reason or "cancelled by the user"
    report = Report()
    for record in chosen(ctx, job_id, scene_ids):
        job = _cancel_one(ctx, record, why)
        if job is False:
            report.untouched.append(record.id)
            continue
        report.done.append(record.id)
        if isinstance(job, str):
            report.vendor_jobs.append(job)
    if report.done:
        ctx.ask_dispatch()  # slots came back
    if report.vendor_jobs:
        ctx.dispatch.sweep()  # the vendor's cancel, now rather than at the next beat
    log.info("job %s: cancelled %d scenes (%s)", job_id, len(report.done), why)
    return report


def _cancel_one(ctx: Context, record: SceneRecord, why: str) -> bool | str:
    """False: finished already; True: cancelled; a vendor job id: cancelled while running,
    its vendor job handed to the sweep."""
    for _ in range(MOVE_TRIES):
        if record.finished:
            return False
        on, token = record.guard()
        job = record.vendor_job if record.state is SceneState.RUNNING else None
        settle = (Settle.SETTLE, -1.0) if job is not None else (Settle.RELEASE, 0.0)
        moved = ctx.store.apply(
            record.id, Event.CANCEL, on=on, token=token, settle=settle,
            error=why, finished_at=ctx.clock(),
        )  # fmt: skip
        if moved is not None:
            if job is None:
                return True
            orphan = record.orphan(job, since=ctx.clock(), reason=why, cancelled=True)
            ctx.store.add_orphan(orphan)
            return job.job_id
        fresh = ctx.store.scene(record.id)  # it moved meanwhile: look again
        if fresh is None:
            return False
        record = fresh
    raise JobControlError(f"scene {record.id} kept moving; try the cancel again")


def retry(ctx: Context, job_id: str, scene_ids: list[str] | None = None) -> Report:
    """Send a job's failed or cancelled scenes (all, or those named) back to the backlog. A
    named scene that is not failed or cancelled is an error naming it and its state; with
    none named, the others are simply left alone."""
    records = chosen(ctx, job_id, scene_ids)
    if scene_ids:
        wrong = [r for r in records if r.state not in RETRYABLE]
        if wrong:
            listed = ", ".join(f"{r.id} is {r.state.value}" for r in wrong)
            raise JobControlError(f"only failed or cancelled scenes can be retried: {listed}")
    report = Report()
    for record in records:
        if record.state not in RETRYABLE:
            report.untouched.append(record.id)
            continue
        cls = routing.class_for(ctx, record, ())
        if cls is None:
            raise JobControlError(f"scene {record.id}: no enabled backend can take it now")
        moved = ctx.store.apply(
            record.id, Event.RESUBMIT, backlog=(cls, record.rank or 0.0),
            tried=[], retries=0, deliveries=0, failures=0, error=None, finished_at=None,
            resubmits=record.resubmits + 1,
            result=None, blocked=None, vendor_job=None, submitting=None, request=None,
        )  # fmt: skip
        (report.done if moved else report.untouched).append(record.id)
    if report.done:
        ctx.ask_dispatch()
    log.info("job %s: %d scenes sent back to the backlog", job_id, len(report.done))
    return report
