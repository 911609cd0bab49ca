"""The ``videogen`` command line (a thin edge: parse, call the library, print).

Every command reads its config from ``--config PATH``, else ``$VIDEOGEN_CONFIG``, else
``config/config.json``.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from . import cli_api, cli_client, cli_jobs, cli_processes, cli_up
from .backends import create_backend
from .cli_config import config_option, load_settings
from .config import Settings
from .errors import BackendError, CapabilityError, MissingExtraError, VideoGenError
from .logs import setup_logging
from .models import Scene
from .sandbox.cli import sandbox_command


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="Config file (default: $VIDEOGEN_CONFIG, else config/config.json).",
)
@click.version_option(package_name="videogen")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None) -> None:
    """Generate video scene by scene across many AI video backends."""
    if ctx.invoked_subcommand not in ("worker", "beat", "flower"):  # Celery sets those up
        setup_logging(os.environ.get("VIDEOGEN_LOG_LEVEL", "WARNING"))
    ctx.obj = {"config_path": config_path}


@contextmanager
def _maybe_sandboxed(settings: Settings, sandbox: bool) -> Iterator[Settings]:
    """With ``--sandbox``, every backend talks to a local sandbox started for this command."""
    if not sandbox:
        yield settings
        return
    from .sandbox import DEFAULT_KEYS

    try:
        from .sandbox import start_sandboxes
    except MissingExtraError as error:
        raise click.ClickException(str(error)) from None
    servers = start_sandboxes(list(settings.video_generation.backends))
    try:
        for name, server in servers.items():
            settings = settings.pointed_at(name, server.base_url, DEFAULT_KEYS.get(name))
        yield settings
    finally:
        for server in servers.values():
            server.stop()


def _emit(data: Any, as_json: bool, text: str) -> None:
    click.echo(json.dumps(data, indent=2, default=str) if as_json else text)


@cli.command("config")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@config_option
@click.pass_context
def config_command(ctx: click.Context, as_json: bool) -> None:
    """Validate the config and show what each backend will use (keys are never shown)."""
    settings = load_settings(ctx)
    rows = settings.describe()
    lines = [f"config: {settings.source}", f"strategy: {rows['strategy']}"]
    for name, row in rows["backends"].items():
        state = "enabled" if row["enabled"] else "disabled"
        lines.append(
            f"  {name:<7} {state:<8} priority={row['priority']} "
            f"max_concurrent_tasks={row['max_concurrent_tasks']} url={row['base_url']}\n"
            f"          key: {row['key']}"
        )
    _emit(rows, as_json, "\n".join(lines))


@cli.command("probe")
@click.argument("backends", nargs=-1)
@click.option("--sandbox", is_flag=True, help="Probe local sandboxes instead of the vendors.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@config_option
@click.pass_context
def probe_command(
    ctx: click.Context, backends: tuple[str, ...], sandbox: bool, as_json: bool
) -> None:
    """Run each backend's cheap health probe (never a paid generation), right now."""
    settings = load_settings(ctx)
    names = backends or tuple(settings.video_generation.enabled_backends())
    with _maybe_sandboxed(settings, sandbox) as settings:
        reports = []
        for name in names:
            with create_backend(name, _backend_settings(settings, name)) as backend:
                reports.append(backend.health_check())
    for report in reports:
        if not as_json:
            mark = "healthy  " if report.healthy else "UNHEALTHY"
            click.echo(f"{report.backend:<7} {mark} {report.latency_ms:7.1f} ms  {report.detail}")
    if as_json:
        click.echo(json.dumps([r.model_dump() for r in reports], indent=2))
    if not all(r.healthy for r in reports):
        sys.exit(1)


def _backend_settings(settings: Settings, name: str) -> Any:
    try:
        return settings.backend(name)
    except VideoGenError as error:
        raise click.ClickException(str(error)) from None


@cli.command("generate")
@click.option(
    "--backend", "-b", required=True, help="A backend the config names: svd, runway, kling..."
)
@click.option("--prompt", "-p", default="", help="What happens in the scene.")
@click.option("--image", help="First frame: a file or an http(s) URL.")
@click.option("--duration", type=float, default=5.0, show_default=True, help="Seconds.")
@click.option("--resolution", help="WIDTHxHEIGHT, e.g. 1280x720.")
@click.option("--aspect-ratio", help="W:H, e.g. 16:9 (when no resolution).")
@click.option("--seed", type=int)
@click.option("--negative-prompt")
@click.option("--style")
@click.option("--out", "-o", type=click.Path(dir_okay=False), help="Where to store the video.")
@click.option("--sandbox", is_flag=True, help="Use a local sandbox instead of the vendor.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@config_option
@click.pass_context
def generate_command(ctx: click.Context, /, **options: Any) -> None:
    """Generate one scene on one backend, directly (no queue, no failover)."""
    scene = _scene_from(options)
    settings = load_settings(ctx)
    name = options["backend"]
    out = Path(options["out"] or settings.outputs / f"{name}-{scene.seed or 'scene'}.mp4")
    with _maybe_sandboxed(settings, options["sandbox"]) as settings:
        with create_backend(name, _backend_settings(settings, name)) as backend:
            try:
                result = backend.generate_video(scene, out)
            except (BackendError, CapabilityError) as error:
                raise click.ClickException(str(error)) from None
    video = result.video
    _emit(
        result.model_dump(mode="json"),
        options["as_json"],
        f"{video.path}: {video.width}x{video.height}, {video.frames} frames, "
        f"{video.duration:.2f} s ({result.backend} job {result.job.job_id}, "
        f"{result.seconds:.1f} s, ~${result.request.estimated_cost_usd:.2f})",
    )


def _scene_from(options: dict[str, Any]) -> Scene:
    keys = ("prompt", "image", "duration", "resolution", "aspect_ratio", "seed")
    data = {k: options[k] for k in keys if options[k] is not None}
    for key in ("negative_prompt", "style"):
        if options[key]:
            data[key] = options[key]
    try:
        return Scene.model_validate(data)
    except ValueError as error:
        raise click.ClickException(f"invalid scene: {error}") from None


cli.add_command(sandbox_command, "sandbox")
cli.add_command(cli_client.film_command, "film")
cli.add_command(cli_client.submit_command, "submit")
cli.add_command(cli_client.status_command, "status")
cli.add_command(cli_client.health_command, "health")
cli.add_command(cli_client.stats_command, "stats")
cli.add_command(cli_jobs.cancel_command, "cancel")
cli.add_command(cli_jobs.retry_command, "retry")
cli.add_command(cli_client.webhooks_command, "webhooks")
cli.add_command(cli_processes.worker_command, "worker")
cli.add_command(cli_processes.beat_command, "beat")
cli.add_command(cli_processes.flower_command, "flower")
cli.add_command(cli_up.up_command, "up")
cli.add_command(cli_processes.metrics_command, "metrics")
cli.add_command(cli_api.api_command, "api")


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="videogen")
