"""What the store guarantees on the real Redis: the state machine's table applied atomically,
an exact slot cap under concurrent starts, and a beat lock only its owner renews or drops."""

from __future__ import annotations

import threading

import pytest

from videogen import redis_keys as keys
from videogen.classes import ScClass
from videogen.models import Scene, SceneState
from videogen.states import TABLE, Event, next_state

RUNWAY = ScClass(("runway",), 5.0)


@pytest.mark.parametrize("state", list(SceneState))
@pytest.mark.parametrize("event", list(Event))
def test_the_lua_script_applies_exactly_the_table(steps, state, event):
    (scene_id,), _ = steps.store.create_job("job", [Scene(prompt="x")], [RUNWAY])
    steps.store.r.hset(keys.scene(scene_id), "state", state.value)
    if state.terminal:
        steps.store.r.srem(keys.LIVE, scene_id)  # as the move that ended it would have
    moved = steps.store.apply(scene_id, event, error="why")
    expected = next_state(state, event)
    assert moved == expected
    record = steps.record(scene_id)
    assert record.state is (expected or state)
    assert record.error == ("why" if expected else None)  # a refused move writes nothing
    live = steps.store.r.sismember(keys.LIVE, scene_id)
    assert live == (not (expected or state).terminal)


def test_a_guarded_move_needs_the_backend_and_the_lease_holder(steps):
    (scene_id,), _ = steps.store.create_job("job", [Scene(prompt="x")], [RUNWAY])
    steps.store.apply(scene_id, Event.ROUTE, backend="runway")
    assert steps.store.start("runway", scene_id, "holder", 30, 3)[0] == "started"
    assert steps.store.apply(scene_id, Event.FAIL, on="luma") is None
    assert steps.store.apply(scene_id, Event.FAIL, on="runway", token="intruder") is None
    assert steps.store.loads(["runway"])["runway"] == (1, 0)
    assert steps.store.apply(scene_id, Event.FAIL, on="runway", token="holder") is (
        SceneState.FAILED
    )
    assert steps.store.loads(["runway"])["runway"] == (0, 0)  # the slot came back with it
    assert steps.record(scene_id).lease is None


def test_concurrent_starts_never_exceed_the_cap(steps):
    ids, _ = steps.store.create_job(
        "job", [Scene(prompt=f"shot {i}") for i in range(12)], [RUNWAY] * 12
    )
    for scene_id in ids:
        steps.store.apply(scene_id, Event.ROUTE, backend="pika")
    outcomes: list[str] = []
    barrier = threading.Barrier(len(ids))

    def start(scene_id: str) -> None:
        barrier.wait()
        outcomes.append(steps.store.start("pika", scene_id, f"t-{scene_id}", 30, 2)[0])

    threads = [threading.Thread(target=start, args=(i,)) for i in ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["full"] * 10 + ["started"] * 2
    assert steps.store.loads(["pika"])["pika"][0] == 2


def test_the_only_way_out_of_a_terminal_state_is_a_persons_retry():
    out = {key for key in TABLE if key[0].terminal}
    assert out == {(SceneState.FAILED, Event.RESUBMIT), (SceneState.CANCELLED, Event.RESUBMIT)}


def test_a_retried_scene_is_live_again_and_waits_in_its_class(steps):
    (scene_id,) = steps.submit({"prompt": "again"})
    assert steps.store.apply(scene_id, Event.FAIL, error="broke")
    assert not steps.store.r.sismember(keys.LIVE, scene_id)
    record = steps.record(scene_id)
    cls = ScClass.parse(record.queue or "")
    assert steps.store.apply(scene_id, Event.RESUBMIT, backlog=(cls, 1.0)) is SceneState.PENDING
    assert steps.store.r.sismember(keys.LIVE, scene_id)
    assert steps.store.in_backlog([(cls.name, scene_id)]) == [True]


def test_the_beat_lock_is_renewed_and_dropped_only_by_its_owner(steps):
    store = steps.store
    assert store.hold_lock("beat", "a", ttl=30)
    assert not store.hold_lock("beat", "b", ttl=30)
    assert not store.drop_lock("beat", "b")  # never another owner's
    store.r.pexpire(keys.lock("beat"), 1000)
    assert store.hold_lock("beat", "a", ttl=30)  # renewed by its owner
    assert store.r.pttl(keys.lock("beat")) > 20_000
    assert store.drop_lock("beat", "a")
    assert store.hold_lock("beat", "b", ttl=30)
    assert not store.hold_lock("beat", "a", ttl=30)  # an old owner cannot renew b's lock
    assert store.r.get(keys.lock("beat")) == "b"
