"""Typed configuration, built by :func:`load_config` (never an import-time global).

The file keeps the original design's keys (``video_generation.load_balancing``,
``fallback_enabled``, ``backends.<name>.{enabled, priority, max_concurrent_tasks, base_url,
api_key, timeout}``); each backend module adds its own typed keys through its settings class.
API keys may also come from the environment: ``VIDEOGEN_<NAME>_API_KEY`` first, then the
vendor SDK's own variable (``RUNWAYML_API_SECRET``, ``LUMAAI_API_KEY``, ``FAL_KEY``), then the
file. A placeholder such as ``your_runway_api_key`` counts as no key, and says so.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path
from typing import Any, ClassVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from .constants import (
    CONFIG_ENV,
    DEFAULT_CONFIG_PATH,
    DEFAULT_REDIS_URL,
    HTTP_TIMEOUT_SECONDS,
    MAX_VIDEO_BYTES,
    SANDBOX_HOST_ENV,
    SANDBOX_PORT_BASE,
)
from .errors import ConfigError

_PLACEHOLDER = re.compile(
    r"^(your[_-].*|<.*>|\$\{.*\}|changeme|change[_-]me|replace[_-]?me|xxx+|todo|none|null|)$",
    re.IGNORECASE,
)


DEFAULT_BACKENDS: dict[str, dict[str, Any]] = {
    "svd": {"priority": 1, "max_concurrent_tasks": 2},
    "runway": {"priority": 2, "max_concurrent_tasks": 3},
    "pika": {"priority": 3, "max_concurrent_tasks": 2},
    "luma": {"priority": 4, "max_concurrent_tasks": 2},
}
"""The original design's backends, used when a config names none (or there is no file)."""


def is_placeholder(value: str) -> bool:
    """True for values that only stand in for a key (``your_runway_api_key``, ``<key>``, ``""``)."""
    return bool(_PLACEHOLDER.match(value.strip()))


class Strategy(StrEnum):
    PRIORITY = "priority"
    ROUND_ROBIN = "round_robin"
    LEAST_LOADED = "least_loaded"


class BackendSettings(BaseModel):
    """Keys every backend has; backend modules subclass this for their own."""

    model_config = ConfigDict(extra="forbid", validate_default=True)

    path_fields: ClassVar[tuple[str, ...]] = ()
    """Keys holding file paths: relative ones are resolved against the config file's folder."""

    enabled: bool = True
    priority: int = Field(default=100, ge=0)
    """Lower numbers are tried first."""
    max_concurrent_tasks: int = Field(default=1, ge=1, le=1000)
    """In-flight vendor jobs allowed at once, across all workers."""
    base_url: str | None = None
    """Overrides the vendor host (a sandbox, a proxy, a self-hosted ComfyUI)."""
    api_key: SecretStr | None = None
    timeout: float = Field(default=600.0, gt=0)
    """Seconds one generation may take, from submit to a stored file."""
    request_timeout: float = Field(default=HTTP_TIMEOUT_SECONDS, gt=0)
    """Seconds one HTTP request may take."""
    poll_interval: float = Field(default=5.0, gt=0)
    """Seconds between status polls (Runway: expect no update more often than every 5 s)."""
    max_download_bytes: int = Field(default=MAX_VIDEO_BYTES, gt=0)

    key_source: str = Field(default="none", exclude=True)
    """Where the key came from (``env:FAL_KEY``, ``file``), or why there is none."""

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"base_url {value!r} must start with http:// or https://")
        return value.rstrip("/")

    @property
    def has_key(self) -> bool:
        return self.api_key is not None


