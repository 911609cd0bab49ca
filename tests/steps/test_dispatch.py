"""The scheduling steps, one call at a time: submit into the backlog, dispatch to free slots,
fairness between jobs, waiting for a backend that is down, binding exactly once."""

from __future__ import annotations

import threading

import pytest

from videogen import forecast
from videogen import redis_keys as keys
from videogen.classes import ScClass
from videogen.errors import CapabilityError, SceneValidationError
from videogen.models import Scene, SceneState
from videogen.policy import Circuit, CircuitState
from videogen.scheduler import Pick

from .conftest import BACKENDS

SCENE = {"prompt": "a lighthouse at dawn", "duration": 5}
TEXT = ScClass(("luma", "pika", "runway"), 5.0, "t")


def shots(n: int, prefix: str = "shot") -> list[dict[str, object]]:
    return [{**SCENE, "prompt": f"{prefix} {i}"} for i in range(n)]


def only(*names: str):
    def change(vg):
        for name in BACKENDS:
            vg["backends"][name]["enabled"] = name in names

    return change


def bound(sent) -> list[tuple[str, str]]:
    return [(args[2], args[1]) for args in sent if args[0] == "generate"]


def test_submit_puts_scenes_in_the_backlog_and_asks_for_one_dispatch(steps):
    ids = steps.submit(*shots(3))
    assert steps.sent.take() == [("dispatch",)]  # one for the whole job, not one per scene
    records = [steps.record(i) for i in ids]
    assert [r.state for r in records] == [SceneState.PENDING] * 3
    assert {r.queue for r in records} == {TEXT.name}  # svd takes no text-only scene
    ranks = [r.rank or 0 for r in records]
    assert ranks == sorted(ranks) and len(set(ranks)) == 3
    assert steps.store.backlog_members(TEXT.name, 10) == ids
    assert records[0].backend is None and records[0].tried == ()


def test_a_second_submit_coalesces_into_the_dispatch_already_asked_for(steps):
    steps.submit(SCENE)
    steps.submit(SCENE)
    assert steps.sent.take() == [("dispatch",)]
    steps.pipeline.dispatch_waiting()  # the step starts: the next event asks again
    steps.submit(SCENE)
    assert steps.sent.take()[-1] == ("dispatch",)


def test_submit_refuses_a_scene_no_backend_can_take_before_storing_anything(make_steps):
    steps = make_steps(only("svd"))
    with pytest.raises((CapabilityError, SceneValidationError), match="svd"):
        steps.submit({"prompt": "too long for svd", "duration": 30})
    assert steps.sent.sent == [] and steps.store.recent_jobs() == []
    assert steps.store.backlog_length() == 0


def test_dispatch_fills_exactly_the_free_slots_and_leaves_the_rest_waiting(steps):
    ids = steps.submit(*shots(10))
    steps.sent.take()
    pairs = steps.pipeline.dispatch_waiting()
    assert len(pairs) == 7  # runway 3 + pika 2 + luma 2
    assert bound(steps.sent.take()) == pairs
    assert [s for s, _ in pairs] == ids[:7]  # in backlog order
    per = {name: sum(b == name for _, b in pairs) for name in ("runway", "pika", "luma")}
    assert per == {"runway": 3, "pika": 2, "luma": 2}
    first = steps.record(ids[0])
    assert first.state is SceneState.ROUTED and first.tried == (first.backend,)
    assert first.route_reason and first.route_reason.startswith("earliest finish")
    assert first.queue is None
    assert steps.store.backlog_length() == 3
    assert steps.store.loads(["runway"])["runway"] == (0, 3)  # reserved, not started
    assert steps.pipeline.dispatch_waiting() == []  # no free slot: nothing moves
    assert steps.store.backlog_members(TEXT.name, 10) == ids[7:]


def test_a_finished_scene_frees_its_slot_and_the_next_waiting_scene_takes_it(make_steps):
    steps = make_steps(only("runway"))
    ids = steps.submit(*shots(4))
    steps.run_all()
    records = [steps.record(i) for i in ids]
    assert all(r.state is SceneState.SUCCEEDED for r in records)
    assert [r.backend for r in records] == ["runway"] * 4
    assert steps.store.backlog_length() == 0 and steps.store.loads(["runway"])["runway"] == (0, 0)
    times = steps.pipeline.job_times()
    assert times.learned("runway") == 4  # every finished job taught the scheduler


