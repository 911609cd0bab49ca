"""The baseline: a bare Celery app with the same settings as videogen's (``celeryconfig``),
and tasks that do almost nothing, on queues of their own.

``bench.hop`` (queue ``bench.a``, like the router) sends ``bench.store`` (queue ``bench.b``,
like a backend worker), which writes a small file and records when it finished. ``bench.hold``
keeps a worker thread busy (the memory baseline). Workers run it with
``python -m celery -A bench.baseline_app worker ...`` and ``$BENCH_REDIS_URL``.

The *floor* is the same chain whose second task, ``bench.vendor``, does a scene's vendor work
instead: videogen's own client for the backend in ``$BENCH_VENDOR_CONFIG`` creates the job,
polls it, downloads and checks the video (``generate_video``, the original design's
single-backend call) and writes its metadata beside it. It has no state, no lease, no
routing and no failover: what any Celery orchestrator of that vendor pays per scene at the
least. ``$BENCH_HOP_TO`` (``bench.vendor``) points the hop at it.
"""

from __future__ import annotations

import os
import time
from functools import cache
from pathlib import Path

import redis

from videogen.backends import create_backend
from videogen.backends.base import BaseVideoBackend
from videogen.constants import DEFAULT_REDIS_URL
from videogen.loading import load_config
from videogen.queue import celery_app

HOP_QUEUE = "bench.a"
STORE_QUEUE = "bench.b"
DONE_KEY = "bench:done"
"""Hash: chain number -> time its second task finished."""
FILE_BYTES = 4096
"""About the size of a sandbox clip's metadata plus a little: the chain stores a real file."""

REDIS_URL = os.environ.get("BENCH_REDIS_URL", DEFAULT_REDIS_URL)
OUTPUT = Path(os.environ.get("BENCH_OUTPUT_DIR", "."))
HOP_TO = os.environ.get("BENCH_HOP_TO", "bench.store")
VENDOR_BACKEND = "runway"
"""The floor's backend (the overhead scenario's)."""
app = celery_app(REDIS_URL)


@cache
def _client() -> redis.Redis:
    return redis.Redis.from_url(REDIS_URL)


@cache
def _backend() -> BaseVideoBackend:
    settings = load_config(os.environ["BENCH_VENDOR_CONFIG"])
    return create_backend(VENDOR_BACKEND, settings.backend(VENDOR_BACKEND))


@app.task(name="bench.hop")
def hop(number: int) -> None:
    app.send_task(HOP_TO, args=[number], queue=STORE_QUEUE)


@app.task(name="bench.store")
def store(number: int) -> None:
    (OUTPUT / f"{number}.bin").write_bytes(b"\0" * FILE_BYTES)
    _client().hset(DONE_KEY, str(number), time.time())


@app.task(name="bench.vendor")
def vendor(number: int) -> None:
    dest = OUTPUT / f"{number}.mp4"
    scene = {"prompt": f"floor text scene {number}", "duration": 5}  # as bench.scenes writes
    result = _backend().generate_video(scene, dest)
    dest.with_suffix(".json").write_text(result.model_dump_json(indent=2))
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
