"""The sweep, one call at a time: lost workers, lost messages, lost backlog entries."""

from __future__ import annotations

from videogen import redis_keys as keys
from videogen.models import SceneState
from videogen.states import Event

from .conftest import wait_until

SCENE = {"prompt": "a lighthouse at dawn", "duration": 5}
QUIET = {"resumed": 0, "requeued": 0, "redispatched": 0, "unreserved": 0, "stranded": 0}


def _bound(steps):
    """A submitted scene, bound by a dispatch step (its generate message taken, not run)."""
    (scene_id,) = steps.submit(SCENE)
    [(_, backend)] = [(s, b) for s, b in steps.pipeline.dispatch_waiting() if s == scene_id]
    steps.sent.take()
    return scene_id, backend


def generates(sent):
    return [m for m in sent if m[0] == "generate"]


def test_a_scene_whose_worker_died_is_resumed_once_its_lease_expires(steps):
    scene_id, backend = _bound(steps)
    assert steps.store.start(backend, scene_id, "dead-worker", 0.05, 3)[0] == "started"
    assert steps.pipeline.sweep()["resumed"] == 0  # its lease is still live
    wait_until(lambda: steps.store.loads([backend])[backend][0] == 0)  # server time passes
    assert steps.pipeline.sweep()["resumed"] == 1
    assert generates(steps.sent.take()) == [("generate", backend, scene_id, 0.0)]
    assert steps.store.loads([backend])[backend] == (0, 1)  # its slot stays reserved for it
    steps.pipeline.generate(backend, scene_id)
    assert steps.record(scene_id).state is SceneState.SUCCEEDED


def test_a_routed_scene_whose_message_was_lost_is_sent_again(make_steps):
    steps = make_steps(lambda vg: vg.update(route_claim_timeout=30))
    scene_id, backend = _bound(steps)  # its message lost with a Redis restart
    steps.clock.advance(31)
    assert steps.pipeline.sweep()["redispatched"] == 1
    assert generates(steps.sent.sent) == [("generate", backend, scene_id, 0.0)]
    steps.run_all()
    assert steps.record(scene_id).state is SceneState.SUCCEEDED


def test_a_routed_scene_whose_message_is_still_queued_is_left_alone(make_steps):
    steps = make_steps(lambda vg: vg.update(route_claim_timeout=30))
    scene_id, backend = _bound(steps)
    steps.store.r.rpush(f"backend.{backend}", "its message")
    steps.clock.advance(31)
    assert steps.pipeline.sweep()["redispatched"] == 0


def test_finished_scenes_are_never_swept(steps):
    (scene_id,) = steps.submit(SCENE)
    steps.run_all()
    assert steps.record(scene_id).state is SceneState.SUCCEEDED
    steps.clock.advance(10_000)
    assert steps.pipeline.sweep() == QUIET
    assert steps.store.apply(scene_id, Event.FAIL, error="late") is None  # terminal stays


def test_the_sweep_asks_for_a_dispatch_step_so_a_lost_one_is_made_good(steps):
    steps.submit(SCENE)
    steps.sent.take()  # the submit's dispatch message, lost
    steps.store.dispatch_started()  # its flag expired
    steps.pipeline.sweep()
    assert steps.sent.take() == [("dispatch",)]
    steps.run_all()


def _running(make_steps, token: str, ttl: float):
    """A scene a worker (``token``) started on its backend, with a 30-s route_claim_timeout."""
    steps = make_steps(lambda vg: vg.update(route_claim_timeout=30))
    scene_id, backend = _bound(steps)
    assert steps.store.start(backend, scene_id, token, ttl, 3)[0] == "started"
    return steps, scene_id, backend


def test_a_running_scene_left_without_a_slot_is_resumed(make_steps):
    """A sweeper killed between reaping a dead worker's lease and resuming its scene leaves a
    running scene that holds no slot: the next sweeps must still resume it."""
    steps, scene_id, backend = _running(make_steps, "dead-worker", 30)
    steps.store.r.zrem(keys.lease(backend), scene_id)  # reaped; the resume was never sent
    steps.clock.advance(30)
    assert steps.pipeline.sweep()["redispatched"] == 0  # not stale yet
    steps.clock.advance(1)
    assert steps.pipeline.sweep()["redispatched"] == 1
    assert generates(steps.sent.sent) == [("generate", backend, scene_id, 0.0)]
    assert steps.pipeline.sweep()["redispatched"] == 0  # touched: not sent again at once
    steps.run_all()
    assert steps.record(scene_id).state is SceneState.SUCCEEDED


def test_a_running_scene_with_a_live_slot_is_left_alone(make_steps):
    steps, _, _ = _running(make_steps, "busy-worker", 600)
    steps.clock.advance(3600)  # a long vendor job: its record is old, its lease is renewed
    assert steps.pipeline.sweep() == QUIET
    assert generates(steps.sent.sent) == []