def test_a_slots_time_runs_from_its_binding_and_the_dispatch_lag_is_learned(make_steps):
    steps = make_steps(only("runway"))
    [scene_id] = steps.submit(SCENE)  # asks for a dispatch step, now
    assert steps.sent.take() == [("dispatch",)]
    steps.clock.advance(0.25)  # the step runs a quarter of a second after it was asked for
    [(bound, backend)] = steps.pipeline.dispatch_waiting()
    assert (bound, backend) == (scene_id, "runway")
    record = steps.record(scene_id)
    assert record.bound_at == steps.clock.now and record.started_at is None
    assert steps.pipeline.job_times().lag == pytest.approx(0.25)
    steps.clock.advance(3.0)  # sent, not started yet: the slot is held all the same
    steps.pipeline.generate("runway", scene_id)
    record = steps.record(scene_id)
    assert record.state is SceneState.SUCCEEDED and record.started_at is not None
    held = steps.pipeline.job_times().seconds("runway", 5.0)
    assert held >= 3.0  # from the binding, not from the start
    assert held == pytest.approx(record.finished_at - record.bound_at, abs=1.0)


def test_a_step_nobody_asked_for_learns_no_lag(make_steps):
    steps = make_steps(only("runway"))
    steps.submit(*shots(2))
    steps.store.dispatch_started()  # the ask is taken by another step
    steps.clock.advance(5.0)
    assert len(steps.pipeline.dispatch_waiting()) == 2
    assert steps.pipeline.job_times().lags == []


def test_priority_spills_over_only_when_the_better_backend_is_full(make_steps):
    steps = make_steps(lambda vg: vg.update(load_balancing=False))
    steps.submit(*shots(4))
    pairs = steps.pipeline.dispatch_waiting()
    assert [b for _, b in pairs] == ["runway", "runway", "runway", "pika"]


def test_round_robin_takes_turns(make_steps):
    steps = make_steps(lambda vg: vg.update(strategy="round_robin"))
    steps.submit(*shots(3))
    pairs = steps.pipeline.dispatch_waiting()
    assert sorted(b for _, b in pairs) == ["luma", "pika", "runway"]


def test_a_slow_backend_takes_no_scene_near_the_end_of_a_batch(make_steps):
    steps = make_steps(only("runway", "pika"))
    for _ in range(5):  # learned: runway 1 s, pika 10 s
        steps.store.add_job_time("runway", 5, 1.0)
        steps.store.add_job_time("pika", 5, 10.0)
    steps.submit(*shots(4))
    pairs = steps.pipeline.dispatch_waiting()
    assert [b for _, b in pairs] == ["runway"] * 3  # pika would finish last: it waits
    long = steps.submit(*shots(60, "long"))
    assert long
    more = steps.pipeline.dispatch_waiting()
    assert [b for _, b in more] == ["pika", "pika"]  # a long backlog: every backend works


def test_a_small_job_is_interleaved_with_a_big_one_and_priority_goes_first(make_steps):
    steps = make_steps(only("runway"))
    big = steps.submit(*shots(20, "big"))
    small = steps.submit(*shots(2, "small"))
    urgent_job = steps.pipeline.submit([Scene.model_validate(SCENE)], priority=5)
    (urgent,) = steps.store.job_scene_ids(urgent_job)
    order = steps.store.backlog_members(steps.record(urgent).queue or "", 6)
    assert order == [urgent, big[0], small[0], big[1], small[1], big[2]]
    assert steps.store.job(urgent_job)["priority"] == "5"
    with pytest.raises(ValueError, match="priority 500"):
        steps.pipeline.submit([Scene.model_validate(SCENE)], priority=500)


def test_a_job_submitted_later_starts_at_the_current_round(make_steps):
    steps = make_steps(only("runway"))
    big = steps.submit(*shots(10, "big"))
    steps.pipeline.dispatch_waiting()  # big 0..2 bound: the backlog is at round 2
    late = steps.submit(*shots(2, "late"))
    queue = steps.record(late[0]).queue or ""
    assert steps.store.backlog_members(queue, 4) == [late[0], big[3], late[1], big[4]]


