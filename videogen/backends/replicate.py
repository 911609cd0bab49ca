"""Replicate predictions (api.replicate.com/v1), for any video model the config names.

``POST /v1/models/{owner}/{name}/predictions`` (an official model), ``POST /v1/predictions``
with a ``version`` (a community model) or ``POST /v1/deployments/{owner}/{name}/predictions``
→ a Prediction; ``GET /v1/predictions/{id}`` (starting, processing, succeeded, failed,
canceled, aborted); ``POST /v1/predictions/{id}/cancel``; health from ``GET /v1/account``.
Bearer auth. Each model names its inputs its own way: ``backends.replicate.inputs`` maps our
scene fields to them. Outputs are deleted an hour after the prediction (``data_removed``), so
the pipeline downloads as soon as it sees success. Contract: shared/vendor-apis-2.md §5.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ..capabilities import Capabilities, ImageInput, ModeSpec
from ..config import BackendSettings
from ..constants import REPLICATE_BASE_URL
from ..errors import BackendError, ContentPolicyError, GenerationFailedError, MalformedResponseError
from ..media import data_uri, load_image
from ..models import GenerationRequest, JobState, JobStatus, Mode, Size, VendorJob, parse_ratio
from ..transport import field, json_object, mapped_state, send
from .base import BaseVideoBackend, Lookup, tolerate
from .options import all_among

STATES = {
    "starting": JobState.QUEUED,
    "processing": JobState.RUNNING,
    "succeeded": JobState.SUCCEEDED,
    "failed": JobState.FAILED,
    "canceled": JobState.CANCELLED,
    "aborted": JobState.CANCELLED,
}
"""Replicate's prediction statuses in our vocabulary (``aborted``: its deadline passed before
it started; the HTTP API has it, SDK 1.0.7's Literal does not)."""
PROMPT_MAX_CHARS = 5000
"""No limit is published per model; a bound so that a runaway prompt is refused before paying."""
_OWNER_NAME = re.compile(r"^[\w.-]+/[\w.-]+$")
_VERSION = re.compile(r"^[0-9a-f]{64}$")
_POLICY_WORDS = ("flagged", "sensitive", "nsfw", "safety", "moderation", "policy")
RESOLUTION_PX = {"480p": 480, "512p": 512, "540p": 540, "720p": 720, "768p": 768, "1080p": 1080}


