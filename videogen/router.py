"""Routing policy (pure): which backend takes a scene next, and why.

The router task reads the shared state into :class:`BackendView` values, calls
:func:`choose`, and turns the decision into a :class:`~videogen.states.Transition` with
:func:`after_choice`; nothing here touches Redis, Celery or HTTP.
"""

from __future__ import annotations

from dataclasses import dataclass

from .capabilities import Capabilities, can_take
from .config import Strategy
from .models import Scene
from .states import Event, Transition

ROUTE_RETRY = 2.0
"""Seconds before a scene that found every capable backend down looks again."""


@dataclass(frozen=True)
class BackendView:
    """One backend as the router sees it at one moment."""

    name: str
    priority: int
    enabled: bool
    healthy: bool
    circuit_open: bool
    capacity: int
    in_flight: int
    queued: int
    caps: Capabilities

    @property
    def load(self) -> float:
        """In-flight plus queued work over capacity: 1.0 means every slot is spoken for."""
        return (self.in_flight + self.queued) / self.capacity

    @property
    def has_room(self) -> bool:
        return self.in_flight + self.queued < self.capacity


@dataclass(frozen=True)
class RouteDecision:
    backend: str | None
    reason: str
    excluded: dict[str, str]
    """Every backend left out, with why."""


CIRCUIT_OPEN = "circuit open after recent failures"
UNHEALTHY = "unhealthy"
TEMPORARY = frozenset({CIRCUIT_OPEN, UNHEALTHY})
"""Exclusions that pass by themselves: a scene they block waits rather than fails."""


def exclusion(view: BackendView, scene: Scene, tried: frozenset[str]) -> str | None:
    """Why ``view`` cannot take ``scene`` now, or ``None`` when it can."""
    if not view.enabled:
        return "disabled"
    if view.name in tried:
        return "already tried for this scene"
    unfit = can_take(view.name, view.caps, scene)
    if unfit is not None:
        return unfit
    if view.circuit_open:
        return CIRCUIT_OPEN
    if not view.healthy:
        return UNHEALTHY
    return None


def only_for_now(decision: RouteDecision) -> bool:
    """True when no backend can take the scene now, but one could once it recovers."""
    return decision.backend is None and any(w in TEMPORARY for w in decision.excluded.values())


def order(candidates: list[BackendView], strategy: Strategy, turn: int) -> list[BackendView]:
    """Candidates best first under ``strategy``; ``turn`` is the round-robin counter."""
    by_priority = sorted(candidates, key=lambda v: (v.priority, v.name))
    if strategy is Strategy.LEAST_LOADED:
        return sorted(by_priority, key=lambda v: v.load)
    if strategy is Strategy.ROUND_ROBIN:
        start = turn % len(by_priority) if by_priority else 0
        return by_priority[start:] + by_priority[:start]
    # Priority: the first with a free slot; when all are full, the least overloaded.
    with_room = [v for v in by_priority if v.has_room]
    full = sorted((v for v in by_priority if not v.has_room), key=lambda v: (v.load, v.priority))
    return with_room + full


def choose(
    scene: Scene,
    views: list[BackendView],
    *,
    tried: frozenset[str] = frozenset(),
    strategy: Strategy = Strategy.PRIORITY,
    turn: int = 0,
) -> RouteDecision:
    """Pick a backend for ``scene`` and say why; ``backend`` is ``None`` when none can take it."""
    excluded = {v.name: why for v in views if (why := exclusion(v, scene, tried)) is not None}
    candidates = [v for v in views if v.name not in excluded]
    if not candidates:
        return RouteDecision(None, "no backend can take this scene", excluded)
    best = order(candidates, strategy, turn)[0]
    reason = f"{strategy.value}: priority {best.priority}, load {best.in_flight}+{best.queued}"
    reason += f"/{best.capacity}"
    if excluded:
        reason += "; skipped " + ", ".join(f"{n} ({why})" for n, why in excluded.items())
    return RouteDecision(best.name, reason, excluded)


def exhausted(failures: int, last_error: str | None) -> Transition:
    """A scene that used up its ``max_attempts`` fails with its last reason."""
    return Transition(Event.FAIL, f"{last_error or 'no reason recorded'} (after {failures} tries)")


def after_choice(
    decision: RouteDecision, *, last_error: str | None, waited: float, wait_limit: float
) -> Transition:
    """Route to the chosen backend; with none, wait for one that is only down for now
    (for at most ``wait_limit`` seconds since the scene was submitted), else fail."""
    if decision.backend is not None:
        return Transition(Event.ROUTE, decision.reason, backend=decision.backend)
    why = "; ".join(f"{name}: {reason}" for name, reason in decision.excluded.items())
    reason = f"no backend can take it: {why}"
    if last_error:
        reason = f"{last_error} (no other backend: {why})"
    if not only_for_now(decision):
        return Transition(Event.FAIL, reason)
    if waited < wait_limit:
        return Transition(Event.WAIT, reason, delay=ROUTE_RETRY)
    return Transition(Event.FAIL, f"{reason}; gave up after waiting {waited:.0f} s")
