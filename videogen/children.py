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
        return bool(abs(process.create_time() - float(entry["created"])) < 0.01)
    except (KeyError, ValueError, TypeError, psutil.Error):
        return False


def stop_leftovers(children: dict[str, dict[str, Any]]) -> int:
    """Stop the process groups a killed ``up`` left behind; returns how many were alive."""
    pids = [int(entry["pid"]) for entry in children.values() if alive(entry)]
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, sig)
        procs = [psutil.Process(pid) for pid in pids if psutil.pid_exists(pid)]
        _, still = psutil.wait_procs(procs, timeout=STOP_GRACE)
        if not still:
            break
    return len(pids)
