"""The real stack for pipeline tests: a Redis server, Celery worker processes on their real
queues (started with the same `videogen worker` command users run), sandboxes over loopback.

Starting a stack's processes takes seconds, so a stack that a test started with the defaults
and left as it found it (every worker it started alive, none killed, the test passed, and
nothing left to do: no unfinished scene, no queued message, no running task) is kept for the
next test of the module that asks for the same config. That test gets it with Redis's
videogen keys and the sandboxes reset, as a fresh stack would find them. One stack at most is
kept, since workers of two stacks would share queues; any other stack stops it first. A test
that takes ``redis_server`` itself (it restarts or watches Redis) neither gets nor leaves one:
a Redis outage is where a worker's history could matter (a kept backend worker died of a
kombu error when Redis stopped a moment after its batch began; a fresh one did not).
"""

from __future__ import annotations

import contextlib
import copy
import inspect
import json
import os
import shutil
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

from tests.helpers import stop_all
from videogen.api import VideoGenerator
from videogen.embedded import EmbeddedRedis, free_port
from videogen.queue import backend_queue, celery_app
from videogen.redis_keys import LIVE, PREFIX, STACK
from videogen.sandbox import DEFAULT_KEYS, SANDBOX_NAMES, SandboxServer, start_sandboxes

REPO = Path(__file__).resolve().parents[2]
BACKENDS = SANDBOX_NAMES
"""A sandbox for every backend: the sample enables the original four, a test may enable any."""
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
        stop_all(servers.values())


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
        if name not in sandboxes:
            continue  # the sample's newer backends (wan, seedance...): disabled, no sandbox
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
    pool: StackPool
    workers: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    config_path: Path | None = None
    started: dict[str, subprocess.Popen[bytes]] | None = None
    """What :meth:`start` started with the defaults (``None`` otherwise): the pool's check."""

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("VIDEOGEN_")}
        env.update(VIDEOGEN_REDIS_URL=self.redis_url, VIDEOGEN_CONFIG=str(self.config_path))
        for var in ("RUNWAYML_API_SECRET", "LUMAAI_API_KEY", "FAL_KEY"):
            env.pop(var, None)
        return env | extra

    def write_config(self) -> None:
        self.config_path = self.root / "config.json"
        self.config_path.write_text(json.dumps(self.config))

    @property
    def output_dir(self) -> Path:
        return Path(self.config["video_generation"]["output_dir"])

    def spawn(
        self, label: str, *args: str, env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        if not self.workers:
            self.pool.drop()  # a kept stack's workers would take this one's messages
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
        if workers is None and beat and self.pool.lend(self):
            return self
        self.write_config()
        enabled = [
            n
            for n, b in self.config["video_generation"]["backends"].items()
            if b.get("enabled", True)
        ]
        # One worker per worker group (a backend alone, unless its ``worker`` names a group).
        backends = self.config["video_generation"]["backends"]
        counts = workers or {backends[name].get("worker") or name: 1 for name in enabled}
        self.spawn("router", "worker", "router")
        for name, count in counts.items():
            for i in range(count):
                self.spawn(f"{name}-{i}", "worker", name, "--replicas", str(count))
        if beat:
            self.spawn("beat", "beat", "--schedule", str(self.root / "beat-schedule"))
        self.wait_ready(1 + sum(counts.values()))
        if workers is None and beat:
            self.started = dict(self.workers)
        return self

    def wait_ready(self, count: int, timeout: float = 60) -> None:
        app = celery_app(self.redis_url)
        deadline = time.monotonic() + timeout
        replies: list = []
        while time.monotonic() < deadline:
            try:
                replies = app.control.ping(timeout=0.5, limit=count) or []
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


def clear_state(redis_url: str, keep: tuple[bytes, ...] = ()) -> None:
    """Forget videogen's keys (never FLUSHDB: kombu's queue bindings live in the same db),
    except those starting with one of ``keep``."""
    client = redis.Redis.from_url(redis_url)
    keys = [k for k in client.scan_iter(f"{PREFIX}*", count=1000) if not k.startswith(keep)]
    if keys:
        client.delete(*keys)
    client.close()


KEPT_KEYS = (STACK.encode(), f"{PREFIX}lock:".encode())
"""What a kept stack's processes wrote once at start: the views they published, beat's lock."""
IDLE_TIMEOUT = 10.0


class StackPool:
    """Holds at most one idle stack between the tests of a module (see the module docstring)."""

    def __init__(self) -> None:
        self.idle: Stack | None = None
        self.redis_pid: int | None = None

    def keep(self, stack: Stack, redis_server: EmbeddedRedis, passed: bool) -> None:
        """Keep ``stack`` for the next test if it can be reused as it is, else stop it."""
        if not stack.workers:
            return  # never started: the idle stack (same config, or none) stays as it was
        self.drop()
        extra = [label for label in stack.workers if label not in (stack.started or {})]
        stack.stop(extra)  # what the test added (Flower, a metrics server) goes
        reusable = (
            passed
            and stack.started == stack.workers
            and all(p.poll() is None for p in stack.workers.values())
            and redis_server.process is not None
            and redis_server.process.pid == self.redis_pid
            and _settle(stack)
        )
        if reusable:
            self.idle = stack
        else:
            stack.stop()

    def lend(self, stack: Stack) -> bool:
        """Give ``stack`` the idle stack's processes if their config is the same."""
        if not self.matches(stack.config):
            self.drop()
            return False
        idle, self.idle = self.idle, None
        assert idle is not None
        stack.config, stack.root, stack.config_path = idle.config, idle.root, idle.config_path
        stack.workers, stack.started = idle.workers, idle.started
        shutil.rmtree(stack.output_dir, ignore_errors=True)
        return True

    def matches(self, config: dict[str, Any]) -> bool:
        return self.idle is not None and _comparable(self.idle.config) == _comparable(config)

    def drop(self) -> None:
        """Stop the idle stack, and forget what it had published."""
        if self.idle is not None:
            self.idle.stop()
            clear_state(self.idle.redis_url)
            self.idle = None


def _comparable(config: dict[str, Any]) -> dict[str, Any]:
    """A config without its output folder (each test has its own; a lent stack keeps its own)."""
    config = copy.deepcopy(config)
    del config["video_generation"]["output_dir"]
    return config


def _settle(stack: Stack) -> bool:
    """Whether the stack comes to have nothing left to do: no unfinished scene, no queued
    message, no running task (a health probe that began before the sandboxes were reset
    included), twice in a row. Never raises: a stack it cannot tell about is not kept."""
    reset_sandboxes(stack.sandboxes)
    client = redis.Redis.from_url(stack.redis_url)
    app = celery_app(stack.redis_url)
    queues = ["router", *(backend_queue(name) for name in BACKENDS)]
    workers = len(stack.workers) - 1  # beat answers no broadcast
    deadline = time.monotonic() + IDLE_TIMEOUT
    quiet = 0
    try:
        while quiet < 2 and time.monotonic() < deadline:
            pending = client.scard(LIVE) + sum(client.llen(q) for q in queues)
            active = app.control.inspect(timeout=1.0, limit=workers).active() or {}
            busy = len(active) < workers or any(active.values())
            quiet = 0 if pending or busy else quiet + 1
    except Exception:  # in a teardown: whatever went wrong, the stack is just not kept
        return False
    finally:
        client.close()
    return quiet >= 2


def reset_sandboxes(sandboxes: dict[str, SandboxServer]) -> None:
    for server in sandboxes.values():
        server.state.reset()
        server.state.set_knobs(**FAST_JOBS)


PASSED = pytest.StashKey[bool]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.when == "call":
        item.stash[PASSED] = report.passed
    return report


@pytest.fixture(scope="session")
def stack_pool() -> StackPool:
    return StackPool()


@pytest.fixture(scope="module", autouse=True)
def _no_stack_kept_across_modules(stack_pool: StackPool) -> Iterator[None]:
    yield
    stack_pool.drop()


@pytest.fixture(autouse=True)
def _no_kept_stack_behind_other_tests(request: pytest.FixtureRequest, stack_pool: StackPool):
    """A test that uses Redis or the sandboxes without a stack must not share them with one."""
    names = request.fixturenames
    if "make_stack" not in names and {"redis_server", "sandboxes"} & set(names):
        stack_pool.drop()


@pytest.fixture
def make_stack(
    request: pytest.FixtureRequest,
    redis_server: EmbeddedRedis,
    sandboxes: dict[str, SandboxServer],
    stack_pool: StackPool,
    tmp_path: Path,
) -> Iterator[Any]:
    """Build a stack from the sample config plus changes; workers stop after the test, or
    are kept for the next test with the same config."""
    stacks: list[Stack] = []
    fresh = "redis_server" in inspect.signature(request.function).parameters

    def make(changes: Any = None) -> Stack:
        reset_sandboxes(sandboxes)
        config = base_config(sandboxes, tmp_path / "output")
        if changes:
            changes(config["video_generation"])
        if fresh or not stack_pool.matches(config):
            stack_pool.drop()
        clear_state(redis_server.url, keep=KEPT_KEYS if stack_pool.idle else ())
        stack = Stack(config, tmp_path, redis_server.url, sandboxes, stack_pool)
        stacks.append(stack)
        return stack

    stack_pool.redis_pid = redis_server.process.pid if redis_server.process else None
    yield make
    passed = request.node.stash.get(PASSED, False) and not fresh
    for stack in stacks[:-1]:
        stack.stop()
    if stacks:
        stack_pool.keep(stacks[-1], redis_server, passed)


def jobs_of(sandbox: SandboxServer) -> list[dict[str, Any]]:
    return list(sandbox.state.records()["jobs"])
