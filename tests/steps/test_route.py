"""The routing steps, one call at a time: submit, route, wait, give up, fail."""

from __future__ import annotations

import pytest

from videogen.errors import CapabilityError, SceneValidationError
from videogen.models import SceneState
from videogen.policy import Circuit, CircuitState
from videogen.router import ROUTE_RETRY

from .conftest import BACKENDS

SCENE = {"prompt": "a lighthouse at dawn", "duration": 5}


def test_submit_stores_pending_scenes_and_sends_one_route_each(steps):
    ids = steps.submit(SCENE, {**SCENE, "prompt": "the keeper climbs"})
    assert steps.sent.take() == [("route", ids[0], 0.0), ("route", ids[1], 0.0)]
    records = [steps.record(i) for i in ids]
    assert [r.state for r in records] == [SceneState.PENDING] * 2
    assert [r.index for r in records] == [0, 1]
    assert records[0].created_at == steps.clock.now
    assert records[0].backend is None and records[0].tried == ()  # unset is None / empty


def test_submit_refuses_a_scene_no_backend_can_take_before_storing_anything(make_steps):
    def only_svd(vg):
        for name in ("runway", "pika", "luma"):
            vg["backends"][name]["enabled"] = False

    steps = make_steps(only_svd)
    with pytest.raises((CapabilityError, SceneValidationError), match="svd"):
        steps.submit({"prompt": "too long for svd", "duration": 30})
    assert steps.sent.sent == [] and steps.store.recent_jobs() == []


def test_route_picks_a_backend_and_sends_its_generate(steps):
    (scene_id,) = steps.submit(SCENE)
    steps.sent.take()
    chosen = steps.pipeline.route(scene_id)
    record = steps.record(scene_id)
    assert chosen == record.backend and record.state is SceneState.ROUTED
    assert (
        record.tried == (chosen,) and record.route_reason and "least_loaded" in record.route_reason
    )
    assert record.claimed_at == steps.clock.now
    assert steps.sent.take() == [("generate", chosen, scene_id, 0.0)]
    assert steps.store.loads([chosen])[chosen] == (0, 1)  # queued there, not yet started


def test_a_duplicate_route_message_does_nothing(steps):
    (scene_id,) = steps.submit(SCENE)
    steps.sent.take()
    first = steps.pipeline.route(scene_id)
    assert steps.pipeline.route(scene_id) is None
    assert steps.sent.take() == [("generate", first, scene_id, 0.0)]


def test_priority_strategy_takes_the_first_backend_with_room(make_steps):
    def priority(vg):
        vg["load_balancing"] = False

    steps = make_steps(priority)
    ids = steps.submit(*[{**SCENE, "prompt": f"shot {i}"} for i in range(4)])
    chosen = [steps.pipeline.route(i) for i in ids]
    # svd only animates images; runway has 3 slots, then the next priority takes the rest
    assert chosen == ["runway", "runway", "runway", "pika"]
    assert "skipped svd (text-only scenes are not supported" in str(steps.record(ids[0]))


def test_round_robin_takes_turns(make_steps):
    def round_robin(vg):
        vg["strategy"] = "round_robin"

    steps = make_steps(round_robin)
    ids = steps.submit(*[{**SCENE, "prompt": f"shot {i}"} for i in range(3)])
    chosen = [steps.pipeline.route(i) for i in ids]
    assert sorted(c or "" for c in chosen) == ["luma", "pika", "runway"]  # svd: no text


def test_a_scene_every_backend_tried_fails_naming_each(steps):
    (scene_id,) = steps.submit(SCENE)
    steps.store.update(scene_id, tried=list(BACKENDS), error="luma: generation failed")
    assert steps.pipeline.route(scene_id) is None
    record = steps.record(scene_id)
    assert record.state is SceneState.FAILED and record.finished_at == steps.clock.now
    assert record.error is not None and record.error.startswith("luma: generation failed")
    assert all(f"{name}: already tried" in record.error for name in BACKENDS)
    assert steps.sent.take() == [("route", scene_id, 0.0)]  # only the submit's


def test_max_attempts_fails_the_scene_with_its_last_reason(make_steps):
    steps = make_steps(lambda vg: vg.update(max_attempts=2))
    (scene_id,) = steps.submit(SCENE)
    steps.sent.take()
    steps.store.update(scene_id, failures=2, error="runway: 503")
    assert steps.pipeline.route(scene_id) is None
    record = steps.record(scene_id)
    assert record.state is SceneState.FAILED and record.error == "runway: 503 (after 2 tries)"
    assert steps.sent.take() == []


def _open_every_circuit(steps):
    steps.pipeline.probe_all()  # fresh health first: a passing probe would close a circuit
    opened = Circuit(CircuitState.OPEN, 3, steps.clock.now)
    for name in BACKENDS:
        steps.store.set_circuit(name, opened)


def test_a_scene_waits_while_every_backend_is_down_then_gives_up_at_route_wait_limit(make_steps):
    steps = make_steps(lambda vg: vg.update(route_wait_limit=120, circuit_cooldown=1000))
    (scene_id,) = steps.submit(SCENE)
    steps.sent.take()
    _open_every_circuit(steps)

    steps.clock.advance(119)
    assert steps.pipeline.route(scene_id) is None
    record = steps.record(scene_id)
    assert record.state is SceneState.PENDING and record.claimed_at is None
    assert record.waiting is not None and "circuit open" in record.waiting
    assert steps.sent.take() == [("route", scene_id, ROUTE_RETRY)]

    steps.clock.advance(1)
    steps.pipeline.route(scene_id)
    record = steps.record(scene_id)
    assert record.state is SceneState.FAILED
    assert record.error is not None and "gave up after waiting 120 s" in record.error
    assert steps.sent.take() == []


def test_a_waiting_scene_is_routed_once_a_circuit_closes(make_steps):
    steps = make_steps(lambda vg: vg.update(circuit_cooldown=30))
    (scene_id,) = steps.submit(SCENE)
    steps.sent.take()
    _open_every_circuit(steps)
    steps.pipeline.route(scene_id)
    assert steps.record(scene_id).state is SceneState.PENDING
    steps.clock.advance(30)  # the cooldown passed: trials go through
    assert steps.pipeline.route(scene_id) is not None
    assert steps.record(scene_id).waiting is None


def test_a_route_for_an_unknown_scene_does_nothing(steps):
    assert steps.pipeline.route("nope-000") is None
    assert steps.sent.sent == []
