"""Pipeline commands: ``up``, ``submit``, ``status``, ``health``, ``stats``, ``worker``,
``beat``, ``flower``. Thin: parse, call the library, print.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import click

from .config import Settings, load_config
from .constants import ROUTER_QUEUE
from .errors import ConfigError, SceneValidationError, VideoGenError
from .models import SceneState

BEAT_STOP_GRACE = 10.0
"""Seconds celery beat gets to stop before it is killed (it ignores SIGTERM while it is
retrying a lost Redis connection)."""
DEMO_SCENES = Path(__file__).resolve().parent.parent / "examples" / "scenes.json"
_BAR = {
    "pending": 0.1,
    "routed": 0.25,
    "running": 0.6,
    "succeeded": 1.0,
    "failed": 1.0,
    "cancelled": 1.0,
}


def _settings(ctx: click.Context) -> Settings:
    root = ctx.find_root()
    try:
        return load_config((root.obj or {}).get("config_path"))
    except VideoGenError as error:
        raise click.ClickException(str(error)) from None


def _generator(ctx: click.Context) -> Any:
    from .api import VideoGenerator

    try:
        generator = VideoGenerator(_settings(ctx))
        generator.store.ping()
    except VideoGenError as error:
        raise click.ClickException(
            f"{error}. Is the pipeline running? Start it with `videogen up`."
        ) from None
    return generator


def _dump(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=str))


# -- submit / status --------------------------------------------------------------------------


@click.command()
@click.argument("scene_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--wait", is_flag=True, help="Wait for every scene, showing progress.")
@click.option(
    "--timeout", type=float, default=None, help="Give up waiting after this many seconds."
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON (the job id, or the results).")
@click.pass_context
def submit_command(
    ctx: click.Context, scene_file: Path, wait: bool, timeout: float | None, as_json: bool
) -> None:
    """Validate SCENE_FILE (a JSON list of scenes) and enqueue every scene.

    Nothing is enqueued unless every scene is valid and some enabled backend can take it.
    """
    from .scenes import load_scene_file

    try:
        scenes = load_scene_file(scene_file)
    except SceneValidationError as error:
        raise click.ClickException(str(error)) from None
    generator = _generator(ctx)
    try:
        job_id = generator.submit(scenes)
    except VideoGenError as error:
        raise click.ClickException(str(error)) from None
    if not wait:
        _dump({"job_id": job_id, "scenes": len(scenes)}) if as_json else click.echo(job_id)
        return
    if not as_json:
        click.echo(f"job {job_id}: {len(scenes)} scenes")
    results = _follow(generator, job_id, timeout, quiet=as_json)
    _dump({"job_id": job_id, "results": results}) if as_json else _print_results(results)
    if not all(r["success"] for r in results):
        sys.exit(1)


def _follow(
    generator: Any, job_id: str, timeout: float | None, quiet: bool
) -> list[dict[str, Any]]:
    deadline = None if timeout is None else time.monotonic() + timeout
    shown: dict[str, str] = {}
    while True:
        scenes = generator.store.scenes(generator.store.job_scene_ids(job_id))
        for scene in scenes:
            line = _progress_line(scene)
            if not quiet and shown.get(scene["id"]) != line:
                shown[scene["id"]] = line
                click.echo(line)
        if all(SceneState(s["state"]).terminal for s in scenes):
            return list(generator.results(job_id))
        if deadline is not None and time.monotonic() > deadline:
            raise click.ClickException(f"job {job_id} is still running after {timeout:g} s")
        time.sleep(0.3)


def _progress_line(scene: dict[str, Any]) -> str:
    filled = int(_BAR.get(scene["state"], 0) * 20)
    bar = "#" * filled + "-" * (20 - filled)
    where = f" on {scene['backend']}" if scene.get("backend") else ""
    tail = f": {scene['error']}" if scene["state"] == "failed" else ""
    return f"[{bar}] {scene['id']} {scene['state']}{where}{tail}"


def _print_results(results: list[dict[str, Any]]) -> None:
    for r in results:
        if r["success"]:
            click.echo(
                f"  #{r['index']} ok   {r['backend_used']:<7} {r['effective_duration']} s "
                f"{r['effective_resolution']}  {r['video_path']}"
            )
        else:
            click.echo(f"  #{r['index']} FAIL {r['backend_used'] or '-':<7} {r['error']}")


@click.command()
@click.argument("job_id", required=False)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def status_command(ctx: click.Context, job_id: str | None, as_json: bool) -> None:
    """Show a job's scenes (state, backend, tries, file); without JOB_ID, list recent jobs."""
    generator = _generator(ctx)
    if job_id is None:
        jobs = generator.store.recent_jobs()
        _dump(jobs) if as_json else click.echo("\n".join(jobs) or "no jobs yet")
        return
    scenes = generator.job_status(job_id)
    if not scenes:
        raise click.ClickException(f"no job {job_id!r}")
    if as_json:
        _dump(scenes)
        return
    for scene in scenes:
        click.echo(_progress_line(scene))
        for attempt in scene["attempts"]:
            click.echo(f"      tried {attempt['backend']}: {attempt['error']}")
        if scene.get("result"):
            click.echo(f"      file: {scene['result']['video_path']}")


