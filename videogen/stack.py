"""``videogen up``: the whole stack on one machine, as child processes.

Redis (embedded when no URL is configured), a sandbox for every backend that has no API key
(and for SVD when no ComfyUI answers), the router worker, one worker per enabled backend,
the guarded beat, and Flower. Workers get their config through a run copy of the config file
that points sandboxed backends at their sandboxes; real keys stay in the environment.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from .backends import create_backend
from .config import Settings
from .embedded import EmbeddedRedis
from .errors import ConfigError

FLOWER_PORT = 5555
SANDBOX_POLL_INTERVAL = 0.25
"""Sandbox jobs take well under a second; polling them every 5 s would only add waiting."""


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]
    log: Path


@dataclass
class Stack:
    settings: Settings
    run_dir: Path = Path("var")
    flower_port: int = FLOWER_PORT
    flower: bool = True
    redis_url: str | None = None
    embedded: EmbeddedRedis | None = None
    sandboxes: dict[str, Any] = field(default_factory=dict)
    children: list[Child] = field(default_factory=list)
    config_file: Path | None = None

    @property
    def log_dir(self) -> Path:
        return self.run_dir / "log"

    def start(self) -> Stack:
        try:
            self._start_redis()
            self._start_sandboxes()
            self._write_config()
            self._spawn_all()
            self._wait_for_workers()
        except BaseException:
            self.stop()
            raise
        return self

    # -- pieces ----------------------------------------------------------------------------

    def _start_redis(self) -> None:
        url = os.environ.get("VIDEOGEN_REDIS_URL") or self.settings.redis_url
        if url:
            self.redis_url = url
            return
        self.embedded = EmbeddedRedis(self.run_dir / "redis").start()
        self.redis_url = self.embedded.url

    def needs_sandbox(self, name: str) -> bool:
        cfg = self.settings.backend(name)
        if not cfg.enabled:
            return False
        if name == "svd":  # a local ComfyUI needs no key: use it when one answers
            with create_backend(name, cfg) as backend:
                return not backend.health_check().healthy
        return not cfg.has_key

    def _start_sandboxes(self) -> None:
        from .sandbox import start_sandboxes

        names = [n for n in self.settings.video_generation.backends if self.needs_sandbox(n)]
        self.sandboxes = start_sandboxes(names) if names else {}

    def _write_config(self) -> None:
        from .sandbox import DEFAULT_KEYS

        raw = _raw_config(self.settings.source)
        backends = raw.setdefault("video_generation", {}).setdefault("backends", {})
        for name, server in self.sandboxes.items():
            entry = backends.setdefault(name, {})
            entry["base_url"] = server.base_url
            entry["api_key"] = DEFAULT_KEYS.get(name) or ""
            entry.setdefault("poll_interval", SANDBOX_POLL_INTERVAL)
        raw["redis_url"] = self.redis_url
        (self.run_dir / "run").mkdir(parents=True, exist_ok=True)
        self.config_file = self.run_dir / "run" / "config.json"
        self.config_file.write_text(json.dumps(raw, indent=2))
        self.config_file.chmod(0o600)

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["VIDEOGEN_CONFIG"] = str(self.config_file)
        env["VIDEOGEN_REDIS_URL"] = str(self.redis_url)
        env["VIDEOGEN_OUTPUT_DIR"] = str(self.settings.outputs.resolve())
        for name in self.sandboxes:  # the sandbox's key must win over a placeholder env key
            env.pop(f"VIDEOGEN_{name.upper()}_API_KEY", None)
        return env

    def _spawn(self, name: str, *args: str) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_dir / f"{name}.log"
        out: IO[bytes] = log.open("ab")
        process = subprocess.Popen(
            [sys.executable, "-m", "videogen", *args],
            env=self.env(),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches us; we stop the children in order
        )
        self.children.append(Child(name, process, log))

    def _spawn_all(self) -> None:
        self._spawn("worker-router", "worker", "router")
        for name in self.settings.video_generation.enabled_backends():
            self._spawn(f"worker-{name}", "worker", name)
        self._spawn("beat", "beat", "--schedule", str(self.run_dir / "run" / "beat-schedule"))
        if self.flower:
            self._spawn("flower", "flower", "--port", str(self.flower_port))

    def expected_workers(self) -> set[str]:
        return {"router", *self.settings.video_generation.enabled_backends()}

    def _wait_for_workers(self, timeout: float = 90.0) -> None:
        from .queue import celery_app

        app = celery_app(str(self.redis_url))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_children()
            replies = app.control.ping(timeout=1.0) or []
            names = {next(iter(r)).split("@")[0].rsplit("-", 1)[0] for r in replies}
            if self.expected_workers() <= names:
                return
        raise ConfigError(f"workers did not start within {timeout:g} s; see {self.log_dir}")

    def _check_children(self) -> None:
        for child in self.children:
            if child.process.poll() is not None:
                raise ConfigError(
                    f"{child.name} exited ({child.process.returncode}); see {child.log}"
                )

    def describe(self) -> list[str]:
        lines = [f"redis:    {self.redis_url}" + (" (embedded)" if self.embedded else "")]
        for name, server in self.sandboxes.items():
            lines.append(f"sandbox:  {name:<7} {server.base_url}")
        lines.append(f"outputs:  {self.settings.outputs.resolve()}")
        lines.append(f"logs:     {self.log_dir.resolve()}")
        if self.flower:
            lines.append(f"flower:   http://127.0.0.1:{self.flower_port}")
        return lines

    def stop(self) -> None:
        for child in reversed(self.children):
            if child.process.poll() is None:
                child.process.terminate()
        for child in self.children:
            try:
                child.process.wait(20)
            except subprocess.TimeoutExpired:
                child.process.kill()
                child.process.wait()
        for server in self.sandboxes.values():
            server.stop()
        if self.embedded is not None:
            self.embedded.stop()


def _raw_config(source: str) -> dict[str, Any]:
    path = Path(source)
    if source.startswith("<") or not path.is_file():
        return {}
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data
