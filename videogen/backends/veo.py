"""Google Veo on Vertex AI, in API-key express mode (aiplatform.googleapis.com, ``v1beta1``).

``POST /v1beta1/publishers/google/models/{model}:predictLongRunning`` → ``{"name": <operation>}``;
``POST /v1beta1/{model resource}:fetchPredictOperation`` with ``{"operationName"}`` (the
operation polled by name, as google-genai's ``operations.get`` does on Vertex); health from
``GET /v1beta1/publishers/google/models/{model}``. The key travels in ``x-goog-api-key``.
There is no state but ``done``; a done operation carries ``response.videos[]`` (inline
``bytesBase64Encoded`` without a ``storageUri``: express mode has no bucket to write to) or
``error``, or no video and ``raiMediaFilteredCount`` (safety). Veo has **no cancel**: a job
left behind runs to its end (the sweeper uses its video if it comes). A 404 on create means
the model is retired (Google retired the 2.0/3.0 ids on 2026-06-30): final, never retried
(:class:`~videogen.errors.ModelUnavailableError`). Contract: shared/vendor-apis-2.md §1.
"""

from __future__ import annotations

import base64
import binascii
import os
import tempfile
from pathlib import Path
from typing import Any, ClassVar

from pydantic import field_validator

from ..capabilities import Capabilities, ImageInput, ModeSpec
from ..config import BackendSettings
from ..constants import VEO_BASE_URL, VERTEX_API_VERSION
from ..errors import (
    BackendError,
    ContentPolicyError,
    GenerationFailedError,
    InvalidOutputError,
    MalformedResponseError,
    ModelUnavailableError,
    RejectedInputError,
)
from ..media import load_image, probe_video
from ..models import GenerationRequest, JobState, JobStatus, Mode, Size, VendorJob, VideoInfo
from ..transport import field, json_object, send
from .base import BaseVideoBackend, Lookup
from .options import all_among, one_of

MODELS = {
    # USD per output second by resolution, as of 2026-11-29: LiteLLM 1.110.2's catalogue
    # (sources cloud.google.com/vertex-ai/generative-ai/pricing; vendor-apis-2.md §1.6, §8.2).
    # The 3.1 price is with audio; Fast's $0.10 is without (3P: $0.15 with). Override with
    # backends.veo.pricing.
    "veo-3.1-generate-001": {"720p": 0.40, "1080p": 0.40, "4k": 0.60},
    "veo-3.1-fast-generate-001": {"720p": 0.10, "1080p": 0.12, "4k": 0.30},
    "veo-3.1-lite-generate-001": {"720p": 0.05, "1080p": 0.08},
}
ASPECT_SIZES = {"16:9": (16, 9), "9:16": (9, 16)}
RESOLUTION_PX = {"720p": 720, "1080p": 1080, "4k": 2160}
DURATIONS = (4.0, 6.0, 8.0)
PROMPT_MAX_CHARS = 4000
"""No limit is documented for Veo's prompt; a bound so that a runaway prompt is refused here."""
RPC_INVALID_ARGUMENT = 3
"""google.rpc.Code of an operation refused for its input (others are the backend's fault)."""
INLINE = "inline:"
"""Prefix of the ``output_url`` of a video carried inline in the operation (no URL exists)."""


