"""``videogen cancel`` and ``videogen retry``: steer a submitted job (:mod:`.jobcontrol`)."""

from __future__ import annotations

from typing import Any

import click

from .cli_client import _client, _dump, _generator
from .cli_config import config_option


@click.command()
@click.argument("job_id")
@click.argument("scenes", nargs=-1)
@click.option("--reason", default="", help="Why (kept as each scene's error).")
@click.option("--json", "as_json", is_flag=True)
@config_option
@click.pass_context
@_client
def cancel_command(
    ctx: click.Context, job_id: str, scenes: tuple[str, ...], reason: str, as_json: bool
) -> None:
    """Cancel a job's waiting and running scenes (all, or the SCENES named by id or index).
    Running vendor jobs are cancelled at the vendor and their slots come back; finished
    scenes stay as they are."""
    report = _generator(ctx).cancel(job_id, list(scenes) or None, reason=reason)
    if as_json:
        _dump(report)
        return
    _say("cancelled", report)
    if report["vendor_jobs"]:
        click.echo(f"vendor jobs being cancelled: {', '.join(report['vendor_jobs'])}")


@click.command()
@click.argument("job_id")
@click.argument("scenes", nargs=-1)
@click.option(
    "--failed", is_flag=True, help="Every failed or cancelled scene (the default with no SCENES)."
)
@click.option("--json", "as_json", is_flag=True)
@config_option
@click.pass_context
@_client
def retry_command(
    ctx: click.Context, job_id: str, scenes: tuple[str, ...], failed: bool, as_json: bool
) -> None:
    """Send a job's failed or cancelled scenes (all, or the SCENES named) back through
    routing, every backend open to them again, their history kept."""
    if failed and scenes:
        raise click.UsageError("name SCENES or give --failed, not both")
    report = _generator(ctx).retry(job_id, list(scenes) or None)
    if as_json:
        _dump(report)
        return
    _say("sent back to the backlog", report)


def _say(what: str, report: dict[str, Any]) -> None:
    click.echo(f"{what}: {len(report['done'])} scene(s) {' '.join(report['done'])}".rstrip())
    if report["untouched"]:
        click.echo(f"left as they were: {' '.join(report['untouched'])}")
