"""Pipeline commands: ``up``, ``submit``, ``status``, ``health``, ``stats``, ``worker``,
``beat``, ``flower``. Thin: parse, call the library, print.
"""

from __future__ import annotations

import functools
import json
import math
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import click

from .config import Settings
from .constants import DEMO_SCENES, ROUTER_QUEUE, WORKER_ROLE_ENV
from .errors import ConfigError, SceneValidationError, VideoGenError
from .loading import load_config
from .models import SceneState
from .stopping import STOP_SIGNALS, stop_event

CHILD_STOP_GRACE = 10.0
"""Seconds celery beat or Flower gets to stop before it is killed (beat ignores SIGTERM
while it retries a lost Redis connection; Flower can hang on its event thread)."""
REDIS_CHECK_TIMEOUT = 3.0
"""Seconds a client command waits for Redis before it says it cannot reach it."""
P = ParamSpec("P")
R = TypeVar("R")
_BAR = {
    "pending": 0.1,
    "routed": 0.25,
    "running": 0.6,
    "succeeded": 1.0,
    "failed": 1.0,
    "cancelled": 1.0,
}


def _remember_config(ctx: click.Context, _: click.Parameter, value: str | None) -> None:
    if value is not None:
        root = ctx.find_root()
        if root.obj is None:
            root.obj = {}
        root.obj["config_path"] = value  # in place: subcommand contexts share this dict


config_option = click.option(
    "--config",
    type=click.Path(dir_okay=False),
    expose_value=False,
    callback=_remember_config,
    help="Config file (default: $VIDEOGEN_CONFIG, else config/config.json).",
)
"""``--config`` after the subcommand too (``videogen up --config X``), same as before it."""


def _settings(ctx: click.Context) -> Settings:
    root = ctx.find_root()
    try:
        return load_config((root.obj or {}).get("config_path"))
    except VideoGenError as error:
        raise click.ClickException(str(error)) from None


def _generator(ctx: click.Context) -> Any:
    """A client of the running stack: fails within seconds, with the reason, when Redis does
    not answer, and says in one line where this config differs from the stack's."""
    from .api import VideoGenerator
    from .store import check_reachable

    settings = _settings(ctx)
    try:
        check_reachable(settings.redis, REDIS_CHECK_TIMEOUT)
        generator = VideoGenerator(settings)
    except VideoGenError as error:
        raise click.ClickException(
            f"{error}. Is the pipeline running? Start it with `videogen up`."
        ) from None
    differences = generator.config_differences()
    if differences:
        mine = (
            "the defaults (no config file)" if settings.source.startswith("<") else settings.source
        )
        click.echo(
            f"note: the running stack's config differs from {mine} "
            f"({'; '.join(differences)}); showing and using the stack's",
            err=True,
        )
    return generator


def _client(command: Callable[P, R]) -> Callable[P, R]:
    """Turn a lost Redis (or any videogen error) mid-command into one clear line."""
    import redis

    @functools.wraps(command)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except redis.RedisError as error:
            raise click.ClickException(
                f"lost Redis ({type(error).__name__}): has the stack stopped? Submitted scenes "
                "carry on when it is back; `videogen status JOB` shows them"
            ) from None
        except VideoGenError as error:
            raise click.ClickException(str(error)) from None

    return run


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
@config_option
@click.pass_context
@_client
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
@config_option
@click.pass_context
@_client
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
@config_option
@click.pass_context
@_client
def health_command(ctx: click.Context, as_json: bool) -> None:
    """Probe every enabled backend now and show health, load and circuit state.

    The running stack probes, with its own endpoints and keys (never this config's); when it
    does not answer in time, the beat's latest results are shown, with their age.
    """
    import asyncio

    generator = _generator(ctx)
    report = asyncio.run(generator.health_check())
    status = report["backends"]
    if as_json:
        _dump(report)
        return
    if report["fresh"]:
        click.echo("probed now by the running stack")
    else:
        click.echo("the running stack did not answer in time: showing its latest results")
    click.echo(f"overall: {report['overall_status']}")
    for name, s in status.items():
        mark = "healthy" if s["healthy"] else "UNHEALTHY"
        click.echo(
            f"  {name:<7} {mark:<9} {'enabled' if s['enabled'] else 'disabled':<8} "
            f"{s['current_tasks']}/{s['max_tasks']} running, {s['queued_tasks']} queued, "
            f"circuit {s['circuit']}  {s['health_detail']}{_age(s['checked_at'])}"
        )


def _age(checked_at: float | None) -> str:
    return "" if checked_at is None else f" ({time.time() - checked_at:.0f} s ago)"


@click.command()
@click.option("--json", "as_json", is_flag=True)
@config_option
@click.pass_context
@_client
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
@config_option
@click.pass_context
def worker_command(
    ctx: click.Context, queue: str, replicas: int, loglevel: str, log_json: bool
) -> None:
    """Run a Celery worker: QUEUE is `router` or a backend name (svd, runway, pika, luma).

    A backend worker consumes `backend.<name>` with a thread pool sized from the backend's
    max_concurrent_tasks; the global cap is enforced by leases in Redis whatever the count.
    """
    from workers.app import create_app

    settings = _settings(ctx)
    args = _worker_args(settings, queue, replicas)
    if log_json:
        os.environ["VIDEOGEN_LOG_JSON"] = "1"
    os.environ[WORKER_ROLE_ENV] = queue  # what it publishes once ready (videogen.stackview)
    app = create_app(settings)
    app.worker_main(
        ["worker", *args, "-P", "threads", "-E", "--without-gossip", "--without-mingle",
         "--loglevel", loglevel]
    )  # fmt: skip


