"""Plain data: scenes, sizes, vendor job handles, normalised job statuses, video facts.

Pure pydantic models with no I/O, shared by the core, the backends and (later) the pipeline.
"""

from __future__ import annotations

import math
import re
from enum import StrEnum
from pathlib import Path
from typing import Any, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

_SIZE = re.compile(r"^\s*(\d{2,5})\s*[x×:]\s*(\d{2,5})\s*$")
_RATIO = re.compile(r"^\s*(\d{1,3}(?:\.\d+)?)\s*:\s*(\d{1,3}(?:\.\d+)?)\s*$")
_URL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")

MAX_SCENE_SECONDS = 60.0
"""No vendor makes clips this long in one job; anything above is a typo, not a request."""
MAX_PROMPT_CHARS = 10_000


class Size(NamedTuple):
    """A frame size in pixels."""

    width: int
    height: int

    @property
    def aspect(self) -> float:
        return self.width / self.height

    def __str__(self) -> str:
        return f"{self.width}x{self.height}"


def parse_size(text: str) -> Size:
    """Parse ``"1280x720"`` (also ``1280×720``, ``1280:720``) into a :class:`Size`."""
    match = _SIZE.match(text)
    if not match:
        raise ValueError(f"resolution {text!r} is not WIDTHxHEIGHT, e.g. '1280x720'")
    size = Size(int(match[1]), int(match[2]))
    if min(size) < 16 or max(size) > 8192:
        raise ValueError(f"resolution {text!r} is out of range (16..8192 px per side)")
    return size


def parse_ratio(text: str) -> float:
    """Parse ``"16:9"`` into 16/9."""
    match = _RATIO.match(text)
    if not match or float(match[2]) == 0 or float(match[1]) == 0:
        raise ValueError(f"aspect_ratio {text!r} is not W:H, e.g. '16:9'")
    value = float(match[1]) / float(match[2])
    if not 0.2 <= value <= 5.0:
        raise ValueError(f"aspect_ratio {text!r} is out of range (1:5 to 5:1)")
    return value


def is_url(text: str) -> bool:
    """True for ``scheme://...`` strings (including ``data:`` URIs, checked separately)."""
    return bool(_URL.match(text)) or text.startswith("data:")


DEFAULT_DURATION = 5.0
"""Seconds of video a scene asks for when it says nothing."""


