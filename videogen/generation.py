"""The generation step: run one scene on its backend, holding a slot for the whole vendor job.

``generate`` takes a slot and marks the scene running in one atomic step, then a :class:`Run`
creates (or resumes) the vendor job, waits for it, stores and checks the video, and moves the
scene on. Errors are classified once at the HTTP edge; the retry policy
(:func:`videogen.policy.after_error`) turns one into a transition, which :func:`on_error`
applies.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import costs, reuse, routing, spend, submits
from .backends.base import BaseVideoBackend
from .context import Context
from .errors import (
    BackendError,
    CapabilityError,
    CrashLoopError,
    LeaseLostError,
    RateLimitedError,
    UnfitBackendError,
)
from .failures import on_error
from .models import (
    GenerationRequest,
    JobState,
    JobStatus,
    SceneState,
    VendorJob,
    VideoInfo,
)
from .record import SceneRecord
from .spend import Settle
from .states import Event
from .store import new_token

log = logging.getLogger("videogen")

LEASE_WAIT = 1.0
"""Seconds before a resumed task that found its backend full looks again."""
MAX_DELIVERIES = 5
"""Times a scene's generate task may start on one backend before the scene is failed over (a
task that keeps killing its worker must not loop forever)."""
RENEW_FRACTION = 3
"""A lease is renewed once a third of its time has passed (not at every poll)."""
WORKING_FIELDS = ("vendor_job", "submitting", "request", "unknown_since")
"""Fields a finished scene no longer needs (its result holds what is worth keeping)."""


def generate(ctx: Context, backend: str, scene_id: str) -> None:
    """Run one bound (or resumed) scene on ``backend``; a stale message does nothing. When
    it ends with its slot free, this task runs a dispatch step to fill it from the backlog."""
    cap = ctx.settings.backend(backend).max_concurrent_tasks
    token = new_token()
    outcome, record = ctx.store.start(backend, scene_id, token, ctx.vg.lease_ttl, cap)
    if outcome == "full" and record is not None:
        _no_slot(ctx, backend, record)
        return
    if outcome != "started" or record is None:
        return  # gone elsewhere or finished (a duplicate), or another worker runs it
    run = Run(ctx, ctx.backend(backend), record, token)
    try:
        run.execute()
    finally:
        run.release()
        if run.freed and not run.handed_over:
            _refill(ctx)


def _refill(ctx: Context) -> None:
    """The slot this task held is free: run the dispatch step here and now (one message and
    one hop fewer than asking a router; the binding is atomic wherever it runs). Should it
    fail, a router is asked to do it."""
    try:
        routing.dispatch(ctx)
    except Exception:  # noqa: BLE001 - whatever broke here, a router's step must still run
        log.warning("dispatch after a finished scene failed; asking a router", exc_info=True)
        ctx.ask_dispatch()


def _no_slot(ctx: Context, backend: str, record: SceneRecord) -> None:
    """Found its backend full (its cap was lowered, or a slot was over-given while a lease
    expired): a bound scene goes back to the backlog, at its place; a running one (a job to
    resume) keeps its reservation and looks again shortly."""
    if record.state is SceneState.RUNNING:
        ctx.store.mark_queued(backend, record.id)
        ctx.dispatch.generate(backend, record.id, countdown=LEASE_WAIT)
        return
    tried = tuple(name for name in record.tried if name != backend)
    target = routing.requeue(ctx, record, tried, record.failures)
    if isinstance(target, str):
        routing.fail(ctx, record.id, target, on=backend)
        return
    moved = ctx.store.apply(
        record.id, Event.REROUTE, on=backend, backlog=(target, record.rank or 0.0),
        settle=(Settle.RELEASE, 0.0), tried=tried,
    )  # fmt: skip
    if moved:
        log.info("scene %s: %s is full; back to the backlog", record.id, backend)
    ctx.ask_dispatch()


@dataclass
class Run:
    """One scene's turn on one backend, while this worker holds its slot."""

    ctx: Context
    backend: BaseVideoBackend
    record: SceneRecord
    token: str
    released: bool = False
    freed: bool = False
    """The slot is free for another scene (not kept for a retry here, nor taken over)."""
    created: bool = False
    """This run created the vendor job (its time teaches the scheduler; a resumed one's
    would not)."""
    renewed: float = field(default_factory=time.monotonic)
    job: VendorJob | None = None
    """The vendor job this run created or resumed (a try with one may be billed)."""
    request: GenerationRequest | None = None
    last_status: JobStatus | None = None
    handed_over: bool = False
    """The slot went back when the vendor job ended (and a router was asked to fill it, if
    scenes waited)."""
    handed_at: float | None = None
    """When it went back: the slot's time ends there (what the scheduler learns)."""
    unknown_since: float | None = None
    """When the vendor stopped answering about the job (``None``: it answers)."""
    price: float | None = None
    """What this try is settled at, once fixed (an orphan's price must match its refund)."""
    stored: Path | None = None
    """A video stored for the scene that then went to another result."""

    @property
    def name(self) -> str:
        return self.backend.name

    def execute(self) -> None:
        try:
            if self.record.deliveries > MAX_DELIVERIES:
                raise CrashLoopError(
                    self.name, f"the task was started {MAX_DELIVERIES} times without ending"
                )
            self._run()
        except (BackendError, CapabilityError) as error:
            record = self.ctx.store.scene(self.record.id)  # one read, only after an error
            if record is None or not record.on(self.name):
                self._lost(record)  # e.g. an orphan finished first and our job was cancelled
                return
            on_error(self, _as_backend_error(self.name, error))
        except LeaseLostError:
            self._lost(self.ctx.store.scene(self.record.id))

    def apply(
        self,
        event: Event,
        *,
        backlog: Any = None,
        failure: BackendError | None = None,
        **changes: Any,
    ) -> bool:
        """Move the scene by ``event`` while this run holds its slot (giving it back), and
        resolve the try's reservation by how it ended (``failure``; a retry keeps it: the same
        vendor job, or a new one in its place, runs on it)."""
        settle = None
        if event is not Event.RETRY:
            what = spend.outcome(job_made=self.job is not None, error=failure)
            settle = (what, self.cost() if what is Settle.SETTLE else 0.0)
        moved = self.ctx.store.apply(
            self.record.id, event, on=self.name, token=self.token, backlog=backlog,
            settle=settle, **changes,
        )  # fmt: skip
        if moved is not None:
            self.released = True
            self.freed = event is not Event.RETRY
            if event is Event.REROUTE:
                self.handed_over = False  # the scene itself waits in the backlog now
        return moved is not None

    def release(self) -> None:
        if not self.released:
            self.freed = self.ctx.store.release_lease(self.name, self.record.id, self.token).freed

    def cost(self) -> float:
        """What this try is billed: the vendor's figure, else the price of what was asked
        (negative: the reservation's amount, when what was asked is not known here)."""
        if self.price is not None:
            return self.price
        request = self.request or self.record.request
        if request is None:
            return -1.0
        seconds = self.ctx.clock() - (self.record.started_at or self.ctx.clock())
        cfg = self.ctx.settings.backend(self.name)
        billed = self.backend.billed_usd(self.last_status) if self.last_status else None
        return costs.delivered_usd(cfg, self.backend.get_capabilities(), request, seconds, billed)

    def heartbeat(self) -> None:
        """Keep the slot while the vendor works; raises when another worker took it over."""
        ttl = self.ctx.vg.lease_ttl
        if time.monotonic() - self.renewed < ttl / RENEW_FRACTION:
            return
        if not self.ctx.store.renew_lease(self.name, self.record.id, self.token, ttl):
            raise LeaseLostError()
        self.renewed = time.monotonic()

    def _run(self) -> None:
        request = self.request = self.backend.prepare(self.record.spec)
        job = self.job = self._vendor_job(request)
        self.unknown_since = self.record.unknown_since  # a resumed job keeps its grace
        silent_for = None if self.unknown_since is None else self.ctx.clock() - self.unknown_since
        try:
            status = self.backend.wait(
                job,
                timeout=self._time_left(job),
                heartbeat=self.heartbeat,
                on_change=lambda s: self._log_status(job, s),
                on_unknown=self._unknown,
                silent_for=silent_for,
            )
        except BackendError as error:
            self._abandon(job, error)
            raise
        self.last_status = status
        self.vendor_done()
        self._finish(request, job, status)

    def _time_left(self, job: VendorJob) -> float:
        """The job's ``timeout`` counts from its creation, whoever resumes it and however
        often (at least one poll is made: a job that ended meanwhile is not thrown away)."""
        timeout = self.backend.settings.timeout
        if job.created_at is None:
            return timeout
        return timeout - (self.ctx.clock() - job.created_at)

    def _unknown(self, error: BackendError | None) -> None:
        """The vendor stopped answering about the job (or, ``None``, answers again). The
        scene shows since when; every unanswered poll counts against the backend's circuit,
        so no new scene is sent to a vendor that went quiet while this one waits it out."""
        if error is None:
            log.info("scene %s: %s answers again", self.record.id, self.name)
            self.unknown_since = None
            self.ctx.store.update(self.record.id, unknown_since=None)
            return
        if not isinstance(error, RateLimitedError):
            self.ctx.circuit_failure(self.name)
        if self.unknown_since is None:
            self.unknown_since = self.ctx.clock()
            self.ctx.store.update(self.record.id, unknown_since=self.unknown_since)
            log.warning(
                "scene %s: %s does not answer about job %s (%s); keeping its slot for up to "
                "%g s", self.record.id, self.name, self.job.job_id if self.job else "?", error,
                self.backend.settings.unknown_grace,
            )  # fmt: skip

    def _abandon(self, job: VendorJob, error: BackendError) -> None:
        """We give up on the job: cancel it, so nobody pays for it to run on. A cancel the
        vendor does not take (it is not answering) leaves an orphan, which the sweeper keeps
        asking about and cancelling; its spend is settled now and shown as orphan spend."""
        if self.backend.cancel_quietly(job):
            return
        self.price = self.cost()
        orphan = self.record.orphan(
            job,
            since=self.ctx.clock(),
            reason=str(error),
            usd=max(self.price, 0.0),
            request=self.request,
        )
        self.ctx.store.add_orphan(orphan)
        log.warning(
            "scene %s: left %s job %s as an orphan (%s); the sweeper will cancel it or use "
            "its video", self.record.id, self.name, job.job_id, error,
        )  # fmt: skip

    def _lost(self, record: SceneRecord | None) -> None:
        """The scene (``record``, as it is now) moved on without us. Another worker resuming
        the same vendor job took it over: leave it to that worker. It was cancelled, or got
        its video elsewhere (an orphan finished first): cancel our job, so the vendor stops
        working for nothing, and drop the file we stored (first result wins)."""
        job = self.job
        if job is None or record is None:
            return
        cancelled = record.state is SceneState.CANCELLED
        ours = record.vendor_job is not None and record.vendor_job.job_id == job.job_id
        used = (record.result or {}).get("vendor_job_id") == job.job_id
        if (ours or used) and not cancelled:
            log.warning("scene %s: slot on %s taken over; leaving it", record.id, self.name)
            return
        self.backend.cancel_quietly(job)  # after a cancel the sweep asks too: harmless
        if self.stored is not None:
            self.stored.unlink(missing_ok=True)
        paid = self.last_status is not None and self.last_status.state is JobState.SUCCEEDED
        if paid and not cancelled:
            self.ctx.store.count(self.name, double_paid=1)
        why = "was cancelled" if cancelled else "got its video from elsewhere first"
        log.warning("scene %s %s; %s job %s cancelled", record.id, why, self.name, job.job_id)

    def vendor_done(self) -> None:
        """The vendor job ended: the vendor's slot is free, so ours is given back now (the
        scene stays this run's: its token still guards every move) and a router is asked to
        fill it, so the next scene's vendor job is created while this one downloads (on the
        worker's spare thread). Asking is done by the release itself and costs at most one
        message; nothing asks when nothing waits (a scene submitted later asks for its own
        step)."""
        released = self.ctx.store.release_lease(self.name, self.record.id, self.token, ask=True)
        if released.freed:
            self.handed_over, self.handed_at = True, self.ctx.clock()
            if released.asked:
                self.ctx.dispatch.dispatch()

    def _log_status(self, job: VendorJob, status: JobStatus) -> None:
        log.info(
            "scene %s: %s job %s is %s (%s)",
            self.record.id, self.name, job.job_id, status.state.value, status.vendor_state,
        )  # fmt: skip

    def _vendor_job(self, request: GenerationRequest) -> VendorJob:
        """The scene's vendor job: resumed, found after a lost create answer, or created
        once (:mod:`videogen.submits`)."""
        return submits.vendor_job(self, request)

    def _finish(self, request: GenerationRequest, job: VendorJob, status: JobStatus) -> None:
        record, clock = self.record, self.ctx.clock
        dest = self.ctx.settings.outputs / record.job_id / f"{record.id}.mp4"
        video = self.backend.finish(job, status, dest)
        seconds = clock() - (record.started_at or clock())
        result = result_of(self.name, job, status, request, video, dest, seconds)
        done = dict.fromkeys(WORKING_FIELDS)
        self.price = self.cost()  # settled now, and what the cache records it cost
        if self.created:  # the slot's time, bound to given back: what a slot can do (learned
            # before the scene shows succeeded: whoever sees that sees this time too)
            held = (self.handed_at or clock()) - (record.bound_at or record.started_at or clock())
            self.ctx.store.add_job_time(self.name, record.spec.duration, held)
        if not self.apply(Event.SUCCEED, **done, result=result, finished_at=clock()):
            self.stored = dest  # for _lost: ours, unless the same vendor job's
            raise LeaseLostError()
        dest.with_suffix(".json").write_text(json.dumps(result, indent=2))
        reuse.keep(self.ctx, record, result, self.price, request.model)
        self.ctx.store.count_success(self.name, seconds)  # and closes the circuit
        log.info("scene %s succeeded on %s: %s", record.id, self.name, dest)


def result_of(
    backend: str,
    job: VendorJob,
    status: JobStatus,
    request: GenerationRequest,
    video: VideoInfo,
    dest: Path,
    seconds: float,
) -> dict[str, Any]:
    """A finished scene's result, as stored on its record and beside its video."""
    return {
        "video_path": str(dest),
        "backend": backend,
        "vendor_job_id": job.job_id,
        "source_url": status.output_url,
        "width": video.width,
        "height": video.height,
        "frames": video.frames,
        "duration": video.duration,
        "size_bytes": video.size_bytes,
        **request.effective(),
        "estimated_cost_usd": request.estimated_cost_usd,
        "seconds": round(seconds, 3),
    }


def _as_backend_error(backend: str, error: BackendError | CapabilityError) -> BackendError:
    if isinstance(error, BackendError):
        return error
    # A capability error at generate time (config changed since routing): try elsewhere.
    return UnfitBackendError(backend, str(error))
