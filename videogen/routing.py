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

from . import costs, probes, reuse, spend
from . import redis_keys as keys
from .backlog import Blocked, Snapshot
from .capabilities import Capabilities
from .classes import Policy, ScClass, class_of
from .config import BudgetAction, JobOptions, Strategy
from .context import Context
from .errors import ConfigError, SceneValidationError
from .models import Scene
from .policy import is_open
from .record import SceneRecord
from .scenes import check_routable, scene_label
from .scheduler import BackendView, available, check_priority, free_slots, plan
from .states import Event

BUDGET_RECHECK = 30.0
"""Seconds a backend (or everything) a budget stopped is left out of dispatch before it is
tried again (released spend or a new UTC period may let work go on)."""

log = logging.getLogger("videogen")


def submit(
    ctx: Context,
    scenes: list[Scene],
    capabilities: dict[str, Capabilities] | None = None,
    priority: int = 0,
    options: JobOptions | None = None,
) -> str:
    """Store a job with its scenes waiting in the backlog, and ask for a dispatch step;
    refuses the whole file first if any scene cannot be taken by any enabled backend
    (``capabilities``: the running stack's, as published; else this config's) or by any
    within the job's ``max_cost_per_second``."""
    check_priority(priority)
    options = options or JobOptions()
    _check_webhook_secret(ctx, options)
    caps = ctx.capabilities() if capabilities is None else capabilities
    check_routable(scenes, caps)
    policy = Policy(
        strategy=options.strategy,
        deadline_at=ctx.clock() + options.deadline if options.deadline else None,
        max_usd_per_second=options.max_cost_per_second,
    )
    classes = _classes(ctx, scenes, caps, policy)
    # The result cache decides before anything can be routed: a hit never pays.
    marks, entries = reuse.plan_job(ctx, scenes, bool(options.no_cache))
    job_id = uuid.uuid4().hex[:12]
    ids, asked = ctx.store.create_job(
        job_id, scenes, classes, priority, options, policy.tag, marks,
        misses=reuse.misses(marks), ask=True,
    )  # fmt: skip
    reuse.after_submit(ctx, ids, marks, entries)
    if asked:  # asked in the job's own transaction: the step it sends sees every scene
        ctx.dispatch.dispatch()
    log.info("job %s submitted: %d scenes, priority %d", job_id, len(ids), priority)
    return job_id


def _check_webhook_secret(ctx: Context, options: JobOptions) -> None:
    """A job's webhook needs a signing secret: its own, or the config's for jobs."""
    delivery = ctx.vg.webhook_delivery
    if options.webhook and not (
        options.webhook_secret or delivery.job_secret or delivery.job_secret_env
    ):
        raise ConfigError(
            "a job's webhook needs a signing secret: give the job one (webhook_secret, "
            "--webhook-secret-env) or set video_generation.webhook_delivery.job_secret_env"
        )


def _classes(
    ctx: Context, scenes: list[Scene], caps: dict[str, Capabilities], policy: Policy
) -> list[ScClass]:
    """Each scene's backlog class; with a price cap, the backends above it are left out (and
    a scene none is left for is refused, naming each backend's price)."""
    cap = policy.max_usd_per_second
    price = costs.prices(ctx.vg, caps, ctx.job_times()) if cap is not None else None
    out, problems = [], []
    for index, spec in enumerate(scenes):
        if price is None or cap is None:
            cls = class_of(spec, caps, policy=policy.tag)
        else:
            cls = class_of(
                spec, caps, policy=policy.tag,
                too_dear=lambda b, c: costs.per_second(price, b, c) > cap,
            )  # fmt: skip
        if cls is not None:
            out.append(cls)
            continue
        every = class_of(spec, caps)
        assert price is not None and every is not None  # check_routable passed
        names = every.backends
        quotes = ", ".join(f"{b} ${costs.per_second(price, b, every):.3f}/s" for b in names)
        problems.append(
            (scene_label(index, spec), "max_cost_per_second",
             f"every backend that can take it costs more than ${cap:g} per second ({quotes})")
        )  # fmt: skip
    if problems:
        raise SceneValidationError(problems)
    return out


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
        over = snapshot.budget_full.get(name) or snapshot.budget_full.get("all")
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
                over_budget=over,
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
    price = costs.prices(ctx.vg, {v.name: v.caps for v in now_views}, snapshot.times)
    now = ctx.clock()
    picks = plan(now_views, waiting, snapshot.times, strategy, turn, prices=price, now=now)
    ledgers = {b: spend.caps_for(ctx.vg, b, now) for b in {p.backend for p in picks}}
    lag = None if snapshot.asked is None else ctx.clock() - snapshot.asked
    costs_ = [price(p.backend, p.cls) for p in picks]
    bound, blocked = ctx.store.bind(picks, caps, costs_, ledgers, lag=lag)
    for scene_id, pick in bound:
        ctx.dispatch.generate(pick.backend, scene_id)
        log.info("scene %s routed to %s: %s", scene_id, pick.backend, pick.reason)
    for stop in blocked:
        _over_budget(ctx, stop, now_views)
    if blocked:
        ctx.ask_dispatch()  # the slots it left free may take other scenes
    if bound:
        _alert(ctx, ledgers)
    return [(scene_id, pick.backend) for scene_id, pick in bound]