def test_binding_is_exact_however_many_routers_dispatch_at_once(make_steps):
    steps = make_steps(only("runway", "luma"))
    ids = steps.submit(*shots(40))
    both = ScClass(("luma", "runway"), 5.0, "t")
    assert steps.record(ids[0]).queue == both.name
    picks = [Pick(b, both, "test") for b in ("runway", "luma") for _ in range(10)]
    caps = {"runway": 3, "luma": 2}
    results: list[list[tuple[str, str]]] = []

    def router() -> None:
        results.append([(s, p.backend) for s, p in steps.store.bind(picks, caps)[0]])

    threads = [threading.Thread(target=router) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    everything = [pair for result in results for pair in result]
    assert len(everything) == 5  # every router asked for 20 slots; there were 5
    assert len({s for s, _ in everything}) == 5  # no scene bound twice
    assert steps.store.loads(["runway", "luma"]) == {"runway": (0, 3), "luma": (0, 2)}
    assert steps.store.backlog_length() == 35
    assert {s for s, _ in everything} == set(ids[:5])


def test_a_stale_backlog_entry_is_dropped_not_bound(make_steps):
    steps = make_steps(only("runway"))
    first, second = steps.submit(*shots(2))
    steps.pipeline.dispatch_waiting()
    runway = ScClass(("runway",), 5.0, "t")
    steps.store.r.zadd(keys.backlog(runway.name), {first: 0})  # a duplicate entry
    steps.store.unmark_queued("runway", [first, second])
    assert steps.store.bind([Pick("runway", runway, "t")], {"runway": 3}) == ([], [])
    assert steps.store.backlog_length() == 0


def _open_every_circuit(steps):
    steps.pipeline.probe_all()  # fresh health first: a passing probe would close a circuit
    opened = Circuit(CircuitState.OPEN, 3, steps.clock.now)
    for name in BACKENDS:
        steps.store.set_circuit(name, opened)


def test_a_scene_waits_while_every_backend_is_down_then_gives_up_at_route_wait_limit(make_steps):
    steps = make_steps(lambda vg: vg.update(route_wait_limit=120, circuit_cooldown=1000))
    (scene_id,) = steps.submit(SCENE)
    _open_every_circuit(steps)
    assert steps.pipeline.dispatch_waiting() == []
    steps.clock.advance(119)
    assert steps.pipeline.sweep()["stranded"] == 0
    assert steps.record(scene_id).state is SceneState.PENDING
    steps.clock.advance(1)
    assert steps.pipeline.sweep()["stranded"] == 1
    record = steps.record(scene_id)
    assert record.state is SceneState.FAILED
    assert record.error is not None and "gave up after waiting 120 s" in record.error
    assert steps.store.backlog_length() == 0 or steps.pipeline.dispatch_waiting() == []


def test_a_waiting_scene_is_dispatched_once_a_circuit_closes(make_steps):
    steps = make_steps(lambda vg: vg.update(circuit_cooldown=30))
    (scene_id,) = steps.submit(SCENE)
    _open_every_circuit(steps)
    assert steps.pipeline.dispatch_waiting() == []
    steps.clock.advance(30)  # the cooldown passed: trials go through
    steps.sent.take()
    steps.pipeline.sweep()  # the sweep asks for a dispatch step: nothing else would
    assert ("dispatch",) in steps.sent.take()
    assert [s for s, _ in steps.pipeline.dispatch_waiting()] == [scene_id]


def test_a_scene_lost_from_the_backlog_is_put_back_by_the_sweep(steps):
    (scene_id,) = steps.submit(SCENE)
    steps.store.r.zrem(keys.backlog(TEXT.name), scene_id)  # a crash between the two writes
    steps.clock.advance(steps.pipeline.vg.route_claim_timeout + 1)
    assert steps.pipeline.sweep()["requeued"] == 1
    assert steps.store.backlog_members(TEXT.name, 5) == [scene_id]


def test_a_slot_reserved_for_a_scene_that_moved_on_is_given_back(steps):
    (scene_id,) = steps.submit(SCENE)
    steps.store.mark_queued("pika", scene_id)  # pika never got it
    assert steps.pipeline.sweep()["unreserved"] == 1
    assert steps.store.loads(["pika"])["pika"] == (0, 0)


def test_waiting_scenes_are_told_their_place_and_expected_times(make_steps):
    steps = make_steps(only("runway"))
    for _ in range(5):
        steps.store.add_job_time("runway", 5, 2.0)  # learned: 2 s a job, 3 slots
    ids = steps.submit(*shots(9))
    steps.pipeline.dispatch_waiting()  # 3 bound, 6 wait
    records = [steps.record(i) for i in ids]
    etas = forecast.etas(steps.pipeline, records)
    now = steps.clock.now
    assert [e.place for e in etas] == [None] * 3 + [1, 2, 3, 4, 5, 6]
    assert all(e.start == now and e.finish == now + 2.0 for e in etas[:3])  # bound: soon
    starts = [e.start or 0 for e in etas[3:]]
    assert starts == sorted(starts) and starts[0] >= now
    assert starts[-1] == pytest.approx(now + (5 + 1.5) / 1.5)  # 5 ahead + half of 3 busy
    assert forecast.completion(etas) == pytest.approx(starts[-1] + 2.0)
