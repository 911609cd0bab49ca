"""What the generation step does after an error: record the try, count it against the
backend's circuit, ask the retry policy for a transition, and apply it.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

from . import routing
from .context import Context
from .errors import Action, BackendError, RateLimitedError
from .policy import after_error, is_open
from .record import SceneRecord
from .states import Event, Transition

log = logging.getLogger("videogen")


class Holder(Protocol):
    """A run that holds the scene's slot (:class:`videogen.generation.Run`)."""

    ctx: Context
    record: SceneRecord

    @property
    def name(self) -> str: ...

    def apply(
        self,
        event: Event,
        *,
        backlog: Any = None,
        failure: BackendError | None = None,
        **changes: Any,
    ) -> bool: ...


def on_error(run: Holder, error: BackendError) -> None:
    """Record the failed try and move the scene as the retry policy says."""
    ctx, record, backend = run.ctx, run.record, run.name
    ctx.store.add_attempt(
        record.id,
        {"backend": backend, "error": str(error), "kind": type(error).__name__, "at": ctx.clock()},
    )
    ctx.store.count(backend, errors=1)
    rate_limited = isinstance(error, RateLimitedError)
    if error.action in (Action.FAILOVER, Action.RETRY_SAME) and not rate_limited:
        circuit = ctx.circuit_failure(backend)  # every failed request counts: react in seconds
    else:
        circuit = ctx.store.circuit(backend)
    step = after_error(
        error.action,
        str(error),
        retries_here=record.retries,
        fallback_enabled=ctx.vg.fallback_enabled,
        retry_after=error.retry_after,
        rate_limited=rate_limited,
        backend_open=is_open(circuit, ctx.clock(), ctx.circuit_policy),
        policy=ctx.retry_policy,
    )
    changes = changes_for(step, record, backend, ctx.clock())
    backlog = None
    if step.event is Event.REROUTE:
        tried = tuple(changes.get("tried", record.tried))
        target = routing.requeue(ctx, record, tried, changes["failures"])
        if isinstance(target, str):  # nowhere left to go: it fails here
            step = Transition(Event.FAIL, f"{step.reason} ({target})")
            changes = changes_for(step, record, backend, ctx.clock())
        else:
            backlog = (target, record.rank or 0.0)
    if run.apply(step.event, backlog=backlog, failure=error, **changes):
        _FOLLOW_UP[step.event](ctx, record.id, backend, step)


def changes_for(step: Transition, record: SceneRecord, backend: str, now: float) -> dict[str, Any]:
    """The record fields written with the policy's transition (pure)."""
    changes: dict[str, Any] = {
        "error": step.reason,
        "failures": record.failures + 1,
        "unknown_since": None,
    }
    if step.event is Event.RETRY:
        # A retry is a new attempt: the crash-loop counter starts again.
        changes.update(deliveries=0, retries=record.retries + 1)
    elif step.event is Event.REROUTE:
        changes.update(vendor_job=None, submitting=None, request=None)
        if step.forget:
            changes["tried"] = [name for name in record.tried if name != backend]
    else:
        changes["finished_at"] = now
    return changes


def _retry(ctx: Context, scene_id: str, backend: str, step: Transition) -> None:
    ctx.store.count(backend, retries=1)
    ctx.store.mark_queued(backend, scene_id)
    ctx.dispatch.generate(backend, scene_id, countdown=step.delay)
    log.info("scene %s: retry on %s in %.1f s: %s", scene_id, backend, step.delay, step.reason)


def _reroute(ctx: Context, scene_id: str, backend: str, step: Transition) -> None:
    ctx.store.count(backend, failovers=1)  # it waits in the backlog again, at its old place;
    # the generate step's own dispatch (when it ends) binds it to the next backend
    log.info("scene %s: failing over from %s: %s", scene_id, backend, step.reason)


def _failed(ctx: Context, scene_id: str, backend: str, step: Transition) -> None:
    ctx.store.count(backend, failed=1)
    log.warning("scene %s failed: %s", scene_id, step.reason)


_FOLLOW_UP = {Event.RETRY: _retry, Event.REROUTE: _reroute, Event.FAIL: _failed}
"""What follows each transition the retry policy can return: the next step's message."""
