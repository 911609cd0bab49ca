"""The routing steps: submit a job into the shared backlog, and dispatch waiting scenes to
backends that can start them now.

A scene is bound to a backend only when that backend has a free slot (live leases plus scenes
sent but not started, under its ``max_concurrent_tasks``). Until then it waits in the backlog
(:mod:`videogen.backlog`), where the scheduler can still choose for it. Every event that frees
or adds capacity asks for a dispatch step (``Context.ask_dispatch``; requests coalesce into
one message); the step reads every backend's shared state and the backlog's heads, asks the pure
scheduler (:func:`videogen.scheduler.plan`) which class each free slot takes, and binds them
with one atomic script, so any number of routers may run at once.
"""

from __future__ import annotations

import logging
import uuid

from . import probes
from .backlog import Snapshot
from .capabilities import Capabilities
from .config import Strategy
from .context import Context
from .models import Scene
from .policy import is_open
from .record import SceneRecord
from .scenes import check_routable
from .scheduler import (
    BackendView,
    ScClass,
    available,
    check_priority,
    class_of,
    free_slots,
    plan,
)
from .states import Event

log = logging.getLogger("videogen")


def submit(
    ctx: Context,
    scenes: list[Scene],
    capabilities: dict[str, Capabilities] | None = None,
    priority: int = 0,
) -> str:
    """Store a job with its scenes waiting in the backlog, and ask for a dispatch step;
    refuses the whole file first if any scene cannot be taken by any enabled backend
    (``capabilities``: the running stack's, as published; else this config's)."""
    check_priority(priority)
    caps = ctx.capabilities() if capabilities is None else capabilities
    check_routable(scenes, caps)
    classes = [class_of(spec, caps) for spec in scenes]
    job_id = uuid.uuid4().hex[:12]
    ids = ctx.store.create_job(job_id, scenes, [c for c in classes if c is not None], priority)
    ctx.ask_dispatch()
    log.info("job %s submitted: %d scenes, priority %d", job_id, len(ids), priority)
    return job_id


def views(
    ctx: Context, *, probe: bool = True, snapshot: Snapshot | None = None
) -> list[BackendView]:
    """Every configured backend as the router sees it now (from ``snapshot`` when one was
    read); one with no fresh health record is probed now (``probe=False``, for forecasts:
    taken as up)."""
    if snapshot is None:
        snapshot = ctx.store.snapshot(ctx.enabled(), ctx.vg.expected_seconds())
    shared, loads = snapshot.shared, snapshot.loads
    now = ctx.clock()
    result = []
    for name, cfg in ctx.vg.backends.items():
        on = name in shared
        health, circuit = shared[name] if on else (None, None)
        if on and health is None:
            # No fresh record yet: probe now rather than wait.
            health = probes.probe(ctx, name) if probe else {"healthy": True}
        in_flight, queued = loads.get(name, (0, 0))
        result.append(
            BackendView(
                name=name,
                priority=cfg.priority,
                enabled=cfg.enabled,
                healthy=bool(health and health["healthy"]),
                circuit_open=circuit is not None and is_open(circuit, now, ctx.circuit_policy),
                capacity=cfg.max_concurrent_tasks,
                in_flight=in_flight,
                queued=queued,
                caps=ctx.capabilities_of(name),
            )
        )
    return result


def dispatch(ctx: Context) -> list[tuple[str, str]]:
    """Fill every free slot from the backlog; returns the ``(scene, backend)`` bound. Three
    round trips: the shared state, the backlog's heads, the binding script."""
    snapshot = ctx.store.snapshot(ctx.enabled(), ctx.vg.expected_seconds(), starting=True)
    now_views = views(ctx, snapshot=snapshot)
    caps = {v.name: v.capacity for v in now_views}
    width = sum(free_slots(v) for v in now_views if available(v))
    if width == 0 or not snapshot.classes:
        return []
    waiting = ctx.store.waiting(width, snapshot.classes)
    strategy = ctx.vg.effective_strategy
    turn = ctx.store.next_turn() if strategy is Strategy.ROUND_ROBIN else 0
    picks = plan(now_views, waiting, snapshot.times, strategy, turn)
    bound = ctx.store.bind(picks, caps)
    for scene_id, pick in bound:
        ctx.dispatch.generate(pick.backend, scene_id)
        log.info("scene %s routed to %s: %s", scene_id, pick.backend, pick.reason)
    return [(scene_id, pick.backend) for scene_id, pick in bound]


def requeue(
    ctx: Context, record: SceneRecord, tried: tuple[str, ...], failures: int
) -> ScClass | str:
    """Where a scene that leaves its backend waits next: its backlog class over the
    backends it has not tried; or why it cannot go on (no backend left, tries used up)."""
    if failures >= ctx.vg.max_attempts:
        return f"{record.error or 'no reason recorded'} (after {failures} tries)"
    cls = class_of(record.spec, ctx.capabilities(), frozenset(tried))
    if cls is None:
        return "no other backend can take it"
    return cls


def fail(ctx: Context, scene_id: str, reason: str, *, on: str = "", token: str = "") -> bool:
    """Fail a live scene with ``reason`` (terminal); ``on``/``token``: see ``Store.apply``."""
    moved = ctx.store.apply(
        scene_id,
        Event.FAIL,
        on=on,
        token=token,
        error=reason,
        finished_at=ctx.clock(),
    )
    if moved:
        log.warning("scene %s failed: %s", scene_id, reason)
    return moved is not None
