"""The processes ``videogen up`` supervises: one :class:`Child` each, stopping a group of
them in order, and recognising what a killed ``up`` left behind (a pid plus its start time,
so a reused pid is never taken for ours)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

STOP_GRACE = 10.0
"""Seconds a child gets after SIGTERM before it is killed."""


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


def stop_children(
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


def kill_group(child: Child) -> None:
    """Anything left in the child's process group (beat's and Flower's own children)."""
    if child.process is not None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(child.process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.process.wait(5)


def identity(pid: int) -> dict[str, Any]:
    """A pid plus its start time: a reused pid is never mistaken for ours."""
    return {"pid": pid, "created": psutil.Process(pid).create_time()}


def alive(entry: dict[str, Any]) -> bool:
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


def stop_leftovers(children: dict[str, dict[str, Any]]) -> int:
    """Stop the process groups a killed ``up`` left behind, Redis last (as ``Stack.stop``
    does: beat drops its lock in Redis on its way out, and would retry for a minute without
    it); returns how many were alive."""
    pids = {name: int(entry["pid"]) for name, entry in children.items() if alive(entry)}
    users = [pid for name, pid in pids.items() if name != "redis"]
    for group in (users, [pid for name, pid in pids.items() if name == "redis"]):
        _stop_groups(group)
    return len(pids)


def _stop_groups(pids: list[int]) -> None:
    """SIGTERM the processes ``pids`` (as ``Stack.stop`` does: beat's and Flower's wrappers
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
