"""Writes a failover must not lose (the vendor job id, the marker of a create request about to
leave) wait for a replica's acknowledgement, where the master has a replica, and never for
long. Real Redis servers: a master with a replica, and the steps' lone one."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

import pytest
import redis

from tests.redis_ha import RedisNode, replica_of
from videogen.loading import build_settings
from videogen.models import SceneState, VendorJob
from videogen.pipeline import Pipeline
from videogen.replication import REPLICA_RECHECK_SECONDS, Replication
from videogen.states import Event
from videogen.store import Store

from .conftest import INSTANT, Clock, Recording, Steps, step_config

JOB = VendorJob(backend="runway", job_id="job-1")


@pytest.fixture
def pair(tmp_path) -> Iterator[tuple[RedisNode, RedisNode]]:
    master = RedisNode(tmp_path / "master").start()
    try:
        replica = replica_of(master, tmp_path / "replica")
    except BaseException:
        master.kill()
        raise
    try:
        yield master, replica
    finally:
        replica.resume()  # were it paused, a kill would wait for ever
        replica.kill()
        master.kill()


def waits(url: str) -> int:
    """WAIT commands the server at ``url`` has run."""
    client = redis.Redis.from_url(url)
    try:
        return int(client.info("commandstats").get("cmdstat_wait", {}).get("calls", 0))
    finally:
        client.close()


def test_the_generate_step_waits_for_a_replica_on_its_two_durable_writes(
    pair, step_sandboxes, tmp_path
):
    master, replica = pair
    for server in step_sandboxes.values():
        server.state.reset()
        server.state.set_knobs(**INSTANT)
    clock = Clock()
    store = Store.from_url(master.url, clock=clock)
    settings = build_settings(step_config(step_sandboxes, tmp_path / "output"), env={})
    steps = Steps(Pipeline(settings, store, Recording(), clock=clock), Recording(), clock, {})
    (scene_id,) = steps.submit({"prompt": "a lighthouse at dawn", "duration": 5})
    store.update(scene_id, tried=[])  # not durable: no WAIT
    assert store.apply(scene_id, Event.ROUTE, backend="runway", tried=["runway"])
    store.mark_queued("runway", scene_id)
    before = waits(master.url)
    steps.pipeline.generate("runway", scene_id)
    try:
        assert steps.record(scene_id).state is SceneState.SUCCEEDED
        assert waits(master.url) - before == 2  # after ``submitting``, after ``vendor_job``
        assert len(step_sandboxes["runway"].state.records()["jobs"]) == 1
    finally:
        steps.pipeline.close()
        store.r.close()


def test_a_durable_write_is_on_the_replica_when_update_returns(pair):
    master, replica = pair
    store = Store.from_url(master.url)
    on_replica = replica.client()
    before = waits(master.url)
    store.update("s1", vendor_job=JOB)
    assert on_replica.hget("vg:scene:s1", "vendor_job")  # read at once: WAIT saw it there
    store.update("s1", retries=1)
    store.update("s1", vendor_job=None)  # unsetting it needs no replica
    assert waits(master.url) - before == 1
    on_replica.close()


def test_a_lone_redis_is_never_waited_on(step_redis):
    store = Store.from_url(step_redis.url)
    before = waits(step_redis.url)
    started = time.monotonic()
    store.update("lone", vendor_job=JOB, submitting="runway")
    assert time.monotonic() - started < 0.5
    assert waits(step_redis.url) == before
    assert store.replication.replicas() == 0
    store.r.delete("vg:scene:lone")


def test_a_silent_replica_holds_a_write_up_briefly_and_is_logged(pair, caplog):
    master, replica = pair
    store = Store.from_url(master.url, replica_wait=0.3)
    assert store.replication.replicas() == 1
    replica.pause()  # still connected, never acknowledging
    caplog.set_level(logging.WARNING, logger="videogen")
    started = time.monotonic()
    store.update("s2", submitting="runway")
    took = time.monotonic() - started
    replica.resume()
    assert 0.3 <= took < 2.0  # waited for the replica, then went on
    assert store.r.hget("vg:scene:s2", "submitting") == "runway"  # the write stands
    (warning,) = [r for r in caplog.records if "no Redis replica acknowledged" in r.message]
    assert "scene s2's submitting within 0.3 s" in warning.getMessage()


def test_the_replica_count_is_asked_again_after_a_while(pair):
    master, replica = pair
    now = [0.0]
    replication = Replication(Store.from_url(master.url).r, clock=lambda: now[0])
    assert replication.replicas() == 1
    replica.client().replicaof("NO", "ONE")
    client = master.client()
    deadline = time.monotonic() + 10
    while client.info("replication")["connected_slaves"] and time.monotonic() < deadline:
        time.sleep(0.02)
    assert replication.replicas() == 1  # trusted for a while: one INFO per period
    now[0] += REPLICA_RECHECK_SECONDS
    assert replication.replicas() == 0  # a master alone: durable writes no longer wait
    client.close()
