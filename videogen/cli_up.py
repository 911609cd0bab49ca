"""``videogen up``: the whole stack on this machine, supervised (:mod:`videogen.stack`), and
its demo. Thin: parse, start, supervise, print.
"""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path
from typing import Any

import click

from .cli_client import print_results
from .cli_config import config_option, load_settings
from .constants import DEMO_SCENES
from .errors import VideoGenError
from .loading import load_config
from .stopping import STOP_SIGNALS


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
@click.option("--no-api", is_flag=True, help="Do not start the HTTP API and dashboard.")
@click.option(
    "--run-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("var"),
    show_default=True,
    help="Where Redis data, logs and run files go.",
)
@config_option
@click.pass_context
def up_command(
    ctx: click.Context, demo: bool, no_flower: bool, no_api: bool, run_dir: Path
) -> None:
    """Start the whole stack on this machine and supervise it; Ctrl-C stops it cleanly.

    Redis (embedded unless VIDEOGEN_REDIS_URL or redis_url is set), a sandbox for every backend
    without an API key, the router worker, one worker per enabled backend (or per worker group:
    backends whose `worker` names it), the beat, Flower and the HTTP API with its dashboard
    (video_generation.api: host, port, tokens).
    A crashed child is restarted; SIGTERM, SIGINT or SIGHUP stop everything in order.
    """
    from .stack import Stack

    say = _UpLog(run_dir)
    stack = Stack(
        load_settings(ctx), run_dir=run_dir, flower=not no_flower, api=not no_api, say=say
    )
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
    from .cli_progress import PlainView, follow
    from .scenes import load_scene_file

    generator = VideoGenerator(load_config(stack.config_file), redis_url=stack.redis_url)
    scenes = load_scene_file(DEMO_SCENES)
    job_id = generator.submit(scenes)
    click.echo(f"demo job {job_id}: {len(scenes)} scenes from {DEMO_SCENES}")
    # Plain lines, never the live view: the supervisor prints beside it from another thread.
    results = follow(generator, job_id, 300, PlainView())
    print_results(results)
    stats = generator.get_statistics()["backends"]
    for name, s in stats.items():
        click.echo(f"  {name:<7} succeeded {s['succeeded']}, vendor jobs {s['vendor_jobs']}")
    return "ok" if all(r["success"] for r in results) else "some demo scenes failed"
