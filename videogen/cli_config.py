"""``--config`` for every command, before or after its name, and the config it selects."""

from __future__ import annotations

import click

from .config import Settings
from .errors import VideoGenError
from .loading import load_config


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


def load_settings(ctx: click.Context) -> Settings:
    """The config of the command: ``--config PATH``, else ``$VIDEOGEN_CONFIG``, else
    ``config/config.json``, else the defaults; a bad one is one line on stderr."""
    root = ctx.find_root()
    try:
        return load_config((root.obj or {}).get("config_path"))
    except VideoGenError as error:
        raise click.ClickException(str(error)) from None
