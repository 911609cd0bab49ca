"""``videogen up``: the whole stack on one machine, as supervised child processes.

Redis (embedded when no URL is configured), a sandbox for every backend that has no API key
(and for SVD when no ComfyUI answers), the router worker, one worker per enabled backend,
the guarded beat, and Flower. Workers get their config through a run copy of the config file
that points sandboxed backends at their sandboxes; real keys stay in the environment.

Every child runs in a process group of its own, so a terminal's Ctrl-C reaches ``up`` alone,
and ``up`` decides the order: a crashed child is restarted (:mod:`videogen.supervise`), and a
stop goes producers first, then workers (running vendor jobs are left to be resumed, never
cancelled), then beat, then Redis last. ``run/up.json`` records every process of the run, so a
new ``up`` after a SIGKILLed one cleans up what the old one left, or refuses while it lives.
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

import psutil

from .backends import create_backend
from .config import Settings, absolute_paths
from .embedded import EmbeddedRedis
from .errors import StackError
from .supervise import RestartPolicy, after_exit

FLOWER_PORT = 5555
SANDBOX_POLL_INTERVAL = 0.25
"""Sandbox jobs take well under a second; polling them every 5 s would only add waiting."""
WORKER_STOP_GRACE = 10.0
"""Seconds a worker's warm shutdown may take (running tasks finish) before a cold one: a
vendor job still running then is left to the next run, which resumes it from its job id."""
STOP_GRACE = 10.0
"""Seconds any other child gets after SIGTERM before it is killed."""
WORKER_START_TIMEOUT = 90.0

Say = Callable[[str], None]


@dataclass
class Child:
    """One supervised process and its restart bookkeeping."""

    name: str
    kind: str
    """``observer`` (Flower), ``router``, ``worker``, ``beat`` or ``redis``: the stop order."""
    start: Callable[[], subprocess.Popen[bytes]]
    log: Path
    process: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    fast_crashes: int = 0
    restart_at: float | None = None
    restarts: int = 0

    def spawn(self) -> None:
        self.process = self.start()
        self.started = time.monotonic()
        self.restart_at = None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None


@dataclass
class Stack:
    settings: Settings
    run_dir: Path = Path("var")
    flower_port: int = FLOWER_PORT
    flower: bool = True
    say: Say = print
    policy: RestartPolicy = field(default_factory=RestartPolicy)
    redis_url: str | None = None
    embedded: EmbeddedRedis | None = None
    sandboxes: dict[str, Any] = field(default_factory=dict)
    children: list[Child] = field(default_factory=list)
    config_file: Path | None = None
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
            if _alive(owner) and owner.get("pid") != os.getpid():
                raise StackError(
                    f"another `videogen up` (pid {owner['pid']}) is running with "
                    f"{self.run_dir}; stop it first, or pass another --run-dir"
                )
            left = _stop_leftovers(record.get("children") or {})
            if left:
                self.say(
                    f"cleaned up {left} process(es) left by a previous `videogen up` "
                    f"(pid {owner.get('pid')}) that was killed"
                )
        self._save_run_file()

    def _save_run_file(self) -> None:
        children = {
            c.name: _identity(c.process.pid) for c in self.children if c.process and c.running
        }
        record = {"up": _identity(os.getpid()), "children": children}
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
        for name in self.settings.video_generation.enabled_backends():
            self._add(f"worker-{name}", "worker", "worker", name)
        self._add("beat", "beat", "beat", "--schedule", str(self.run_dir / "run" / "beat"))
        if self.flower:
            self._add("flower", "observer", "flower", "--port", str(self.flower_port))
        self._save_run_file()

    def expected_workers(self) -> set[str]:
        return {"router", *self.settings.video_generation.enabled_backends()}

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
                _stop(group, signal.SIGTERM, WORKER_STOP_GRACE, then=signal.SIGQUIT)
            else:
                _stop(group, signal.SIGTERM, STOP_GRACE)
        for server in self.sandboxes.values():
            server.stop()
        if self.embedded is not None:
            self.embedded.stop()
        for child in self.children:
            _kill_group(child)
        with contextlib.suppress(FileNotFoundError):
            self.run_file.unlink()


def _stop(
    children: list[Child], sig: signal.Signals, grace: float, then: signal.Signals | None = None
) -> None:
    """Signal every child, wait up to ``grace``; then ``then`` (and a short wait), then kill."""
    live = [c for c in children if c.running]
    for step in (sig, then, signal.SIGKILL):
        if step is None:
            continue
        for child in live:
            assert child.process is not None
            with contextlib.suppress(ProcessLookupError):
                child.process.send_signal(step)
        live = _wait(live, grace if step is sig else STOP_GRACE / 2)
        if not live:
            return


def _wait(children: list[Child], timeout: float) -> list[Child]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(c.running for c in children):
        time.sleep(0.05)
    return [c for c in children if c.running]


def _kill_group(child: Child) -> None:
    """Anything left in the child's process group (beat's and Flower's own children)."""
    if child.process is not None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(child.process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.process.wait(5)


def _identity(pid: int) -> dict[str, Any]:
    """A pid plus its start time: a reused pid is never mistaken for ours."""
    return {"pid": pid, "created": psutil.Process(pid).create_time()}


def _alive(entry: dict[str, Any]) -> bool:
    try:
        process = psutil.Process(int(entry["pid"]))
        ours = abs(process.create_time() - float(entry["created"])) < 0.01
        return bool(ours and not _dead(process))
    except (KeyError, ValueError, TypeError, psutil.Error):
        return False


def _dead(process: psutil.Process) -> bool:
    """Gone, or a zombie: an orphan's parent is init, and an init that never reaps (a
    container's PID 1 often does not) leaves it a zombie for good."""
    try:
        return process.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _stop_leftovers(children: dict[str, dict[str, Any]]) -> int:
    """Stop the process groups a killed ``up`` left behind, Redis last (as :meth:`Stack.stop`
    does: beat drops its lock in Redis on its way out, and would retry for a minute without
    it); returns how many were alive."""
    alive = {name: int(entry["pid"]) for name, entry in children.items() if _alive(entry)}
    users = [pid for name, pid in alive.items() if name != "redis"]
    for group in (users, [pid for name, pid in alive.items() if name == "redis"]):
        _stop_groups(group)
    return len(alive)


def _stop_groups(pids: list[int]) -> None:
    """SIGTERM the processes ``pids`` (as :meth:`Stack.stop` does: beat's and Flower's wrappers
    stop their own child, which a signal to the whole group would reach twice, the second
    time inside its shutdown); SIGKILL those alive after the grace, then what is left of
    their process groups."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)
        if _wait_dead(pids, STOP_GRACE):
            break
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)


def _wait_dead(pids: list[int], timeout: float) -> bool:
    """Whether every one of ``pids`` is gone or a zombie within ``timeout`` s (they are not our
    children, so we cannot reap them; ``psutil.wait_procs`` would wait out a zombie)."""
    deadline = time.monotonic() + timeout
    while True:
        if all(_dead_pid(pid) for pid in pids):
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)


def _dead_pid(pid: int) -> bool:
    try:
        return _dead(psutil.Process(pid))
    except psutil.NoSuchProcess:
        return True


def _raw_config(source: str) -> dict[str, Any]:
    """The config file as written, with its relative paths made absolute (the run copy lives
    in another folder)."""
    path = Path(source)
    if source.startswith("<") or not path.is_file():
        return {}
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return absolute_paths(data, path.parent)
