"""The benchmark's bounds (bench/ideal.py): the cheapest assignment within a deadline, checked
against answers worked out by hand, and against the ideal makespan it must agree with."""

from __future__ import annotations

import pytest

from bench.ideal import cheapest_assignment, ideal_makespan, min_cost_flow


def cheapest_within(*args):
    """The bound's cost (``None``: the deadline cannot be met)."""
    plan = cheapest_assignment(*args)
    return None if plan is None else plan.cost


ONE = {"x": ["a", "b"]}
"""One kind of scene, two backends that can both take it."""


@pytest.mark.parametrize(
    ("deadline", "slots", "seconds", "count", "expected"),
    [
        # a: 1 slot x 1 s, $1 a scene; b: 1 slot x 1 s, $3. 10 scenes.
        (10, {"a": 1, "b": 1}, {"a": 1, "b": 1}, 10, 10.0),  # all fit on a
        (20, {"a": 1, "b": 1}, {"a": 1, "b": 1}, 10, 10.0),  # slack changes nothing
        (6, {"a": 1, "b": 1}, {"a": 1, "b": 1}, 10, 6 * 1 + 4 * 3),  # a full, 4 spill to b
        (5, {"a": 1, "b": 1}, {"a": 1, "b": 1}, 10, 5 * 1 + 5 * 3),  # both full
        (4.9, {"a": 1, "b": 1}, {"a": 1, "b": 1}, 10, None),  # 9.8 scenes' room for 10
        # a: 2 slots x 3 s in 6 s = 4 scenes; b: 1 slot x 0.5 s in 6 s = 12.
        (6, {"a": 2, "b": 1}, {"a": 3, "b": 0.5}, 10, 4 * 1 + 6 * 3),
        # fractional: a: 1 slot x 2 s in 5 s = 2.5 scenes, the other 1.5 on b.
        (5, {"a": 1, "b": 1}, {"a": 2, "b": 1}, 4, 2.5 * 1 + 1.5 * 3),
        (0, {"a": 1, "b": 1}, {"a": 1, "b": 1}, 1, None),
        (0, {"a": 1, "b": 1}, {"a": 1, "b": 1}, 0, 0.0),
    ],
)
def test_one_kind_fills_the_cheap_backend_first(deadline, slots, seconds, count, expected):
    costs = {"x": {"a": 1.0, "b": 3.0}}
    got = cheapest_within(deadline, {"x": count}, ONE, slots, seconds, costs)
    assert got == (None if expected is None else pytest.approx(expected))


def test_a_kind_only_one_backend_takes_keeps_it_whatever_the_others_save():
    """Greedy per kind would put x on a (cheaper for x) and leave y nowhere to go: the bound
    must move x to b (through the reverse arc a -> x, cost -1) to give y its only backend."""
    capable = {"x": ["a", "b"], "y": ["a"]}
    costs = {"x": {"a": 1.0, "b": 2.0}, "y": {"a": 10.0}}
    plan = cheapest_assignment(
        5, {"x": 5, "y": 5}, capable, {"a": 1, "b": 1}, {"a": 1, "b": 1}, costs
    )
    assert plan is not None
    assert plan.cost == pytest.approx(5 * 10 + 5 * 2)
    assert plan.scenes == {
        "x": {"a": pytest.approx(0), "b": pytest.approx(5)},
        "y": {"a": pytest.approx(5)},
    }


def test_prices_may_differ_by_kind_on_one_backend():
    """b is dear for x and cheap for y (say, y's clips are shorter there): each kind goes where
    it is cheapest for it when there is room."""
    capable = {"x": ["a", "b"], "y": ["a", "b"]}
    costs = {"x": {"a": 1.0, "b": 4.0}, "y": {"a": 3.0, "b": 2.0}}
    plan = cheapest_assignment(
        3, {"x": 3, "y": 3}, capable, {"a": 1, "b": 1}, {"a": 1, "b": 1}, costs
    )
    assert plan is not None
    assert plan.cost == pytest.approx(3 * 1 + 3 * 2)
    assert plan.scenes["x"]["a"] == pytest.approx(3)
    assert plan.scenes["y"]["b"] == pytest.approx(3)


CAPABLE = {"text": ["runway", "pika", "luma"], "url": ["svd", "runway", "pika", "luma"]}
COUNTS = {"text": 100, "url": 60}
SLOTS = {"svd": 2, "runway": 3, "pika": 2, "luma": 2}
SECONDS = {"svd": 1.0, "runway": 1.0, "pika": 3.0, "luma": 1.0}
COSTS = {
    "text": {"runway": 0.5, "pika": 0.2, "luma": 0.35},
    "url": {"svd": 0.1, "runway": 0.5, "pika": 0.2, "luma": 0.35},
}


def test_the_deadline_is_met_exactly_from_the_ideal_makespan_on():
    ideal = ideal_makespan(COUNTS, CAPABLE, SLOTS, SECONDS)
    assert cheapest_within(ideal * 1.001, COUNTS, CAPABLE, SLOTS, SECONDS, COSTS) is not None
    assert cheapest_within(ideal * 0.99, COUNTS, CAPABLE, SLOTS, SECONDS, COSTS) is None


def test_cost_falls_as_the_deadline_grows_down_to_every_scene_on_its_cheapest_backend():
    ideal = ideal_makespan(COUNTS, CAPABLE, SLOTS, SECONDS)
    found = [
        cheapest_within(ideal * f, COUNTS, CAPABLE, SLOTS, SECONDS, COSTS)
        for f in (1.001, 1.5, 3, 100)
    ]
    costs = [c for c in found if c is not None]
    assert len(costs) == len(found)
    assert costs == sorted(costs, reverse=True)
    assert costs[-1] == pytest.approx(100 * 0.2 + 60 * 0.1)


def test_every_scene_is_assigned_and_no_backend_overruns_the_deadline():
    deadline = 1.5 * ideal_makespan(COUNTS, CAPABLE, SLOTS, SECONDS)
    plan = cheapest_assignment(deadline, COUNTS, CAPABLE, SLOTS, SECONDS, COSTS)
    assert plan is not None
    for kind, count in COUNTS.items():
        assert sum(plan.scenes[kind].values()) == pytest.approx(count)
    for backend in SLOTS:
        load = sum(plan.scenes[k].get(backend, 0.0) for k in COUNTS) * SECONDS[backend]
        assert load <= SLOTS[backend] * deadline + 1e-6
    spent = sum(n * COSTS[k][b] for k, by in plan.scenes.items() for b, n in by.items())
    assert plan.cost == pytest.approx(spent)


def test_min_cost_flow_takes_the_cheaper_of_two_parallel_routes_first():
    capacity = {"s": {"u": 2.0, "v": 2.0}, "u": {"t": 2.0}, "v": {"t": 1.0}}
    cost = {"s": {"u": 5.0, "v": 1.0}, "u": {"t": 0.0}, "v": {"t": 0.0}}
    flow, spent, flows = min_cost_flow(capacity, cost, "s", "t")
    assert flow == pytest.approx(3.0)
    assert spent == pytest.approx(1 * 1 + 2 * 5)
    assert flows["s"] == {"u": pytest.approx(2.0), "v": pytest.approx(1.0)}
