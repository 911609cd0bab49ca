"""fal's queue protocol (queue.fal.run), shared by every backend that runs on fal.

``POST /{endpoint id}`` → ``{request_id, status_url, response_url, cancel_url}`` (the URLs drop
the endpoint's sub-path and keep only ``<owner>/<app>``; we use them rather than build them,
after checking they stay on the queue host: they receive our key). Status answers 202 while
``IN_QUEUE``/``IN_PROGRESS`` and 200 when ``COMPLETED``; a failed run surfaces when the result
is fetched (422 with a ``detail`` list, ``X-Fal-Retryable``). ``Authorization: Key``. The
protocol is the same for every endpoint (``shared/vendor-apis.md`` §C.2, vendor-apis-2.md §6);
what differs is the endpoint id and its input fields, which each subclass builds
(:meth:`FalQueueBackend.endpoint`, :meth:`FalQueueBackend.payload`).
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any
from urllib.parse import urlsplit

from ..errors import (
    BackendError,
    ContentPolicyError,
    GenerationFailedError,
    MalformedResponseError,
    RejectedInputError,
)
from ..media import data_uri, load_image
from ..models import GenerationRequest, JobState, JobStatus, VendorJob
from ..transport import POLICY_CODES, field, json_object, mapped_state, send
from .base import BaseVideoBackend, Lookup, tolerate

STATES = {
    "IN_QUEUE": JobState.QUEUED,
    "IN_PROGRESS": JobState.RUNNING,
    "COMPLETED": JobState.SUCCEEDED,
}
NO_SUCH_REQUEST = "00000000-0000-0000-0000-000000000000"
"""Health probe: a status call on an id that cannot exist; 404 proves the key and the queue."""


def app_path(endpoint: str) -> str:
    """``fal-ai/pika/v2.2/text-to-video`` → ``fal-ai/pika``: status, result and cancel drop
    the sub-path (also for owners other than ``fal-ai``: ``wan/v2.6/...`` → ``wan/v2.6``)."""
    return "/".join(endpoint.strip("/").split("/")[:2])


def failure_class(
    status_code: int, error_type: str | None, retryable: str | None
) -> type[BackendError]:
    """A failed result fetch → error class (pure; a table in the tests)."""
    if error_type in POLICY_CODES:
        return ContentPolicyError
    if status_code == 422 and retryable != "true":
        return RejectedInputError
    return GenerationFailedError


class FalQueueBackend(BaseVideoBackend):
    """A model on fal's queue: submit, status, result, cancel and the probe, for any endpoint."""

    lookup = Lookup.NONE
    """fal's queue takes no client id and lists no requests (§C.2): a lost answer stays lost."""

    @abstractmethod
    def endpoint(self, request: GenerationRequest) -> str:
        """The endpoint id this request is submitted to (``fal-ai/pika/v2.2/text-to-video``)."""

    @abstractmethod
    def payload(self, request: GenerationRequest) -> dict[str, Any]:
        """The endpoint's input for this request."""

    @abstractmethod
    def home_app(self) -> str:
        """The ``<owner>/<app>`` the probe asks about (and job URLs fall back to)."""

    def _send(self, method: str, url: str, **kwargs: Any) -> Any:
        headers = {"Authorization": f"Key {self.api_key()}", "Accept": "application/json"}
        return send(self._client, self.name, method, url, headers=headers, **kwargs)

    def image_url(self, ref: str) -> str:
        """URLs go as they are (fal fetches them); files are inlined, as fal accepts data URIs."""
        if ref.startswith(("https://", "http://", "data:")):
            return ref
        return data_uri(load_image(self._client, self.name, ref))

    def submit(self, request: GenerationRequest, *, key: str | None = None) -> VendorJob:
        endpoint = self.endpoint(request).strip("/")
        url = f"{self.base_url}/{endpoint}"
        response = self._send("POST", url, json=self.payload(request), creates_job=True)
        answer = json_object(self.name, response, creates_job=True)
        request_id = field(self.name, answer, "request_id", creates_job=True)
        urls = self._urls(answer, request_id, app_path(endpoint))
        return VendorJob(backend=self.name, job_id=request_id, urls=urls)

    def _urls(self, answer: dict[str, Any], request_id: str, app: str) -> dict[str, str]:
        """The answer's URLs when they stay on the queue host, else the documented ones."""
        base = f"{self.base_url}/{app}/requests/{request_id}"
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
        return self._urls({}, job.job_id, self.home_app())[kind]

    def poll(self, job: VendorJob) -> JobStatus:
        answer = json_object(self.name, self._send("GET", self._url(job, "status_url")))
        vendor_state, state = mapped_state(self.name, answer, "status", STATES, "queue status")
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
        url = f"{self.base_url}/{self.home_app()}/requests/{NO_SUCH_REQUEST}/status"
        try:
            self._send("GET", url)
        except RejectedInputError as error:
            if error.status_code != 404:
                raise
        return {"queue": "reachable"}
