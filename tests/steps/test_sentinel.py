"""The store on a real Sentinel deployment (a master, a replica, three sentinels): the URL's
master is found, checked, and followed through a failover by a command already in flight."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from tests.redis_ha import SentinelDeployment
from videogen.embedded import free_port
from videogen.errors import StoreUnavailableError
from videogen.redis_conn import check_reachable
from videogen.store import Store

PASSWORD = "sentinel-test-pw"


@pytest.fixture
def deployment(tmp_path) -> Iterator[SentinelDeployment]:
    ha = SentinelDeployment(tmp_path, password=PASSWORD)
    try:
        yield ha.start()
    finally:
        ha.stop()


def test_the_url_reaches_the_master_and_bad_ones_fail_fast_without_the_password(deployment):
    url = deployment.url()
    check_reachable(url)
    store = Store.from_url(url)
    store.update("s1", retries=1)
    assert deployment.master.client().hget("vg:scene:s1", "retries") == "1"  # the master's
    assert store.replication.replicas() == 1
    sentinels = url.rsplit("/", 2)[0]
    for bad, says in [
        (f"{sentinels}/nosuchmaster/0", "No master found for 'nosuchmaster'"),
        (url.replace(PASSWORD, "wrong"), "invalid"),  # the master refuses the password
        (f"redis+sentinel://:{PASSWORD}@127.0.0.1:{free_port()}/videogen", "No master found"),
    ]:
        started = time.monotonic()
        with pytest.raises(StoreUnavailableError) as caught:
            check_reachable(bad, timeout=1)
        assert time.monotonic() - started < 5
        assert says in str(caught.value) and PASSWORD not in str(caught.value)


def test_a_command_in_flight_when_the_master_dies_runs_on_the_promoted_replica(deployment):
    """A blocking pop is in flight on the master when it is killed: the store retries it, and
    must ask the sentinels where the master is now rather than retry the dead address until
    its retries run out (redis-py alone does the latter: redis/redis-py#3874)."""
    store = Store.from_url(deployment.url())
    popped: list[object] = []
    waiter = threading.Thread(target=lambda: popped.append(store.r.blpop("vg:test", 60)))
    waiter.start()
    deadline = time.monotonic() + 5
    master = deployment.master.client()
    while master.info("clients")["blocked_clients"] < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    old = deployment.kill_master()
    deployment.wait_failover(old)
    assert deployment.replica is not None
    new_master = deployment.replica.client()
    started = time.monotonic()
    while not new_master.info("clients")["blocked_clients"] and time.monotonic() - started < 15:
        time.sleep(0.05)  # the retried pop arrives once the store has found the new master
    new_master.rpush("vg:test", "after the failover")
    waiter.join(20)
    assert popped == [("vg:test", "after the failover")]