@click.command()
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def health_command(ctx: click.Context, as_json: bool) -> None:
    """Probe every enabled backend now and show health, load and circuit state."""
    import asyncio

    generator = _generator(ctx)
    report = asyncio.run(generator.health_check())
    status = generator.get_backend_status()
    if as_json:
        _dump({"overall_status": report["overall_status"], "backends": status})
        return
    click.echo(f"overall: {report['overall_status']}")
    for name, s in status.items():
        mark = "healthy" if s["healthy"] else "UNHEALTHY"
        click.echo(
            f"  {name:<7} {mark:<9} {'enabled' if s['enabled'] else 'disabled':<8} "
            f"{s['current_tasks']}/{s['max_tasks']} running, {s['queued_tasks']} queued, "
            f"circuit {s['circuit']}  {s['health_detail']}"
        )


@click.command()
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def stats_command(ctx: click.Context, as_json: bool) -> None:
    """Per-backend statistics: success rate, latency, errors, retries, failovers, cost."""
    stats = _generator(ctx).get_statistics()
    if as_json:
        _dump(stats)
        return
    click.echo(
        f"healthy backends: {stats['healthy_backends']}, active tasks: "
        f"{stats['total_active_tasks']}, queued: {stats['total_queued_tasks']}"
    )
    for name, s in stats["backends"].items():
        rate = "-" if s["success_rate"] is None else f"{s['success_rate']:.0%}"
        latency = "-" if s["average_latency_s"] is None else f"{s['average_latency_s']:.1f} s"
        click.echo(
            f"  {name:<7} ok {s['succeeded']:>4}  failed {s['failed']:>3}  rate {rate:>4}  "
            f"latency {latency:>7}  errors {s['errors']}  retries {s['retries']}  "
            f"failovers {s['failovers']}  ~${s['estimated_cost_usd']:.2f}"
        )


# -- processes ----------------------------------------------------------------------------


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
@click.pass_context
def worker_command(
    ctx: click.Context, queue: str, replicas: int, loglevel: str, log_json: bool
) -> None:
    """Run a Celery worker: QUEUE is `router` or a backend name (svd, runway, pika, luma).

    A backend worker consumes `backend.<name>` with a thread pool sized from the backend's
    max_concurrent_tasks; the global cap is enforced by leases in Redis whatever the count.
    """
    settings = _settings(ctx)
    if log_json:
        os.environ["VIDEOGEN_LOG_JSON"] = "1"
    if not settings.source.startswith("<"):
        os.environ["VIDEOGEN_CONFIG"] = settings.source  # workers.app reads it at import
    from workers.app import app

    if queue == ROUTER_QUEUE:
        # One routing decision at a time: decisions read the shared load, then add to it.
        args = ["-Q", ROUTER_QUEUE, "-c", "1", "-n", f"router-{os.getpid()}@%h"]
    else:
        try:
            backend = settings.backend(queue)
        except ConfigError as error:
            raise click.ClickException(f"{error}; or use `router`") from None
        if queue in settings.missing_keys():
            raise click.ClickException(f"{queue} has no API key: {backend.key_source}")
        cap = backend.max_concurrent_tasks
        threads = max(1, math.ceil(cap / max(1, replicas)))
        args = ["-Q", f"backend.{queue}", "-c", str(threads), "-n", f"{queue}-{os.getpid()}@%h"]
    app.worker_main(
        [
            "worker",
            *args,
            "-P",
            "threads",
            "-E",
            "--without-gossip",
            "--without-mingle",
            "--loglevel",
            loglevel,
        ]
    )