class VideoGenerationSettings(BaseModel):
    """The ``video_generation`` section of ``config.json``."""

    model_config = ConfigDict(extra="forbid")

    load_balancing: bool = False
    """Original design's switch: ``true`` means the ``least_loaded`` strategy."""
    fallback_enabled: bool = True
    """Re-route a scene to the next backend when one fails it."""
    strategy: Strategy | None = None
    output_dir: str = "output"
    """Relative to the config file's folder (to the current folder without a file)."""
    health_check_interval: float = Field(default=30.0, gt=0)
    """Seconds between health probes of every backend (celery beat)."""
    health_check_crontab: str | None = Field(default=None, pattern=r"^\S+( \S+){4}$")
    """Instead of the interval, a crontab (``"*/5 * * * *"``: minute hour day month weekday)."""
    sweep_interval: float = Field(default=10.0, gt=0)
    """Seconds between sweeps for scenes whose worker or router died."""
    lease_ttl: float = Field(default=60.0, gt=0)
    """Seconds a worker's slot lasts unrenewed; a dead worker's scene resumes after this."""
    route_claim_timeout: float = Field(default=30.0, gt=0)
    """A scene pending this long after a router took it (or with its message gone) is routed
    again: the router died mid-task."""
    route_wait_limit: float = Field(default=600.0, ge=0)
    """Seconds a scene waits for a capable backend that is down (unhealthy, circuit open)
    before it fails; scenes no backend could ever take fail at once."""
    max_retries: int = Field(default=3, ge=0)
    max_attempts: int = Field(default=10, ge=1)
    """Failed tries a scene gets, across backends and retries, before it fails for good."""
    """Transient errors retried on the same backend before failing over."""
    retry_base_delay: float = Field(default=1.0, ge=0)
    circuit_failure_threshold: int = Field(default=3, ge=1)
    """Consecutive failures (jobs or probes) that stop routing to a backend."""
    circuit_cooldown: float = Field(default=30.0, ge=0)
    backends: dict[str, BackendSettings] = Field(default_factory=dict)

    @property
    def effective_strategy(self) -> Strategy:
        if self.strategy is not None:
            return self.strategy
        return Strategy.LEAST_LOADED if self.load_balancing else Strategy.PRIORITY

    def enabled_backends(self) -> list[str]:
        """Enabled backend names, by priority (ties keep file order)."""
        names = [name for name, b in self.backends.items() if b.enabled]
        return sorted(names, key=lambda name: self.backends[name].priority)


class Settings(BaseSettings):
    """Everything videogen reads at start; environment (``VIDEOGEN_*``) overrides the file."""

    model_config = SettingsConfigDict(env_prefix="VIDEOGEN_", extra="ignore")

    video_generation: VideoGenerationSettings = Field(default_factory=VideoGenerationSettings)
    redis_url: str | None = None
    """External Redis; when unset, ``videogen up`` starts an embedded one."""
    output_dir: str | None = None
    """Overrides ``video_generation.output_dir``."""
    source: str = Field(default="<defaults>", exclude=True)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (env_settings, init_settings)

    @property
    def outputs(self) -> Path:
        """Where videos go: always absolute, so every worker and result agrees on it."""
        return Path(self.output_dir or self.video_generation.output_dir).resolve()

    def backend(self, name: str) -> BackendSettings:
        try:
            return self.video_generation.backends[name]
        except KeyError:
            known = ", ".join(self.video_generation.backends) or "none"
            raise ConfigError(f"unknown backend {name!r} (configured: {known})") from None

    @property
    def redis(self) -> str:
        """The Redis URL: ``$VIDEOGEN_REDIS_URL``, else ``redis_url``, else the embedded one's."""
        return self.redis_url or DEFAULT_REDIS_URL

    def base_url(self, name: str) -> str:
        """The endpoint backend ``name`` talks to: its configured one, else the vendor's."""
        from .backends import backend_class

        return self.backend(name).base_url or backend_class(name).default_base_url

    def pointed_at(self, name: str, base_url: str, api_key: str | None) -> Settings:
        """A copy whose backend ``name`` talks to ``base_url`` with ``api_key`` (a sandbox)."""
        backend = self.backend(name).model_copy(
            update={
                "base_url": base_url,
                "api_key": SecretStr(api_key) if api_key else None,
                "key_source": f"sandbox at {base_url}" if api_key else "none needed",
            }
        )
        backends = {**self.video_generation.backends, name: backend}
        section = self.video_generation.model_copy(update={"backends": backends})
        return self.model_copy(update={"video_generation": section})

    def describe(self) -> dict[str, Any]:
        """What each backend will use, for people; keys appear only as where they came from."""
        from .backends import backend_class

        rows = {}
        for name, b in self.video_generation.backends.items():
            cls = backend_class(name)
            rows[name] = {
                "enabled": b.enabled,
                "priority": b.priority,
                "max_concurrent_tasks": b.max_concurrent_tasks,
                "base_url": b.base_url or cls.default_base_url,
                "timeout": b.timeout,
                "key": b.key_source if b.has_key or cls.requires_key else "not needed",
            }
        return {
            "source": self.source,
            "strategy": self.video_generation.effective_strategy.value,
            "fallback_enabled": self.video_generation.fallback_enabled,
            "output_dir": str(self.outputs),
            "backends": rows,
        }

    def missing_keys(self) -> dict[str, str]:
        """Enabled backends that need a key and have none: name -> why."""
        from .backends import backend_class

        return {
            name: b.key_source
            for name, b in self.video_generation.backends.items()
            if b.enabled and backend_class(name).requires_key and not b.has_key
        }

    def require_keys(self) -> None:
        """Refuse to start when an enabled real backend has no key, saying which and why."""
        missing = self.missing_keys()
        if missing:
            lines = [f"{name}: {why}" for name, why in missing.items()]
            raise ConfigError("enabled backends without an API key:\n  " + "\n  ".join(lines))


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
    section = dict(data.get("video_generation") or {})
    backends_raw = section.pop("backends", DEFAULT_BACKENDS)
    if not isinstance(backends_raw, Mapping):
        raise ConfigError(f"{source}: video_generation.backends must be an object")
    if not backends_raw:
        raise ConfigError(f"{source}: video_generation.backends is empty: configure one or more")
    try:
        backends = {name: _backend_settings(name, cfg, env) for name, cfg in backends_raw.items()}
        data["video_generation"] = VideoGenerationSettings(**section, backends=backends)
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
    from .backends import backend_class, known_backends

    if name not in known_backends() or not isinstance(cfg, Mapping):
        return cfg
    fields = backend_class(name).settings_model.path_fields
    return {
        key: str(base_dir / value) if key in fields and isinstance(value, str) else value
        for key, value in cfg.items()
    }


