"""The recovery steps: health probes (the beat's), and the sweep that finds work whose worker,
router or message was lost and sends it on again.

Every step checks the scene's state before it acts, so a step sent twice is harmless: the
sweep may err on the side of sending.
"""

from __future__ import annotations

import logging
from typing import Any

from .constants import ROUTER_QUEUE, backend_queue
from .context import Context
from .models import SceneState
from .record import SceneRecord

log = logging.getLogger("videogen")

HEALTH_TTL_FACTOR = 3
"""Health records live this many beat intervals: one missed beat does not make a backend
unknown."""


def probe(ctx: Context, name: str) -> dict[str, Any]:
    """Probe one backend now and store the result with a TTL.

    A probe without a key says nothing about the backend (only about this host's config):
    its report is returned but never written into the shared health or circuit state."""
    backend = ctx.backend(name)
    report = backend.health_check().model_dump()
    report["checked_at"] = ctx.clock()
    if backend.requires_key and not backend.settings.has_key:
        return report
    ctx.store.set_health(name, report, ttl=ctx.vg.health_check_interval * HEALTH_TTL_FACTOR)
    if report["healthy"]:
        ctx.circuit_success(name)
    else:
        ctx.circuit_failure(name)
    return report


def probe_all(ctx: Context) -> dict[str, dict[str, Any]]:
    return {name: probe(ctx, name) for name in ctx.enabled()}


def sweep(ctx: Context) -> dict[str, int]:
    """Resume scenes whose worker died (their slot's lease expired), and send again the steps
    whose router died mid-task or whose message was lost."""
    resumed = sum(_resume_orphans(ctx, backend) for backend in ctx.vg.backends)
    return {"resumed": resumed, **_resend_lost(ctx)}


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
    """Re-send steps whose message is gone: a router killed mid-task (its claim is stale),
    a message lost with a worker or a Redis restart (stale, and its queue is empty), or a
    running scene that holds no slot (a sweeper died between reaping its lease and resuming
    it, or its worker gave the slot back without moving it on)."""
    now = ctx.clock()
    counts = {"rerouted": 0, "redispatched": 0}
    router_idle = ctx.store.queue_length(ROUTER_QUEUE) == 0
    states = [SceneState.PENDING, SceneState.ROUTED, SceneState.RUNNING]
    stale = [r for r in ctx.store.live_scenes(states) if _stale(ctx, r, now)]
    unleased = _without_lease(ctx, [r for r in stale if r.state is SceneState.RUNNING])
    for record in stale:
        pending = record.state is SceneState.PENDING
        if pending and (record.claimed_at or router_idle):
            ctx.store.update(record.id, claimed_at=now)
            ctx.dispatch.route(record.id)
            counts["rerouted"] += 1
        elif not pending and record.backend and _lost_on_backend(ctx, record, unleased):
            ctx.store.update(record.id)  # a fresh wait before it is sent again
            ctx.dispatch.generate(record.backend, record.id)
            counts["redispatched"] += 1
    return counts


def _stale(ctx: Context, record: SceneRecord, now: float) -> bool:
    since = record.claimed_at if record.state is SceneState.PENDING else None
    return now - (since or record.updated_at) > ctx.vg.route_claim_timeout


def _without_lease(ctx: Context, running: list[SceneRecord]) -> set[str]:
    held = ctx.store.leased([(r.backend or "", r.id) for r in running])
    return {r.id for r, has in zip(running, held, strict=True) if not has}


def _lost_on_backend(ctx: Context, record: SceneRecord, unleased: set[str]) -> bool:
    if record.state is SceneState.RUNNING:
        return record.id in unleased
    return _queue_empty(ctx, record.backend or "")


def _queue_empty(ctx: Context, backend: str) -> bool:
    return ctx.store.queue_length(backend_queue(backend)) == 0
