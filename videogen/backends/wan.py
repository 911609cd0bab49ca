"""Alibaba Wan on DashScope (Model Studio), native API under ``/api/v1``.

``POST /services/aigc/video-generation/video-synthesis`` with ``X-DashScope-Async: enable`` →
``{"output": {"task_id", "task_status"}}``; ``GET /tasks/{task_id}`` (PENDING, RUNNING,
SUSPENDED, SUCCEEDED, FAILED, CANCELED, and UNKNOWN: a 200 for a task the gateway does not know,
expired after 24 h or made with another region's key); ``POST /tasks/{task_id}/cancel`` (PENDING
tasks only); health from ``GET /tasks/{an id that cannot exist}``, which answers 200 UNKNOWN
with a good key. Bearer auth. Errors are ``{"request_id", "code", "message"}``.
Contract: shared/vendor-apis-2.md §4.
"""

from __future__ import annotations

from typing import Any, ClassVar, NamedTuple

from pydantic import field_validator

from ..capabilities import Capabilities, ImageInput, ModeSpec
from ..config import BackendSettings
from ..constants import WAN_BASE_URL
from ..errors import (
    BackendError,
    ContentPolicyError,
    GenerationFailedError,
    MalformedResponseError,
)
from ..models import GenerationRequest, JobState, JobStatus, Mode, Size, VendorJob
from ..transport import field, is_policy_code, json_object, mapped_state, send
from .base import BaseVideoBackend, Lookup, refused_unless_ended
from .options import all_among, one_of

CREATE_PATH = "/services/aigc/video-generation/video-synthesis"
NO_SUCH_TASK = "00000000-0000-0000-0000-000000000000"
"""Health probe: DashScope answers 200 ``UNKNOWN`` for a task it does not know (§4.3)."""
UNKNOWN = "UNKNOWN"

SIZES = {
    # (resolution, ratio) -> frame size, Wan's published "W*H" lists (legacy ``size`` values;
    # that the ``resolution``+``ratio`` models render the same pixels is UNCONFIRMED).
    ("480P", "16:9"): Size(832, 480),
    ("480P", "9:16"): Size(480, 832),
    ("480P", "1:1"): Size(624, 624),
    ("720P", "16:9"): Size(1280, 720),
    ("720P", "9:16"): Size(720, 1280),
    ("720P", "1:1"): Size(960, 960),
    ("720P", "4:3"): Size(1088, 832),
    ("720P", "3:4"): Size(832, 1088),
    ("1080P", "16:9"): Size(1920, 1080),
    ("1080P", "9:16"): Size(1080, 1920),
    ("1080P", "1:1"): Size(1440, 1440),
    ("1080P", "4:3"): Size(1632, 1248),
    ("1080P", "3:4"): Size(1248, 1632),
}
TWO_TO_FIFTEEN = tuple(float(s) for s in range(2, 16))


class WanModel(NamedTuple):
    modes: frozenset[Mode]
    durations: tuple[float, ...]
    usd_per_second: dict[str, float]
    """By resolution. Published prices as of 2026-11-29 (LiteLLM 1.110.2's catalogue, source the
    alibabacloud.com Model Studio pages; its international entries, as the default host is the
    Singapore one; ``shared/vendor-apis-2.md`` §4.5 and §8.2). Override with
    ``backends.wan.pricing``."""


BOTH = frozenset({Mode.TEXT_TO_VIDEO, Mode.IMAGE_TO_VIDEO})
MODELS = {
    "wan2.7-t2v": WanModel(
        frozenset({Mode.TEXT_TO_VIDEO}), TWO_TO_FIFTEEN, {"720P": 0.10, "1080P": 0.15}
    ),
    "wan2.7-i2v": WanModel(
        frozenset({Mode.IMAGE_TO_VIDEO}), TWO_TO_FIFTEEN, {"720P": 0.10, "1080P": 0.15}
    ),
    # wan3.0's duration range is UNCONFIRMED; 5 and 10 s are what every Wan model since 2.5 takes.
    "wan3.0-video": WanModel(BOTH, (5.0, 10.0), {"480P": 0.05, "720P": 0.10, "1080P": 0.20}),
}