def _backend_settings(name: str, cfg: Any, env: Mapping[str, str]) -> BackendSettings:
    from .backends import backend_class, known_backends

    if name not in known_backends():
        raise ConfigError(
            f"unknown backend {name!r} in video_generation.backends "
            f"(known: {', '.join(known_backends())})"
        )
    if not isinstance(cfg, Mapping):
        raise ConfigError(f"video_generation.backends.{name} must be an object")
    cls = backend_class(name)
    values = dict(cfg)
    file_key = values.pop("api_key", None)
    try:
        settings = cls.settings_model(**values)
    except ValidationError as error:
        raise ConfigError(f"video_generation.backends.{name}: {_explain(error)}") from None
    key, why = resolve_key(name, file_key, cls.key_env, env)
    settings = settings.model_copy(update={"api_key": key, "key_source": why})
    url = env.get(f"VIDEOGEN_{name.upper()}_BASE_URL", "").strip()
    if url:
        if not url.startswith(("http://", "https://")):
            raise ConfigError(f"VIDEOGEN_{name.upper()}_BASE_URL must start with http(s)://")
        settings = settings.model_copy(update={"base_url": url.rstrip("/")})
    if env.get(SANDBOX_HOST_ENV) and _wants_sandbox(name, settings, cls.requires_key, env):
        settings = _on_sandbox_host(name, settings, env)
    return settings


def _wants_sandbox(
    name: str, settings: BackendSettings, requires_key: bool, env: Mapping[str, str]
) -> bool:
    """Keyless backends (and SVD without its own URL) go to the sandbox host when one is set."""
    if requires_key:
        return not settings.has_key
    return not env.get(f"VIDEOGEN_{name.upper()}_BASE_URL")


def _on_sandbox_host(
    name: str, settings: BackendSettings, env: Mapping[str, str]
) -> BackendSettings:
    """Point a backend at ``$VIDEOGEN_SANDBOX_HOST`` (``videogen sandbox --port-base N``:
    the i-th sandbox listens on N + i), with the key that sandbox expects."""
    from urllib.parse import urlsplit

    from .backends import backend_class
    from .sandbox.server import DEFAULT_KEYS, SANDBOX_NAMES

    host = env[SANDBOX_HOST_ENV]
    port = int(env.get("VIDEOGEN_SANDBOX_PORT_BASE", SANDBOX_PORT_BASE)) + SANDBOX_NAMES.index(name)
    path = urlsplit(backend_class(name).default_base_url).path
    key = DEFAULT_KEYS.get(name)
    return settings.model_copy(
        update={
            "base_url": f"http://{host}:{port}{path}",
            "api_key": SecretStr(key) if key else None,
            "key_source": f"sandbox at {host}:{port}",
        }
    )


def resolve_key(
    name: str, file_value: object, vendor_env: tuple[str, ...], env: Mapping[str, str]
) -> tuple[SecretStr | None, str]:
    """The backend's key and where it came from, or ``None`` and why there is none."""
    for var in (f"VIDEOGEN_{name.upper()}_API_KEY", *vendor_env):
        value = env.get(var, "")
        if value and not is_placeholder(value):
            return SecretStr(value), f"env:{var}"
    if isinstance(file_value, str) and file_value and not is_placeholder(file_value):
        return SecretStr(file_value), "file"
    tried = ", ".join((f"VIDEOGEN_{name.upper()}_API_KEY", *vendor_env))
    if isinstance(file_value, str) and file_value:
        # Echoing a placeholder is safe: it matched the placeholder pattern, so it is no key.
        return None, f"the config holds a placeholder ({file_value!r}), not a key; set {tried}"
    return None, f"no api_key in the config and none of {tried} is set"


def _explain(error: ValidationError) -> str:
    parts = []
    for item in error.errors():
        where = ".".join(str(p) for p in item["loc"]) or "(top level)"
        parts.append(f"{where}: {item['msg']}")
    return "; ".join(parts)