def _worker_args(settings: Settings, queue: str, replicas: int) -> list[str]:
    """The queue, thread count and node name of a worker for ``queue``."""
    if queue == ROUTER_QUEUE:
        # One routing decision at a time: decisions read the shared load, then add to it.
        return ["-Q", ROUTER_QUEUE, "-c", "1", "-n", f"router-{os.getpid()}@%h"]
    try:
        backend = settings.backend(queue)
    except ConfigError as error:
        raise click.ClickException(f"{error}; or use `router`") from None
    if queue in settings.missing_keys():
        raise click.ClickException(f"{queue} has no API key: {backend.key_source}")
    threads = max(1, math.ceil(backend.max_concurrent_tasks / max(1, replicas)))
    return ["-Q", f"backend.{queue}", "-c", str(threads), "-n", f"{queue}-{os.getpid()}@%h"]


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

    settings = _settings(ctx)
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
        store.drop_lock("beat", token)
    sys.exit(0 if stop.is_set() or code == 0 else code)


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
    settings = _settings(ctx)
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

    settings = _settings(ctx)
    registry = CollectorRegistry()
    registry.register(PipelineCollector(settings, Store.from_url(settings.redis)))
    start_http_server(port, addr=address, registry=registry)
    click.echo(f"metrics on http://{address}:{port}/metrics")
    stop = stop_event()
    stop.wait()


# -- up ---------------------------------------------------------------------------------------


class _StopRequested(BaseException):
    """``up`` got SIGTERM, SIGINT or SIGHUP (a BaseException, like KeyboardInterrupt)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _stop_on_signals() -> None:
    def handler(signum: int, frame: object) -> None:
        for sig in STOP_SIGNALS:  # one stop at a time: a second signal must not cut it short
            signal.signal(sig, signal.SIG_IGN)
        raise _StopRequested(signum)

    for sig in STOP_SIGNALS:
        signal.signal(sig, handler)


class _UpLog:
    """What ``up`` says: on its output, and in ``<run-dir>/log/up.log`` with the time."""

    def __init__(self, run_dir: Path) -> None:
        self.path = run_dir.resolve() / "log" / "up.log"

    def __call__(self, line: str) -> None:
        click.echo(line)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as log:
            log.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {line}\n")


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
@config_option
@click.pass_context
def up_command(ctx: click.Context, demo: bool, no_flower: bool, run_dir: Path) -> None:
    """Start the whole stack on this machine and supervise it; Ctrl-C stops it cleanly.

    Redis (embedded unless VIDEOGEN_REDIS_URL or redis_url is set), a sandbox for every backend
    without an API key, the router worker, one worker per enabled backend, the beat and Flower.
    A crashed child is restarted; SIGTERM, SIGINT or SIGHUP stop everything in order.
    """
    from .stack import Stack

    say = _UpLog(run_dir)
    stack = Stack(_settings(ctx), run_dir=run_dir, flower=not no_flower, say=say)
    _stop_on_signals()
    failure = None
    say("starting videogen ...")
    try:
        stack.start()
        click.echo("\n".join(stack.describe()))
        _supervise(stack, demo)
    except _StopRequested as stop:
        say(f"{signal.Signals(stop.signum).name}: stopping ...")
    except VideoGenError as error:
        failure = str(error)
    finally:
        for sig in STOP_SIGNALS:
            signal.signal(sig, signal.SIG_IGN)
        stack.stop()
    say("stopped")
    if failure:
        raise click.ClickException(failure)


def _supervise(stack: Any, demo: bool) -> None:
    """Restart crashed children until stopped, or until the demo (a thread) is done."""
    outcome: list[str] = []
    worker = None
    if demo:
        worker = threading.Thread(target=_run_demo, args=(stack, outcome), daemon=True)
        worker.start()
    else:
        click.echo("running; press Ctrl-C to stop")
    while worker is None or worker.is_alive():
        stack.supervise_once()
        time.sleep(0.5)
    if outcome != ["ok"]:
        raise VideoGenError(outcome[0] if outcome else "the demo stopped without a result")


def _run_demo(stack: Any, outcome: list[str]) -> None:
    try:
        outcome.append(_demo(stack))
    except Exception as error:  # noqa: BLE001 - reported by the supervising thread
        outcome.append(f"the demo failed: {error}")


def _demo(stack: Any) -> str:
    from .api import VideoGenerator
    from .scenes import load_scene_file

    generator = VideoGenerator(load_config(stack.config_file), redis_url=stack.redis_url)
    scenes = load_scene_file(DEMO_SCENES)
    job_id = generator.submit(scenes)
    click.echo(f"demo job {job_id}: {len(scenes)} scenes from {DEMO_SCENES}")
    results = _follow(generator, job_id, timeout=300, quiet=False)
    _print_results(results)
    stats = generator.get_statistics()["backends"]
    for name, s in stats.items():
        click.echo(f"  {name:<7} succeeded {s['succeeded']}, vendor jobs {s['vendor_jobs']}")
    return "ok" if all(r["success"] for r in results) else "some demo scenes failed"
