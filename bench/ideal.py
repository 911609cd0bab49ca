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