class Scene(BaseModel):
    """One scene of a film, as the user wrote it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    prompt: str = ""
    """What happens in the scene. Required unless an image is given."""
    image: str | None = None
    """First frame: a local file path or an http(s) URL."""
    duration: float = Field(default=DEFAULT_DURATION, gt=0, le=MAX_SCENE_SECONDS)
    """Requested length in seconds; each backend snaps it to the nearest length it offers."""
    resolution: str | None = None
    """Requested frame size, ``WIDTHxHEIGHT``."""
    aspect_ratio: str | None = None
    """Requested shape, ``W:H``; used when no resolution is given."""
    seed: int | None = Field(default=None, ge=0, le=2**32 - 1)
    negative_prompt: str | None = None
    style: str | None = None
    """A style phrase; vendors have no style field, so it is appended to the prompt."""
    id: str | None = Field(default=None, max_length=128)
    """An optional label of the user's, echoed in results."""
    no_cache: bool | None = None
    """``true``: generate this scene anew, never reuse a cached video (``None``, unset: the
    job's and the config's choice)."""

    @field_validator("prompt")
    @classmethod
    def _prompt_length(cls, value: str) -> str:
        if len(value) > MAX_PROMPT_CHARS:
            raise ValueError(f"prompt is {len(value)} characters; the limit is {MAX_PROMPT_CHARS}")
        return value.strip()

    @field_validator("resolution")
    @classmethod
    def _resolution(cls, value: str | None) -> str | None:
        return None if value is None else str(parse_size(value))

    @field_validator("aspect_ratio")
    @classmethod
    def _aspect(cls, value: str | None) -> str | None:
        if value is not None:
            parse_ratio(value)
        return value

    @field_validator("image")
    @classmethod
    def _image(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        value = value.strip()
        if is_url(value) and not value.startswith(("http://", "https://", "data:image/")):
            raise ValueError(f"image {value[:60]!r} must be a local file or an http(s) URL")
        return value

    @model_validator(mode="after")
    def _needs_something(self) -> Scene:
        if not self.prompt and self.image is None:
            raise ValueError("a scene needs a prompt, an image, or both")
        if self.resolution and self.aspect_ratio:
            size = parse_size(self.resolution)
            if not math.isclose(size.aspect, parse_ratio(self.aspect_ratio), rel_tol=0.03):
                raise ValueError(
                    f"resolution {self.resolution} and aspect_ratio {self.aspect_ratio} disagree"
                )
        return self

    @property
    def has_image(self) -> bool:
        return self.image is not None

    @property
    def image_is_url(self) -> bool:
        return self.image is not None and is_url(self.image)

    @property
    def image_path(self) -> Path | None:
        return None if self.image is None or self.image_is_url else Path(self.image)

    @property
    def requested_size(self) -> Size | None:
        return parse_size(self.resolution) if self.resolution else None

    @property
    def requested_aspect(self) -> float | None:
        if self.resolution:
            return parse_size(self.resolution).aspect
        return parse_ratio(self.aspect_ratio) if self.aspect_ratio else None

    @property
    def full_prompt(self) -> str:
        """The prompt with the style folded in, as sent to vendors."""
        if not self.style:
            return self.prompt
        return f"{self.prompt}. Style: {self.style}" if self.prompt else f"Style: {self.style}"


class Mode(StrEnum):
    TEXT_TO_VIDEO = "text_to_video"
    IMAGE_TO_VIDEO = "image_to_video"


class GenerationRequest(BaseModel):
    """A scene fitted to one backend: what was asked, and what will be sent."""

    model_config = ConfigDict(frozen=True)

    backend: str
    mode: Mode
    model: str = ""
    """The vendor model this request goes to."""
    prompt: str
    negative_prompt: str | None = None
    seed: int | None = None
    image: str | None = None
    requested_duration: float
    requested_size: Size | None = None
    requested_aspect: float | None = None
    duration: float
    """Effective duration in seconds, one the backend offers."""
    size: Size
    """Effective frame size, one the backend offers."""
    estimated_cost_usd: float = 0.0

    def effective(self) -> dict[str, Any]:
        """Requested and effective parameters, for results and metadata files."""
        return {
            "requested": {
                "duration": self.requested_duration,
                "resolution": str(self.requested_size) if self.requested_size else None,
                "aspect": round(self.requested_aspect, 4) if self.requested_aspect else None,
            },
            "effective": {"duration": self.duration, "resolution": str(self.size)},
        }


class JobState(StrEnum):
    """The normalised vocabulary of a vendor job; each adapter maps its vendor's words to it."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in (JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED)


class SceneState(StrEnum):
    """Where a scene is in the pipeline; only the store's atomic transition moves it."""

    PENDING = "pending"
    """Stored, waiting for the router."""
    ROUTED = "routed"
    """On a backend's queue, waiting for a worker and a free slot."""
    RUNNING = "running"
    """A worker holds a slot for it: submitting, polling or downloading."""
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in (SceneState.SUCCEEDED, SceneState.FAILED, SceneState.CANCELLED)


class VendorJob(BaseModel):
    """A handle on one vendor job: enough to poll, fetch or cancel it after a restart."""

    backend: str
    job_id: str
    urls: dict[str, str] = Field(default_factory=dict)
    """Vendor-given URLs (fal's status/response/cancel URLs), used instead of building them;
    and what else the job needs to be found again besides its id (Kling's route, the MiniMax
    API version it was made on)."""
    created_at: float | None = None
    """When the create request was sent (wall clock): the job's ``timeout`` counts from here,
    across resumes and redeliveries (``None``: a handle made outside the pipeline)."""


class Orphan(BaseModel):
    """A vendor job its scene left behind when the vendor stopped answering (or when a
    cancel could not be confirmed): it may still run, and be billed. The sweeper asks about
    it and cancels it; if it succeeded while nobody listened, its video is the scene's."""

    job: VendorJob
    scene_id: str
    since: float
    """When it was left (wall clock)."""
    usd: float = 0.0
    """What was settled for it when it was left (refunded if the vendor says it failed)."""
    base: float = 0.0
    """The default strategy's price settled with it (the ledgers' ``baseline``)."""
    ledgers: list[str] = Field(default_factory=list)
    """The ledger keys it was settled on."""
    request: GenerationRequest | None = None
    """What was asked of the vendor (for the result, should its video be used)."""
    reason: str = ""
    cancelled: bool = False
    """Left because a person cancelled its scene (not counted among the orphans)."""

    @property
    def key(self) -> str:
        return f"{self.job.backend}:{self.job.job_id}"


class Submitting(BaseModel):
    """A create request sent and not yet answered: what a lost answer is looked up by.

    Stored on the scene before the request leaves, cleared once its answer is stored.
    """

    backend: str
    key: str | None = None
    """The client-chosen key sent with it (ComfyUI's ``prompt_id``); ``None`` in a record
    written before keys were stored."""
    sent_at: float | None = None
    """When it was sent (wall clock): the lookup's time window, and when its answer can no
    longer arrive."""
    attempt: int = 1
    """Creates sent for this try: a lost answer that the vendor does not know of is sent
    once more (attempt 2), never a third time."""

    @classmethod
    def parse(cls, stored: str) -> Submitting:
        """From its stored JSON, or from the plain backend name older records hold."""
        if stored.startswith("{"):
            return cls.model_validate_json(stored)
        return cls(backend=stored)


class JobStatus(BaseModel):
    """One poll's answer, normalised."""

    state: JobState
    vendor_state: str
    """The vendor's own word (``THROTTLED``, ``dreaming``, ``IN_QUEUE``...)."""
    progress: float | None = None
    output_url: str | None = None
    failure_code: str | None = None
    failure_reason: str | None = None
    http_status: int | None = None
    """Status of the answer that carried the failure, where a vendor reports failures so (fal)."""
    usage: dict[str, float] = Field(default_factory=dict)
    """The vendor's own billing figures of a finished job, where its answer carries them
    (DashScope's ``duration`` seconds, Ark's ``completion_tokens``): what settles its cost."""
    billed_units: float | None = None
    """What the vendor says it charged for the job, in its own unit (Kling's
    ``final_unit_deduction``), where its answer says; the backend's ``billed_usd`` turns it
    into dollars."""


class VideoInfo(BaseModel):
    """Facts read from a video file that opened as a video."""

    path: Path
    size_bytes: int
    width: int
    height: int
    frames: int
    duration: float
    codec: str


class HealthReport(BaseModel):
    """The result of a cheap health probe (never a paid generation)."""

    backend: str
    healthy: bool
    latency_ms: float
    detail: str = ""
    info: dict[str, Any] = Field(default_factory=dict)


class GenerationResult(BaseModel):
    """What :meth:`BaseVideoBackend.generate_video` hands back."""

    backend: str
    job: VendorJob
    request: GenerationRequest
    video: VideoInfo
    source_url: str
    seconds: float
