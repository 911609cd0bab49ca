"""``videogen api``: serve the HTTP API (:mod:`videogen.web`) with uvicorn."""

from __future__ import annotations

import click

from .cli_config import config_option, load_settings
from .errors import ConfigError, MissingExtraError


@click.command()
@click.option("--host", default=None, help="Address to listen on (default: api.host, loopback).")
@click.option("--port", type=int, default=None, help="Port (default: api.port, 8000).")
@config_option
@click.pass_context
def api_command(ctx: click.Context, host: str | None, port: int | None) -> None:
    """Serve the versioned HTTP API (/v1, OpenAPI at /v1/openapi.json). Bearer tokens come
    from video_generation.api.tokens; without any, it listens on loopback only."""
    settings = load_settings(ctx)
    api = settings.video_generation.api
    host = host or api.host
    try:
        import uvicorn

        from .web import create_app
        from .web.auth import check_bind
    except ImportError as error:
        missing = MissingExtraError("api", "`videogen api`", error.name or "fastapi")
        raise click.ClickException(str(missing)) from None
    try:
        app = create_app(settings)
        check_bind(host, app.state.tokens)
    except ConfigError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"API on http://{host}:{port or api.port}/v1 (OpenAPI: /v1/openapi.json)", err=True)
    uvicorn.run(app, host=host, port=port or api.port, log_level="info")
