"""Step tests: the pipeline's steps called directly, one at a time, on the real Redis and the
vendor sandboxes over loopback, with a dispatcher that records what each step would enqueue
and a clock the test moves. No worker process, no Celery, no sleeping."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis

from videogen.embedded import EmbeddedRedis, free_port
from videogen.loading import build_settings
from videogen.models import Scene
from videogen.pipeline import Pipeline
from videogen.record import SceneRecord
from videogen.sandbox import DEFAULT_KEYS, SandboxServer, start_sandboxes
from videogen.store import Store

REPO = Path(__file__).resolve().parents[2]
BACKENDS = ("svd", "runway", "pika", "luma")
"""The backends the config names."""
SANDBOXES = (*BACKENDS, "kling", "minimax")
"""The sandboxes step tests run on (``backend_entry`` points a backend at its own, for the
tests that configure one the sample config does not name)."""
INSTANT = {"run_seconds": 0.0, "queue_seconds": 0.0}


@pytest.fixture(scope="session")
def step_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedis]:
    server = EmbeddedRedis(tmp_path_factory.mktemp("step-redis"), port=free_port()).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def step_sandboxes() -> Iterator[dict[str, SandboxServer]]:
    servers = start_sandboxes(list(SANDBOXES))
    try:
        yield servers
    finally:
        for server in servers.values():
            server.stop()


class Clock:
    """The pipeline's clock, moved by the test."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Recording:
    """A dispatcher that keeps what the steps send, in order, instead of sending it."""

    sent: list[tuple[Any, ...]] = field(default_factory=list)

    def dispatch(self) -> None:
        self.sent.append(("dispatch",))

    def generate(self, backend: str, scene_id: str, countdown: float = 0.0) -> None:
        self.sent.append(("generate", backend, scene_id, countdown))

    def sweep(self) -> None:
        self.sent.append(("sweep",))

    def take(self) -> list[tuple[Any, ...]]:
        sent, self.sent = self.sent, []
        return sent


@dataclass
class Steps:
    """A pipeline whose next steps the test runs by hand."""

    pipeline: Pipeline
    sent: Recording
    clock: Clock
    sandboxes: dict[str, SandboxServer]

    @property
    def store(self) -> Store:
        return self.pipeline.store

    def submit(self, *scenes: dict[str, Any]) -> list[str]:
        job_id = self.pipeline.submit([Scene.model_validate(s) for s in scenes])
        return self.store.job_scene_ids(job_id)

    def record(self, scene_id: str) -> SceneRecord:
        record = self.store.scene(scene_id)
        assert record is not None
        return record

    def run_all(self, limit: int = 50) -> int:
        """Run every recorded step, and the steps they send, as workers would (countdowns are
        not waited for); returns how many ran."""
        ran = 0
        while self.sent.sent:
            assert ran < limit, f"steps still being sent after {limit}: {self.sent.sent}"
            kind, *args = self.sent.sent.pop(0)
            if kind == "dispatch":
                self.pipeline.dispatch_waiting()
            else:
                self.pipeline.generate(args[0], args[1])
            ran += 1
        return ran

    def jobs(self, backend: str) -> list[dict[str, Any]]:
        return list(self.sandboxes[backend].state.records()["jobs"])


def clear(url: str) -> None:
    client = redis.Redis.from_url(url)
    keys = list(client.scan_iter("vg:*", count=1000))
    if keys:
        client.delete(*keys)
    client.delete("router", *[f"backend.{name}" for name in SANDBOXES])
    client.close()


def backend_entry(sandboxes: dict[str, SandboxServer], name: str) -> dict[str, Any]:
    """Config keys that point backend ``name`` at its sandbox, polled fast."""
    return {
        "base_url": sandboxes[name].base_url,
        "api_key": DEFAULT_KEYS.get(name) or "",
        "poll_interval": 0.01,
        "timeout": 20,
        "request_timeout": 3,
    }


def step_config(sandboxes: dict[str, SandboxServer], output: Path) -> dict[str, Any]:
    """The original design's sample config, pointed at the sandboxes, polled fast."""
    raw = json.loads((REPO / "config" / "config.json").read_text())
    vg = raw["video_generation"]
    vg.update(output_dir=str(output), lease_ttl=30, retry_base_delay=0.05, circuit_cooldown=5)
    for name, entry in vg["backends"].items():
        if name not in sandboxes:
            continue  # a later backend without a sandbox here: disabled in the sample
        entry.update(backend_entry(sandboxes, name))
    return raw


@pytest.fixture
def make_steps(
    step_redis: EmbeddedRedis, step_sandboxes: dict[str, SandboxServer], tmp_path: Path
) -> Iterator[Callable[..., Steps]]:
    """``make_steps(change)``: a pipeline on a clean Redis and fresh sandboxes; ``change``
    edits the config's ``video_generation`` section first."""
    made: list[Pipeline] = []

    def make(change: Callable[[dict[str, Any]], None] | None = None) -> Steps:
        clear(step_redis.url)
        for server in step_sandboxes.values():
            server.state.reset()
            server.state.set_knobs(**INSTANT)
        raw = step_config(step_sandboxes, tmp_path / "output")
        if change is not None:
            change(raw["video_generation"])
        clock = Clock()
        sent = Recording()
        store = Store.from_url(step_redis.url, clock=clock)
        settings = build_settings(raw, env={})
        # Waiting in a step moves the test's clock: no step test sleeps.
        pipeline = Pipeline(settings, store, sent, clock=clock, sleep=clock.advance)
        made.append(pipeline)
        return Steps(pipeline, sent, clock, step_sandboxes)

    yield make
    for pipeline in made:
        pipeline.close()
        pipeline.store.r.close()


@pytest.fixture
def steps(make_steps: Callable[..., Steps]) -> Steps:
    return make_steps()


def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    """Wait for a condition the test cannot make true by itself (server time passing)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.002)
