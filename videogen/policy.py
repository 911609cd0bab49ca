"""What happens after an error, and when a backend's circuit opens (pure functions).

Errors are classified once (each :class:`BackendError` carries an :class:`Action`); this module
turns that action plus the scene's history into a :class:`~videogen.states.Transition`,
bounded and with backoff.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum

from .errors import Action
from .retry import backoff_delay
from .states import Event, Transition


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int = 3
    """Transient errors retried on the same backend before it counts as a backend failure."""
    max_rate_limited: int = 10
    """429s waited out on the same backend: a vendor asking us to slow down is not failing,
    and failing over every rate-limited scene would only move the storm elsewhere."""
    base_delay: float = 1.0
    max_delay: float = 60.0


def after_error(
    action: Action,
    message: str,
    *,
    retries_here: int,
    fallback_enabled: bool,
    retry_after: float | None = None,
    rate_limited: bool = False,
    backend_open: bool = False,
    policy: RetryPolicy = RetryPolicy(),
    jitter: float = 0.5,
) -> Transition:
    """What happens to a scene after an error of kind ``action`` on its current backend.

    Args:
        retries_here: transient retries already made on this backend for this scene.
        rate_limited: the error was a 429, which gets its own, larger budget.
        backend_open: the backend's circuit is open: retrying there is pointless.
    """
    budget = policy.max_rate_limited if rate_limited else policy.max_retries
    if backend_open and not rate_limited:
        budget = 0
    if action is Action.RETRY_SAME and retries_here < budget:
        delay = backoff_delay(
            retries_here + 1,
            retry_after=retry_after,
            base=policy.base_delay,
            cap=policy.max_delay,
            jitter=lambda: jitter,
        )
        return Transition(Event.RETRY, message, delay)
    return _leave(action, message, retries_here, fallback_enabled)


def _leave(action: Action, message: str, retries_here: int, fallback: bool) -> Transition:
    """Fail the scene, or send it to another backend."""
    if action is Action.FAIL_SCENE:
        return Transition(Event.FAIL, message)
    if action is Action.RESOLVE:
        return Transition(
            Event.FAIL,
            f"{message}; not resubmitted, so the scene is never paid for twice "
            "(check the vendor's dashboard)",
        )
    unavailable = action is Action.RETRY_SAME
    if unavailable:
        message = f"{message} (after {retries_here} retries)"
    if fallback:
        # Unavailable, not unfit: the open circuit keeps it away while it recovers, and the
        # scene may come back to it later (bounded by max_attempts).
        return Transition(Event.REROUTE, message, forget=unavailable)
    return Transition(Event.FAIL, message)


class CircuitState(StrEnum):
    """Open: work is kept away until the cooldown passes; then trials go through, and one
    success closes it while one more failure opens it again."""

    CLOSED = "closed"
    OPEN = "open"


@dataclass(frozen=True)
class Circuit:
    state: CircuitState = CircuitState.CLOSED
    failures: int = 0
    opened_at: float = 0.0


@dataclass(frozen=True)
class CircuitPolicy:
    threshold: int = 3
    """Consecutive backend failures (jobs or probes) that open the circuit."""
    cooldown: float = 30.0
    """Seconds an open circuit stays open before one trial is let through."""


def on_failure(circuit: Circuit, now: float, policy: CircuitPolicy = CircuitPolicy()) -> Circuit:
    failures = circuit.failures + 1
    if failures >= policy.threshold:
        return Circuit(CircuitState.OPEN, failures, now)
    return replace(circuit, failures=failures)


def on_success(circuit: Circuit) -> Circuit:
    return Circuit()


def is_open(circuit: Circuit, now: float, policy: CircuitPolicy = CircuitPolicy()) -> bool:
    """True while the circuit blocks routing; after the cooldown it lets a trial through."""
    return circuit.state is CircuitState.OPEN and now - circuit.opened_at < policy.cooldown
