"""The backend registry: adding a backend is one module here plus one entry in ``_REGISTRY``.

Modules are imported on first use, so reading the registry costs nothing.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError

if TYPE_CHECKING:
    from ..config import BackendSettings
    from .base import BaseVideoBackend

_REGISTRY: dict[str, str] = {
    "svd": "videogen.backends.svd:SVDBackend",
    "runway": "videogen.backends.runway:RunwayBackend",
    "pika": "videogen.backends.pika:PikaBackend",
    "luma": "videogen.backends.luma:LumaBackend",
    "veo": "videogen.backends.veo:VeoBackend",
    "replicate": "videogen.backends.replicate:ReplicateBackend",
    "wan": "videogen.backends.wan:WanBackend",
    "seedance": "videogen.backends.seedance:SeedanceBackend",
    "fal": "videogen.backends.fal:FalBackend",
    "kling": "videogen.backends.kling:KlingBackend",
    "minimax": "videogen.backends.minimax:MiniMaxBackend",
}


def known_backends() -> tuple[str, ...]:
    return tuple(_REGISTRY)


def backend_class(name: str) -> type[BaseVideoBackend]:
    """The class registered under ``name``."""
    try:
        target = _REGISTRY[name]
    except KeyError:
        raise ConfigError(f"unknown backend {name!r} (known: {', '.join(_REGISTRY)})") from None
    module, _, attr = target.partition(":")
    cls: type[BaseVideoBackend] = getattr(importlib.import_module(module), attr)
    return cls


def create_backend(name: str, settings: BackendSettings, **kwargs: Any) -> BaseVideoBackend:
    """An instance of backend ``name``; ``client``, ``sleep`` and ``clock`` are passed on."""
    return backend_class(name)(settings, **kwargs)


__all__ = ["backend_class", "create_backend", "known_backends"]
