"""Building :class:`~videogen.config.Settings` from the config file and the environment.

The environment is read one way: from the ``env`` mapping handed to :func:`load_config` or
:func:`build_settings` (``os.environ`` by default), never behind its back. For every value,
the environment wins over the file, and the file over the defaults:

- the file: ``--config PATH``, else ``$VIDEOGEN_CONFIG``, else ``config/config.json`` if it
  exists, else built-in defaults (:data:`~videogen.config.DEFAULT_BACKENDS`);
- ``$VIDEOGEN_REDIS_URL`` and ``$VIDEOGEN_OUTPUT_DIR`` over ``redis_url`` and ``output_dir``;
- each backend's key (:mod:`videogen.api_keys`) and ``$VIDEOGEN_<NAME>_BASE_URL``;
- ``$VIDEOGEN_SANDBOX_HOST`` last (:mod:`videogen.sandbox_host`);
- each HTTP API token from the variable its ``token_env`` names, and a full and a read token
  from ``$VIDEOGEN_API_TOKEN`` and ``$VIDEOGEN_API_READ_TOKEN``;
- each webhook's signing secret from the variable its ``secret_env`` names (unset: its
  deliveries fail, visibly, where no secret is found; a client that only submits needs none).

Relative paths in a file are resolved against the file's folder, so every worker agrees on them.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import SecretStr, ValidationError

from .api_keys import resolve_key
from .backends import backend_class, known_backends
from .config import (
    DEFAULT_BACKENDS,
    ApiToken,
    BackendSettings,
    Settings,
    TokenScope,
    VideoGenerationSettings,
)
from .constants import CONFIG_ENV, DEFAULT_CONFIG_PATH
from .errors import ConfigError
from .sandbox_host import sandboxed

ENV_OVERRIDES = {"redis_url": "VIDEOGEN_REDIS_URL", "output_dir": "VIDEOGEN_OUTPUT_DIR"}
"""Top-level settings the environment overrides (an empty variable counts as unset)."""


def config_path(explicit: str | os.PathLike[str] | None, env: Mapping[str, str]) -> Path | None:
    """``--config PATH``, else ``$VIDEOGEN_CONFIG``, else ``config/config.json`` if it exists."""
    if explicit is not None:
        return Path(explicit)
    if env.get(CONFIG_ENV):
        return Path(env[CONFIG_ENV])
    default = Path(DEFAULT_CONFIG_PATH)
    return default if default.exists() else None


def load_config(
    path: str | os.PathLike[str] | None = None, *, env: Mapping[str, str] | None = None
) -> Settings:
    """Read and validate the config file (see :func:`config_path`) plus the environment."""
    env = os.environ if env is None else env
    where = config_path(path, env)
    if where is None:
        return build_settings({}, env=env, source="<defaults>")
    where = where.resolve()
    return build_settings(_read_json(where), env=env, source=str(where), base_dir=where.parent)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"cannot read config {path}: {error.strerror}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise ConfigError(f"{path}: not valid JSON (line {error.lineno}: {error.msg})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a JSON object")
    return data


def build_settings(
    raw: Mapping[str, Any],
    *,
    env: Mapping[str, str] | None = None,
    source: str = "<dict>",
    base_dir: Path | None = None,
) -> Settings:
    """Validate a config mapping (the parsed ``config.json``) into :class:`Settings`.

    Relative paths in it are resolved against ``base_dir`` (the config file's folder; the
    current folder for a mapping handed over in code).
    """
    env = os.environ if env is None else env
    data = absolute_paths(raw, base_dir or Path.cwd())
    data.update({key: env[var] for key, var in ENV_OVERRIDES.items() if env.get(var)})
    section = dict(data.get("video_generation") or {})
    backends_raw = section.pop("backends", DEFAULT_BACKENDS)
    if not isinstance(backends_raw, Mapping):
        raise ConfigError(f"{source}: video_generation.backends must be an object")
    if not backends_raw:
        raise ConfigError(f"{source}: video_generation.backends is empty: configure one or more")
    try:
        backends = {name: _backend_settings(name, cfg, env) for name, cfg in backends_raw.items()}
        vg = VideoGenerationSettings(**section, backends=backends)
        data["video_generation"] = _api_tokens(_webhook_secrets(vg, env), env)
        return Settings(**data, source=source)
    except ValidationError as error:
        raise ConfigError(f"{source}: {_explain(error)}") from None


def absolute_paths(raw: Mapping[str, Any], base_dir: Path) -> dict[str, Any]:
    """A copy of a raw config whose relative file paths are made absolute against ``base_dir``
    (``output_dir`` and each backend's ``path_fields``); anything malformed is left for the
    validation that follows to name."""
    data = dict(raw)
    section = data.get("video_generation")
    if not isinstance(section, Mapping):
        return data
    section = dict(section)
    if isinstance(section.get("output_dir"), str):
        section["output_dir"] = str(base_dir / section["output_dir"])
    backends = section.get("backends")
    if isinstance(backends, Mapping):
        section["backends"] = {n: _absolute_backend(n, c, base_dir) for n, c in backends.items()}
    data["video_generation"] = section
    return data


def _absolute_backend(name: str, cfg: Any, base_dir: Path) -> Any:
    if name not in known_backends() or not isinstance(cfg, Mapping):
        return cfg
    fields = backend_class(name).settings_model.path_fields
    return {
        key: str(base_dir / value) if key in fields and isinstance(value, str) else value
        for key, value in cfg.items()
    }


def _backend_settings(name: str, cfg: Any, env: Mapping[str, str]) -> BackendSettings:
    if name not in known_backends():
        raise ConfigError(
            f"unknown backend {name!r} in video_generation.backends "
            f"(known: {', '.join(known_backends())})"
        )
    if not isinstance(cfg, Mapping):
        raise ConfigError(f"video_generation.backends.{name} must be an object")
    model = backend_class(name).settings_model
    values = dict(cfg)
    file_key = values.pop("api_key", None)
    try:
        settings = model(**values)
    except ValidationError as error:
        raise ConfigError(f"video_generation.backends.{name}: {_explain(error)}") from None
    key, why = resolve_key(name, file_key, model.key_env, env, model.key_pair_env)
    problem = None if key is None else model.key_problem(key.get_secret_value())
    if problem is not None:
        key, why = None, f"the key ({why}) is not usable: {problem}"
    settings = settings.model_copy(update={"api_key": key, "key_source": why})
    return sandboxed(name, _base_url_from_env(name, settings, env), env)


def _webhook_secrets(
    vg: VideoGenerationSettings, env: Mapping[str, str]
) -> VideoGenerationSettings:
    """Each webhook's secret (and the per-job one) from its ``secret_env``, unless the file
    gives it."""

    def read(name: str | None) -> SecretStr | None:
        return SecretStr(env[name]) if name and env.get(name) else None

    hooks = [
        h if h.secret else h.model_copy(update={"secret": read(h.secret_env)}) for h in vg.webhooks
    ]
    delivery = vg.webhook_delivery
    if delivery.job_secret is None:
        delivery = delivery.model_copy(update={"job_secret": read(delivery.job_secret_env)})
    return vg.model_copy(update={"webhooks": hooks, "webhook_delivery": delivery})


ENV_TOKENS = {"VIDEOGEN_API_TOKEN": TokenScope.FULL, "VIDEOGEN_API_READ_TOKEN": TokenScope.READ}
"""Tokens given by the environment alone (a container's secrets), beside the file's."""


def _api_tokens(vg: VideoGenerationSettings, env: Mapping[str, str]) -> VideoGenerationSettings:
    """Each API token from its ``token_env``, unless the file gives it (unset: that token is
    missing, and ``videogen api`` refuses to start, naming it); plus a full and a read token
    from ``$VIDEOGEN_API_TOKEN`` and ``$VIDEOGEN_API_READ_TOKEN`` when they are set."""
    tokens = [
        t
        if t.token is not None or not env.get(t.token_env or "")
        else t.model_copy(update={"token": SecretStr(env[t.token_env or ""])})
        for t in vg.api.tokens
    ]
    tokens += [
        ApiToken(name=var, token=SecretStr(env[var]), token_env=var, scope=scope)
        for var, scope in ENV_TOKENS.items()
        if env.get(var, "").strip()
    ]
    return vg.model_copy(update={"api": vg.api.model_copy(update={"tokens": tokens})})


def _base_url_from_env(
    name: str, settings: BackendSettings, env: Mapping[str, str]
) -> BackendSettings:
    """``$VIDEOGEN_<NAME>_BASE_URL`` over the file's ``base_url``."""
    url = env.get(f"VIDEOGEN_{name.upper()}_BASE_URL", "").strip()
    if not url:
        return settings
    if not url.startswith(("http://", "https://")):
        raise ConfigError(f"VIDEOGEN_{name.upper()}_BASE_URL must start with http(s)://")
    return settings.model_copy(update={"base_url": url.rstrip("/")})


def _explain(error: ValidationError) -> str:
    parts = []
    for item in error.errors():
        where = ".".join(str(p) for p in item["loc"]) or "(top level)"
        parts.append(f"{where}: {item['msg']}")
    return "; ".join(parts)
