"""MiniMax Hailuo video (api.minimax.io): the V1 API, and the V2 API for the models made for it.

V1 (``MiniMax-Hailuo-2.3``, ``-2.3-Fast``, ``-02``, the ``01`` series): ``POST
/v1/video_generation`` → ``{"task_id"}``; ``GET /v1/query/video_generation?task_id=``
(Preparing, Queueing, Processing, Fail, or Success with a ``file_id``); the video's URL comes
from ``GET /v1/files/retrieve?file_id=`` (``file.download_url``, valid for hours only, so it is
asked for at each poll of a finished task, never stored). V1 has no seed, negative prompt or
aspect ratio (a first frame sets the frame, text makes 16:9), takes 6 or 10 s (10 s only at
768P) and has no cancel; health from ``GET /v1/files/list``.

V2 (``MiniMax-H3``, ``-H3-Max``: the model's name picks the API): ``POST /v2/video_generation``
with a ``content`` list (the text; the first frame as ``image_url`` with ``role:
first_frame``), ``resolution``, ``ratio`` and an int ``duration`` (4–15 s) → ``{"task_id"}``;
``GET /v2/query/video_generation/{id}`` → ``{"task": {"status": queued | running | succeeded |
failed | cancelled, "content": {"url"}, "error": {"code", "message"}}}``; ``DELETE
/v2/video_generation/{id}`` cancels; health from ``GET /v2/query/video_generation``.

Both: ``Authorization: Bearer``. Errors mostly come as HTTP 200 with a non-zero
``base_resp.status_code`` (1002 rate limit, 1004 bad key, 1008 no balance, 1026/1027 content
refused, 2013 bad parameters...), each read as the error its code names. Neither takes a client
id or lists tasks in a way a lost create answer could be matched by (V2's list is UNCONFIRMED).
Contract: shared/vendor-apis-2.md §3.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, NamedTuple

from pydantic import field_validator, model_validator

from ..capabilities import Capabilities, ImageInput, ModeSpec, frame_size
from ..config import BackendSettings
from ..constants import MINIMAX_BASE_URL
from ..errors import (
    AuthError,
    BackendError,
    BackendUnavailableError,
    ContentPolicyError,
    GenerationFailedError,
    RateLimitedError,
    RejectedInputError,
)
from ..media import data_uri, load_image
from ..models import GenerationRequest, JobState, JobStatus, Mode, Scene, Size, VendorJob
from ..transport import Codes, field, mapped_state, send_coded
from .base import BaseVideoBackend, Lookup, tolerate

BOTH = frozenset(Mode)
TEXT = frozenset({Mode.TEXT_TO_VIDEO})
IMAGE = frozenset({Mode.IMAGE_TO_VIDEO})


class HailuoModel(NamedTuple):
    api: str
    """``v1`` or ``v2``: the API the model is served on."""
    modes: frozenset[Mode]
    usd_per_second: dict[str, float]
    """USD per output second by resolution, the default first. V2: MiniMax's pay-as-you-go
    prices (via LiteLLM 1.110.2's catalogue, 2026-11-29); V1 Hailuo: UNCONFIRMED placeholders
    from resellers' prices ($0.05 at 768P, $0.08 at 1080P); the 01 series: $0.43 a 6-s clip
    (Comfy's table). All in ``shared/vendor-apis-2.md`` §3.5; override with
    ``backends.minimax.pricing``."""
    durations: tuple[float, ...]


HAILUO = {"768P": 0.05, "1080P": 0.08}
SERIES_01 = {"720P": round(0.43 / 6, 6)}
FOUR_TO_FIFTEEN = tuple(map(float, range(4, 16)))
MODELS = {
    "MiniMax-Hailuo-2.3": HailuoModel("v1", BOTH, HAILUO, (6.0, 10.0)),
    "MiniMax-Hailuo-2.3-Fast": HailuoModel("v1", IMAGE, HAILUO, (6.0, 10.0)),
    "MiniMax-Hailuo-02": HailuoModel("v1", BOTH, HAILUO, (6.0, 10.0)),
    "T2V-01-Director": HailuoModel("v1", TEXT, SERIES_01, (6.0,)),
    "T2V-01": HailuoModel("v1", TEXT, SERIES_01, (6.0,)),
    "I2V-01-Director": HailuoModel("v1", IMAGE, SERIES_01, (6.0,)),
    "I2V-01-live": HailuoModel("v1", IMAGE, SERIES_01, (6.0,)),
    "I2V-01": HailuoModel("v1", IMAGE, SERIES_01, (6.0,)),
    "MiniMax-H3": HailuoModel("v2", BOTH, {"768P": 0.08, "2K": 0.13}, FOUR_TO_FIFTEEN),
    "MiniMax-H3-Max": HailuoModel("v2", BOTH, {"768P": 0.08, "480P": 0.05}, FOUR_TO_FIFTEEN),
}
RESOLUTIONS = {"480P": 480, "720P": 720, "768P": 768, "1080P": 1080, "2K": 1440}
"""Each resolution's short side in pixels."""
V1_RATIO = "16:9"
"""V1 takes no ratio: a text scene comes out landscape."""
V2_RATIOS = ("16:9", "9:16", "1:1", "4:3", "3:4", "21:9")
LONG_CLIP = 10.0
LONG_CLIP_RESOLUTION = "768P"
"""V1 makes 10-s clips at 768P only ("1080P only with 6 s")."""
V1_STATES = {
    "Preparing": JobState.QUEUED,
    "Queueing": JobState.QUEUED,
    "Processing": JobState.RUNNING,
    "Success": JobState.SUCCEEDED,
    "Fail": JobState.FAILED,
}
V2_STATES = {
    "queued": JobState.QUEUED,
    "running": JobState.RUNNING,
    "succeeded": JobState.SUCCEEDED,
    "failed": JobState.FAILED,
    "cancelled": JobState.CANCELLED,
}
PROMPT_MAX_CHARS = 2000
CODES: Codes = {
    **dict.fromkeys(("1000", "1001", "1024", "1033"), BackendUnavailableError),
    # 1002 rate limit, 1039 token limit, 1041 connection (concurrency) limit, 2045 "rate
    # growth limit": wait and ramp up again.
    **dict.fromkeys(("1002", "1039", "1041", "2045"), RateLimitedError),
    # 1004 not authorised (or a key of the other region), 2049 invalid key, 2038 real-name
    # verification missing, 1008 insufficient balance, 2056 plan quota used up: no retry helps.
    **dict.fromkeys(("1004", "2049", "2038", "1008", "2056"), AuthError),
    **dict.fromkeys(("1026", "1027"), ContentPolicyError),
    "2013": RejectedInputError,
}
"""MiniMax's ``base_resp.status_code`` values and the error each stands for (§3.4)."""
_NOT_FOUND = "record not found"


class MiniMaxSettings(BackendSettings):
    default_base_url: ClassVar[str] = MINIMAX_BASE_URL
    key_env: ClassVar[tuple[str, ...]] = ("MINIMAX_API_KEY",)

    text_model: str | None = "MiniMax-Hailuo-2.3"
    """Model for text-only scenes (V1 or V2 by its name); ``null`` disables text-to-video."""
    image_model: str | None = "MiniMax-Hailuo-2.3"
    """Model for scenes with a first frame; ``null`` disables image-to-video."""
    prompt_optimizer: bool = True
    """V1: let MiniMax rewrite the prompt (its default); ``false`` follows it more strictly."""

    @field_validator("text_model")
    @classmethod
    def _text_model(cls, value: str | None) -> str | None:
        return _model_for(value, Mode.TEXT_TO_VIDEO)

    @field_validator("image_model")
    @classmethod
    def _image_model(cls, value: str | None) -> str | None:
        return _model_for(value, Mode.IMAGE_TO_VIDEO)

    @model_validator(mode="after")
    def _usable(self) -> MiniMaxSettings:
        if self.text_model is None and self.image_model is None:
            raise ValueError("text_model and image_model are both null: nothing to generate")
        return self


def _model_for(value: str | None, mode: Mode) -> str | None:
    known = [name for name, model in MODELS.items() if mode in model.modes]
    if value is not None and value not in known:
        key = "text_model" if mode is Mode.TEXT_TO_VIDEO else "image_model"
        raise ValueError(f"{key} {value!r} is not one of {', '.join(known)}")
    return value


def size_labels(model: str) -> dict[Size, tuple[str, str]]:
    """Every size ``model`` makes → (ratio, resolution), the default first: the resolution
    names the short side."""
    spec = MODELS[model]
    ratios = V2_RATIOS if spec.api == "v2" else (V1_RATIO,)
    return {
        frame_size(r, RESOLUTIONS[res]): (r, res) for res in spec.usd_per_second for r in ratios
    }


def mode_spec(model: str) -> ModeSpec:
    spec = MODELS[model]
    prices = tuple(
        (seconds, RESOLUTIONS[res], round(usd * seconds, 6))
        for res, usd in spec.usd_per_second.items()
        for seconds in spec.durations
    )
    return ModeSpec(
        model=model, durations=spec.durations, sizes=tuple(size_labels(model)), price_table=prices
    )


def fit_long_clip(request: GenerationRequest, spec: ModeSpec) -> GenerationRequest:
    """A 10-s V1 clip drops to 768P (its length is what the film needs; pure)."""
    model = MODELS.get(request.model)
    if model is None or model.api != "v1" or request.duration < LONG_CLIP:
        return request
    ratio, resolution = size_labels(request.model)[request.size]
    if resolution == LONG_CLIP_RESOLUTION or LONG_CLIP_RESOLUTION not in model.usd_per_second:
        return request
    size = frame_size(ratio, RESOLUTIONS[LONG_CLIP_RESOLUTION])
    return request.model_copy(
        update={"size": size, "estimated_cost_usd": spec.cost(request.duration, size)}
    )


def base_resp(body: dict[str, Any]) -> tuple[str, str] | None:
    """``(code, message)`` of a non-zero ``base_resp``; ``None`` when it says success."""
    base = body.get("base_resp")
    if not isinstance(base, dict) or base.get("status_code") in (None, 0, "0"):
        return None
    return str(base["status_code"]), str(base.get("status_msg") or "")


def failure_class(code: str | None, reason: str | None) -> type[BackendError]:
    """A failed task's code (or, without one, its text) → error class."""
    if CODES.get(code or "") is ContentPolicyError or "sensitive" in (reason or "").lower():
        return ContentPolicyError
    return GenerationFailedError


def parse_v2_task(backend: str, body: dict[str, Any]) -> JobStatus:
    """A ``GET /v2/query/video_generation/{id}`` body → :class:`JobStatus`."""
    task = field(backend, body, "task", dict)
    vendor_state, state = mapped_state(backend, task, "status", V2_STATES, "task status")
    url = None
    if state is JobState.SUCCEEDED:
        url = field(backend, task.get("content") or {}, "url")
    error = task.get("error") if state is JobState.FAILED else None
    error = error if isinstance(error, dict) else {}
    return JobStatus(
        state=state,
        vendor_state=vendor_state,
        output_url=url,
        failure_code=None if error.get("code") is None else str(error["code"]),
        failure_reason=error.get("message"),
    )


def v2_fields(prompt: str, image: str | None, ratio: str) -> dict[str, Any]:
    """V2's ``content`` list (the text, then the first frame), and ``ratio`` for text alone
    (a first frame sets the frame)."""
    content: list[dict[str, Any]] = [{"type": "text", "text": prompt}] if prompt else []
    if image is None:
        return {"content": content, "ratio": ratio}
    frame = {"type": "image_url", "image_url": {"url": image}, "role": "first_frame"}
    return {"content": [*content, frame]}


def _has_v1_status(body: dict[str, Any]) -> bool:
    return body.get("status") in V1_STATES


class MiniMaxBackend(BaseVideoBackend):
    name = "minimax"
    settings_model = MiniMaxSettings
    settings: MiniMaxSettings
    lookup = Lookup.NONE
    """No client id on either API, and nothing to match a lost create by (§3)."""

    def get_capabilities(self) -> Capabilities:
        text, image = self.settings.text_model, self.settings.image_model
        return Capabilities(
            text=mode_spec(text) if text else None,
            image=mode_spec(image) if image else None,
            prompt_max_chars=PROMPT_MAX_CHARS,
            image_inputs=frozenset({ImageInput.PUBLIC_URL, ImageInput.DATA_URI}),
            seed=False,
        )

    def prepare(self, scene: Scene) -> GenerationRequest:
        """Fit the scene, then keep a 10-s V1 clip at the one resolution V1 makes it in."""
        request = super().prepare(scene)
        return fit_long_clip(request, self.get_capabilities().spec(request.mode))

    def _configured_api(self) -> str:
        """The API of the configured models (the text model's, when they differ)."""
        return MODELS[self.settings.text_model or self.settings.image_model or ""].api

    def _api(self, job: VendorJob) -> str:
        """The API the job was made on (a bare handle: the configured one)."""
        return job.urls.get("api") or self._configured_api()

    def _call(
        self,
        method: str,
        path: str,
        *,
        answered: Callable[[dict[str, Any]], bool] | None = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """One request; a non-zero ``base_resp`` is raised as the error its code names,
        unless ``answered`` says the body is an answer all the same (a failed task)."""

        def refusal(body: dict[str, Any]) -> tuple[str, str] | None:
            return None if answered is not None and answered(body) else base_resp(body)

        headers = {"Authorization": f"Bearer {self.api_key()}", "Accept": "application/json"}
        url = self.base_url + path
        return send_coded(
            self._client, self.name, method, url,
            codes=CODES, refusal=refusal, headers=headers, **kwargs,
        )  # fmt: skip

    def payload(self, request: GenerationRequest) -> dict[str, Any]:
        """The create body of the request's API (``duration`` an int; V1 has no ratio)."""
        ratio, resolution = size_labels(request.model)[request.size]
        body: dict[str, Any] = {
            "model": request.model,
            "duration": int(request.duration),
            "resolution": resolution,
        }
        image = self._image(request.image or "") if request.mode is Mode.IMAGE_TO_VIDEO else None
        if MODELS[request.model].api == "v2":
            return {**body, **v2_fields(request.prompt, image, ratio)}
        body["prompt_optimizer"] = self.settings.prompt_optimizer
        if request.prompt:
            body["prompt"] = request.prompt
        if image is not None:
            body["first_frame_image"] = image
        return body

    def _image(self, ref: str) -> str:
        """HTTPS URLs go as they are; anything else inline, as a data URI."""
        if ref.startswith("https://"):
            return ref
        return data_uri(load_image(self._client, self.name, ref))

    def submit(self, request: GenerationRequest, *, key: str | None = None) -> VendorJob:
        api = MODELS[request.model].api
        body = self.payload(request)
        answer = self._call("POST", f"/{api}/video_generation", json=body, creates_job=True)
        task_id = field(self.name, answer, "task_id", (str, int), creates_job=True)
        return VendorJob(backend=self.name, job_id=str(task_id), urls={"api": api})

    def poll(self, job: VendorJob) -> JobStatus:
        if self._api(job) == "v2":
            return self._poll_v2(job)
        params = {"task_id": job.job_id}
        body = self._call(
            "GET", "/v1/query/video_generation", params=params, answered=_has_v1_status
        )
        vendor_state, state = mapped_state(self.name, body, "status", V1_STATES, "task status")
        if state is JobState.SUCCEEDED:
            return self._retrieve(body)
        if state is JobState.FAILED:
            code, message = base_resp(body) or (None, "MiniMax gives no reason")
            return JobStatus(
                state=state, vendor_state=vendor_state, failure_code=code, failure_reason=message
            )
        return JobStatus(state=state, vendor_state=vendor_state)

    def _retrieve(self, task: dict[str, Any]) -> JobStatus:
        """A V1 task that succeeded: its video's download URL, from the files endpoint."""
        file_id = field(self.name, task, "file_id", (str, int))
        body = self._call("GET", "/v1/files/retrieve", params={"file_id": str(file_id)})
        url = field(self.name, field(self.name, body, "file", dict), "download_url")
        return JobStatus(state=JobState.SUCCEEDED, vendor_state="Success", output_url=url)

    def _poll_v2(self, job: VendorJob) -> JobStatus:
        try:
            body = self._call("GET", f"/v2/query/video_generation/{job.job_id}")
        except RejectedInputError as error:
            if error.status_code == 404 or _NOT_FOUND in error.message.lower():
                return JobStatus(state=JobState.CANCELLED, vendor_state="deleted")
            raise
        return parse_v2_task(self.name, body)

    def failure_class(self, status: JobStatus) -> type[BackendError]:
        return failure_class(status.failure_code, status.failure_reason)

    def cancellable(self, job: VendorJob) -> bool:
        return self._api(job) == "v2"

    def cancel(self, job: VendorJob) -> None:
        if not self.cancellable(job):
            raise RejectedInputError(
                self.name, "MiniMax's V1 API has no cancel: it runs to its end"
            )
        with tolerate(404):  # already gone is what we wanted
            self._call("DELETE", f"/v2/video_generation/{job.job_id}")

    def probe(self) -> dict[str, Any]:
        if self._configured_api() == "v2":
            params = {"page_num": 1, "page_size": 1}
            body = self._call("GET", "/v2/query/video_generation", params=params)
            return {"api": "v2", "tasks": body.get("total")}
        body = self._call("GET", "/v1/files/list", params={"purpose": "video_generation"})
        files = body.get("files")
        return {"api": "v1", "files": len(files) if isinstance(files, list) else None}
