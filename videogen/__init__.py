"""videogen: generate video scene by scene across many AI video backends.

The public names are listed in ``__all__``; everything else is internal.
"""

from typing import Any as _Any

from .backends import create_backend, known_backends
from .capabilities import Capabilities, ImageInput, ModeSpec, plan
from .config import BackendSettings, Settings, Strategy
from .errors import (
    Action,
    AmbiguousSubmitError,
    AuthError,
    BackendError,
    BackendUnavailableError,
    CapabilityError,
    ConfigError,
    ContentPolicyError,
    FilmError,
    GenerationFailedError,
    InvalidOutputError,
    JobCancelledError,
    MalformedResponseError,
    MissingScenesError,
    ModelUnavailableError,
    NoBackendAvailableError,
    RateLimitedError,
    RejectedInputError,
    SceneValidationError,
    TransientBackendError,
    UnknownJobError,
    VideoGenError,
    WebhookSignatureError,
)
from .loading import load_config
from .models import (
    GenerationRequest,
    GenerationResult,
    HealthReport,
    JobState,
    JobStatus,
    Mode,
    Scene,
    Size,
    VendorJob,
    VideoInfo,
)

__version__ = "0.1.0"


def __getattr__(name: str) -> _Any:
    # The backend base class pulls in httpx and PyAV; load it on first use so that importing
    # the pure core (models, capabilities, retry, errors) stays free of I/O libraries.
    if name == "BaseVideoBackend":
        from .backends.base import BaseVideoBackend

        return BaseVideoBackend
    raise AttributeError(f"module 'videogen' has no attribute {name!r}")


__all__ = [
    "Action",
    "AmbiguousSubmitError",
    "AuthError",
    "BackendError",
    "BackendSettings",
    "BackendUnavailableError",
    "BaseVideoBackend",
    "Capabilities",
    "CapabilityError",
    "ConfigError",
    "ContentPolicyError",
    "FilmError",
    "GenerationFailedError",
    "GenerationRequest",
    "GenerationResult",
    "HealthReport",
    "ImageInput",
    "InvalidOutputError",
    "JobCancelledError",
    "JobState",
    "JobStatus",
    "MalformedResponseError",
    "MissingScenesError",
    "Mode",
    "ModeSpec",
    "ModelUnavailableError",
    "NoBackendAvailableError",
    "RateLimitedError",
    "RejectedInputError",
    "Scene",
    "SceneValidationError",
    "Settings",
    "Size",
    "Strategy",
    "TransientBackendError",
    "UnknownJobError",
    "VendorJob",
    "VideoGenError",
    "VideoInfo",
    "WebhookSignatureError",
    "__version__",
    "create_backend",
    "known_backends",
    "load_config",
    "plan",
]
