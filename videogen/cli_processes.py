"""Long-running process commands: ``worker``, ``beat``, ``flower``, ``metrics``.
Thin: parse, load the config, run the process.
"""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import threading
import time
from typing import Any

import click

from .cli_config import config_option, load_settings
from .config import Settings
from .constants import ROUTER_QUEUE, WORKER_ROLE_ENV, backend_queue
from .errors import ConfigError
from .stopping import stop_event

CHILD_STOP_GRACE = 10.0
"""Seconds celery beat or Flower gets to stop before it is killed (beat ignores SIGTERM
while it retries a lost Redis connection; Flower can hang on its event thread)."""


@click.command()
@click.argument("queue")
@click.option(
    "--replicas",
    type=int,
    default=1,
    show_default=True,
    help="Worker hosts sharing this backend: each takes ceil(cap / replicas) threads.",
)
@click.option("--loglevel", default="INFO", show_default=True)
@click.option("--log-json", is_flag=True, help="One JSON object per log line.")
@config_option
@click.pass_context
def worker_command(
    ctx: click.Context, queue: str, replicas: int, loglevel: str, log_json: bool
) -> None:
    """Run a Celery worker: QUEUE is `router`, a backend name (svd, runway, pika, luma), or
    a worker group (backends whose `worker` names it).

    A backend worker consumes `backend.<name>` with a thread pool sized from the backend's
    max_concurrent_tasks (plus one, for the hand-over of a slot while a finished scene
    downloads); a group's worker consumes each member's queue, with the members' threads
    together. Each backend's cap is enforced by its leases in Redis whatever the count.
    """
    from workers.app import create_app

    settings = load_settings(ctx)
    args = _worker_args(settings, queue, replicas)
    if log_json:
        os.environ["VIDEOGEN_LOG_JSON"] = "1"
    os.environ[WORKER_ROLE_ENV] = queue  # what it publishes once ready (videogen.stackview)
    app = create_app(settings)
    app.worker_main(
        ["worker", *args, "-P", "threads", "-E", "--without-gossip", "--without-mingle",
         "--loglevel", loglevel]
    )  # fmt: skip


HANDOVER_THREADS = 1
"""One thread more than the worker's share of slots: a scene whose vendor job ended gives its
slot back before it downloads the file, and the scene bound to that slot starts on this spare
thread at once instead of waiting for the download (the cap is the leases', not the threads')."""


def _worker_args(settings: Settings, queue: str, replicas: int) -> list[str]:
    """The queue, thread count and node name of a worker for ``queue``."""
    if queue == ROUTER_QUEUE:
        # One routing decision at a time: decisions read the shared load, then add to it.
        return ["-Q", ROUTER_QUEUE, "-c", "1", "-n", f"router-{os.getpid()}@%h"]
    try:
        members = settings.video_generation.worker_members(queue)
    except ConfigError as error:
        raise click.ClickException(f"{error}; or use `router`") from None
    missing = settings.missing_keys()
    for name in members:
        if name in missing:
            raise click.ClickException(f"{name} has no API key: {missing[name]}")
    threads = sum(
        _threads(settings.backend(name).max_concurrent_tasks, replicas) for name in members
    )
    queues = ",".join(backend_queue(name) for name in members)
    return ["-Q", queues, "-c", str(threads), "-n", f"{queue}-{os.getpid()}@%h"]


def _threads(cap: int, replicas: int) -> int:
    """A backend's threads in one of ``replicas`` workers: its share of the cap, and one for
    the hand-over."""
    return max(1, math.ceil(cap / max(1, replicas))) + HANDOVER_THREADS