STATES = {
    "PENDING": JobState.QUEUED,
    "SUSPENDED": JobState.QUEUED,
    "RUNNING": JobState.RUNNING,
    "SUCCEEDED": JobState.SUCCEEDED,
    "FAILED": JobState.FAILED,
    "CANCELED": JobState.CANCELLED,
    UNKNOWN: JobState.FAILED,
}
"""DashScope's task statuses in our vocabulary (§10). UNKNOWN for a task we created means it is
gone from where we look (expired, or another region or key): the scene fails over."""
PROMPT_MAX_CHARS = 1500
"""UNCONFIRMED for 2.7/3.0 (Wan 2.5+ docs say 1500 characters; 2.2 took 800)."""


class WanSettings(BackendSettings):
    default_base_url: ClassVar[str] = WAN_BASE_URL
    key_env: ClassVar[tuple[str, ...]] = ("DASHSCOPE_API_KEY",)

    text_model: str | None = "wan2.7-t2v"
    """Model for text-only scenes; ``null`` disables text-to-video."""
    image_model: str | None = "wan2.7-i2v"
    """Model for scenes with a first frame (the ``media`` protocol); ``null`` disables it."""
    resolutions: tuple[str, ...] = ("720P", "1080P")
    """Resolutions offered, the first the default (upper-case P, as DashScope spells them;
    without one wan2.7 renders, and bills, 1080P)."""
    prompt_extend: bool = False
    """DashScope's prompt rewriting: off, so the same scene asks for the same video."""
    watermark: bool = False

    @field_validator("text_model", "image_model")
    @classmethod
    def _model(cls, value: str | None) -> str | None:
        return one_of("model", value, MODELS)

    @field_validator("resolutions")
    @classmethod
    def _resolutions(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return all_among("resolutions", value, sorted({r for r, _ in SIZES}))


def size_labels(resolutions: tuple[str, ...], model: WanModel) -> dict[Size, tuple[str, str]]:
    """Every offered frame size → (resolution, ratio); the default resolution's 16:9 first."""
    return {
        size: (resolution, ratio)
        for resolution in resolutions
        if resolution in model.usd_per_second
        for (res, ratio), size in SIZES.items()
        if res == resolution
    }


def mode_spec(name: str, model: WanModel, resolutions: tuple[str, ...]) -> ModeSpec | None:
    sizes = tuple(size_labels(resolutions, model))
    if not sizes:
        return None
    # One row per (duration, short side): every Wan size has its own short side.
    table = tuple(
        (d, min(size), round(model.usd_per_second[resolution] * d, 4))
        for size, (resolution, _) in size_labels(resolutions, model).items()
        for d in model.durations
    )
    return ModeSpec(model=name, durations=model.durations, sizes=sizes, price_table=table)


def failure_class(code: str | None) -> type[BackendError]:
    """A FAILED task's ``output.code`` → error class (pure; a table in the tests):
    ``DataInspectionFailed`` is the content filter, the scene's fault."""
    return ContentPolicyError if code and is_policy_code(code) else GenerationFailedError


def parse_task(backend: str, body: dict[str, Any]) -> JobStatus:
    """A ``GET /tasks/{id}`` body → :class:`JobStatus`."""
    output = body.get("output")
    if not isinstance(output, dict):
        raise MalformedResponseError(backend, "task answer has no output")
    vendor_state, state = mapped_state(backend, output, "task_status", STATES, "task status")
    video = output.get("video_url")
    if state is JobState.SUCCEEDED and not isinstance(video, str):
        raise MalformedResponseError(backend, "SUCCEEDED task has no output.video_url")
    reason = output.get("message")
    if vendor_state == UNKNOWN:
        reason = "DashScope does not know the task (expired after 24 h, or another region or key)"
    return JobStatus(
        state=state,
        vendor_state=vendor_state,
        output_url=video if state is JobState.SUCCEEDED else None,
        failure_code=output.get("code") or (UNKNOWN if vendor_state == UNKNOWN else None),
        failure_reason=reason,
        usage=billed_usage(body.get("usage")) if state is JobState.SUCCEEDED else {},
    )


def billed_usage(usage: Any) -> dict[str, float]:
    """The billed seconds and resolution of a SUCCEEDED task's ``usage``: ``duration`` (older
    answers: ``video_duration``) and ``SR`` (720 for 720P)."""
    if not isinstance(usage, dict):
        return {}
    seconds = usage.get("duration") or usage.get("video_duration")
    figures = {"seconds": seconds, "resolution": usage.get("SR")}
    return {k: float(v) for k, v in figures.items() if isinstance(v, int | float) and v > 0}


class WanBackend(BaseVideoBackend):
    name = "wan"
    settings_model = WanSettings
    settings: WanSettings
    lookup = Lookup.NONE
    """DashScope takes no client id, and its task list (``GET /tasks?start_time=...``) shows no
    request to match ours against (§4.4, UNCONFIRMED fields): a lost answer stays lost."""

    def get_capabilities(self) -> Capabilities:
        return Capabilities(
            text=self._spec(Mode.TEXT_TO_VIDEO, self.settings.text_model),
            image=self._spec(Mode.IMAGE_TO_VIDEO, self.settings.image_model),
            prompt_max_chars=PROMPT_MAX_CHARS,
            image_inputs=frozenset({ImageInput.PUBLIC_URL}),
            negative_prompt=True,
        )

    def _spec(self, mode: Mode, name: str | None) -> ModeSpec | None:
        """The mode's offer, or ``None`` when no model is set for it or the model lacks it."""
        if name is None or mode not in MODELS[name].modes:
            return None
        return mode_spec(name, MODELS[name], self.settings.resolutions)

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        headers = {
            "Authorization": f"Bearer {self.api_key()}",
            "Accept": "application/json",
            **kwargs.pop("headers", {}),
        }
        return send(
            self._client, self.name, method, self.base_url + path, headers=headers, **kwargs
        )

    def payload(self, request: GenerationRequest) -> dict[str, Any]:
        """The create body: ``input`` (prompt, media) and ``parameters`` (duration an int)."""
        resolution, ratio = size_labels(self.settings.resolutions, MODELS[request.model])[
            request.size
        ]
        inputs: dict[str, Any] = {"prompt": request.prompt}
        if request.negative_prompt:
            inputs["negative_prompt"] = request.negative_prompt
        parameters: dict[str, Any] = {
            "resolution": resolution,
            "duration": int(request.duration),
            "prompt_extend": self.settings.prompt_extend,
            "watermark": self.settings.watermark,
        }
        if request.mode is Mode.IMAGE_TO_VIDEO:
            # The frame's shape follows the first frame; only its resolution is asked for.
            inputs["media"] = [{"type": "first_frame", "url": request.image}]
        else:
            parameters["ratio"] = ratio
        if request.seed is not None:
            parameters["seed"] = request.seed
        return {"model": request.model, "input": inputs, "parameters": parameters}

    def submit(self, request: GenerationRequest, *, key: str | None = None) -> VendorJob:
        response = self._call(
            "POST",
            CREATE_PATH,
            json=self.payload(request),
            headers={"X-DashScope-Async": "enable"},
            creates_job=True,
        )
        answer = json_object(self.name, response, creates_job=True)
        output = answer.get("output")
        task_id = field(
            self.name, output if isinstance(output, dict) else {}, "task_id", creates_job=True
        )
        return VendorJob(backend=self.name, job_id=task_id)

    def poll(self, job: VendorJob) -> JobStatus:
        answer = json_object(self.name, self._call("GET", f"/tasks/{job.job_id}"))
        return parse_task(self.name, answer)

    def failure_class(self, status: JobStatus) -> type[BackendError]:
        return failure_class(status.failure_code)

    def billed_usd(self, status: JobStatus) -> float | None:
        """DashScope's billed seconds at the list rate of the task's resolution; ``None`` (the
        estimate settles) when ``pricing`` overrides the list, a figure is missing, or the two
        configured models price that resolution differently (a task does not echo its model)."""
        seconds, resolution = status.usage.get("seconds"), status.usage.get("resolution")
        if self.settings.pricing.overrides_list or seconds is None or resolution is None:
            return None
        label = f"{int(resolution)}P"
        names = [n for n in (self.settings.text_model, self.settings.image_model) if n]
        rates = {MODELS[name].usd_per_second.get(label) for name in names}
        rate = rates.pop() if len(rates) == 1 else None
        return None if rate is None else round(seconds * rate, 6)

    def cancel(self, job: VendorJob) -> None:
        """Cancel a PENDING task. DashScope refuses to stop a RUNNING one (it runs on, and is
        billed): that refusal is raised; one for a task that has already ended is not."""
        with refused_unless_ended(self, job):
            self._call("POST", f"/tasks/{job.job_id}/cancel")

    def probe(self) -> dict[str, Any]:
        answer = json_object(self.name, self._call("GET", f"/tasks/{NO_SUCH_TASK}"))
        status = parse_task(self.name, answer)
        if status.vendor_state != UNKNOWN:
            raise MalformedResponseError(self.name, "the probe's made-up task id exists")
        return {"tasks": "reachable"}
