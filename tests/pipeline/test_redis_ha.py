"""Redis high availability on the real stack: a Sentinel failover in the middle of a batch.

One master, one replica and three sentinels (``tests/redis_ha.py``); the router, two backend
workers and beat on ``redis+sentinel://``; vendor sandboxes over loopback. The master is
SIGKILLed while scenes run. The sentinels promote the replica within seconds, and every
videogen process finds it by itself: nothing is restarted. The stall (the longest gap
between scene completions, the one across the kill) goes to ``redis_ha.json`` in the test's
folder, and to ``$VIDEOGEN_FAULT_REPORT`` (JSON lines) when set.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from collections.abc import Iterator

import pytest

from tests.helpers import wait_until
from tests.redis_ha import SentinelDeployment

from .conftest import Stack, StackPool, base_config, jobs_of

PASSWORD = "ha-s3cret-pw"
"""The master's password: it is in the URL every process gets, and must be in no log."""
BACKENDS = {"runway": 3, "pika": 2}
"""The two backends on, with their caps (``max_concurrent_tasks``)."""
SCENES = 12
RUN_SECONDS = 1.0


def two_backends(config: dict) -> dict:
    vg = config["video_generation"]
    vg["route_claim_timeout"] = 4  # a step whose message died with the master is sent again
    # Longer than a failover (the workers' Redis calls wait it out): a slot that expired
    # meanwhile would be taken over while its worker still runs (as in production, where
    # lease_ttl is 60 s and a failover takes seconds).
    vg["lease_ttl"] = 10
    for name, entry in vg["backends"].items():
        entry["enabled"] = name in BACKENDS
        entry["max_concurrent_tasks"] = BACKENDS.get(name, 1)
    return config


@pytest.fixture
def deployment(tmp_path) -> Iterator[SentinelDeployment]:
    ha = SentinelDeployment(tmp_path / "redis", password=PASSWORD)
    try:
        yield ha.start()
    finally:
        ha.stop()


def finished_at(generator, job_id: str) -> list[float]:
    return sorted(r.finished_at for r in generator.records(job_id) if r.finished_at)


def longest_gap(times: list[float]) -> float | None:
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    return round(max(gaps), 2) if gaps else None


def stall_figures(done: list[float], killed_at: float, failover_s: float) -> dict:
    """How long the pipeline stood still around the kill, from the scenes' completion times:
    ``stall_s`` is the longest gap between consecutive completions from the last one before
    the kill on; ``longest_gap_before_kill_s`` is the same figure without a failover."""
    before = [t for t in done if t < killed_at]
    after = [t for t in done if t >= killed_at]
    return {
        "scenes": len(done),
        "done_before_kill": len(before),
        "failover_s": round(failover_s, 2),
        "kill_to_next_completion_s": round(after[0] - killed_at, 2) if after else None,
        "stall_s": longest_gap(before[-1:] + after),
        "longest_gap_before_kill_s": longest_gap(before),
    }


def test_master_failover_mid_batch_loses_nothing_and_pays_once(deployment, sandboxes, tmp_path):
    config = two_backends(base_config(sandboxes, tmp_path / "output"))
    stack = Stack(config, tmp_path, deployment.url(), sandboxes, StackPool())
    try:
        stack.start()
        processes = dict(stack.workers)
        for server in sandboxes.values():
            server.state.reset()
            server.state.set_knobs(run_seconds=RUN_SECONDS, queue_seconds=0.05)
        generator = stack.generator()
        job_id = generator.submit(
            [{"prompt": f"ha scene {i:03d}", "duration": 5} for i in range(SCENES)]
        )
        # Mid-batch: some scenes done, vendor jobs running.
        wait_until(lambda: len(finished_at(generator, job_id)) >= 3, 30, stack.logs)
        killed_at = time.time()
        old = deployment.kill_master()
        failover_s = deployment.wait_failover(old)
        results = generator.wait(job_id, timeout=30)
        figures = stall_figures(finished_at(generator, job_id), killed_at, failover_s)
        write_report(tmp_path, figures)

        states = Counter(r["state"] for r in results)
        assert states == {"succeeded": SCENES}, [r["error"] for r in results if r["error"]]
        assert figures["done_before_kill"] < SCENES  # the kill came mid-batch
        prompts = Counter(j["prompt"] for s in sandboxes.values() for j in jobs_of(s))
        assert set(prompts) == {f"ha scene {i:03d}" for i in range(SCENES)}
        assert max(prompts.values()) == 1, prompts.most_common(3)  # nobody paid twice
        for name, cap in BACKENDS.items():
            assert sandboxes[name].state.records()["peak_active"] <= cap, name
            assert generator.store.in_flight(name) == 0  # every slot came back
        # The same processes carried on: none died, none was restarted.
        assert stack.workers == processes
        assert all(p.poll() is None for p in processes.values()), stack.logs()
        assert deployment.master_port() != old.port
        logs = "".join(p.read_text(errors="replace") for p in tmp_path.glob("*.log"))
        assert PASSWORD not in logs
    finally:
        stack.stop()


def write_report(tmp_path, figures: dict) -> None:
    print(f"redis failover mid-batch: {figures}")
    (tmp_path / "redis_ha.json").write_text(json.dumps(figures, indent=2))
    path = os.environ.get("VIDEOGEN_FAULT_REPORT")
    if path:
        with open(path, "a") as out:
            out.write(json.dumps({"scenario": "redis_failover", **figures}) + "\n")
