"""The sweep, one call at a time: lost workers, lost routers, lost messages."""

from __future__ import annotations

from videogen import redis_keys as keys
from videogen.models import SceneState
from videogen.states import Event

from .conftest import wait_until

SCENE = {"prompt": "a lighthouse at dawn", "duration": 5}


def test_a_scene_whose_worker_died_is_resumed_once_its_lease_expires(steps):
    (scene_id,) = steps.submit(SCENE)
    steps.sent.take()
    steps.pipeline.route(scene_id)
    [(_, backend, _, _)] = steps.sent.take()
    assert steps.store.start(backend, scene_id, "dead-worker", 0.05, 3)[0] == "started"
    assert steps.pipeline.sweep()["resumed"] == 0  # its lease is still live
    wait_until(lambda: steps.store.loads([backend])[backend][0] == 0)  # server time passes
    assert steps.pipeline.sweep()["resumed"] == 1
    assert steps.sent.take() == [("generate", backend, scene_id, 0.0)]
    steps.pipeline.generate(backend, scene_id)
    assert steps.record(scene_id).state is SceneState.SUCCEEDED


def test_a_scene_whose_router_died_mid_route_is_routed_again(make_steps):
    steps = make_steps(lambda vg: vg.update(route_claim_timeout=30))
    (scene_id,) = steps.submit(SCENE)
    steps.sent.take()
    steps.store.update(scene_id, claimed_at=steps.clock.now)  # a router took it, then died
    steps.clock.advance(30)
    assert steps.pipeline.sweep()["rerouted"] == 0  # not stale yet
    steps.clock.advance(1)
    assert steps.pipeline.sweep() == {"resumed": 0, "rerouted": 1, "redispatched": 0}
    assert steps.sent.take() == [("route", scene_id, 0.0)]
    assert steps.record(scene_id).claimed_at == steps.clock.now  # not sent again at once
    assert steps.pipeline.sweep()["rerouted"] == 0


def test_an_unclaimed_pending_scene_is_left_to_a_busy_router(make_steps):
    steps = make_steps(lambda vg: vg.update(route_claim_timeout=30))
    (scene_id,) = steps.submit(SCENE)
    steps.sent.take()
    steps.clock.advance(31)
    steps.store.r.rpush("router", "another message")  # its message may still be queued
    assert steps.pipeline.sweep()["rerouted"] == 0
    steps.store.r.delete("router")  # the router is idle: the message is lost
    assert steps.pipeline.sweep()["rerouted"] == 1


def test_a_routed_scene_whose_message_was_lost_is_sent_again(make_steps):
    steps = make_steps(lambda vg: vg.update(route_claim_timeout=30))
    (scene_id,) = steps.submit(SCENE)
    steps.sent.take()
    backend = steps.pipeline.route(scene_id)
    steps.sent.take()  # lost with a Redis restart
    steps.clock.advance(31)
    assert steps.pipeline.sweep()["redispatched"] == 1
    assert steps.sent.sent == [("generate", backend, scene_id, 0.0)]
    steps.run_all()
    assert steps.record(scene_id).state is SceneState.SUCCEEDED


def test_finished_scenes_are_never_swept(steps):
    (scene_id,) = steps.submit(SCENE)
    steps.run_all()
    assert steps.record(scene_id).state is SceneState.SUCCEEDED
    steps.clock.advance(10_000)
    assert steps.pipeline.sweep() == {"resumed": 0, "rerouted": 0, "redispatched": 0}
    assert steps.store.apply(scene_id, Event.FAIL, error="late") is None  # terminal stays


def _running(make_steps, token: str, ttl: float):
    """A scene a worker (``token``) started on its backend, with a 30-s route_claim_timeout."""
    steps = make_steps(lambda vg: vg.update(route_claim_timeout=30))
    (scene_id,) = steps.submit(SCENE)
    steps.sent.take()
    backend = steps.pipeline.route(scene_id)
    steps.sent.take()
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
    assert steps.sent.sent == [("generate", backend, scene_id, 0.0)]
    assert steps.pipeline.sweep()["redispatched"] == 0  # touched: not sent again at once
    steps.run_all()
    assert steps.record(scene_id).state is SceneState.SUCCEEDED


def test_a_running_scene_with_a_live_slot_is_left_alone(make_steps):
    steps, _, _ = _running(make_steps, "busy-worker", 600)
    steps.clock.advance(3600)  # a long vendor job: its record is old, its lease is renewed
    assert steps.pipeline.sweep() == {"resumed": 0, "rerouted": 0, "redispatched": 0}
    assert steps.sent.sent == []