@click.command()
@click.option("--schedule", default="celerybeat-schedule", help="Beat's schedule file.")
@click.pass_context
def beat_command(ctx: click.Context, schedule: str) -> None:
    """Run celery beat (health probes, sweeper), guarded so only one runs at a time.

    A second `videogen beat` waits on standby and takes over when the first stops.
    """
    from .api import redis_url_for
    from .store import Store, new_token

    store = Store.from_url(redis_url_for(_settings(ctx)))
    token = new_token()
    while not store.hold_lock("beat", token, ttl=30):
        click.echo("another beat is running; standing by", err=True)
        time.sleep(10)
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "workers.app",
            "beat",
            "-s",
            schedule,
            "--loglevel",
            "INFO",
        ]
    )
    _keep_lock(store, token, process)

    def stop(signum: int, frame: object) -> None:  # SIGTERM and Ctrl-C reach beat too
        process.terminate()
        threading.Timer(BEAT_STOP_GRACE, process.kill).start()  # it may be stuck reconnecting

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        code = process.wait()
    finally:
        store.drop_lock("beat", token)
    sys.exit(0 if code in (0, -signal.SIGTERM) else code)


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
def flower_command(address: str, port: int) -> None:
    """Run Flower on videogen's Celery app. Basic auth (VIDEOGEN_FLOWER_AUTH=user:password)
    is required whenever it listens beyond loopback."""
    auth = os.environ.get("VIDEOGEN_FLOWER_AUTH", "")
    if address not in ("127.0.0.1", "localhost", "::1") and ":" not in auth:
        raise click.ClickException(
            f"refusing to serve Flower on {address} without auth: "
            "set VIDEOGEN_FLOWER_AUTH=user:password"
        )
    args = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "workers.app",
        "flower",
        f"--address={address}",
        f"--port={port}",
    ]
    if auth:
        args.append(f"--basic-auth={auth}")
    os.execv(sys.executable, args)


@click.command()
@click.option("--address", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=9108, show_default=True)
@click.pass_context
def metrics_command(ctx: click.Context, address: str, port: int) -> None:
    """Serve Prometheus metrics (in-flight, capacity, queued, health, circuit, successes,
    failures, retries, failovers, latency histogram, cost per backend) from the shared Redis."""
    from prometheus_client import CollectorRegistry, start_http_server

    from .api import redis_url_for
    from .metrics import PipelineCollector
    from .store import Store

    settings = _settings(ctx)
    registry = CollectorRegistry()
    registry.register(PipelineCollector(settings, Store.from_url(redis_url_for(settings))))
    start_http_server(port, addr=address, registry=registry)
    click.echo(f"metrics on http://{address}:{port}/metrics")
    while True:
        time.sleep(3600)


# -- up ---------------------------------------------------------------------------------------


@click.command()
@click.option("--demo", is_flag=True, help="Submit the sample scenes, show the results, and stop.")
@click.option("--no-flower", is_flag=True, help="Do not start Flower.")
@click.option(
    "--run-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("var"),
    show_default=True,
    help="Where Redis data, logs and run files go.",
)
@click.pass_context
def up_command(ctx: click.Context, demo: bool, no_flower: bool, run_dir: Path) -> None:
    """Start the whole stack on this machine; Ctrl-C stops it cleanly.

    Redis (embedded unless VIDEOGEN_REDIS_URL or redis_url is set), a sandbox for every backend
    without an API key, the router worker, one worker per enabled backend, the beat and Flower.
    """
    from .stack import Stack

    stack = Stack(_settings(ctx), run_dir=run_dir, flower=not no_flower)
    click.echo("starting videogen ...")
    try:
        stack.start()
    except VideoGenError as error:
        raise click.ClickException(str(error)) from None
    click.echo("\n".join(stack.describe()))
    try:
        if demo:
            _run_demo(stack)
        else:
            click.echo("running; press Ctrl-C to stop")
            while True:
                stack._check_children()
                time.sleep(1)
    except KeyboardInterrupt:
        click.echo("\nstopping ...")
    finally:
        stack.stop()


def _run_demo(stack: Any) -> None:
    from .api import VideoGenerator
    from .scenes import load_scene_file

    os.environ["VIDEOGEN_REDIS_URL"] = str(stack.redis_url)
    generator = VideoGenerator(load_config(stack.config_file))
    scenes = load_scene_file(DEMO_SCENES)
    job_id = generator.submit(scenes)
    click.echo(f"demo job {job_id}: {len(scenes)} scenes from {DEMO_SCENES}")
    results = _follow(generator, job_id, timeout=300, quiet=False)
    _print_results(results)
    stats = generator.get_statistics()["backends"]
    for name, s in stats.items():
        click.echo(f"  {name:<7} succeeded {s['succeeded']}, vendor jobs {s['vendor_jobs']}")
    if not all(r["success"] for r in results):
        raise click.ClickException("some demo scenes failed")
