"""Routing policy (pure): which backend takes a scene next, and why.

The router task reads the shared state into :class:`BackendView` values and calls
:func:`choose`; nothing here touches Redis, Celery or HTTP.
"""

from __future__ import annotations

from dataclasses import dataclass

from .capabilities import Capabilities, can_take
from .config import Strategy
from .models import Scene


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
