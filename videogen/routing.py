"""The routing steps: submit a job, and route one pending scene to a backend.

``route`` loads the scene once, reads every backend's shared state in two commands, asks the
pure router (:mod:`videogen.router`) for a :class:`~videogen.states.Transition`, and applies
it: on to a backend's queue, wait for one that is down for now, or fail.
"""

from __future__ import annotations

import logging
import uuid

from .capabilities import Capabilities
from .config import Strategy
from .context import Context
from .models import Scene, SceneState
from .policy import is_open
from .record import SceneRecord
from .recovery import probe
from .router import BackendView, after_choice, choose, exhausted
from .scenes import check_routable
from .states import Event, Transition

log = logging.getLogger("videogen")


def submit(
    ctx: Context, scenes: list[Scene], capabilities: dict[str, Capabilities] | None = None
) -> str:
    """Store a job and enqueue one route per scene; refuses the whole file first if any
    scene cannot be taken by any enabled backend (``capabilities``: the running stack's,
    as published; else this config's)."""
    check_routable(scenes, ctx.capabilities() if capabilities is None else capabilities)
    job_id = uuid.uuid4().hex[:12]
    ids = ctx.store.create_job(job_id, scenes)
    for scene_id in ids:
        ctx.dispatch.route(scene_id)
        log.info("scene %s submitted", scene_id)
    log.info("job %s submitted: %d scenes", job_id, len(ids))
    return job_id


def views(ctx: Context) -> list[BackendView]:
    """Every configured backend as the router sees it now."""
    enabled = ctx.enabled()
    shared = ctx.store.health_and_circuits(enabled)
    loads = ctx.store.loads(enabled)
    now = ctx.clock()
    result = []
    for name, cfg in ctx.vg.backends.items():
        on = name in shared
        health, circuit = shared[name] if on else (None, None)
        if on and health is None:
            health = probe(ctx, name)  # no fresh record yet: probe now rather than wait
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


def decide(ctx: Context, record: SceneRecord) -> Transition:
    """Where the scene goes now (pure once the views are read)."""
    if record.failures >= ctx.vg.max_attempts:
        return exhausted(record.failures, record.error)
    strategy = ctx.vg.effective_strategy
    decision = choose(
        record.spec,
        views(ctx),
        tried=frozenset(record.tried),
        strategy=strategy,
        turn=ctx.store.next_turn() if strategy is Strategy.ROUND_ROBIN else 0,
    )
    waited = ctx.clock() - record.created_at
    return after_choice(
        decision, last_error=record.error, waited=waited, wait_limit=ctx.vg.route_wait_limit
    )


def route(ctx: Context, scene_id: str) -> str | None:
    """Route a pending scene; returns the chosen backend, if one was."""
    record = ctx.store.scene(scene_id)
    if record is None or record.state is not SceneState.PENDING:
        return None  # a duplicate message: routing already happened
    ctx.store.update(scene_id, claimed_at=ctx.clock())
    step = decide(ctx, record)
    if step.event is Event.ROUTE and step.backend is not None:
        return step.backend if _send(ctx, record, step.backend, step.reason) else None
    if step.event is Event.WAIT:
        if ctx.store.apply(scene_id, Event.WAIT, claimed_at=None, waiting=step.reason):
            ctx.dispatch.route(scene_id, countdown=step.delay)
            log.info("scene %s waits for a backend: %s", scene_id, step.reason)
        return None
    fail(ctx, scene_id, step.reason)
    return None


def _send(ctx: Context, record: SceneRecord, backend: str, reason: str) -> bool:
    moved = ctx.store.apply(
        record.id,
        Event.ROUTE,
        backend=backend,
        route_reason=reason,
        tried=[*record.tried, backend],
        retries=0,
        deliveries=0,
        waiting=None,
    )
    if moved:
        ctx.store.mark_queued(backend, record.id)
        ctx.dispatch.generate(backend, record.id)
        log.info("scene %s routed to %s: %s", record.id, backend, reason)
    return moved is not None


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
