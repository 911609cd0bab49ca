"""The real stack for the benchmarks: one Redis server, the vendor sandboxes, a loopback image
server, and worker processes started with the same commands users run.

Every stack gets a fresh Redis database of its own (the server is started with many), so a run
never sees another run's queues, leases or scenes, and never has to flush anything.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from videogen.api import VideoGenerator
from videogen.embedded import EmbeddedRedis, free_port
from videogen.queue import celery_app
from videogen.sandbox import DEFAULT_KEYS, SandboxServer, start_sandboxes
from videogen.sandbox.assets import file_server as image_server
from videogen.sandbox.assets import png_bytes

REPO = Path(__file__).resolve().parents[1]
BACKENDS = ("svd", "runway", "pika", "luma")
REDIS_DATABASES = 4096
"""One fresh database per stack; a full run uses a few dozen."""
READY_TIMEOUT = 90.0
"""Seconds for worker processes to answer a ping (imports are slow on 2 busy cores)."""


class BenchRedis(EmbeddedRedis):
    """videogen's embedded Redis, with enough databases for one per stack."""

    def command(self) -> list[str]:
        return [*super().command(), "--databases", str(REDIS_DATABASES)]


@dataclass
class Services:
    """What every scenario shares: Redis, the sandboxes, the image server, a work folder."""

    root: Path
    redis: EmbeddedRedis
    sandboxes: dict[str, SandboxServer]
    image_url: str
    image_file: Path
    _db: int = 0

    def fresh_url(self) -> str:
        """A Redis URL on a database no stack has used yet."""
        self._db += 1
        return f"redis://127.0.0.1:{self.redis.port}/{self._db}"

    def folder(self, name: str) -> Path:
        path = self.root / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def reset_sandboxes(self, **knobs: Any) -> None:
        for server in self.sandboxes.values():
            server.state.reset()
            server.state.set_knobs(**knobs)


@contextmanager
def services(root: Path) -> Iterator[Services]:
    root.mkdir(parents=True, exist_ok=True)
    images = root / "images"
    images.mkdir(exist_ok=True)
    frame = images / "frame.png"
    frame.write_bytes(png_bytes())
    redis = BenchRedis(root / "redis", port=free_port()).start()
    sandboxes = start_sandboxes(list(BACKENDS))
    try:
        with image_server(images) as base:
            yield Services(root, redis, sandboxes, f"{base}/frame.png", frame)
    finally:
        for server in sandboxes.values():
            server.stop()
        redis.stop()


def make_config(
    svc: Services, output_dir: Path, poll: float, timeout: float, changes: Callable[..., None]
) -> dict[str, Any]:
    """The project's sample config pointed at the sandboxes, then ``changes(vg)`` applied."""
    raw: dict[str, Any] = json.loads((REPO / "config" / "config.json").read_text())
    vg = raw["video_generation"]
    vg["output_dir"] = str(output_dir)
    # The scenarios measure the original design's four backends (the sample enables them);
    # the later ones, disabled in the sample, are left out of the bench's configs.
    vg["backends"] = {n: e for n, e in vg["backends"].items() if n in svc.sandboxes}
    for name, entry in vg["backends"].items():
        entry.update(
            base_url=svc.sandboxes[name].base_url,
            api_key=DEFAULT_KEYS.get(name) or "",
            poll_interval=poll,
            timeout=timeout,
            request_timeout=5,
        )
    changes(vg)
    return raw


def only(*names: str) -> Callable[[dict[str, Any]], None]:
    """A config change that leaves only ``names`` enabled."""

    def change(vg: dict[str, Any]) -> None:
        for name, entry in vg["backends"].items():
            entry["enabled"] = name in names

    return change


@dataclass
class Workers:
    """Worker processes on one Redis database, with their logs in ``root``."""

    root: Path
    redis_url: str
    env_extra: dict[str, str] = field(default_factory=dict)
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("VIDEOGEN_", "BENCH_"))}
        for var in ("RUNWAYML_API_SECRET", "LUMAAI_API_KEY", "FAL_KEY"):
            env.pop(var, None)
        env.update(VIDEOGEN_REDIS_URL=self.redis_url, **self.env_extra)
        return env

    def spawn(self, label: str, argv: list[str]) -> subprocess.Popen[bytes]:
        with (self.root / f"{label}.log").open("ab") as log:
            process = subprocess.Popen(
                [sys.executable, *argv],
                env=self.env(),
                cwd=REPO,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.processes[label] = process
        return process

    def pid(self, label: str) -> int:
        return self.processes[label].pid

    def log(self, label: str) -> str:
        return (self.root / f"{label}.log").read_text(errors="replace")

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> None:
        app = celery_app(self.redis_url)
        deadline = time.monotonic() + timeout
        replies: list[Any] = []
        while time.monotonic() < deadline:
            replies = app.control.ping(timeout=0.5, limit=len(self.processes)) or []
            if len(replies) >= len(self.processes):
                return
            for label, process in self.processes.items():
                if process.poll() is not None:
                    raise RuntimeError(f"{label} exited: {self.log(label)[-3000:]}")
        raise RuntimeError(f"only {len(replies)} of {len(self.processes)} workers answered")

    def stop(self) -> None:
        """Kill: running tasks are abandoned (their scenes are not needed any more, every
        figure is read before the stop, and the next stack has a Redis database of its own).
        A cold shutdown (SIGQUIT) waited for them: the memory scenario's slots, busy for ten
        minutes, cost its full grace four times a run, and an idle worker still took 1.3 s."""
        for process in self.processes.values():
            if process.poll() is None:
                process.kill()
        for process in self.processes.values():
            process.wait()
        self.processes.clear()


@dataclass
class VideogenStack:
    """A router worker and backend workers (``python -m videogen worker``) for one config."""

    workers: Workers
    config_path: Path

    @property
    def redis_url(self) -> str:
        return self.workers.redis_url

    def generator(self) -> VideoGenerator:
        return VideoGenerator(str(self.config_path), redis_url=self.redis_url)

    def stop(self) -> None:
        self.workers.stop()


def start_videogen(
    svc: Services,
    label: str,
    config: dict[str, Any],
    backends: list[str] | None = None,
    router: bool = True,
) -> VideogenStack:
    """Start the router and one worker per enabled backend (or per ``backends``)."""
    root = svc.folder(label)
    config_path = root / "config.json"
    config_path.write_text(json.dumps(config))
    workers = Workers(root, svc.fresh_url(), {"VIDEOGEN_CONFIG": str(config_path)})
    if backends is None:
        items = config["video_generation"]["backends"].items()
        backends = [name for name, entry in items if entry.get("enabled", True)]
    if router:
        workers.spawn("router", ["-m", "videogen", "worker", "router"])
    for name in backends:
        workers.spawn(name, ["-m", "videogen", "worker", name])
    if workers.processes:
        workers.wait_ready()
    return VideogenStack(workers, config_path)


@contextmanager
def running(stack: Any) -> Iterator[Any]:
    """Stop ``stack`` (a :class:`VideogenStack` or :class:`Workers`) whatever happens."""
    try:
        yield stack
    finally:
        stack.stop()
