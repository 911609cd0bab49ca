"""Pika, whose public API is fal's queue (queue.fal.run).

``POST /fal-ai/pika/v2.2/{text-to-video|image-to-video}`` → ``{request_id, status_url,
response_url, cancel_url}`` (the URLs drop the model sub-path; we use them rather than build
them, after checking they stay on the queue host: they receive our key). Status answers 202
while ``IN_QUEUE``/``IN_PROGRESS`` and 200 when ``COMPLETED``; a failed run surfaces when the
result is fetched (422 with a ``detail`` list, ``X-Fal-Retryable``). ``Authorization: Key``.
Contract: shared/vendor-apis.md §C.
"""

from __future__ import annotations

from typing import Any, ClassVar
from urllib.parse import urlsplit

from ..capabilities import Capabilities, ImageInput, ModeSpec, frame_size
from ..config import BackendSettings
from ..constants import FAL_QUEUE_URL
from ..errors import (
    BackendError,
    ContentPolicyError,
    GenerationFailedError,
    MalformedResponseError,
    RejectedInputError,
)
from ..media import data_uri, load_image
from ..models import GenerationRequest, JobState, JobStatus, Mode, VendorJob
from ..transport import POLICY_CODES, field, json_object, send
from .base import BaseVideoBackend, Lookup, tolerate

ASPECT_SIZES = {
    "16:9": (16, 9),
    "9:16": (9, 16),
    "1:1": (1, 1),
    "4:5": (4, 5),
    "5:4": (5, 4),
    "3:2": (3, 2),
    "2:3": (2, 3),
}
RESOLUTIONS = {"720p": 720, "1080p": 1080}
PRICES = ((5.0, 720, 0.20), (5.0, 1080, 0.45), (10.0, 720, 0.60), (10.0, 1080, 1.00))
"""Pika v2.2 on fal, USD per clip by (seconds, short side), as of 2026-11-29 (fal's model
page and Comfy's table, ``shared/vendor-apis.md`` §C.3, vendor-apis-2.md §8.1: $0.04/s at
720p for 5 s). Override with ``backends.pika.pricing``."""
STATES = {
    "IN_QUEUE": JobState.QUEUED,
    "IN_PROGRESS": JobState.RUNNING,
    "COMPLETED": JobState.SUCCEEDED,
}
PROMPT_MAX_CHARS = 2000
NO_SUCH_REQUEST = "00000000-0000-0000-0000-000000000000"
"""Health probe: a status call on an id that cannot exist; 404 proves the key and the queue."""


class PikaSettings(BackendSettings):
    default_base_url: ClassVar[str] = FAL_QUEUE_URL
    key_env: ClassVar[tuple[str, ...]] = ("FAL_KEY",)

    model: str = "fal-ai/pika/v2.2"
    """fal endpoint prefix; ``/text-to-video`` or ``/image-to-video`` is appended."""


SIZE_LABELS = {frame_size(a, px): (a, r) for r, px in RESOLUTIONS.items() for a in ASPECT_SIZES}


def app_path(model: str) -> str:
    """``fal-ai/pika/v2.2`` → ``fal-ai/pika``: status, result and cancel drop the sub-path."""
    return "/".join(model.strip("/").split("/")[:2])


def failure_class(
    status_code: int, error_type: str | None, retryable: str | None
) -> type[BackendError]:
    """A failed result fetch → error class (pure; a table in the tests)."""
    if error_type in POLICY_CODES:
        return ContentPolicyError
    if status_code == 422 and retryable != "true":
        return RejectedInputError
    return GenerationFailedError


