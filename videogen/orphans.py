"""The orphan step of the sweep: vendor jobs their scenes left behind when the vendor stopped
answering (or would not take a cancel). Each sweep asks the vendor about each one:

- still running: cancel it (its scene runs elsewhere now; nobody should pay for both); a
  vendor that cannot cancel (Kling, MiniMax V1) is asked again next sweep, until it ends;
- succeeded: if its scene still has no video, this one is used (first result wins) and the
  newer vendor job is cancelled; if the scene already has one, the scene was paid twice, and
  that is counted;
- failed: not billed, so what was settled for it is taken back;
- cancelled, or gone after our cancel: done.

An orphan whose vendor still does not answer waits for the next sweep.
"""

from __future__ import annotations

import json
import logging
from enum import StrEnum
from typing import Any

from .backends.base import BaseVideoBackend
from .context import Context
from .errors import BackendError, ConfigError, TransientBackendError
from .generation import WORKING_FIELDS, result_of
from .models import JobState, JobStatus, Orphan, SceneState
from .record import SceneRecord
from .spend import Settle
from .states import Event

log = logging.getLogger("videogen")


class Outcome(StrEnum):
    """What one sweep made of an orphan (``orphans_<outcome>`` counts the final ones)."""

    UNKNOWN = "unknown"
    """The vendor still does not answer: ask again next sweep."""
    CANCELLING = "cancelling"
    USED = "used"
    """Its video became the scene's."""
    DOUBLE_PAID = "double_paid"
    """It succeeded after its scene had a video from elsewhere."""
    WASTED = "wasted"
    """It succeeded for a scene that failed or was cancelled meanwhile, or its video was bad."""
    FAILED = "failed"
    CANCELLED = "cancelled"


FINAL = frozenset(Outcome) - {Outcome.UNKNOWN, Outcome.CANCELLING}


def decide(job: JobState, scene: SceneState | None) -> Outcome:
    """What to do with an orphan whose vendor answered ``job``, its scene being in ``scene``
    (``None``: the scene is gone) (pure)."""
    if job is JobState.SUCCEEDED:
        if scene is not None and not scene.terminal:
            return Outcome.USED
        return Outcome.DOUBLE_PAID if scene is SceneState.SUCCEEDED else Outcome.WASTED
    if job is JobState.FAILED:
        return Outcome.FAILED
    if job is JobState.CANCELLED:
        return Outcome.CANCELLED
    return Outcome.CANCELLING


def sweep_orphans(ctx: Context) -> dict[str, int]:
    """Ask about every orphan once; returns how many ended each way this sweep. A backend
    that gives no answer about one is not asked about its others until the next sweep: the
    sweep runs on the router's one thread, and a vendor that times out must hold it up for
    one request per sweep at most."""
    counts: dict[str, int] = {}
    silent: set[str] = set()
    for orphan in ctx.store.orphans():
        if orphan.job.backend in silent:
            continue
        outcome = _sweep_one(ctx, orphan)
        if outcome is Outcome.UNKNOWN:
            silent.add(orphan.job.backend)
        if outcome in FINAL and ctx.store.drop_orphan(orphan, outcome.value):
            if outcome is Outcome.FAILED:
                ctx.store.refund(orphan)
            log.info(
                "orphan %s job %s of scene %s: %s",
                orphan.job.backend, orphan.job.job_id, orphan.scene_id, outcome.value,
            )  # fmt: skip
            name = "user_cancels" if orphan.cancelled else f"orphans_{outcome.value}"
            counts[name] = counts.get(name, 0) + 1
    return counts


def _sweep_one(ctx: Context, orphan: Orphan) -> Outcome:
    try:
        backend = ctx.backend(orphan.job.backend)
    except ConfigError:
        return Outcome.UNKNOWN  # its backend is off now; it stays on the books
    status = _ask(backend, orphan)
    if status is None:
        return Outcome.UNKNOWN
    record = ctx.store.scene(orphan.scene_id)
    outcome = decide(status.state, record.state if record else None)
    if outcome is Outcome.CANCELLING:
        if not backend.cancellable(orphan.job):
            return Outcome.CANCELLING  # it runs to its end; the vendor answered, so not silent
        if not backend.cancel_quietly(orphan.job):
            return Outcome.UNKNOWN
        after = _ask(backend, orphan, gone_is_cancelled=True)
        if after is None or not after.state.terminal:
            return Outcome.CANCELLED if after is not None else Outcome.UNKNOWN
        status = after  # it ended between the two questions: judge it as it ended
        outcome = decide(status.state, record.state if record else None)
    if outcome is Outcome.USED and record is not None:
        return _use(ctx, backend, orphan, status, record)
    return outcome


def _ask(
    backend: BaseVideoBackend, orphan: Orphan, gone_is_cancelled: bool = False
) -> JobStatus | None:
    """The vendor's answer, ``None`` when it gives none. Right after our cancel, a vendor
    that deletes (Luma, ComfyUI) no longer knows the job: that is the cancel's answer."""
    try:
        return backend.poll(orphan.job)
    except TransientBackendError:
        return None
    except BackendError:
        if gone_is_cancelled:
            return JobStatus(state=JobState.CANCELLED, vendor_state="deleted")
        return None


def _use(
    ctx: Context, backend: BaseVideoBackend, orphan: Orphan, status: JobStatus, record: SceneRecord
) -> Outcome:
    """The orphan finished first: its video becomes the scene's, in one atomic move from
    wherever the scene is (waiting, bound, or running its newer vendor job, whose slot is
    given back), and the newer vendor job is cancelled."""
    dest = ctx.settings.outputs / record.job_id / f"{record.id}.orphan.mp4"
    try:
        video = backend.finish(orphan.job, status, dest)
    except BackendError as error:
        log.warning(
            "orphan %s of scene %s: its video is unusable: %s", orphan.key, record.id, error
        )
        return Outcome.WASTED
    now = ctx.clock()
    request = orphan.request or record.request
    if request is None:
        dest.unlink(missing_ok=True)
        return Outcome.WASTED
    seconds = now - (orphan.job.created_at or orphan.since)
    result = result_of(backend.name, orphan.job, status, request, video, dest, seconds)
    result["orphan"] = True
    newer = record.vendor_job if record.state is SceneState.RUNNING else None
    on, token = record.guard()
    settle = (Settle.KEEP, 0.0) if newer is not None else (Settle.RELEASE, 0.0)
    changes: dict[str, Any] = dict.fromkeys(WORKING_FIELDS)
    changes.update(result=result, finished_at=now, backend=backend.name)
    moved = ctx.store.apply(record.id, Event.ADOPT, on=on, token=token, settle=settle, **changes)
    if moved is None:  # the scene moved meanwhile: judge again next sweep
        dest.unlink(missing_ok=True)
        return Outcome.UNKNOWN
    dest.with_suffix(".json").write_text(json.dumps(result, indent=2))
    if newer is not None and newer.job_id != orphan.job.job_id:
        try:
            ctx.backend(newer.backend).cancel_quietly(newer)
        except ConfigError:
            pass
    ctx.store.count(backend.name, succeeded=1)
    ctx.ask_dispatch()  # a slot may be free
    log.warning(
        "scene %s: orphan %s job %s finished first; its video is used, the newer job cancelled",
        record.id, backend.name, orphan.job.job_id,
    )  # fmt: skip
    return Outcome.USED