def _alert(ctx: Context, ledgers: dict[str, list[spend.Cap]]) -> None:
    """A log line (once per level and period) for each budget now used past the alert
    fraction or full; the metrics show the same from the ledgers."""
    capped = {c.scope: c for caps in ledgers.values() for c in caps if c.limit}
    if not capped:
        return
    books = ctx.store.ledgers(capped)
    for scope, cap in capped.items():
        used = (books[scope]["reserved"] + books[scope]["settled"]) * 1e6
        for level in spend.alert_levels(used, cap.limit, ctx.vg.budget_alert_fraction):
            if ctx.store.first_alert(scope, level):
                log.warning(
                    "budget alert: the %s is %d%% used ($%.2f of $%.2f)",
                    cap.name, level, used / 1e6, cap.limit / 1e6,
                )  # fmt: skip


def _over_budget(ctx: Context, stop: Blocked, now_views: list[BackendView]) -> None:
    """A budget stopped a scene: its job's budget fails it; a backend's takes that backend
    out of dispatch for a while (other backends may take it); the overall one stops all.
    Unless the config says ``on_budget: wait``, a scene nothing else can take fails, naming
    the budget; else it waits at its place."""
    backend = stop.pick.backend
    if stop.name == "job":
        name = f"budget of job {stop.job_id} (max_cost_usd)"
        fail(ctx, stop.scene_id, spend.budget_reason(name, stop.used, stop.limit, stop.cost))
        return
    reason = spend.budget_reason(stop.name, stop.used, stop.limit, stop.cost)
    whole = stop.ledger.startswith(keys.spend("all"))
    waits = ctx.vg.on_budget is BudgetAction.WAIT
    scope = "all" if whole else backend
    if waits or not whole:  # failing, each scene the overall budget stops fails in its turn
        ctx.store.stop_for_budget(scope, reason, BUDGET_RECHECK)
    if ctx.store.first_alert(stop.ledger.removeprefix(keys.spend("")), 100):
        log.warning("budget alert: the %s is 100%% used", stop.name)
    log.warning("budget: new work on %s stops for %.0f s: %s", scope, BUDGET_RECHECK, reason)
    others = {v.name for v in now_views if available(v)} - {backend}
    if not whole and others.intersection(stop.pick.cls.backends):
        return  # another backend may take it
    if waits:
        ctx.store.update(stop.scene_id, blocked=reason)
    else:
        fail(ctx, stop.scene_id, reason)


def requeue(
    ctx: Context, record: SceneRecord, tried: tuple[str, ...], failures: int
) -> ScClass | str:
    """Where a scene that leaves its backend waits next: its backlog class over the
    backends it has not tried; or why it cannot go on (no backend left, tries used up)."""
    if failures >= ctx.vg.max_attempts:
        return f"{record.error or 'no reason recorded'} (after {failures} tries)"
    cls = class_for(ctx, record, tried)
    if cls is None:
        return "no other backend can take it"
    return cls


def class_for(ctx: Context, record: SceneRecord, tried: tuple[str, ...]) -> ScClass | None:
    """The backlog class of a scene that waits again, with its job's options (a price cap
    still leaves the dearer backends out)."""
    caps = ctx.capabilities()
    policy = Policy.parse(record.policy)
    cap = policy.max_usd_per_second
    if cap is None:
        return class_of(record.spec, caps, frozenset(tried), record.policy or "")
    price = costs.prices(ctx.vg, caps, ctx.job_times())
    return class_of(
        record.spec, caps, frozenset(tried), record.policy or "",
        too_dear=lambda b, c: costs.per_second(price, b, c) > cap,
    )  # fmt: skip


def fail(ctx: Context, scene_id: str, reason: str, *, on: str = "", token: str = "") -> bool:
    """Fail a live scene with ``reason`` (terminal); ``on``/``token``: see ``Store.apply``."""
    moved = ctx.store.apply(
        scene_id,
        Event.FAIL,
        on=on,
        token=token,
        settle=(spend.Settle.RELEASE, 0.0),  # outside a run: no vendor job was made
        error=reason,
        finished_at=ctx.clock(),
    )
    if moved:
        log.warning("scene %s failed: %s", scene_id, reason)
    return moved is not None
