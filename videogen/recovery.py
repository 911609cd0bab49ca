"""The recovery step: the sweep that finds work whose worker,
router or message was lost and sends it on again.

Every step checks the scene's state before it acts, so a step sent twice is harmless: the
sweep may err on the side of sending.
"""

from __future__ import annotations

import logging

from . import reuse, routing
from .classes import ScClass
from .constants import backend_queue
from .context import Context
from .followers import sweep_cache
from .models import SceneState
from .orphans import sweep_orphans
from .record import SceneRecord
from .scheduler import available

log = logging.getLogger("videogen")

STRANDED_BATCH = 500
"""Waiting scenes of a class with no backend up that one sweep looks at."""


def sweep(ctx: Context) -> dict[str, int]:
    """Resume scenes whose worker died (their slot's lease expired), send again the steps
    whose message was lost, put back backlog entries a crash lost, give back slots reserved
    for scenes that moved on, fail scenes that waited too long for a backend that stays down,
    and ask for a dispatch step (circuits close with time: nothing else would ask)."""
    resumed = sum(_resume_orphans(ctx, backend) for backend in ctx.vg.backends)
    counts = {"resumed": resumed, **_resend_lost(ctx)}
    counts["unreserved"] = sum(_unreserve(ctx, backend) for backend in ctx.vg.backends)
    counts["stranded"] = _fail_stranded(ctx)
    counts.update(sweep_orphans(ctx))
    counts.update(sweep_cache(ctx))
    ctx.ask_dispatch()
    return counts


def _resume_orphans(ctx: Context, backend: str) -> int:
    resumed = 0
    for scene_id in ctx.store.reap_leases(backend):
        record = ctx.store.scene(scene_id)
        if record and record.state is SceneState.RUNNING and record.backend == backend:
            ctx.dispatch.generate(backend, scene_id)
            resumed += 1
            log.warning("scene %s: worker on %s lost; resuming", scene_id, backend)
    return resumed


def _resend_lost(ctx: Context) -> dict[str, int]:
    """Re-send steps whose message is gone: a pending scene missing from the backlog (a
    crash between its state change and its entry), a bound scene whose message was lost with
    a worker or a Redis restart (stale, and its queue is empty), or a running scene that holds
    no slot (a sweeper died between reaping its lease and resuming it)."""
    now = ctx.clock()
    counts = {"requeued": 0, "redispatched": 0}
    states = [SceneState.PENDING, SceneState.ROUTED, SceneState.RUNNING]
    stale = [r for r in ctx.store.live_scenes(states) if _stale(ctx, r, now)]
    unleased = _without_lease(ctx, [r for r in stale if r.state is SceneState.RUNNING])
    # a follower waits out of the backlog for its leader (videogen.followers settles it)
    waiting = [r for r in stale if r.state is SceneState.PENDING and r.follows is None]
    counts["requeued"] = _requeue_missing(ctx, waiting)
    for record in stale:
        if record.state is not SceneState.PENDING and record.backend:
            if _lost_on_backend(ctx, record, unleased):
                ctx.store.update(record.id)  # a fresh wait before it is sent again
                ctx.store.mark_queued(record.backend, record.id)  # keep its slot reserved
                ctx.dispatch.generate(record.backend, record.id)
                counts["redispatched"] += 1
    return counts


def _requeue_missing(ctx: Context, pending: list[SceneRecord]) -> int:
    entries = [(r.queue or "", r.id) for r in pending]
    present = ctx.store.in_backlog(entries)
    missing = [r for r, there in zip(pending, present, strict=True) if not there]
    back = []
    for record in missing:
        if reuse.reuse_waiting(ctx, record):
            continue  # a cache hit whose submit was cut short: its video, not a vendor job
        cls = routing.class_for(ctx, record, record.tried)
        if cls is None:
            routing.fail(ctx, record.id, "no backend left that can take it")
            continue
        ctx.store.update(record.id, queue=cls.name)
        back.append((record.id, cls.name, record.rank or 0.0))
        log.warning("scene %s: missing from the backlog; put back", record.id)
    ctx.store.enqueue(back)
    return len(back)


def _unreserve(ctx: Context, backend: str) -> int:
    """Give back slots reserved for scenes that are no longer bound here (defence in depth:
    every move away from routed gives its reservation back in the same step)."""
    ids = ctx.store.queued_ids(backend)
    records = {r.id: r for r in ctx.store.scenes(ids)}
    gone = [i for i in ids if i not in records or not records[i].on(backend)]
    ctx.store.unmark_queued(backend, gone)
    return len(gone)


def _fail_stranded(ctx: Context) -> int:
    """Fail waiting scenes none of whose backends has been up for ``route_wait_limit``
    seconds since they were submitted (a disabled backend never comes back)."""
    up = {v.name for v in routing.views(ctx) if available(v)}
    failed = 0
    now = ctx.clock()
    for name in ctx.store.backlog_classes():
        cls = ScClass.parse(name)
        if up.intersection(cls.backends):
            continue
        for record in ctx.store.scenes(ctx.store.backlog_members(name, STRANDED_BATCH)):
            if record.state is not SceneState.PENDING:
                continue
            waited = now - record.created_at
            enabled = set(ctx.enabled()).intersection(cls.backends)
            if enabled and waited < ctx.vg.route_wait_limit:
                continue
            why = ", ".join(f"{b}: down" for b in cls.backends)
            reason = f"no backend can take it: {why}; gave up after waiting {waited:.0f} s"
            if not enabled:
                reason = f"no backend can take it: {', '.join(cls.backends)} not enabled"
            if record.blocked:
                reason = f"{record.blocked}; gave up after waiting {waited:.0f} s"
            failed += routing.fail(ctx, record.id, reason)
    return failed


def _stale(ctx: Context, record: SceneRecord, now: float) -> bool:
    return now - record.updated_at > ctx.vg.route_claim_timeout


def _without_lease(ctx: Context, running: list[SceneRecord]) -> set[str]:
    held = ctx.store.leased([(r.backend or "", r.id) for r in running])
    return {r.id for r, has in zip(running, held, strict=True) if not has}


def _lost_on_backend(ctx: Context, record: SceneRecord, unleased: set[str]) -> bool:
    if record.state is SceneState.RUNNING:
        return record.id in unleased
    return _queue_empty(ctx, record.backend or "")


def _queue_empty(ctx: Context, backend: str) -> bool:
    return ctx.store.queue_length(backend_queue(backend)) == 0
