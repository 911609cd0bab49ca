"""The real stack for pipeline tests: a Redis server, Celery worker processes on their real
queues (started with the same `videogen worker` command users run), sandboxes over loopback.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis

from videogen.api import VideoGenerator
from videogen.embedded import EmbeddedRedis, free_port
from videogen.queue import celery_app
from videogen.sandbox import DEFAULT_KEYS, SandboxServer, start_sandboxes

REPO = Path(__file__).resolve().parents[2]
BACKENDS = ("svd", "runway", "pika", "luma")
FAST_JOBS = {"run_seconds": 0.3, "queue_seconds": 0.05}


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedis]:
    server = EmbeddedRedis(tmp_path_factory.mktemp("redis"), port=free_port()).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def sandboxes() -> Iterator[dict[str, SandboxServer]]:
    servers = start_sandboxes(list(BACKENDS))
    try:
        yield servers
    finally:
        for server in servers.values():
            server.stop()


def base_config(sandboxes: dict[str, SandboxServer], output_dir: Path) -> dict[str, Any]:
    """The original design's sample config, pointed at the sandboxes, with short timings."""
    raw = json.loads((REPO / "config" / "config.json").read_text())
    vg = raw["video_generation"]
    vg.update(
        output_dir=str(output_dir),
        health_check_interval=2,
        sweep_interval=1,
        lease_ttl=3,
        retry_base_delay=0.05,
        circuit_cooldown=5,
    )
    for name, entry in vg["backends"].items():
        entry.update(
            base_url=sandboxes[name].base_url,
            api_key=DEFAULT_KEYS.get(name) or "",
            poll_interval=0.05,
            timeout=20,
            request_timeout=3,
        )
    return raw


@dataclass
class Stack:
    """Worker processes for one config; tests start, kill and restart them."""

    config: dict[str, Any]
    root: Path
    redis_url: str
    sandboxes: dict[str, SandboxServer]
    workers: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    config_path: Path | None = None

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("VIDEOGEN_")}
        env.update(VIDEOGEN_REDIS_URL=self.redis_url, VIDEOGEN_CONFIG=str(self.config_path))
        for var in ("RUNWAYML_API_SECRET", "LUMAAI_API_KEY", "FAL_KEY"):
            env.pop(var, None)
        return env | extra

    def write_config(self) -> None:
        self.config_path = self.root / "config.json"
        self.config_path.write_text(json.dumps(self.config))

    def spawn(
        self, label: str, *args: str, env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        log = (self.root / f"{label}.log").open("ab")
        process = subprocess.Popen(
            [sys.executable, "-m", "videogen", *args],
            env=self.env(**(env or {})),
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stop() reaches grandchildren
        )
        self.workers[label] = process
        return process

    def start(self, workers: dict[str, int] | None = None, beat: bool = True) -> Stack:
        self.write_config()
        enabled = [
            n
            for n, b in self.config["video_generation"]["backends"].items()
            if b.get("enabled", True)
        ]
        counts = workers or {name: 1 for name in enabled}
        self.spawn("router", "worker", "router")
        for name, count in counts.items():
            for i in range(count):
                self.spawn(f"{name}-{i}", "worker", name, "--replicas", str(count))
        if beat:
            self.spawn("beat", "beat", "--schedule", str(self.root / "beat-schedule"))
        self.wait_ready(1 + sum(counts.values()))
        return self

    def wait_ready(self, count: int, timeout: float = 60) -> None:
        app = celery_app(self.redis_url)
        deadline = time.monotonic() + timeout
        replies: list = []
        while time.monotonic() < deadline:
            try:
                replies = app.control.ping(timeout=0.5) or []
            except redis.ConnectionError:  # a pooled connection from before a Redis restart
                continue
            if len(replies) >= count:
                return
            for label, process in self.workers.items():
                if process.poll() is not None:
                    raise RuntimeError(
                        f"{label} exited: {(self.root / f'{label}.log').read_text()[-3000:]}"
                    )
        raise RuntimeError(f"only {len(replies)} of {count} workers answered")

    def kill(self, label: str) -> None:
        process = self.workers.pop(label)
        process.send_signal(signal.SIGKILL)
        process.wait()

    def stop(self, labels: list[str] | None = None) -> None:
        """SIGKILL every process group (or those of ``labels``): a test's workers have nothing
        left to finish, and waiting for warm shutdowns only made teardowns slow. Never raises."""
        chosen = {k: p for k, p in self.workers.items() if labels is None or k in labels}
        for process in chosen.values():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
        for label, process in chosen.items():
            process.wait()
            del self.workers[label]

    def generator(self) -> VideoGenerator:
        return VideoGenerator(str(self.config_path), redis_url=self.redis_url)

    def logs(self) -> str:
        return "\n".join(p.read_text()[-4000:] for p in sorted(self.root.glob("*.log")))


def clear_state(redis_url: str) -> None:
    """Forget videogen's keys (never FLUSHDB: kombu's queue bindings live in the same db)."""
    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter("vg:*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture
def make_stack(
    redis_server: EmbeddedRedis, sandboxes: dict[str, SandboxServer], tmp_path: Path
) -> Iterator[Any]:
    """Build a stack from the sample config plus changes; workers stop after the test."""
    stacks: list[Stack] = []

    def make(changes: Any = None) -> Stack:
        clear_state(redis_server.url)
        for server in sandboxes.values():
            server.state.reset()
            server.state.set_knobs(**FAST_JOBS)
        config = base_config(sandboxes, tmp_path / "output")
        if changes:
            changes(config["video_generation"])
        stack = Stack(config, tmp_path, redis_server.url, sandboxes)
        stacks.append(stack)
        return stack

    yield make
    for stack in stacks:
        stack.stop()


def jobs_of(sandbox: SandboxServer) -> list[dict[str, Any]]:
    return list(sandbox.state.records()["jobs"])
