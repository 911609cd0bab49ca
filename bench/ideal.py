"""The ideal makespan of a batch over backends of different speeds and abilities.

A lower bound no scheduler can beat: the fluid relaxation of the scheduling problem. Scenes of
type ``t`` (``count[t]`` of them) may run on the backends that can take them; backend ``b`` runs
``slots[b]`` jobs at a time, each taking ``seconds[b]``. In time ``T`` backend ``b`` can finish at
most ``slots[b] * T / seconds[b]`` scenes, so ``T`` is feasible only if a flow network

    source -> type t (count[t]) -> backend b that can take t -> sink (slots[b] * T / seconds[b])

carries every scene. The smallest such ``T`` (found by bisection, max-flow by Edmonds-Karp) is
the optimum of the linear program "minimise T subject to sum_b x[t,b] = count[t] and
sum_t x[t,b] * seconds[b] <= slots[b] * T", because that LP is exactly this flow problem. It
ignores that jobs are whole (so it can only be lower than the true optimum), and it is at least
one job's time.

The same network bounds cost (:func:`cheapest_assignment`): with ``T`` fixed to a deadline and
each type-to-backend arc priced at what one such scene costs there, the min-cost flow that
carries every scene is the cheapest (fractional) assignment that meets the deadline.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass

_EPS = 1e-9


def max_flow(capacity: dict[str, dict[str, float]], source: str, sink: str) -> float:
    """Edmonds-Karp on a small graph given as ``capacity[u][v]``."""
    residual = {u: dict(edges) for u, edges in capacity.items()}
    for u, edges in capacity.items():
        for v in edges:
            residual.setdefault(v, {}).setdefault(u, 0.0)
    total = 0.0
    while (path := _augmenting_path(residual, source, sink)) is not None:
        push = min(residual[u][v] for u, v in path)
        for u, v in path:
            residual[u][v] -= push
            residual[v][u] += push
        total += push
    return total


def _augmenting_path(
    residual: dict[str, dict[str, float]], source: str, sink: str
) -> list[tuple[str, str]] | None:
    parent: dict[str, str] = {}
    queue = deque([source])
    seen = {source}
    while queue:
        u = queue.popleft()
        for v, room in residual[u].items():
            if room > _EPS and v not in seen:
                seen.add(v)
                parent[v] = u
                if v == sink:
                    return _path(parent, source, sink)
                queue.append(v)
    return None


def _path(parent: dict[str, str], source: str, sink: str) -> list[tuple[str, str]]:
    path = []
    node = sink
    while node != source:
        path.append((parent[node], node))
        node = parent[node]
    return path[::-1]


def feasible(
    horizon: float,
    counts: Mapping[str, int],
    capable: Mapping[str, list[str]],
    slots: Mapping[str, int],
    seconds: Mapping[str, float],
    change: Change | None = None,
) -> bool:
    """Whether every scene fits into ``horizon`` seconds (fractionally); with ``change``,
    backends run at its speeds from its time on."""
    graph: dict[str, dict[str, float]] = {"source": {}}
    for kind, count in counts.items():
        graph["source"][f"t:{kind}"] = float(count)
        graph[f"t:{kind}"] = {f"b:{b}": float("inf") for b in capable[kind]}
    for backend in slots:
        graph[f"b:{backend}"] = {"sink": slots[backend] * work(backend, horizon, seconds, change)}
    return max_flow(graph, "source", "sink") >= sum(counts.values()) - 1e-6


@dataclass(frozen=True)
class Change:
    """From ``at`` seconds on, jobs take ``seconds`` (a backend that slowed down)."""

    at: float
    seconds: Mapping[str, float]


def work(
    backend: str, horizon: float, seconds: Mapping[str, float], change: Change | None
) -> float:
    """Jobs one slot of ``backend`` finishes in ``horizon`` seconds (fractionally)."""
    if change is None or horizon <= change.at:
        return horizon / seconds[backend]
    after = change.seconds.get(backend, seconds[backend])
    return change.at / seconds[backend] + (horizon - change.at) / after


def ideal_makespan(
    counts: Mapping[str, int],
    capable: Mapping[str, list[str]],
    slots: Mapping[str, int],
    seconds: Mapping[str, float],
    change: Change | None = None,
) -> float:
    """The smallest feasible horizon, to 0.01 %; at least one (fastest capable) job's time.
    With ``change``, for the speeds that change at its time (the bound for that run)."""
    low = 0.0
    slowest = max([*seconds.values(), *(change.seconds.values() if change else ())])
    high = sum(counts.values()) * slowest
    while high - low > high * 1e-4:
        middle = (low + high) / 2
        if feasible(middle, counts, capable, slots, seconds, change):
            high = middle
        else:
            low = middle
    shortest = min(seconds[b] for kind in counts if counts[kind] for b in capable[kind])
    return max(high, shortest)


# -- the cheapest assignment that meets a deadline ------------------------------------------------


def min_cost_flow(
    capacity: dict[str, dict[str, float]], cost: dict[str, dict[str, float]], source: str, sink: str
) -> tuple[float, float, dict[str, dict[str, float]]]:
    """The most flow at the least cost: successive shortest paths on ``capacity[u][v]`` with
    ``cost[u][v]`` per unit, Bellman-Ford because the residual graph's reverse arcs cost
    ``-cost``. No two arcs may join the same two nodes, either way round (the reverse arcs
    live in the same table). Returns (flow, cost, flow on each arc)."""
    residual = {u: dict(edges) for u, edges in capacity.items()}
    price: dict[tuple[str, str], float] = {}
    for u, edges in capacity.items():
        for v in edges:
            residual.setdefault(v, {}).setdefault(u, 0.0)
            price[u, v], price[v, u] = cost[u][v], -cost[u][v]
    total = spent = 0.0
    while (path := _cheapest_path(residual, price, source, sink)) is not None:
        push = min(residual[u][v] for u, v in path)
        for u, v in path:
            residual[u][v] -= push
            residual[v][u] += push
        total += push
        spent += push * sum(price[arc] for arc in path)
    # No arc runs both ways, so an arc's flow is its reverse arc's room (also for infinite ones).
    flows = {u: {v: residual[v][u] for v in edges} for u, edges in capacity.items()}
    return total, spent, flows


def _cheapest_path(
    residual: dict[str, dict[str, float]],
    price: dict[tuple[str, str], float],
    source: str,
    sink: str,
) -> list[tuple[str, str]] | None:
    """Bellman-Ford over the arcs with room; the cheapest source-sink path, if any."""
    best = {source: 0.0}
    parent: dict[str, str] = {}
    for _ in range(len(residual)):
        changed = False
        for u, edges in residual.items():
            for v, room in edges.items():
                if u in best and room > _EPS and best[u] + price[u, v] < best.get(v, _INF) - _EPS:
                    best[v] = best[u] + price[u, v]
                    parent[v] = u
                    changed = True
        if not changed:
            break
    return _path(parent, source, sink) if sink in parent else None


_INF = float("inf")


@dataclass(frozen=True)
class Assignment:
    """The cheapest (fractional) way to run a batch within a deadline."""

    cost: float
    """USD, the lower bound on what any schedule that meets the deadline pays."""
    scenes: dict[str, dict[str, float]]
    """Scenes of each type on each backend (fractions of scenes: the fluid relaxation)."""


def cheapest_assignment(
    deadline: float,
    counts: Mapping[str, int],
    capable: Mapping[str, list[str]],
    slots: Mapping[str, int],
    seconds: Mapping[str, float],
    cost_per_scene: Mapping[str, Mapping[str, float]],
) -> Assignment | None:
    """The least a batch can cost when every scene must finish within ``deadline`` seconds;
    ``None`` when no assignment finishes in time.

    The LP "minimise sum x[t,b] * cost_per_scene[t][b] subject to sum_b x[t,b] = count[t] and
    sum_t x[t,b] * seconds[b] <= slots[b] * deadline" is a min-cost flow on the network of
    :func:`feasible` (arcs to a backend cost its price for that type of scene). Like
    :func:`ideal_makespan` it lets jobs be fractional, so no real schedule pays less."""
    capacity: dict[str, dict[str, float]] = {"source": {}}
    cost: dict[str, dict[str, float]] = {"source": {}}
    for kind, count in counts.items():
        capacity["source"][f"t:{kind}"], cost["source"][f"t:{kind}"] = float(count), 0.0
        capacity[f"t:{kind}"] = {f"b:{b}": _INF for b in capable[kind]}
        cost[f"t:{kind}"] = {f"b:{b}": cost_per_scene[kind][b] for b in capable[kind]}
    for backend in slots:
        capacity[f"b:{backend}"] = {"sink": slots[backend] * work(backend, deadline, seconds, None)}
        cost[f"b:{backend}"] = {"sink": 0.0}
    flow, spent, flows = min_cost_flow(capacity, cost, "source", "sink")
    if flow < sum(counts.values()) - 1e-6:
        return None
    scenes = {kind: {b: flows[f"t:{kind}"][f"b:{b}"] for b in capable[kind]} for kind in counts}
    return Assignment(spent, scenes)