class InputNames(BaseModel):
    """Our scene fields → the model's input names (``null``: the model has no such input).

    The defaults are ``google/veo-3``'s (prompt, image, duration, aspect_ratio, resolution,
    negative_prompt, seed; replicate.com model page as transcribed by 3P tools, UNCONFIRMED)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    prompt: str = "prompt"
    image: str | None = "image"
    """The first frame; ``null``: text-to-video only."""
    duration: str | None = "duration"
    aspect_ratio: str | None = "aspect_ratio"
    """Sent as ``W:H`` (one of ``aspect_ratios``)."""
    resolution: str | None = "resolution"
    """Sent as a label (one of ``resolutions``, e.g. ``720p``)."""
    seed: str | None = "seed"
    negative_prompt: str | None = "negative_prompt"


class ReplicateSettings(BackendSettings):
    default_base_url: ClassVar[str] = REPLICATE_BASE_URL
    key_env: ClassVar[tuple[str, ...]] = ("REPLICATE_API_TOKEN",)

    model: str | None = "google/veo-3"
    """``owner/name`` of an official model (no version needed); or set ``version`` or
    ``deployment`` instead (and ``model`` to ``null``)."""
    version: str | None = None
    """A community model's 64-hex version id."""
    deployment: str | None = None
    """``owner/name`` of one of your deployments."""
    inputs: InputNames = Field(default_factory=InputNames)
    extra_input: dict[str, Any] = Field(default_factory=dict)
    """Fixed inputs sent with every prediction (``{"generate_audio": false}``)."""
    text_to_video: bool = True
    durations: tuple[float, ...] = (8.0,)
    """Clip lengths the model takes, in seconds."""
    aspect_ratios: tuple[str, ...] = ("16:9", "9:16")
    """Shapes the model takes, the first being its default."""
    resolutions: tuple[str, ...] = ("720p", "1080p")
    """Resolutions offered (the short side), the first being the default."""
    usd_per_second: float = Field(default=0.75, ge=0)
    """The model's price per output second. Default: ``google/veo-3`` with audio, $6 per 8 s
    clip (replicate.com pricing as quoted by 3P pages, 2026-11-29, UNCONFIRMED; Replicate
    prices official video models at or above the vendor's list, vendor-apis-2.md §5.4).
    Set it for the model you name."""

    @field_validator("model", "deployment")
    @classmethod
    def _owner_name(cls, value: str | None) -> str | None:
        if value is not None and not _OWNER_NAME.match(value):
            raise ValueError(f"{value!r} is not 'owner/name'")
        return value

    @field_validator("version")
    @classmethod
    def _version(cls, value: str | None) -> str | None:
        if value is not None and not _VERSION.match(value):
            raise ValueError(f"version {value!r} is not a 64-hex version id")
        return value

    @field_validator("resolutions")
    @classmethod
    def _resolutions(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return all_among("resolutions", value, RESOLUTION_PX)

    @field_validator("aspect_ratios")
    @classmethod
    def _aspects(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for ratio in value:
            parse_ratio(ratio)
        if not value:
            raise ValueError("aspect_ratios is empty")
        return value

    @model_validator(mode="after")
    def _one_target(self) -> ReplicateSettings:
        named = [n for n in ("model", "version", "deployment") if getattr(self, n) is not None]
        if len(named) != 1:
            raise ValueError(f"name exactly one of model, version, deployment (got {named})")
        return self


def frame_size(aspect: str, resolution: str) -> Size:
    """Pixels of an output: the resolution names the short side."""
    short = RESOLUTION_PX[resolution]
    ratio = parse_ratio(aspect)
    long = int(round(short * max(ratio, 1 / ratio) / 2) * 2)
    return Size(long, short) if ratio >= 1 else Size(short, long)


def size_labels(
    aspects: tuple[str, ...], resolutions: tuple[str, ...]
) -> dict[Size, tuple[str, str]]:
    """Every offered size → (aspect ratio, resolution); defaults first."""
    return {frame_size(a, r): (a, r) for r in resolutions for a in aspects}


def failure_class(error: str | None) -> type[BackendError]:
    """Replicate gives only an ``error`` text: a flagged input or output is the scene's fault."""
    text = (error or "").lower()
    if any(word in text for word in _POLICY_WORDS):
        return ContentPolicyError
    return GenerationFailedError


def output_url(output: Any) -> str | None:
    """The video URL of a model's ``output``: a URL, or a list whose first item is one."""
    if isinstance(output, list) and output:
        output = output[0]
    if isinstance(output, dict):
        output = output.get("video") or output.get("url")
    return output if isinstance(output, str) and output else None


def parse_prediction(backend: str, body: dict[str, Any]) -> JobStatus:
    """A Prediction object → :class:`JobStatus`; a success whose output is gone (the hour
    passed) is a failure that says so."""
    vendor_state, state = mapped_state(backend, body, "status", STATES, "prediction status")
    if state is not JobState.SUCCEEDED:
        error = body.get("error")
        return JobStatus(
            state=state, vendor_state=vendor_state, failure_reason=str(error) if error else None
        )
    url = output_url(body.get("output"))
    if body.get("data_removed"):
        return JobStatus(
            state=JobState.FAILED,
            vendor_state=vendor_state,
            failure_code="data_removed",
            failure_reason="its output was deleted (Replicate keeps outputs for one hour)",
        )
    if url is None:
        raise MalformedResponseError(backend, "succeeded prediction has no output URL")
    return JobStatus(state=state, vendor_state=vendor_state, output_url=url)


class ReplicateBackend(BaseVideoBackend):
    name = "replicate"
    settings_model = ReplicateSettings
    settings: ReplicateSettings
    lookup = Lookup.NONE
    """Replicate takes no client id (vendor-apis-2.md §10.7): the id is kept as soon as the
    create answers, and a lost answer stays lost."""

    def get_capabilities(self) -> Capabilities:
        s = self.settings
        spec = ModeSpec(
            model=s.model or s.deployment or s.version or "",
            durations=s.durations,
            sizes=tuple(size_labels(s.aspect_ratios, s.resolutions)),
            cost_per_second_usd=s.usd_per_second,
        )
        return Capabilities(
            text=spec if s.text_to_video else None,
            image=spec if s.inputs.image else None,
            prompt_max_chars=PROMPT_MAX_CHARS,
            image_inputs=frozenset({ImageInput.PUBLIC_URL, ImageInput.DATA_URI}),
            negative_prompt=s.inputs.negative_prompt is not None,
            seed=s.inputs.seed is not None,
        )

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        headers = {"Authorization": f"Bearer {self.api_key()}", "Accept": "application/json"}
        return send(
            self._client, self.name, method, self.base_url + path, headers=headers, **kwargs
        )

    def _create_path(self) -> tuple[str, dict[str, Any]]:
        s = self.settings
        if s.deployment:
            return f"/v1/deployments/{s.deployment}/predictions", {}
        if s.version:
            return "/v1/predictions", {"version": s.version}
        return f"/v1/models/{s.model}/predictions", {}

    def payload(self, request: GenerationRequest) -> dict[str, Any]:
        """The model's ``input``: our fields under the names the config maps them to."""
        names = self.settings.inputs
        aspect, resolution = size_labels(self.settings.aspect_ratios, self.settings.resolutions)[
            request.size
        ]
        values: dict[str | None, Any] = {
            names.prompt: request.prompt,
            names.duration: int(request.duration),
            names.aspect_ratio: aspect,
            names.resolution: resolution,
            names.seed: request.seed,
            names.negative_prompt: request.negative_prompt or None,
        }
        if request.mode is Mode.IMAGE_TO_VIDEO:
            values[names.image] = self._image(request.image or "")
        sent = {k: v for k, v in values.items() if k is not None and v is not None}
        return {**self.settings.extra_input, **sent}

    def _image(self, ref: str) -> str:
        """URLs go as they are (Replicate fetches them); files are sent as data URIs."""
        if ref.startswith(("https://", "http://", "data:")):
            return ref
        return data_uri(load_image(self._client, self.name, ref))

    def submit(self, request: GenerationRequest, *, key: str | None = None) -> VendorJob:
        path, body = self._create_path()
        body["input"] = self.payload(request)
        response = self._call("POST", path, json=body, creates_job=True)
        answer = json_object(self.name, response, creates_job=True)
        job_id = field(self.name, answer, "id", creates_job=True)
        return VendorJob(backend=self.name, job_id=job_id)

    def poll(self, job: VendorJob) -> JobStatus:
        answer = json_object(self.name, self._call("GET", f"/v1/predictions/{job.job_id}"))
        return parse_prediction(self.name, answer)

    def failure_class(self, status: JobStatus) -> type[BackendError]:
        return failure_class(status.failure_reason)

    def cancel(self, job: VendorJob) -> None:
        with tolerate(404):  # gone (or never ours) is what we wanted
            self._call("POST", f"/v1/predictions/{job.job_id}/cancel")

    def probe(self) -> dict[str, Any]:
        body = json_object(self.name, self._call("GET", "/v1/account"))
        return {"account": body.get("username"), "type": body.get("type")}
