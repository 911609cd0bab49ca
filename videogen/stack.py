"""``videogen up``: the whole stack on one machine, as supervised child processes.

Redis (embedded when no URL is configured), a sandbox for every backend that has no API key
(and for SVD when no ComfyUI answers), the router worker, one worker per enabled backend (or
per worker group: backends whose ``worker`` names one share its process), the guarded beat,
and Flower. Workers get their config through a run copy of the config file
that points sandboxed backends at their sandboxes; real keys stay in the environment.

Every child runs in a process group of its own (a terminal's Ctrl-C reaches ``up`` alone); a
crashed child is restarted (:mod:`videogen.supervise`); a stop goes producers, workers (their
vendor jobs are resumed later, never cancelled), beat, Redis last. ``run/up.json`` records the
run's processes: a new ``up`` after a SIGKILLed one cleans up what it left, or refuses.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from .backends import create_backend
from .children import (
    STOP_GRACE,
    Child,
    alive,
    identity,
    kill_group,
    stop_children,
    stop_leftovers,
)
from .config import Settings
from .embedded import EmbeddedRedis, port_is_free
from .errors import ConfigError, MissingExtraError, StackError
from .loading import absolute_paths
from .sandbox.defaults import DEFAULT_KEYS
from .supervise import RestartPolicy, after_exit

FLOWER_PORT = 5555
SANDBOX_POLL_INTERVAL = 0.25
"""Sandbox jobs take well under a second; polling them every 5 s would only add waiting."""
WORKER_STOP_GRACE = 10.0
"""Seconds a worker's warm shutdown may take (running tasks finish) before a cold one: a
vendor job still running then is left to the next run, which resumes it from its job id."""
WORKER_START_TIMEOUT = 90.0

Say = Callable[[str], None]


@dataclass
class Stack:
    settings: Settings
    run_dir: Path = Path("var")
    flower_port: int = FLOWER_PORT
    flower: bool = True
    api: bool = True
    """Serve the HTTP API and dashboard (``videogen api``) when the ``api`` extra is there."""
    say: Say = print
    policy: RestartPolicy = field(default_factory=RestartPolicy)
    redis_url: str | None = None
    embedded: EmbeddedRedis | None = None
    sandboxes: dict[str, Any] = field(default_factory=dict)
    children: list[Child] = field(default_factory=list)
    config_file: Path | None = None
    api_url: str | None = None
    stopped: bool = False

    def __post_init__(self) -> None:
        self.run_dir = self.run_dir.resolve()

    @property
    def log_dir(self) -> Path:
        return self.run_dir / "log"

    @property
    def run_file(self) -> Path:
        return self.run_dir / "run" / "up.json"

    def start(self) -> Stack:
        try:
            self._claim_run_dir()
            self._start_redis()
            self._start_sandboxes()
            self._write_config()
            self._spawn_all()
            self._wait_for_workers()
        except BaseException:
            self.stop()
            raise
        return self

    # -- the run directory: one live `up` at a time, and no orphans after a killed one -----

    def _claim_run_dir(self) -> None:
        self.run_file.parent.mkdir(parents=True, exist_ok=True)
        if self.run_file.exists():
            record = json.loads(self.run_file.read_text() or "{}")
            owner = record.get("up") or {}
            if alive(owner) and owner.get("pid") != os.getpid():
                raise StackError(
                    f"another `videogen up` (pid {owner['pid']}) is running with "
                    f"{self.run_dir}; stop it first, or pass another --run-dir"
                )
            left = stop_leftovers(record.get("children") or {})
            if left:
                self.say(
                    f"cleaned up {left} process(es) left by a previous `videogen up` "
                    f"(pid {owner.get('pid')}) that was killed"
                )
        self._save_run_file()

    def _save_run_file(self) -> None:
        children = {
            c.name: identity(c.process.pid) for c in self.children if c.process and c.running
        }
        record = {"up": identity(os.getpid()), "children": children}
        self.run_file.write_text(json.dumps(record))

    # -- pieces ----------------------------------------------------------------------------

    def _start_redis(self) -> None:
        if self.settings.redis_url:  # $VIDEOGEN_REDIS_URL or the config's redis_url
            self.redis_url = self.settings.redis_url
            return
        embedded = EmbeddedRedis(self.run_dir / "redis")
        self.embedded = embedded

        def start() -> subprocess.Popen[bytes]:
            process = embedded.start().process
            assert process is not None
            return process

        child = Child("redis", "redis", start, self.run_dir / "redis" / "redis.log")
        child.spawn()
        self.children.append(child)
        self.redis_url = embedded.url

    def needs_sandbox(self, name: str) -> bool:
        cfg = self.settings.backend(name)
        if not cfg.enabled:
            return False
        if name == "svd":  # a local ComfyUI needs no key: use it when one answers
            with create_backend(name, cfg) as backend:
                return not backend.health_check().healthy
        return not cfg.has_key

    def _start_sandboxes(self) -> None:
        names = [n for n in self.settings.video_generation.backends if self.needs_sandbox(n)]
        if not names:
            return
        try:
            from .sandbox import start_sandboxes  # the web stack: only when a sandbox runs
        except MissingExtraError as error:
            raise StackError(
                f"{', '.join(names)} would run on sandboxes (no API key, or no ComfyUI "
                f"answering), and {error}"
            ) from None
        self.sandboxes = start_sandboxes(names)

    def _write_config(self) -> None:
        raw = _raw_config(self.settings.source)
        backends = raw.setdefault("video_generation", {}).setdefault("backends", {})
        for name, server in self.sandboxes.items():
            entry = backends.setdefault(name, {})
            entry["base_url"] = server.base_url
            entry["api_key"] = DEFAULT_KEYS.get(name) or ""
            entry.setdefault("poll_interval", SANDBOX_POLL_INTERVAL)
        raw["redis_url"] = self.redis_url
        self.config_file = self.run_dir / "run" / "config.json"
        self.config_file.write_text(json.dumps(raw, indent=2))
        self.config_file.chmod(0o600)

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["VIDEOGEN_CONFIG"] = str(self.config_file)
        env["VIDEOGEN_REDIS_URL"] = str(self.redis_url)
        env["VIDEOGEN_OUTPUT_DIR"] = str(self.settings.outputs)
        for name in self.sandboxes:  # the sandbox's key must win over a placeholder env key
            env.pop(f"VIDEOGEN_{name.upper()}_API_KEY", None)
        return env

    def _add(self, name: str, kind: str, *args: str) -> None:
        log = self.log_dir / f"{name}.log"

        def start() -> subprocess.Popen[bytes]:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            out: IO[bytes] = log.open("ab")
            with out:
                return subprocess.Popen(
                    [sys.executable, "-m", "videogen", *args],
                    env=self.env(),
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,  # Ctrl-C reaches `up` alone; it stops us in order
                )

        child = Child(name, kind, start, log)
        child.spawn()
        self.children.append(child)

    def _spawn_all(self) -> None:
        self._add("worker-router", "router", "worker", "router")
        for group in self.settings.video_generation.worker_groups():
            self._add(f"worker-{group}", "worker", "worker", group)
        self._add("beat", "beat", "beat", "--schedule", str(self.run_dir / "run" / "beat"))
        if self.flower:
            self._add("flower", "observer", "flower", "--port", str(self.flower_port))
        if self.api and self._api_can_start():
            self._add("api", "observer", "api")
        self._save_run_file()

    def _api_can_start(self) -> bool:
        """Whether ``videogen api`` would serve: its extra installed, its tokens set, its
        port free. Otherwise ``up`` says why and runs without it (a child that cannot start
        would only crash in a loop)."""
        api = self.settings.video_generation.api
        try:
            from .web.auth import check_bind, tokens_of
        except ImportError as error:
            self.say(str(MissingExtraError("api", "the dashboard", error.name or "fastapi")))
            return False
        try:
            check_bind(api.host, tokens_of(api))
        except ConfigError as error:
            self.say(f"api: not started: {error}")
            return False
        if not port_is_free(api.host, api.port):
            self.say(f"api: not started: {api.host}:{api.port} is in use (set api.port)")
            return False
        self.api_url = f"http://{api.host}:{api.port}"
        return True

    def expected_workers(self) -> set[str]:
        """The workers' names: the router and each worker group (a backend alone, unless
        its ``worker`` puts it in a group)."""
        return {"router", *self.settings.video_generation.worker_groups()}

    def _wait_for_workers(self, timeout: float = WORKER_START_TIMEOUT) -> None:
        from .queue import celery_app

        app = celery_app(str(self.redis_url))
        deadline = time.monotonic() + timeout
        expected = self.expected_workers()
        while time.monotonic() < deadline:
            self.supervise_once()
            # ``limit``: return as soon as that many answered, not always after the timeout.
            replies = app.control.ping(timeout=1.0, limit=len(expected)) or []
            names = {next(iter(r)).split("@")[0].rsplit("-", 1)[0] for r in replies}
            if expected <= names:
                return
        raise StackError(f"workers did not start within {timeout:g} s; see {self.log_dir}")

    # -- supervision -----------------------------------------------------------------------

    def supervise_once(self) -> None:
        """Notice children that exited and restart them when their backoff is over; raises
        :class:`StackError` for one that keeps crashing right after it starts."""
        now = time.monotonic()
        for child in self.children:
            if child.restart_at is None and child.process and child.process.poll() is not None:
                self._crashed(child, now)
            elif child.restart_at is not None and now >= child.restart_at:
                child.restarts += 1
                child.spawn()
                self._save_run_file()
                self.say(f"{child.name} restarted (restart {child.restarts})")

    def _crashed(self, child: Child, now: float) -> None:
        code = child.process.returncode if child.process else None
        decision = after_exit(child.fast_crashes, now - child.started, self.policy)
        child.fast_crashes = decision.fast_crashes
        if decision.give_up:
            raise StackError(
                f"{child.name} exited ({code}) {decision.fast_crashes} times in a row within "
                f"{self.policy.stable_after:g} s of starting; giving up: see {child.log}"
            )
        child.restart_at = now + decision.delay
        self.say(f"{child.name} exited ({code}); restarting in {decision.delay:g} s")

    # -- stopping --------------------------------------------------------------------------

    def describe(self) -> list[str]:
        lines = [f"redis:    {self.redis_url}" + (" (embedded)" if self.embedded else "")]
        for name, server in self.sandboxes.items():
            lines.append(f"sandbox:  {name:<7} {server.base_url}")
        lines.append(f"outputs:  {self.settings.outputs}")
        lines.append(f"logs:     {self.log_dir}")
        if self.flower:
            lines.append(f"flower:   http://127.0.0.1:{self.flower_port}")
        if self.api_url:
            lines.append(f"dashboard: {self.api_url}/  (API: {self.api_url}/v1)")
        return lines

    def stop(self) -> None:
        """Stop everything in order: Flower, the router, the backend workers, beat, the
        sandboxes, Redis; then make sure nothing of any child's process group is left."""
        if self.stopped:
            return
        self.stopped = True
        for kinds in (("observer",), ("router",), ("worker",), ("beat",)):
            group = [c for c in self.children if c.kind in kinds]
            if kinds[0] in ("router", "worker"):
                stop_children(group, signal.SIGTERM, WORKER_STOP_GRACE, then=signal.SIGQUIT)
            else:
                stop_children(group, signal.SIGTERM, STOP_GRACE)
        for server in self.sandboxes.values():
            server.stop()
        if self.embedded is not None:
            self.embedded.stop()
        for child in self.children:
            kill_group(child)
        with contextlib.suppress(FileNotFoundError):
            self.run_file.unlink()


def _raw_config(source: str) -> dict[str, Any]:
    """The config file as written, with its relative paths made absolute (the run copy lives
    in another folder)."""
    path = Path(source)
    if source.startswith("<") or not path.is_file():
        return {}
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return absolute_paths(data, path.parent)
