"""The baseline: a bare Celery app with the same settings as videogen's (``celeryconfig``),
and tasks that do almost nothing, on queues of their own.

``bench.hop`` (queue ``bench.a``, like the router) sends ``bench.store`` (queue ``bench.b``,
like a backend worker), which writes a small file and records when it finished. ``bench.hold``
keeps a worker thread busy (the memory baseline). Workers run it with
``python -m celery -A bench.baseline_app worker ...`` and ``$BENCH_REDIS_URL``.
"""

from __future__ import annotations

import os
import time
from functools import cache
from pathlib import Path

import redis

from videogen.constants import DEFAULT_REDIS_URL
from videogen.queue import celery_app

HOP_QUEUE = "bench.a"
STORE_QUEUE = "bench.b"
DONE_KEY = "bench:done"
"""Hash: chain number -> time its second task finished."""
FILE_BYTES = 4096
"""About the size of a sandbox clip's metadata plus a little: the chain stores a real file."""

REDIS_URL = os.environ.get("BENCH_REDIS_URL", DEFAULT_REDIS_URL)
OUTPUT = Path(os.environ.get("BENCH_OUTPUT_DIR", "."))
app = celery_app(REDIS_URL)


@cache
def _client() -> redis.Redis:
    return redis.Redis.from_url(REDIS_URL)


@app.task(name="bench.hop")
def hop(number: int) -> None:
    app.send_task("bench.store", args=[number], queue=STORE_QUEUE)


@app.task(name="bench.store")
def store(number: int) -> None:
    (OUTPUT / f"{number}.bin").write_bytes(b"\0" * FILE_BYTES)
    _client().hset(DONE_KEY, str(number), time.time())


@app.task(name="bench.hold")
def hold(seconds: float) -> None:
    time.sleep(seconds)


def worker_argv(queue: str, threads: int, name: str) -> list[str]:
    """The command line of a baseline worker: the same pool and flags as videogen's."""
    return [
        "-m", "celery", "-A", "bench.baseline_app", "worker",
        "-Q", queue, "-c", str(threads), "-n", f"{name}@%h",
        "-P", "threads", "-E", "--without-gossip", "--without-mingle", "--loglevel", "INFO",
    ]  # fmt: skip
