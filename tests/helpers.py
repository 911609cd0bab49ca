"""Small things tests make for themselves (shared with the benchmark, from the sandbox), and
the one way tests wait for something to happen."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from videogen.sandbox import SandboxServer
from videogen.sandbox.assets import file_server, png_bytes

__all__ = ["file_server", "png_bytes", "stop_all", "wait_until"]

T = TypeVar("T")
POLL = 0.02
"""Seconds between looks: short next to anything a test waits for, long next to a look."""


def wait_until(condition: Callable[[], T], timeout: float, what: str | Callable[[], str] = "") -> T:
    """Call ``condition`` until it returns something truthy, and return that; after ``timeout``
    seconds fail, saying ``what`` was awaited (a callable: computed only then, e.g. logs)."""
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:g} s: {what() if callable(what) else what}")
        time.sleep(POLL)
    return value


def stop_all(servers: Iterable[SandboxServer]) -> None:
    """Stop sandbox servers at once: each stop waits for uvicorn's next 0.1 s tick, and the
    suite's three sets of sandboxes stopped one by one made the last test's teardown 2 s."""
    with ThreadPoolExecutor() as pool:
        list(pool.map(SandboxServer.stop, servers))
