"""Client commands of the running stack: ``submit``, ``status``, ``health``, ``stats``,
``webhooks``.
Thin: parse, call the library, print.
"""

from __future__ import annotations

import functools
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

import click

from .cli_config import config_option, load_settings
from .errors import SceneValidationError, VideoGenError

if TYPE_CHECKING:
    from .record import SceneRecord

REDIS_CHECK_TIMEOUT = 3.0
"""Seconds a client command waits for Redis before it says it cannot reach it."""
P = ParamSpec("P")
R = TypeVar("R")


def _generator(ctx: click.Context) -> Any:
    """A client of the running stack: fails within seconds, with the reason, when Redis does
    not answer, and says in one line where this config differs from the stack's."""
    from .api import VideoGenerator
    from .redis_conn import check_reachable

    settings = load_settings(ctx)
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


def _priority(ctx: click.Context, param: click.Parameter, value: str) -> int:
    """``--priority``, checked before anything is read or enqueued; a bad value is one line
    naming the option (exit code 1, like a bad scene file), not a usage screen."""
    from .scheduler import MAX_PRIORITY, MIN_PRIORITY, check_priority

    try:
        return check_priority(int(value))
    except ValueError as error:
        why = (
            str(error)
            if isinstance(error, VideoGenError)
            else f"{value!r} is not a whole number from {MIN_PRIORITY} to {MAX_PRIORITY}"
        )
        raise click.ClickException(f"--priority: {why}") from None


@click.command()
@click.argument("scene_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--wait", is_flag=True, help="Wait for every scene, showing progress.")
@click.option(
    "--timeout", type=float, default=None, help="Give up waiting after this many seconds."
)
@click.option(
    "--priority",
    default="0",
    metavar="N",
    callback=_priority,
    show_default=True,
    help="-100..100: higher goes first; jobs of one priority share the backends.",
)
@click.option(
    "--strategy",
    type=click.Choice(["earliest_finish", "cheapest", "priority", "round_robin"]),
    help="This job's strategy instead of the config's.",
)
@click.option(
    "--deadline",
    type=float,
    metavar="SECONDS",
    help="Every scene should be done this long after the submit (cheapest: spend more only "
    "to meet it).",
)
@click.option("--max-cost", type=float, metavar="USD", help="The job's budget.")
@click.option(
    "--max-cost-per-second",
    type=float,
    metavar="USD",
    help="Skip backends dearer than this per output second.",
)
@click.option(
    "--webhook",
    metavar="URL",
    help="Send this job's events (scene succeeded, failed, cancelled; job finished) to URL.",
)
@click.option(
    "--webhook-secret-env",
    metavar="NAME",
    help="The variable holding --webhook's signing secret (default: the config's job secret).",
)
@click.option(
    "--film",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="OUT",
    help="Wait, then stitch the scenes into one MP4 at OUT (like `videogen film`).",
)
@click.option(
    "--no-cache",
    is_flag=True,
    help="Generate every scene anew: reuse no stored video, let no duplicate wait for another.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON (the job id, or the results).")
