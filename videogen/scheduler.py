"""The scheduler's policy (pure): the backlog's order, learned job times, which waiting scene
each free slot takes, and when each waiting scene is expected to start and finish.

Scenes wait in one shared backlog until a backend can start them now. The backlog is split
into *classes*: scenes that may go to the same set of backends and ask for the same duration
are interchangeable to the scheduler, so each class is one sorted set, ordered by
:func:`rank`. A dispatch pass reads only the head of each class (as many entries as there are
free slots), so its cost does not grow with the backlog; :func:`plan` decides, and the store's
dispatch script binds atomically.

Order and fairness (:func:`rank`): job priority first (higher goes first), then *rounds*: a
job's i-th scene is in round ``v + i``, where ``v`` is the round of the latest scene bound
when the job was submitted (start-time fair queuing). So a small job submitted behind a huge
one of the same priority is served one scene per round alongside it, not after it; within a
round, earlier jobs go first. A scene that fails over keeps its rank (it goes back to the
front).
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from .capabilities import Capabilities
from .classes import Policy, ScClass
from .config import Strategy
from .errors import InvalidPriorityError
from .fluid import cheapest_fit, plan_shares
from .jobtimes import JobTimes

MIN_PRIORITY, MAX_PRIORITY = -100, 100
_ROUND_BITS, _SEQ_BITS = 31, 14
_BAND = 1 << (_ROUND_BITS + _SEQ_BITS)
_ROUND = 1 << _SEQ_BITS
SPARE_JOBS = 2
"""Jobs of room a dearer backend keeps before a deadline when it puts off the scenes the
cheapest plan gives it (``cheapest``): learned job times are medians, and a pass may come late."""


def check_priority(priority: int) -> int:
    if not MIN_PRIORITY <= priority <= MAX_PRIORITY:
        raise InvalidPriorityError(
            f"priority {priority} is outside {MIN_PRIORITY}..{MAX_PRIORITY} (higher goes first)"
        )
    return priority


def rank(priority: int, round_: int, seq: int) -> int:
    """A waiting scene's backlog score (lower goes first): priority band, round, job order.
    Exact in a Redis score (a double): 8 + 31 + 14 bits."""
    band = MAX_PRIORITY - check_priority(priority)
    return band * _BAND + min(round_, (1 << _ROUND_BITS) - 1) * _ROUND + seq % _ROUND


def band_range(score: float) -> tuple[int, int]:
    """The scores of ``score``'s priority band: ``[low, high)``."""
    low = int(score // _BAND) * _BAND
    return low, low + _BAND


def round_of(score: float) -> int:
    return int(score % _BAND) // _ROUND


def priority_of(score: float) -> int:
    return MAX_PRIORITY - int(score // _BAND)


@dataclass(frozen=True)
class BackendView:
    """One backend as a dispatch pass sees it at one moment."""

    name: str
    priority: int
    enabled: bool
    healthy: bool
    circuit_open: bool
    capacity: int
    in_flight: int
    """Live leases: vendor jobs running now."""
    queued: int
    """Scenes sent to it and not started yet (each holds a slot)."""
    caps: Capabilities
    over_budget: str | None = None
    """Why a budget stops new work on it for now (:mod:`videogen.spend`)."""


@dataclass
class Waiting:
    """One backlog class as a dispatch pass reads it: its size and its first scores."""

    cls: ScClass
    count: int
    heads: list[float] = field(default_factory=list)
    """The scores of its first entries, best first (as many as there are free slots)."""
    top: int | None = None
    """How many of them are in the backlog's best priority band (``None``: all)."""


# -- the dispatch plan ------------------------------------------------------------------------


Prices = Callable[[str, ScClass], float]
"""A scene of a class's price on a backend, in USD (:func:`videogen.costs.prices`)."""


@dataclass(frozen=True)
class Pick:
    """Bind the best waiting scene of ``cls`` to ``backend``, because ``reason``."""

    backend: str
    cls: ScClass
    reason: str


def available(view: BackendView) -> bool:
    return view.enabled and view.healthy and not view.circuit_open and not view.over_budget


def free_slots(view: BackendView) -> int:
    return max(0, view.capacity - view.in_flight - view.queued)


@dataclass
class CheapPlan:
    """``cheapest``'s plan for one job's waiting scenes (:meth:`_Pass.cheap_plan`)."""

    shares: dict[str, dict[str, float]]
    """Class name -> backend -> scenes it should take."""
    complete: bool
    """Every waiting scene is in it: the deadline can be met."""


@dataclass
class _Pass:
    """The state of one planning pass: what is still free and still waiting."""

    views: dict[str, BackendView]
    waiting: list[Waiting]
    times: JobTimes
    free: dict[str, int]
    busy: dict[str, int]
    left: dict[ScClass, int]
    shares: dict[str, dict[str, float]] = field(default_factory=dict)
    """The fluid plan over the best priority band: scenes of each class per backend."""
    top: float = 0.0
    """The best priority band's scores start here (shares are for scenes in it)."""
    prices: Prices | None = None
    now: float = 0.0
    cheap: dict[str, CheapPlan] = field(default_factory=dict)
    """The cheapest plan within its deadline of each job's options, worked out the first time
    a class with those options is met in the pass."""

    @classmethod
    def start(
        cls,
        views: Iterable[BackendView],
        waiting: list[Waiting],
        times: JobTimes,
        prices: Prices | None = None,
        now: float = 0.0,
    ) -> _Pass:
        up = {v.name: v for v in views if available(v)}
        state = cls(
            prices=prices,
            now=now,
            views=up,
            waiting=waiting,
            times=times,
            free={n: free_slots(v) for n, v in up.items()},
            busy={n: v.in_flight + v.queued for n, v in up.items()},
            left={w.cls: w.count for w in waiting},
        )
        heads = [w.heads[0] for w in waiting if w.heads]
        if heads:
            state.top = band_range(min(heads))[0]
            state.shares = state.fluid()
        return state

    def fluid(self) -> dict[str, dict[str, float]]:
        counts = {w.cls.name: w.count if w.top is None else w.top for w in self.waiting}
        if not any(counts.values()):
            return {}
        widest = max(self.waiting, key=lambda w: counts[w.cls.name]).cls.duration
        rates = {b: v.capacity / self.times.seconds(b, widest) for b, v in self.views.items()}
        capable = {w.cls.name: self.usable(w.cls) for w in self.waiting}
        return plan_shares(counts, capable, rates)

    def planned(self, c: ScClass, backend: str) -> bool:
        return self.shares.get(c.name, {}).get(backend, 0.0) >= 0.5

    def committed(self, backend: str) -> bool:
        """The plan still gives ``backend`` scenes of some class that waits."""
        return any(
            share.get(backend, 0.0) >= 0.5 and self.left.get(ScClass.parse(name), 0) > 0
            for name, share in self.shares.items()
        )

    def usable(self, c: ScClass) -> list[str]:
        return [b for b in c.backends if b in self.views]

    def drain(
        self,
        others: set[str],
        duration: float,
        without: str,
        sharing: Callable[[str, ScClass], bool] | None = None,
    ) -> float:
        """Seconds ``others`` and the backends sharing their work (those ``sharing`` admits;
        never ``without``, the one asking) need to start every waiting scene they could take:
        a fluid estimate, the waiting scenes plus half of each busy slot, over their rate."""
        pool = set(others)
        waiting = 0
        for c, count in self.left.items():
            if others.intersection(c.backends):
                waiting += count
                pool.update(b for b in self.usable(c) if sharing is None or sharing(b, c))
        pool.discard(without)
        rate = sum(self.views[b].capacity / self.times.seconds(b, duration) for b in pool)
        busy = sum(self.busy.get(b, 0) for b in pool) / 2
        return (waiting + busy) / rate if rate > 0 else math.inf

    def worth_it(self, backend: str, c: ScClass) -> tuple[bool, str]:
        """Whether a scene of ``c`` finishes sooner on ``backend`` now than by waiting for
        the others: always when ``backend`` is as fast as any of them; a slower one only
        while the others' backlog would keep them busy for longer than the difference."""
        mine = self.times.seconds(backend, c.duration)
        others = {b for b in self.usable(c) if b != backend}
        if not others:
            return True, f"expected {mine:.1f} s, no other backend can take it"
        fastest = min(self.times.seconds(b, c.duration) for b in others)
        if mine <= fastest:
            return True, f"expected {mine:.1f} s, fastest free"
        drain = self.drain(others, c.duration, backend)
        why = f"expected {mine:.1f} s vs {fastest:.1f} s elsewhere after {drain:.1f} s of backlog"
        return mine <= drain + fastest, why

    def take(self, backend: str, c: ScClass) -> None:
        self.free[backend] -= 1
        self.busy[backend] = self.busy.get(backend, 0) + 1
        self.left[c] -= 1
        cheap = self.cheap.get(c.policy)
        for shares in (self.shares, cheap.shares if cheap else {}):
            share = shares.get(c.name, {})
            if backend in share:
                share[backend] -= 1

    def cheap_plan(self, c: ScClass, deadline_at: float) -> CheapPlan:
        """How many of its job's waiting scenes of each class each backend should take for
        the job to cost least while every scene ends by ``deadline_at`` (a fluid plan over
        the room each backend has: the whole jobs each of its slots can still finish in the
        time left, a job taking its learned cycle (:meth:`JobTimes.cycle`: the job time and
        the dispatch lag), a busy slot being free in half a job). When they cannot all end
        by then, the plan is for the most scenes that can, cheapest first."""
        if c.policy not in self.cheap:
            price = self.prices or (lambda backend, cls: 0.0)
            mine = [k for k, n in self.left.items() if k.policy == c.policy and n > 0]
            room = {}
            left = deadline_at - self.now
            for b, v in self.views.items():
                t = self.times.cycle(b, c.duration)
                busy = min(v.capacity, self.busy.get(b, 0))
                # whole jobs per slot: a busy slot is free in half a job, on average
                room[b] = (v.capacity - busy) * math.floor(max(0.0, left) / t) + busy * math.floor(
                    max(0.0, left - t / 2) / t
                )
            self.cheap[c.policy] = CheapPlan(
                *cheapest_fit(
                    {k.name: self.left[k] for k in mine},
                    {k.name: self.usable(k) for k in mine},
                    room,
                    {k.name: {b: price(b, k) for b in self.usable(k)} for k in mine},
                )
            )
        return self.cheap[c.policy]

    def frees_in_time(self, c: ScClass, free: list[str], deadline_at: float) -> bool:
        """A busy backend that can take ``c`` will have a slot free in time to end a scene
        by ``deadline_at`` (the first of its ``k`` busy slots frees in ``1/(k+1)`` of a job,
        on average)."""
        for b in self.usable(c):
            busy = self.busy.get(b, 0)
            if b in free or busy == 0:
                continue
            t = self.times.seconds(b, c.duration)
            if self.now + t / (busy + 1) + t <= deadline_at:
                return True
        return False

    def unplanned(self, c: ScClass, plan: CheapPlan) -> bool:
        """Some waiting scenes of ``c`` are in no backend's share: they end late anyway."""
        return sum(plan.shares.get(c.name, {}).values()) < self.left.get(c, 0) - 0.5


def plan(
    views: Iterable[BackendView],
    waiting: list[Waiting],
    times: JobTimes,
    strategy: Strategy,
    turn: int = 0,
    *,
    prices: Prices | None = None,
    now: float = 0.0,
) -> list[Pick]:
    """Which class each free slot takes now, scenes in backlog order; a class whose job
    chose a strategy (:class:`Policy`) uses it instead of ``strategy``.

    ``earliest_finish`` (also ``least_loaded``): each waiting scene goes to the free backend
    that finishes it soonest, unless it would finish sooner by waiting for a busy faster one
    (:meth:`_Pass.worth_it`). ``priority``: the best-priority free backend (spill-over only
    when better ones are full). ``round_robin``: free backends in turn. ``cheapest``
    (:func:`_cheapest`): the cheapest free backend unless a cheaper busy one will be free in
    time for the job's deadline."""
    state = _Pass.start(views, waiting, times, prices, now)
    heap = [(w.heads[0], 0, w.cls.name, w) for w in waiting if w.heads and w.count > 0]
    heapq.heapify(heap)
    picks: list[Pick] = []
    while heap and any(state.free.values()):
        score, i, _, w = heapq.heappop(heap)
        in_top = score < state.top + _BAND
        pick = _pick(state, w.cls, strategy, turn + len(picks), in_top)
        if pick is None:
            continue  # nobody takes this class now: the rest of it waits too
        picks.append(pick)
        state.take(pick.backend, w.cls)
        if i + 1 < len(w.heads) and state.left[w.cls] > 0:
            heapq.heappush(heap, (w.heads[i + 1], i + 1, w.cls.name, w))
    return picks


def _pick(state: _Pass, c: ScClass, strategy: Strategy, turn: int, in_top: bool) -> Pick | None:
    choice = _choose(state, c, strategy, turn, in_top)
    if choice is None:
        return None
    backend, why = choice
    return Pick(backend, c, f"{why}; could go to {', '.join(c.backends)}")


def _choose(
    state: _Pass, c: ScClass, strategy: Strategy, turn: int, in_top: bool
) -> tuple[str, str] | None:
    free = [b for b in state.usable(c) if state.free.get(b, 0) > 0]
    if not free:
        return None
    views = state.views
    policy = Policy.parse(c.policy)
    strategy = policy.strategy or strategy
    if strategy is Strategy.CHEAPEST:
        return _cheapest(state, c, free, policy.deadline_at)
    if strategy is Strategy.PRIORITY:
        best = min(free, key=lambda b: (views[b].priority, b))
        return best, f"priority {views[best].priority}, the best with a free slot"
    if strategy is Strategy.ROUND_ROBIN:
        ordered = sorted(free, key=lambda b: (views[b].priority, b))
        return ordered[turn % len(ordered)], "round robin"
    # The fluid plan first: backends it gives scenes of this class; else those it gives
    # nothing that still waits (a scene only some backends can take is not left to the end
    # while those backends do work that any backend could do).
    planned = [b for b in free if in_top and state.planned(c, b)]
    candidates = planned or [b for b in free if not state.committed(b)]
    by_time = sorted(
        candidates, key=lambda b: (state.times.seconds(b, c.duration), views[b].priority)
    )
    for backend in by_time:
        ok, why = state.worth_it(backend, c)
        if ok:
            return backend, f"earliest finish: {why}"
    return None


def _cheapest(
    state: _Pass, c: ScClass, free: list[str], deadline_at: float | None
) -> tuple[str, str] | None:
    """With a deadline that can be met: the backends the cheapest fluid plan meeting it
    gives this class (:meth:`_Pass.cheap_plan`), cheapest first. With one that cannot: the
    backends the plan for the most scenes that can still end in time gives this class; a
    class whose scenes all have a place in that plan waits for busy backends rather than
    end late on a free one. Otherwise (no deadline, or scenes of this class that the plan
    leaves out) :func:`_cheapest_free`, among the free backends that would end the scene in
    time when there are any; when there are none but a busy one would, the scene waits."""
    price = state.prices or (lambda backend, cls: 0.0)
    cost = {b: price(b, c) for b in state.usable(c)}
    if deadline_at is None:
        return _cheapest_free(state, c, free, None, price, cost)
    plan = state.cheap_plan(c, deadline_at)
    mine = plan.shares.get(c.name, {})
    planned = sorted((b for b in free if mine.get(b, 0.0) >= 0.5), key=lambda b: cost[b])
    if plan.complete:  # it can be met: follow that plan
        if not planned or _puts_off(state, c, planned[0], plan.shares, deadline_at, cost):
            return None
        return planned[0], f"${cost[planned[0]]:.3f}: the cheapest plan that meets the deadline"
    if planned:  # it cannot: the most scenes that can still end in time do
        return planned[0], f"${cost[planned[0]]:.3f}: the most scenes in time, cheapest"
    if not state.unplanned(c, plan):
        return None  # this class's scenes can end in time, on backends busy now
    in_time = [b for b in free if state.now + state.times.seconds(b, c.duration) <= deadline_at]
    if not in_time and state.frees_in_time(c, free, deadline_at):
        return None  # a busy backend will end it in time: no free one that ends it late
    return _cheapest_free(state, c, in_time or free, deadline_at, price, cost)


def _cheapest_free(
    state: _Pass,
    c: ScClass,
    free: list[str],
    deadline_at: float | None,
    price: Prices,
    cost: dict[str, float],
) -> tuple[str, str] | None:
    """The cheapest free backend, when no busy backend is cheaper; else a dearer free one
    only when the cheaper ones, busy with what waits for them, would not finish this scene by
    the deadline (without one, never: the scene waits for a cheaper backend, unless none is
    up)."""
    for backend in sorted(free, key=lambda b: (cost[b], state.times.seconds(b, c.duration), b)):
        cheaper = {b for b in state.usable(c) if cost[b] < cost[backend]}
        if not cheaper:
            return backend, f"cheapest: ${cost[backend]:.3f}"
        if deadline_at is None:
            return None
        drain = state.drain(cheaper, c.duration, backend, _cheaper_than(price, backend, c))
        soonest = min(state.times.seconds(b, c.duration) for b in cheaper)
        late_by = state.now + drain + soonest - deadline_at
        if late_by <= 0:
            return None  # the cheaper ones will be free in time: wait for them
        return backend, (
            f"${cost[backend]:.3f}: the cheaper backends would finish it "
            f"{late_by:.0f} s after the deadline"
        )
    return None


def _puts_off(
    state: _Pass,
    c: ScClass,
    backend: str,
    shares: dict[str, dict[str, float]],
    deadline_at: float,
    cost: dict[str, float],
) -> bool:
    """Whether a backend dearer than the cheapest for this class waits before taking the
    scenes the plan gives it: it takes them as late as it can and still finish them, with
    :data:`SPARE_JOBS` to spare, by the deadline. Until then the cheaper backends may do more
    than the plan counted on (each pass plans again, over what is left), and money spent on a
    scene cannot be taken back."""
    if cost[backend] <= min(cost.values()):
        return False
    share = sum(by_backend.get(backend, 0.0) for by_backend in shares.values())
    jobs = math.ceil(share / max(1, state.views[backend].capacity)) + SPARE_JOBS
    return state.now + jobs * state.times.cycle(backend, c.duration) < deadline_at


def _cheaper_than(price: Prices, backend: str, c: ScClass) -> Callable[[str, ScClass], bool]:
    """Whether a backend sharing the work of another class is cheaper than ``backend``
    (for that class where ``backend`` takes it too, else than ``backend``'s price for
    ``c``): the backends a scene waits for; dearer ones are where it would spill over to."""
    mine = price(backend, c)

    def cheaper(b: str, other: ScClass) -> bool:
        ref = price(backend, other) if backend in other.backends else mine
        return price(b, other) < ref

    return cheaper