class PikaBackend(BaseVideoBackend):
    name = "pika"
    settings_model = PikaSettings
    settings: PikaSettings
    lookup = Lookup.NONE
    """fal's queue takes no client id and lists no requests (§C.2): a lost answer stays lost."""

    def get_capabilities(self) -> Capabilities:
        spec = ModeSpec(
            model=self.settings.model,
            durations=(5.0, 10.0),
            sizes=tuple(SIZE_LABELS),
            price_table=PRICES,
        )
        return Capabilities(
            text=spec,
            image=spec,
            prompt_max_chars=PROMPT_MAX_CHARS,
            image_inputs=frozenset({ImageInput.PUBLIC_URL, ImageInput.DATA_URI}),
            negative_prompt=True,
        )

    def _send(self, method: str, url: str, **kwargs: Any) -> Any:
        headers = {"Authorization": f"Key {self.api_key()}", "Accept": "application/json"}
        return send(self._client, self.name, method, url, headers=headers, **kwargs)

    def payload(self, request: GenerationRequest) -> dict[str, Any]:
        aspect, resolution = SIZE_LABELS[request.size]
        body: dict[str, Any] = {
            "prompt": request.prompt,
            "resolution": resolution,
            "duration": int(request.duration),
        }
        if request.negative_prompt:
            body["negative_prompt"] = request.negative_prompt
        if request.seed is not None:
            body["seed"] = request.seed
        if request.mode is Mode.IMAGE_TO_VIDEO:
            body["image_url"] = self._image_url(request.image or "")
        else:
            body["aspect_ratio"] = aspect
        return body

    def _image_url(self, ref: str) -> str:
        """URLs go as they are (fal fetches them); files are inlined, as fal accepts data URIs."""
        if ref.startswith(("https://", "http://", "data:")):
            return ref
        return data_uri(load_image(self._client, self.name, ref))

    def submit(self, request: GenerationRequest, *, key: str | None = None) -> VendorJob:
        kind = "image-to-video" if request.mode is Mode.IMAGE_TO_VIDEO else "text-to-video"
        url = f"{self.base_url}/{request.model.strip('/')}/{kind}"
        response = self._send("POST", url, json=self.payload(request), creates_job=True)
        answer = json_object(self.name, response, creates_job=True)
        request_id = field(self.name, answer, "request_id", creates_job=True)
        return VendorJob(backend=self.name, job_id=request_id, urls=self._urls(answer, request_id))

    def _urls(self, answer: dict[str, Any], request_id: str) -> dict[str, str]:
        """The answer's URLs when they stay on the queue host, else the documented ones."""
        base = f"{self.base_url}/{app_path(self.settings.model)}/requests/{request_id}"
        built = {
            "response_url": base,
            "status_url": f"{base}/status",
            "cancel_url": f"{base}/cancel",
        }
        host = urlsplit(self.base_url).netloc
        given = {k: answer.get(k) for k in built}
        if all(isinstance(v, str) and urlsplit(v).netloc == host for v in given.values()):
            return {k: str(v) for k, v in given.items()}
        return built

    def _url(self, job: VendorJob, kind: str) -> str:
        if kind in job.urls:
            return job.urls[kind]
        return self._urls({}, job.job_id)[kind]

    def poll(self, job: VendorJob) -> JobStatus:
        answer = json_object(self.name, self._send("GET", self._url(job, "status_url")))
        vendor_state = field(self.name, answer, "status")
        state = STATES.get(vendor_state)
        if state is None:
            raise MalformedResponseError(self.name, f"unknown queue status {vendor_state!r}")
        if answer.get("error"):
            return self._failed(vendor_state, 500, answer.get("error_type"), str(answer["error"]))
        if state is JobState.SUCCEEDED:
            return self._result(job)
        return JobStatus(state=state, vendor_state=vendor_state)

    def _result(self, job: VendorJob) -> JobStatus:
        """Fetch a COMPLETED request's result: the video URL, or the run's error."""
        try:
            answer = self._send("GET", self._url(job, "response_url"))
        except BackendError as error:
            if error.vendor_code is None and error.status_code != 422:
                raise  # the queue itself failed us (429, 503...): try again, the job is fine
            return self._failed(
                "COMPLETED", error.status_code or 0, error.vendor_code, error.message
            )
        body = json_object(self.name, answer)
        video = body.get("video")
        if not isinstance(video, dict) or not isinstance(video.get("url"), str):
            raise MalformedResponseError(self.name, "result has no video.url")
        return JobStatus(
            state=JobState.SUCCEEDED, vendor_state="COMPLETED", output_url=video["url"]
        )

    def _failed(self, vendor_state: str, status: int, code: str | None, reason: str) -> JobStatus:
        cancelled = code == "client_cancelled"
        return JobStatus(
            state=JobState.CANCELLED if cancelled else JobState.FAILED,
            vendor_state=vendor_state,
            http_status=status,
            failure_code=code,
            failure_reason=reason,
        )

    def failure_class(self, status: JobStatus) -> type[BackendError]:
        return failure_class(status.http_status or 0, status.failure_code, None)

    def cancel(self, job: VendorJob) -> None:
        with tolerate(400, 404):  # already completed, or gone
            self._send("PUT", self._url(job, "cancel_url"))

    def probe(self) -> dict[str, Any]:
        url = f"{self.base_url}/{app_path(self.settings.model)}/requests/{NO_SUCH_REQUEST}/status"
        try:
            self._send("GET", url)
        except RejectedInputError as error:
            if error.status_code == 404:
                return {"queue": "reachable"}
            raise
        return {"queue": "reachable"}
