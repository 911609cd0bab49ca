"""Runway (api.dev.runwayml.com, API version 2024-11-06).

``POST /v1/image_to_video`` or ``/v1/text_to_video`` → ``{"id"}``; ``GET /v1/tasks/{id}``;
``DELETE /v1/tasks/{id}``; health from ``GET /v1/organization``. Every request carries
``Authorization: Bearer`` and ``X-Runway-Version``. Contract: shared/vendor-apis.md §A.
"""

from __future__ import annotations

from typing import Any, ClassVar, NamedTuple

from pydantic import field_validator

from ..capabilities import Capabilities, ImageInput, ModeSpec
from ..config import BackendSettings
from ..constants import RUNWAY_API_VERSION, RUNWAY_BASE_URL, RUNWAY_DATA_URI_MAX_BYTES
from ..errors import (
    BackendError,
    ContentPolicyError,
    GenerationFailedError,
    MalformedResponseError,
    RejectedInputError,
)
from ..media import data_uri, load_image
from ..models import GenerationRequest, JobState, JobStatus, Mode, Size, VendorJob
from ..transport import field, json_object, mapped_state, send
from .base import BaseVideoBackend, Lookup, tolerate
from .options import one_of

GEN4_RATIOS = ("1280:720", "720:1280", "1104:832", "832:1104", "960:960", "1584:672")
VEO_RATIOS = ("1280:720", "720:1280", "1920:1080", "1080:1920")
TWO_TO_TEN = tuple(float(s) for s in range(2, 11))
VEO_DURATIONS = (4.0, 6.0, 8.0)


class RunwayModel(NamedTuple):
    ratios: tuple[str, ...]
    durations: tuple[float, ...]
    usd_per_second: float
    """Published price per output second, 1 credit = $0.01 (as of 2026-11-29: gen4_turbo 5
    credits/s and gen4.5 12, docs.dev.runwayml.com/guides/pricing via LiteLLM 1.110.2's
    catalogue; the Veo models' from the same catalogue; ``shared/vendor-apis-2.md`` §8.1).
    Override with ``backends.runway.pricing``."""


IMAGE_MODELS = {
    "gen4_turbo": RunwayModel(GEN4_RATIOS, TWO_TO_TEN, 0.05),
    "gen4.5": RunwayModel(GEN4_RATIOS, TWO_TO_TEN, 0.12),
    "veo3": RunwayModel(VEO_RATIOS, (8.0,), 0.40),
    "veo3.1": RunwayModel(VEO_RATIOS, VEO_DURATIONS, 0.20),
    "veo3.1_fast": RunwayModel(VEO_RATIOS, VEO_DURATIONS, 0.10),
}
TEXT_MODELS = {
    "gen4.5": RunwayModel(("1280:720", "720:1280"), TWO_TO_TEN, 0.12),
    "veo3": RunwayModel(VEO_RATIOS, (8.0,), 0.40),
    "veo3.1": RunwayModel(VEO_RATIOS, VEO_DURATIONS, 0.20),
    "veo3.1_fast": RunwayModel(VEO_RATIOS, VEO_DURATIONS, 0.10),
}

STATES = {
    "PENDING": JobState.QUEUED,
    "THROTTLED": JobState.QUEUED,
    "RUNNING": JobState.RUNNING,
    "SUCCEEDED": JobState.SUCCEEDED,
    "FAILED": JobState.FAILED,
    "CANCELLED": JobState.CANCELLED,
}
"""Runway's task statuses in our vocabulary (THROTTLED: stored, over the concurrency limit)."""

PROMPT_MAX_CHARS = 1000


class RunwaySettings(BackendSettings):
    default_base_url: ClassVar[str] = RUNWAY_BASE_URL
    key_env: ClassVar[tuple[str, ...]] = ("RUNWAYML_API_SECRET",)

    image_model: str = "gen4_turbo"
    """Model for scenes with a first frame (``gen4_turbo``, ``gen4.5``, ``veo3.1``...)."""
    text_model: str | None = "gen4.5"
    """Model for text-only scenes; ``null`` disables text-to-video (gen4_turbo is i2v only)."""
    api_version: str = RUNWAY_API_VERSION

    @field_validator("image_model")
    @classmethod
    def _image_model(cls, value: str) -> str:
        return str(one_of("image_model", value, IMAGE_MODELS))

    @field_validator("text_model")
    @classmethod
    def _text_model(cls, value: str | None) -> str | None:
        return one_of("text_model", value, TEXT_MODELS)


def ratio_size(ratio: str) -> Size:
    width, height = ratio.split(":")
    return Size(int(width), int(height))


def mode_spec(model: str, spec: RunwayModel) -> ModeSpec:
    return ModeSpec(
        model=model,
        durations=spec.durations,
        sizes=tuple(ratio_size(r) for r in spec.ratios),
        cost_per_second_usd=spec.usd_per_second,
    )