@config_option
@click.pass_context
@_client
def submit_command(
    ctx: click.Context,
    scene_file: Path,
    wait: bool,
    timeout: float | None,
    priority: int,
    strategy: str | None,
    deadline: float | None,
    max_cost: float | None,
    max_cost_per_second: float | None,
    webhook: str | None,
    webhook_secret_env: str | None,
    film: Path | None,
    no_cache: bool,
    as_json: bool,
) -> None:
    """Validate SCENE_FILE (a JSON list of scenes) and enqueue every scene.

    Nothing is enqueued unless every scene is valid and some enabled backend can take it
    (within --max-cost-per-second). A scene whose cost would take spend past a budget
    (--max-cost, or the config's) fails naming it (or waits: `on_budget: wait`).
    A scene identical to one already generated reuses its video at no cost (--no-cache:
    generate anew); identical scenes in the file make one vendor job.
    With --wait, a terminal shows a live view (a bar with the ETA, the running scenes);
    other output gets a line per scene state change and a job summary every 10 s.
    --film OUT waits too, then makes the job's film (when every scene succeeded).
    """
    from .scenes import load_scene_file

    try:
        scenes = load_scene_file(scene_file)
    except SceneValidationError as error:
        raise click.ClickException(str(error)) from None
    generator = _generator(ctx)
    try:
        job_id = generator.submit(
            scenes,
            priority=priority,
            strategy=strategy,
            deadline=deadline,
            max_cost_usd=max_cost,
            max_cost_per_second=max_cost_per_second,
            webhook=webhook,
            webhook_secret=_webhook_secret(webhook_secret_env),
            cache=not no_cache,
        )
    except VideoGenError as error:
        raise click.ClickException(str(error)) from None
    if not wait and film is None:
        _dump({"job_id": job_id, "scenes": len(scenes)}) if as_json else click.echo(job_id)
        return
    if not as_json:
        click.echo(f"job {job_id}: {len(scenes)} scenes")
    results = _follow(generator, job_id, timeout, quiet=as_json)
    if film is not None:
        _finish_with_film(generator, job_id, results, film, as_json)
        return
    _dump({"job_id": job_id, "results": results}) if as_json else print_results(results)
    if not all(r["success"] for r in results):
        sys.exit(1)


def _webhook_secret(name: str | None) -> str | None:
    """``--webhook-secret-env``'s value: read from the environment, so that the secret is
    never on a command line (where ``ps`` shows it)."""
    import os

    if name is None:
        return None
    value = os.environ.get(name)
    if not value:
        raise click.ClickException(f"--webhook-secret-env: ${name} is not set")
    return value


def _finish_with_film(
    generator: Any, job_id: str, results: list[dict[str, Any]], dest: Path, as_json: bool
) -> None:
    """``submit --film``: the results, then the film, or why there is none (exit code 1)."""
    report, problem = None, None
    try:
        report = generator.film(job_id, dest)
    except VideoGenError as error:  # the results are shown all the same
        problem = str(error)
    if as_json:
        _dump({"job_id": job_id, "results": results, "film": report})
    else:
        print_results(results)
        if report is not None:
            print_film(report)
    if problem is not None:
        click.echo(f"film not made: {problem}", err=True)
    if problem is not None or not all(r["success"] for r in results):
        sys.exit(1)


@click.command()
@click.argument("job_id")
@click.option(
    "-o",
    "--out",
    "dest",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the film (an MP4).",
)
@click.option(
    "--crossfade",
    type=float,
    default=0.0,
    show_default=True,
    metavar="SECONDS",
    help="Blend each scene into the next over this long (at most half the shortest scene).",
)
@click.option(
    "--skip-failed",
    is_flag=True,
    help="Leave out scenes that did not succeed (listed on stderr) instead of refusing.",
)
@click.option(
    "--size",
    metavar="WxH",
    help="The film's frame size (default: the most common scene size, the largest on a tie).",
)
@click.option(
    "--fps",
    type=float,
    metavar="N",
    help="The film's frame rate (default: the most common among the scenes).",
)
@click.option("--json", "as_json", is_flag=True, help="Print what was made as JSON.")
@config_option
@click.pass_context
@_client
def film_command(
    ctx: click.Context,
    job_id: str,
    dest: Path,
    crossfade: float,
    skip_failed: bool,
    size: str | None,
    fps: float | None,
    as_json: bool,
) -> None:
    """Stitch a job's scenes, in order, into one MP4 (H.264).

    Every scene is scaled to fit one frame size with its aspect ratio kept and padded with
    black bars (never stretched), at one frame rate; audio is dropped. A job with scenes that
    did not succeed is refused, listing them, unless --skip-failed. The film is checked (one
    frame size, its length the scenes' less the crossfades) before it is written to OUT.
    """
    report = _generator(ctx).film(
        job_id, dest, crossfade=crossfade, skip_failed=skip_failed, size=size, fps=fps
    )
    for row in report["skipped"]:
        click.echo(
            f"skipped #{row['index']} {row['scene_id']} {row['state']}: {row['reason']}",
            err=True,
        )
    _dump(report) if as_json else print_film(report)


