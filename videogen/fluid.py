"""The fluid plan (pure): how many of the waiting scenes each backend should take so that the
whole backlog finishes soonest, when backends differ in speed and in what they can take.

Scenes of class ``k`` (``counts[k]``) may run on the backends ``capable[k]``; backend ``b``
finishes ``rates[b]`` scenes a second (slots over job time). Ignoring that jobs are whole,
the soonest finish ``T`` is the smallest horizon for which the flow network
``source -> class k (counts[k]) -> capable backend b -> sink (rates[b] * T)`` carries every
scene; that flow says how many scenes of each class each backend takes. The scheduler uses it
as a preference: a backend takes first the classes the plan gives it, so that scenes only a
few backends can take are not left to the end while those backends did work any backend
could have done.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping

_EPS = 1e-9
_PRECISION = 2e-3
"""Relative precision of the horizon (shares are a preference: whole scenes matter, not
decimals)."""
_SLACK = 1.004
"""The plan is read at a horizon this much above the optimum (where a flow exists)."""


def plan_shares(
    counts: Mapping[str, int], capable: Mapping[str, list[str]], rates: Mapping[str, float]
) -> dict[str, dict[str, float]]:
    """Scenes of each class per backend, in a soonest-finishing fluid plan (``{}`` when
    nothing waits or no backend can take anything)."""
    total = sum(counts.values())
    if total <= 0 or not any(rates.get(b, 0) > 0 for c in capable.values() for b in c):
        return {}
    positive = [r for r in rates.values() if r > 0]
    low, high = total / sum(positive), total / min(positive)  # every backend; the slowest alone
    if _flow(counts, capable, rates, high)[0] < total - 1e-6:
        high *= 1e6  # some class no backend with a rate can take: plan what can be planned
    while high - low > high * _PRECISION:
        middle = (low + high) / 2
        if _flow(counts, capable, rates, middle)[0] >= total - 1e-6:
            high = middle
        else:
            low = middle
    return _flow(counts, capable, rates, high * _SLACK)[1]


def _flow(
    counts: Mapping[str, int],
    capable: Mapping[str, list[str]],
    rates: Mapping[str, float],
    horizon: float,
) -> tuple[float, dict[str, dict[str, float]]]:
    graph: dict[str, dict[str, float]] = {"s": {}, "t": {}}
    for k, count in counts.items():
        if count <= 0:
            continue
        graph["s"][f"k{k}"] = float(count)
        graph[f"k{k}"] = {f"b{b}": float("inf") for b in capable.get(k, []) if rates.get(b, 0)}
    for b, rate in rates.items():
        graph.setdefault(f"b{b}", {})["t"] = rate * horizon
    total, residual = _max_flow(graph)
    shares: dict[str, dict[str, float]] = {}
    for k in counts:
        for b in capable.get(k, []):
            used = residual.get(f"b{b}", {}).get(f"k{k}", 0.0)  # the reverse edge's room
            if used > _EPS:
                shares.setdefault(k, {})[b] = used
    return total, shares


def _max_flow(graph: dict[str, dict[str, float]]) -> tuple[float, dict[str, dict[str, float]]]:
    """Edmonds-Karp from ``s`` to ``t``; returns the flow and the residual graph."""
    residual = {u: dict(edges) for u, edges in graph.items()}
    for u, edges in graph.items():
        for v in edges:
            residual.setdefault(v, {}).setdefault(u, 0.0)
    total = 0.0
    while (path := _path(residual)) is not None:
        push = min(residual[u][v] for u, v in path)
        for u, v in path:
            residual[u][v] -= push
            residual[v][u] += push
        total += push
    return total, residual


def _path(residual: dict[str, dict[str, float]]) -> list[tuple[str, str]] | None:
    parent: dict[str, str] = {}
    queue = deque(["s"])
    while queue:
        u = queue.popleft()
        for v, room in residual[u].items():
            if room > _EPS and v not in parent and v != "s":
                parent[v] = u
                if v == "t":
                    path, node = [], "t"
                    while node != "s":
                        path.append((parent[node], node))
                        node = parent[node]
                    return path[::-1]
                queue.append(v)
    return None


def cheapest_fit(
    counts: Mapping[str, int],
    capable: Mapping[str, list[str]],
    room: Mapping[str, float],
    cost: Mapping[str, Mapping[str, float]],
) -> tuple[dict[str, dict[str, float]], bool]:
    """Scenes of each class per backend in the cheapest fluid plan of the most waiting
    scenes that fit, and whether that is all of them (when not, a deadline that cannot be
    met): backend ``b`` can still take ``room[b]`` scenes in time, a scene of class ``k``
    costs ``cost[k][b]`` there.

    A min-cost flow ``source -> class (counts) -> backend (cost) -> sink (room)``, by
    successive shortest paths (Bellman-Ford: the graph has a few dozen edges)."""
    cap, price = _cost_network(counts, capable, room, cost)
    nodes = ["s", "t", *(f"k{k}" for k in counts), *(f"b{b}" for b in room)]
    total = sum(c for c in counts.values() if c > 0)
    sent = 0.0
    while sent < total - 1e-6:
        path = _cheapest_path(nodes, cap, price)
        if path is None:
            break
        push = min(cap[e] for e in path)
        for u, v in path:
            cap[(u, v)] -= push
            cap[(v, u)] += push
        sent += push
    shares: dict[str, dict[str, float]] = {}
    for k in counts:
        for b in capable.get(k, []):
            used = cap.get((f"b{b}", f"k{k}"), 0.0)  # the reverse edge's room: what was sent
            if used > _EPS:
                shares.setdefault(k, {})[b] = used
    return shares, sent >= total - 1e-6


Network = dict[tuple[str, str], float]


def _cost_network(
    counts: Mapping[str, int],
    capable: Mapping[str, list[str]],
    room: Mapping[str, float],
    cost: Mapping[str, Mapping[str, float]],
) -> tuple[Network, Network]:
    """Capacities and unit costs of every edge and its reverse."""
    cap: Network = {}
    price: Network = {}

    def edge(u: str, v: str, amount: float, unit: float) -> None:
        cap[(u, v)], price[(u, v)] = amount, unit
        cap.setdefault((v, u), 0.0)
        price[(v, u)] = -unit

    for k, count in counts.items():
        if count <= 0:
            continue
        edge("s", f"k{k}", float(count), 0.0)
        for b in capable.get(k, []):
            if room.get(b, 0.0) > _EPS:
                edge(f"k{k}", f"b{b}", float("inf"), cost[k][b])
    for b, amount in room.items():
        if amount > _EPS:
            edge(f"b{b}", "t", amount, 0.0)
    return cap, price


def _cheapest_path(nodes: list[str], cap: Network, price: Network) -> list[tuple[str, str]] | None:
    dist = dict.fromkeys(nodes, float("inf"))
    parent: dict[str, str] = {}
    dist["s"] = 0.0
    for _ in range(len(nodes)):
        changed = False
        for (u, v), room in cap.items():
            if room > _EPS and dist[u] + price[(u, v)] < dist[v] - 1e-12:
                dist[v] = dist[u] + price[(u, v)]
                parent[v] = u
                changed = True
        if not changed:
            break
    if dist["t"] == float("inf"):
        return None
    path, node = [], "t"
    while node != "s":
        path.append((parent[node], node))
        node = parent[node]
    return path[::-1]