def failure_class(code: str | None) -> type[BackendError]:
    """Runway ``failureCode`` → error class (pure; a table in the tests).

    ``SAFETY.*`` and ``INPUT_PREPROCESSING.SAFETY.*`` are the scene's fault and never retried
    elsewhere; ``ASSET.*`` means the input image was refused; the rest (``INTERNAL.*``) is
    the backend's.
    """
    code = code or ""
    if code.startswith(("SAFETY", "INPUT_PREPROCESSING.SAFETY")):
        return ContentPolicyError
    if code.startswith("ASSET"):
        return RejectedInputError
    return GenerationFailedError


def parse_task(backend: str, body: dict[str, Any]) -> JobStatus:
    """A ``GET /v1/tasks/{id}`` body → :class:`JobStatus`."""
    vendor_state, state = mapped_state(backend, body, "status", STATES, "task status")
    output = body.get("output") or []
    if state is JobState.SUCCEEDED and not (isinstance(output, list) and output):
        raise MalformedResponseError(backend, "SUCCEEDED task has no output URL")
    progress = body.get("progress")
    return JobStatus(
        state=state,
        vendor_state=vendor_state,
        progress=float(progress) if isinstance(progress, int | float) else None,
        output_url=str(output[0]) if state is JobState.SUCCEEDED else None,
        failure_code=body.get("failureCode"),
        failure_reason=body.get("failure"),
    )


class RunwayBackend(BaseVideoBackend):
    name = "runway"
    settings_model = RunwaySettings
    settings: RunwaySettings
    lookup = Lookup.NONE
    """Runway takes no client id and has no list of tasks (§A.4): a lost answer stays lost."""

    def get_capabilities(self) -> Capabilities:
        text = self.settings.text_model
        image = self.settings.image_model
        return Capabilities(
            text=mode_spec(text, TEXT_MODELS[text]) if text else None,
            image=mode_spec(image, IMAGE_MODELS[image]),
            prompt_max_chars=PROMPT_MAX_CHARS,
            image_inputs=frozenset({ImageInput.PUBLIC_URL, ImageInput.DATA_URI}),
            negative_prompt=image.startswith("veo"),
        )

    def _headers(self) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {self.api_key()}",
            "X-Runway-Version": self.settings.api_version,
        }

    def _call(
        self, method: str, path: str, *, accept: str = "application/json", **kwargs: Any
    ) -> Any:
        headers = {**self._headers(), "Accept": accept}
        return send(
            self._client, self.name, method, self.base_url + path, headers=headers, **kwargs
        )

    def submit(self, request: GenerationRequest, *, key: str | None = None) -> VendorJob:
        body = self.payload(request)
        path = "/v1/image_to_video" if request.mode is Mode.IMAGE_TO_VIDEO else "/v1/text_to_video"
        response = self._call("POST", path, json=body, creates_job=True)
        answer = json_object(self.name, response, creates_job=True)
        return VendorJob(backend=self.name, job_id=field(self.name, answer, "id", creates_job=True))

    def payload(self, request: GenerationRequest) -> dict[str, Any]:
        """The create body (camelCase, duration an int, ratio ``W:H`` in pixels)."""
        body: dict[str, Any] = {
            "model": request.model,
            "ratio": f"{request.size.width}:{request.size.height}",
            "duration": int(request.duration),
        }
        if request.prompt:
            body["promptText"] = request.prompt
        if request.seed is not None:
            body["seed"] = request.seed
        if request.negative_prompt:
            body["negativePrompt"] = request.negative_prompt
        if request.mode is Mode.IMAGE_TO_VIDEO:
            body["promptImage"] = self._prompt_image(request.image or "")
        return body

    def _prompt_image(self, ref: str) -> str:
        """HTTPS URLs go as they are; files and other URLs are inlined as a data URI (≤5 MB)."""
        if ref.startswith("https://"):
            return ref
        image = load_image(self._client, self.name, ref)
        if len(image.data) * 4 / 3 > RUNWAY_DATA_URI_MAX_BYTES:
            raise RejectedInputError(
                self.name, "the first frame is over Runway's 5 MB data-URI limit; give an https URL"
            )
        return data_uri(image)

    def poll(self, job: VendorJob) -> JobStatus:
        try:
            answer = self._call("GET", f"/v1/tasks/{job.job_id}")
        except RejectedInputError as error:
            if error.status_code == 404:  # deleted tasks "will not be able to be fetched again"
                return JobStatus(state=JobState.CANCELLED, vendor_state="deleted")
            raise
        return parse_task(self.name, json_object(self.name, answer))

    def failure_class(self, status: JobStatus) -> type[BackendError]:
        return failure_class(status.failure_code)

    def cancel(self, job: VendorJob) -> None:
        with tolerate(404):  # already gone is what we wanted
            self._call("DELETE", f"/v1/tasks/{job.job_id}", accept="*/*")

    def probe(self) -> dict[str, Any]:
        body = json_object(self.name, self._call("GET", "/v1/organization"))
        return {"credit_balance": body.get("creditBalance")}