def print_film(report: dict[str, Any]) -> None:
    """What a film is made of, in two lines."""
    parts = ", ".join(f"#{p['index']} {p['size']} {p['duration']:g} s" for p in report["parts"])
    click.echo(
        f"film {report['path']}: {report['width']}x{report['height']}, {report['fps']:g} fps, "
        f"{report['duration']:.2f} s, {report['frames']} frames, crossfade "
        f"{report['crossfade']:g} s"
    )
    skipped = f"; skipped {len(report['skipped'])}" if report["skipped"] else ""
    click.echo(f"  {len(report['parts'])} parts: {parts}{skipped}")


def _follow(
    generator: Any, job_id: str, timeout: float | None, quiet: bool
) -> list[dict[str, Any]]:
    from .cli_progress import choose_view, follow

    terminal = sys.stdout.isatty()
    return follow(generator, job_id, timeout, choose_view(quiet, terminal))


def print_results(results: list[dict[str, Any]]) -> None:
    for r in results:
        if r["success"]:
            click.echo(
                f"  #{r['index']} ok   {r['backend_used']:<7} {r['effective_duration']} s "
                f"{r['effective_resolution']}  {r['video_path']}"
                + ("  (cached)" if r.get("cached") else "")
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
    """Show a job's scenes (state, backend, tries, file); without JOB_ID, list recent jobs.

    While a scene waits: its place in the backlog, its expected start and finish; for the
    job, its expected completion (ETA).
    """
    generator = _generator(ctx)
    if job_id is None:
        jobs = generator.store.recent_jobs()
        _dump(jobs) if as_json else click.echo("\n".join(jobs) or "no jobs yet")
        return
    records = generator.records(job_id)
    if not records:
        raise click.ClickException(f"no job {job_id!r}")
    forecast = generator.job_forecast(job_id)
    if as_json:
        job = {key: value for key, value in forecast.items() if key != "scenes"}
        _dump({**job, "scenes": generator.job_status(job_id)})
        return
    _print_status(generator, forecast, records)


def _print_status(generator: Any, forecast: dict[str, Any], records: list[SceneRecord]) -> None:
    """The job's summary line, then per scene its line, its failed tries and its file."""
    from .progress import JobView, job_line, scene_line

    job, now = JobView.of(forecast), time.time()
    click.echo(job_line(job, now))
    cost = forecast["cost"]
    budget = f" of a ${cost['budget_usd']:.2f} budget" if cost["budget_usd"] else ""
    held = f", held ${cost['held']:.2f}" if cost["held"] else ""
    click.echo(
        f"  cost: estimated ${cost['estimated']:.2f}{budget}; settled ${cost['settled']:.2f}, "
        f"reserved ${cost['reserved']:.2f}{held}"
    )
    for scene, record in zip(job.scenes, records, strict=True):
        click.echo(f"  {scene_line(scene, now)}")
        for attempt in generator.store.attempts(record.id):
            click.echo(f"      tried {attempt['backend']}: {attempt['error']}")
        if record.result:
            click.echo(f"      file: {record.result['video_path']}")
        if record.spent:
            click.echo(f"      cost: ${record.spent / 1e6:.2f}")
        if record.blocked and not record.finished:
            click.echo(f"      waiting: {record.blocked}")


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
        # A disabled backend is never probed: not being healthy says nothing about it.
        mark = "healthy" if s["healthy"] else "UNHEALTHY" if s["enabled"] else "-"
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
    """Per-backend statistics: success rate, latency, errors, retries, failovers, and money
    (settled, reserved, budgets, saved) per UTC day, month and all time."""
    stats = _generator(ctx).get_statistics()
    if as_json:
        _dump(stats)
        return
    click.echo(
        f"healthy backends: {stats['healthy_backends']}, active tasks: "
        f"{stats['total_active_tasks']}, sent and not started: {stats['total_queued_tasks']}, "
        f"backlog: {stats['backlog']}"
    )
    for name, s in stats["backends"].items():
        rate = "-" if s["success_rate"] is None else f"{s['success_rate']:.0%}"
        latency = "-" if s["average_latency_s"] is None else f"{s['average_latency_s']:.1f} s"
        learned = f"{s['learned_job_seconds']:.1f} s" + (
            f" (from {s['job_time_samples']} jobs)" if s["job_time_samples"] else " (assumed)"
        )
        click.echo(
            f"  {name:<7} ok {s['succeeded']:>4}  failed {s['failed']:>3}  rate {rate:>4}  "
            f"latency {latency:>7}  errors {s['errors']}  retries {s['retries']}  "
            f"failovers {s['failovers']}  job time {learned}"
        )
        if s["orphans"]:
            click.echo(
                f"          orphans {s['orphans']} (${s['orphan_usd']:.2f}): cancelled "
                f"{s['orphans_cancelled']}, used {s['orphans_used']}, failed "
                f"{s['orphans_failed']}, paid twice {s['double_paid']}"
            )
    _print_spend(stats["spend"])
    _print_cache(stats["cache"])


def _print_cache(cache: dict[str, Any]) -> None:
    state = "" if cache["enabled"] else " (off)"
    click.echo(
        f"cache{state}: {cache['hits']} hits, {cache['misses']} misses, {cache['entries']} "
        f"videos ({cache['bytes_stored'] / 1e6:.1f} MB) stored, saved ${cache['saved_usd']:.2f}"
    )


def _money(row: dict[str, Any]) -> str:
    text = f"settled ${row.get('settled', 0):.2f}, reserved ${row.get('reserved', 0):.2f}"
    if row.get("held"):
        text += f" (held for ambiguous submits ${row['held']:.2f})"
    if row.get("budget_usd"):
        text += f", budget ${row['budget_usd']:.2f} ({row['used_fraction']:.0%} used)"
    return text


def _print_spend(spend: dict[str, Any]) -> None:
    """Money per period: everything, then each backend (USD; periods are UTC)."""
    total = spend["all"]
    click.echo(f"spend, all backends: saved ${total['total'].get('saved', 0):.2f} against "
               "the default strategy (earliest finish)")  # fmt: skip
    for period in ("day", "month", "total"):
        click.echo(f"  {total[period]['period']:<10} {_money(total[period])}")
    for name, rows in spend["backends"].items():
        click.echo(f"  {name:<7} today {_money(rows['day'])}; all time {_money(rows['total'])}")


@click.command()
@click.option("--dead", is_flag=True, help="Only deliveries that ran out of attempts.")
@click.option("--limit", type=int, default=20, show_default=True, help="How many to list.")
@click.option("--json", "as_json", is_flag=True)
@config_option
@click.pass_context
@_client
def webhooks_command(ctx: click.Context, dead: bool, limit: int, as_json: bool) -> None:
    """Webhook deliveries: per destination delivered, retrying and dead, with its latest
    error; then the latest deliveries (or, with --dead, those that ran out of attempts)."""
    generator = _generator(ctx)
    summary = generator.store.webhook_stats()
    rows = generator.webhook_deliveries(limit, dead=dead)
    if as_json:
        _dump({**summary, "deliveries": rows})
        return
    click.echo(f"webhooks: {summary['pending']} pending, {summary['dead']} dead")
    for url, s in summary["destinations"].items():
        click.echo(
            f"  {url}  delivered {s['delivered']}  retrying {s['retrying']}  dead {s['dead']}  "
            f"failed attempts {s['failed_attempts']}"
        )
        if s["last_error"]:
            click.echo(f"      last error{_age(s['last_error']['at'])}: {s['last_error']['error']}")
    click.echo("dead deliveries:" if dead else "latest deliveries:")
    for d in rows:
        error = f"  {d['last_error']}" if d.get("last_error") and d["state"] != "delivered" else ""
        click.echo(
            f"  {d['state']:<9} {d['attempts']} tries  {d['type']:<15} {d['event_id']}  "
            f"{d['url']}{error}"
        )
    if not rows:
        click.echo("  none")