@click.command()
@click.option("--schedule", default="celerybeat-schedule", help="Beat's schedule file.")
@config_option
@click.pass_context
def beat_command(ctx: click.Context, schedule: str) -> None:
    """Run celery beat (health probes, sweeper), guarded so only one runs at a time.

    A second `videogen beat` waits on standby and takes over when the first stops.
    SIGTERM, SIGINT or SIGHUP stop it cleanly, on standby too.
    """
    from .store import Store, new_token

    settings = load_settings(ctx)
    if not settings.source.startswith("<"):
        os.environ["VIDEOGEN_CONFIG"] = settings.source  # the child's workers.app.app loads it
    store = Store.from_url(settings.redis)
    token = new_token()
    stop = stop_event()
    while not store.hold_lock("beat", token, ttl=30):
        click.echo("another beat is running; standing by", err=True)
        if stop.wait(10):
            return
    args = ["-A", "workers.app", "beat", "-s", schedule, "--loglevel", "INFO"]
    process = _celery_child(args)
    _keep_lock(store, token, process)
    try:
        code = _wait_child(process, stop)
    finally:
        _drop_lock_quietly(settings.redis, token)
    sys.exit(0 if stop.is_set() or code == 0 else code)


def _drop_lock_quietly(url: str, token: str) -> None:
    """On the way out, one quick try: with Redis gone the lock expires by itself, and a stop
    must not wait a minute of reconnects for it."""
    import redis

    from .store import Store

    try:
        Store.from_url(url, patient=False).drop_lock("beat", token)
    except redis.RedisError:
        pass


def _celery_child(args: list[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "celery", *args], stdin=subprocess.DEVNULL)


def _wait_child(
    process: subprocess.Popen[bytes], stop: threading.Event, sig: int = signal.SIGTERM
) -> int:
    """Wait for a child; once ``stop`` is set, send it ``sig``, and kill it after the grace."""
    while process.poll() is None and not stop.wait(0.2):
        pass
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(CHILD_STOP_GRACE)
        except subprocess.TimeoutExpired:
            process.kill()
    return process.wait()


def _keep_lock(store: Any, token: str, process: subprocess.Popen[bytes]) -> None:
    def renew() -> None:
        while process.poll() is None:
            if not store.hold_lock("beat", token, ttl=30):
                process.terminate()  # someone else holds it now: never schedule twice
                return
            time.sleep(10)

    threading.Thread(target=renew, daemon=True).start()


@click.command()
@click.option("--address", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=5555, show_default=True)
@config_option
@click.pass_context
def flower_command(ctx: click.Context, address: str, port: int) -> None:
    """Run Flower on videogen's Celery app. Basic auth (VIDEOGEN_FLOWER_AUTH=user:password)
    is required whenever it listens beyond loopback. SIGTERM, SIGINT or SIGHUP stop it."""
    auth = os.environ.get("VIDEOGEN_FLOWER_AUTH", "")
    if address not in ("127.0.0.1", "localhost", "::1") and ":" not in auth:
        raise click.ClickException(
            f"refusing to serve Flower on {address} without auth: "
            "set VIDEOGEN_FLOWER_AUTH=user:password"
        )
    settings = load_settings(ctx)
    if not settings.source.startswith("<"):
        os.environ["VIDEOGEN_CONFIG"] = settings.source  # the child's workers.app.app loads it
    args = ["-A", "workers.app", "flower", f"--address={address}", f"--port={port}"]
    if auth:
        args.append(f"--basic-auth={auth}")
    stop = stop_event()
    # Flower's own SIGTERM handler raises SystemExit wherever it lands (seen inside the
    # interpreter's shutdown, with a traceback) and can leave it hanging on its threads. It
    # keeps nothing worth saving (its state is in memory, rebuilt from worker events), so it
    # runs as our child and is stopped with SIGKILL.
    code = _wait_child(_celery_child(args), stop, signal.SIGKILL)
    sys.exit(0 if stop.is_set() else code)


@click.command()
@click.option("--address", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=9108, show_default=True)
@config_option
@click.pass_context
def metrics_command(ctx: click.Context, address: str, port: int) -> None:
    """Serve Prometheus metrics (in-flight, capacity, queued, health, circuit, successes,
    failures, retries, failovers, latency histogram, cost per backend) from the shared Redis."""
    from prometheus_client import CollectorRegistry, start_http_server

    from .metrics import PipelineCollector
    from .store import Store

    settings = load_settings(ctx)
    registry = CollectorRegistry()
    registry.register(PipelineCollector(settings, Store.from_url(settings.redis)))
    start_http_server(port, addr=address, registry=registry)
    click.echo(f"metrics on http://{address}:{port}/metrics")
    stop = stop_event()
    stop.wait()
