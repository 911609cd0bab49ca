"""``$VIDEOGEN_SANDBOX_HOST``: backends without a key talk to the sandboxes on that host.

Docker Compose sets it: ``videogen sandbox --port-base N`` serves the i-th of
:data:`~videogen.sandbox.defaults.SANDBOX_NAMES` on port N + i, with the keys in
:data:`~videogen.sandbox.defaults.DEFAULT_KEYS`. A backend with a key of its own (or SVD with
its own ``$VIDEOGEN_SVD_BASE_URL``) keeps it.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit

from pydantic import SecretStr

from .config import BackendSettings
from .constants import SANDBOX_HOST_ENV, SANDBOX_PORT_BASE
from .sandbox.defaults import DEFAULT_KEYS, SANDBOX_NAMES


def sandboxed(name: str, settings: BackendSettings, env: Mapping[str, str]) -> BackendSettings:
    """``settings``, pointed at the sandbox host when ``env`` names one and the backend wants it."""
    if not env.get(SANDBOX_HOST_ENV) or not _wants_sandbox(name, settings, env):
        return settings
    host = env[SANDBOX_HOST_ENV]
    port = int(env.get("VIDEOGEN_SANDBOX_PORT_BASE", SANDBOX_PORT_BASE)) + SANDBOX_NAMES.index(name)
    path = urlsplit(settings.default_base_url).path
    key = DEFAULT_KEYS.get(name)
    return settings.model_copy(
        update={
            "base_url": f"http://{host}:{port}{path}",
            "api_key": SecretStr(key) if key else None,
            "key_source": f"sandbox at {host}:{port}",
        }
    )


def _wants_sandbox(name: str, settings: BackendSettings, env: Mapping[str, str]) -> bool:
    """Keyless backends (and SVD without its own URL) go to the sandbox host when one is set."""
    if settings.requires_key:
        return not settings.has_key
    return not env.get(f"VIDEOGEN_{name.upper()}_BASE_URL")
