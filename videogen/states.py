"""The scene state machine (pure): every move a scene can make, as one table.

``(state, event) -> new state``. Python code asks :func:`next_state`; the store's Lua script
(:mod:`videogen.lua`) is generated from the same table, so the rule Redis applies atomically
and the rule tests read are one and the same.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType

from .models import SceneState


class Event(StrEnum):
    """What happens to a scene."""

    ROUTE = "route"
    """A dispatch step bound it to a backend with a free slot and put it on its queue."""
    START = "start"
    """A worker holds a slot for it (again, when it resumes a job a dead worker left)."""
    SUCCEED = "succeed"
    """Its video is stored and checked."""
    RETRY = "retry"
    """A transient error: the same backend again, later."""
    REROUTE = "reroute"
    """Back to the backlog (at its place), for another backend."""
    FAIL = "fail"
    """Given up, with a reason."""
    CANCEL = "cancel"
    """Nobody wants it any more."""
    RESUBMIT = "resubmit"
    """A person asked for a failed or cancelled scene to be tried again."""
    ADOPT = "adopt"
    """An orphan (a vendor job the scene left when its vendor stopped answering) finished
    first: its video is the scene's, wherever the scene is now."""
    REUSE = "reuse"
    """An identical scene's video (from the result cache, or its job's scene it waited
    for) is the scene's: it never went to a vendor."""


_P, _R, _G = SceneState.PENDING, SceneState.ROUTED, SceneState.RUNNING
_LIVE = (_P, _R, _G)
_ON_BACKEND = (_R, _G)

_TABLE: dict[tuple[SceneState, Event], SceneState] = {
    (_P, Event.ROUTE): _R,
    **{(s, Event.START): _G for s in _ON_BACKEND},
    (_G, Event.SUCCEED): SceneState.SUCCEEDED,
    **{(s, Event.RETRY): _R for s in _ON_BACKEND},
    **{(s, Event.REROUTE): _P for s in _ON_BACKEND},
    **{(s, Event.FAIL): SceneState.FAILED for s in _LIVE},
    **{(s, Event.CANCEL): SceneState.CANCELLED for s in _LIVE},
    **{(s, Event.ADOPT): SceneState.SUCCEEDED for s in _LIVE},
    (SceneState.FAILED, Event.RESUBMIT): _P,
    (SceneState.CANCELLED, Event.RESUBMIT): _P,
    (_P, Event.REUSE): SceneState.SUCCEEDED,
}

TABLE: Mapping[tuple[SceneState, Event], SceneState] = MappingProxyType(_TABLE)
"""Every allowed move; anything not in it is refused (the scene is left as it is)."""

TERMINAL: frozenset[SceneState] = frozenset(s for s in SceneState if s.terminal)


@dataclass(frozen=True)
class Transition:
    """What a policy decided for a scene: the event to apply, why, and when the next step
    runs. The routing and retry policies return these; the steps apply them."""

    event: Event
    reason: str
    delay: float = 0.0
    """Seconds before the next step (a retry's backoff)."""
    backend: str | None = None
    """``ROUTE``: the chosen backend."""
    forget: bool = False
    """``REROUTE``: the backend was only unavailable, not unfit: it may be tried again
    later (bounded by ``max_attempts``)."""


def next_state(state: SceneState, event: Event) -> SceneState | None:
    """Where ``event`` takes a scene in ``state``; ``None`` when the move is not allowed
    (a duplicate message, or a scene that moved on meanwhile)."""
    return TABLE.get((state, event))


def sources(event: Event) -> frozenset[SceneState]:
    """The states ``event`` may move a scene from."""
    return frozenset(state for state, e in TABLE if e is event)


def lua_table() -> str:
    """The table as a Lua table literal, ``{["pending:route"]="routed", ...}``."""
    pairs = ", ".join(f'["{s.value}:{e.value}"]="{to.value}"' for (s, e), to in TABLE.items())
    return "{" + pairs + "}"


def lua_terminal() -> str:
    """The terminal states as a Lua set literal."""
    return "{" + ", ".join(f'["{s.value}"]=true' for s in sorted(TERMINAL)) + "}"
