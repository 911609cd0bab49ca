"""``videogen sandbox``: serve every vendor sandbox on loopback until Ctrl-C.

Only running the command imports the web stack (the ``sandbox`` extra): ``videogen --help``
and every other command load this module without it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from videogen.errors import MissingExtraError
from videogen.sandbox.defaults import DEFAULT_KEYS, SANDBOX_NAMES
from videogen.stopping import stop_event

if TYPE_CHECKING:
    from videogen.sandbox.server import SandboxServer


def _ports(port_base: int | None, names: list[str]) -> dict[str, int]:
    """``--port-base N``: backend i of SANDBOX_NAMES gets port N + i, so ports stay stable."""
    if port_base is None:
        return {}
    return {name: port_base + SANDBOX_NAMES.index(name) for name in names}


def _describe(servers: dict[str, SandboxServer]) -> None:
    for name, server in servers.items():
        key = DEFAULT_KEYS[name] or "(no key: ComfyUI has no auth)"
        click.echo(f"{name:<7} {server.base_url:<45} key: {key}")
    click.echo("")
    click.echo(
        "Point videogen at them: in config.json set video_generation.backends.<name>.base_url"
    )
    click.echo("to the URL above and api_key to its key (or export VIDEOGEN_<NAME>_API_KEY).")
    click.echo(
        "Control: GET /__sandbox__/records, POST /__sandbox__/knobs {...}, POST /__sandbox__/reset."
    )
    click.echo("Press Ctrl-C to stop.")


@click.command("sandbox")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option(
    "--port-base", type=int, default=None, help="First port; backends use consecutive ports."
)
@click.option(
    "--only",
    "only",
    multiple=True,
    type=click.Choice(SANDBOX_NAMES),
    help="Serve only these backends (repeatable).",
)
def sandbox_command(host: str, port_base: int | None, only: tuple[str, ...]) -> None:
    """Serve local stand-ins for the vendor APIs (svd/ComfyUI, runway, luma, pika/fal)."""
    names = list(only) or list(SANDBOX_NAMES)
    try:
        from videogen.sandbox import start_sandboxes

        servers = start_sandboxes(names, ports=_ports(port_base, names), host=host)
    except MissingExtraError as exc:
        raise click.ClickException(str(exc)) from None
    except OSError as exc:
        raise click.ClickException(f"could not start the sandboxes: {exc}") from exc
    _describe(servers)
    stop = stop_event()
    try:
        stop.wait()
        click.echo("Stopping the sandboxes.")
    finally:
        for server in servers.values():
            server.stop()