class VeoSettings(BackendSettings):
    default_base_url: ClassVar[str] = VEO_BASE_URL
    key_env: ClassVar[tuple[str, ...]] = ("GOOGLE_API_KEY",)

    model: str = "veo-3.1-fast-generate-001"
    """A Vertex Veo model id; retired ones (``veo-2.0-*``, ``veo-3.0-*``) answer 404."""
    resolutions: tuple[str, ...] = ("720p",)
    """Offered to scenes, the first being the default; Veo wants 8 s clips at 1080p and 4k
    (UNCONFIRMED), so add those only with ``durations`` ``[8]``."""
    durations: tuple[float, ...] = DURATIONS
    generate_audio: bool = False
    """Vertex only; audio costs more (the prices above are the model's listed ones)."""
    person_generation: str = "allow_adult"
    """``dont_allow``, ``allow_adult`` or ``allow_all``."""

    @field_validator("model")
    @classmethod
    def _model(cls, value: str) -> str:
        return str(one_of("model", value, MODELS))

    @field_validator("resolutions")
    @classmethod
    def _resolutions(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return all_among("resolutions", value, RESOLUTION_PX)

    @field_validator("durations")
    @classmethod
    def _durations(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        return all_among("durations", value, DURATIONS)


def frame_size(aspect: str, resolution: str) -> Size:
    short = RESOLUTION_PX[resolution]
    w, h = ASPECT_SIZES[aspect]
    long = short * max(w, h) // min(w, h)
    return Size(long, short) if w >= h else Size(short, long)


def size_labels(resolutions: tuple[str, ...]) -> dict[Size, tuple[str, str]]:
    return {frame_size(a, r): (a, r) for r in resolutions for a in ASPECT_SIZES}


def failure_class(code: str | None) -> type[BackendError]:
    """A done operation's failure → error class (pure; a table in the tests): the safety
    filter is the scene's fault, an INVALID_ARGUMENT its input's, the rest Veo's."""
    if code == "RAI_FILTERED":
        return ContentPolicyError
    if code == str(RPC_INVALID_ARGUMENT):
        return RejectedInputError
    return GenerationFailedError


def operation_resource(name: str) -> str:
    """``projects/p/.../models/m/operations/o`` → ``projects/p/.../models/m`` (google-genai)."""
    return name.rpartition("/operations/")[0]


def _first_video(response: dict[str, Any]) -> dict[str, Any] | None:
    videos = response.get("videos")
    if isinstance(videos, list) and videos and isinstance(videos[0], dict):
        return videos[0]
    return None


def parse_operation(backend: str, body: dict[str, Any]) -> JobStatus:
    """A ``fetchPredictOperation`` answer → :class:`JobStatus` (no bytes kept: see
    :func:`inline_video`)."""
    name = field(backend, body, "name")
    if not body.get("done"):
        return JobStatus(state=JobState.RUNNING, vendor_state="running")
    error = body.get("error")
    if isinstance(error, dict):
        code = error.get("code")
        return JobStatus(
            state=JobState.FAILED,
            vendor_state="done:error",
            failure_code=str(code) if code is not None else None,
            failure_reason=str(error.get("message") or "no message"),
        )
    response = body.get("response")
    if not isinstance(response, dict):
        raise MalformedResponseError(backend, "done operation has neither response nor error")
    video = _first_video(response)
    if video is None:
        return _filtered(backend, response)
    if isinstance(video.get("gcsUri"), str):
        return JobStatus(state=JobState.SUCCEEDED, vendor_state="done", output_url=video["gcsUri"])
    if not isinstance(video.get("bytesBase64Encoded"), str):
        raise MalformedResponseError(backend, "done operation's video has no bytes and no URI")
    return JobStatus(state=JobState.SUCCEEDED, vendor_state="done", output_url=INLINE + name)


def _filtered(backend: str, response: dict[str, Any]) -> JobStatus:
    """A done operation without a video: the safety filter's (it says so) or garbage."""
    count = response.get("raiMediaFilteredCount")
    if not isinstance(count, int) or count <= 0:
        raise MalformedResponseError(backend, "done operation has no video")
    reasons = response.get("raiMediaFilteredReasons") or []
    return JobStatus(
        state=JobState.FAILED,
        vendor_state="done:filtered",
        failure_code="RAI_FILTERED",
        failure_reason="; ".join(str(r) for r in reasons) or "filtered by Responsible AI",
    )


def inline_video(backend: str, body: dict[str, Any], max_bytes: int) -> bytes:
    """The video bytes of a done operation, under ``max_bytes``."""
    video = _first_video(body.get("response") or {}) or {}
    encoded = video.get("bytesBase64Encoded")
    if not isinstance(encoded, str):
        raise InvalidOutputError(backend, "the operation carries no video bytes")
    if len(encoded) * 3 // 4 > max_bytes:
        raise InvalidOutputError(backend, f"output is over the {max_bytes}-byte cap")
    try:
        return base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidOutputError(backend, "the operation's video is not base64") from None


class VeoBackend(BaseVideoBackend):
    name = "veo"
    settings_model = VeoSettings
    settings: VeoSettings
    _inline: tuple[str, dict[str, Any]] | None = None
    """The last done operation polled (its name and answer): its video, for :meth:`download`."""
    lookup = Lookup.NONE
    """Veo takes no client id and lists no operations for a publisher model: a lost answer
    stays lost."""

    def get_capabilities(self) -> Capabilities:
        prices = MODELS[self.settings.model]
        offered = tuple(r for r in self.settings.resolutions if r in prices)
        spec = ModeSpec(
            model=self.settings.model,
            durations=self.settings.durations,
            sizes=tuple(size_labels(offered or ("720p",))),
            cost_per_second_usd=prices[offered[0] if offered else "720p"],
        )
        return Capabilities(
            text=spec,
            image=spec,
            prompt_max_chars=PROMPT_MAX_CHARS,
            image_inputs=frozenset({ImageInput.PUBLIC_URL, ImageInput.DATA_URI}),
            negative_prompt=True,
        )

    def _url(self, path: str) -> str:
        return f"{self.base_url}/{VERTEX_API_VERSION}/{path}"

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        headers = {"x-goog-api-key": self.api_key(), "Accept": "application/json"}
        return send(self._client, self.name, method, self._url(path), headers=headers, **kwargs)

    def _model_path(self) -> str:
        return f"publishers/google/models/{self.settings.model}"

    def payload(self, request: GenerationRequest) -> dict[str, Any]:
        """``instances[0]`` (prompt, first frame inline) and ``parameters`` (camelCase)."""
        aspect, resolution = size_labels(self.settings.resolutions)[request.size]
        instance: dict[str, Any] = {"prompt": request.prompt}
        if request.mode is Mode.IMAGE_TO_VIDEO:
            image = load_image(self._client, self.name, request.image or "")
            encoded = base64.b64encode(image.data).decode("ascii")
            instance["image"] = {"bytesBase64Encoded": encoded, "mimeType": image.mime}
        parameters: dict[str, Any] = {
            "aspectRatio": aspect,
            "resolution": resolution,
            "durationSeconds": int(request.duration),
            "sampleCount": 1,
            "generateAudio": self.settings.generate_audio,
            "personGeneration": self.settings.person_generation,
        }
        if request.seed is not None:
            parameters["seed"] = request.seed
        if request.negative_prompt:
            parameters["negativePrompt"] = request.negative_prompt
        return {"instances": [instance], "parameters": parameters}

    def submit(self, request: GenerationRequest, *, key: str | None = None) -> VendorJob:
        body = self.payload(request)
        path = f"{self._model_path()}:predictLongRunning"
        try:
            response = self._call("POST", path, json=body, creates_job=True)
        except RejectedInputError as error:
            if error.status_code == 404:
                raise self._unavailable(error) from None
            raise
        answer = json_object(self.name, response, creates_job=True)
        return VendorJob(
            backend=self.name, job_id=field(self.name, answer, "name", creates_job=True)
        )

    def _unavailable(self, error: RejectedInputError) -> ModelUnavailableError:
        return ModelUnavailableError(
            self.name,
            f"model {self.settings.model} is not served (retired or unknown; {error.message}): "
            "set backends.veo.model to a current Veo model; not retried",
            status_code=404,
            vendor_code=error.vendor_code or "NOT_FOUND",
        )

    def _fetch(self, job: VendorJob) -> dict[str, Any]:
        path = f"{operation_resource(job.job_id)}:fetchPredictOperation"
        answer = self._call("POST", path, json={"operationName": job.job_id})
        return json_object(self.name, answer)

    def poll(self, job: VendorJob) -> JobStatus:
        try:
            body = self._fetch(job)
        except RejectedInputError as error:
            if error.status_code == 404:  # Google no longer knows the operation
                return JobStatus(
                    state=JobState.FAILED,
                    vendor_state="not found",
                    failure_reason=f"operation not found ({error.message})",
                )
            raise
        status = parse_operation(self.name, body)
        if status.output_url and status.output_url.startswith(INLINE):
            self._inline = (job.job_id, body)  # the video came with the answer: keep it
        return status

    def failure_class(self, status: JobStatus) -> type[BackendError]:
        return failure_class(status.failure_code)

    def download(self, status: JobStatus, dest: Path) -> VideoInfo:
        """An inline video is written from the operation (the last poll's, else fetched
        again); a ``gs://`` one cannot be read with an API key."""
        url = status.output_url or ""
        if not url.startswith(INLINE):
            raise InvalidOutputError(
                self.name, f"output {url[:80]!r} is in Cloud Storage, unreadable with an API key"
            )
        name = url.removeprefix(INLINE)
        kept, self._inline = self._inline, None
        if kept is not None and kept[0] == name:
            body = kept[1]
        else:
            body = self._fetch(VendorJob(backend=self.name, job_id=name))
        data = inline_video(self.name, body, self.settings.max_download_bytes)
        return write_video(self.name, data, dest)

    def cancellable(self, job: VendorJob) -> bool:
        return False  # a job given up on runs to its end: an orphan the sweep asks about

    def cancel(self, job: VendorJob) -> None:
        """Veo has no cancel (google-genai exposes none; vendor-apis-2.md §1.5)."""
        raise BackendError(
            self.name, f"Veo cannot cancel operation {job.job_id}: it runs to its end, billed"
        )

    def probe(self) -> dict[str, Any]:
        try:
            body = json_object(self.name, self._call("GET", self._model_path()))
        except RejectedInputError as error:
            if error.status_code == 404:
                raise self._unavailable(error) from None
            raise
        return {"model": body.get("name"), "launch_stage": body.get("launchStage")}


def write_video(backend: str, data: bytes, dest: Path) -> VideoInfo:
    """Write ``data`` to ``dest`` atomically once it opens as a video."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        info = probe_video(backend, tmp)
        tmp.replace(dest)
    finally:
        tmp.unlink(missing_ok=True)
    return info.model_copy(update={"path": dest})
