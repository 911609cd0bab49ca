"""Alibaba DashScope sandbox for Wan video (vendor-apis-2.md section 4), under ``/api/v1``.

Create (``POST /services/aigc/video-generation/video-synthesis``) must carry
``X-DashScope-Async: enable`` and answers ``{"request_id", "output": {"task_id",
"task_status": "PENDING"}}``. ``GET /tasks/{task_id}`` shows PENDING (waiting or queued) ->
RUNNING -> SUCCEEDED (``output.video_url``, ``usage``) | FAILED (``output.code``,
``output.message``) | CANCELED, and answers **200 with ``UNKNOWN``** for a task it does not know.
``POST /tasks/{task_id}/cancel`` cancels PENDING tasks only. Errors are ``{"request_id", "code",
"message"}``; ``duration`` must be an int and ``resolution`` upper-case. The exact texts of the
"sync call" and "cannot cancel" refusals, and the list's fields, are UNCONFIRMED.
"""

from __future__ import annotations

import uuid
from typing import Any

from starlette.applications import Starlette
from starlette.responses import JSONResponse, Response

from videogen.sandbox.http import (
    Call,
    Vendor,
    control_routes,
    create_delay,
    file_route,
    image_ref_problem,
    json_error,
    vendor_route,
)
from videogen.sandbox.state import Job, JobSpec, Phase, SandboxState, is_policy_code

PREFIX = "/api/v1"
CREATE_PATH = PREFIX + "/services/aigc/video-generation/video-synthesis"
SIZES = {
    ("480P", "16:9"): (832, 480),
    ("480P", "9:16"): (480, 832),
    ("480P", "1:1"): (624, 624),
    ("720P", "16:9"): (1280, 720),
    ("720P", "9:16"): (720, 1280),
    ("720P", "1:1"): (960, 960),
    ("720P", "4:3"): (1088, 832),
    ("720P", "3:4"): (832, 1088),
    ("1080P", "16:9"): (1920, 1080),
    ("1080P", "9:16"): (1080, 1920),
    ("1080P", "1:1"): (1440, 1440),
    ("1080P", "4:3"): (1632, 1248),
    ("1080P", "3:4"): (1248, 1632),
}
RATIOS = ("16:9", "9:16", "1:1", "4:3", "3:4")
# model -> (takes a first frame, resolutions, durations)
MODELS: dict[str, tuple[bool | None, tuple[str, ...], tuple[int, ...]]] = {
    "wan2.7-t2v": (False, ("720P", "1080P"), tuple(range(2, 16))),
    "wan2.7-i2v": (True, ("720P", "1080P"), tuple(range(2, 16))),
    "wan3.0-video": (None, ("480P", "720P", "1080P"), (5, 10)),
}
_MAX_PROMPT = 1500
_MAX_SEED = 2147483647
_POLICY_CODE = "DataInspectionFailed"
_POLICY_MESSAGE = "Output data may contain inappropriate content."
_DEFAULT_CODE = "InternalError.Algo"
_DEFAULT_MESSAGE = "An internal error occurred in the algorithm service."
_CODES = {
    400: "InvalidParameter",
    401: "InvalidApiKey",
    403: "AccessDenied",
    404: "NotFound",
    429: "Throttling",
    500: "InternalError",
    502: "InternalError",
    503: "ServiceUnavailable",
    504: "GatewayTimeout",
}
_STATUS = {
    Phase.WAITING: "PENDING",
    Phase.QUEUED: "PENDING",
    Phase.RUNNING: "RUNNING",
    Phase.SUCCEEDED: "SUCCEEDED",
    Phase.FAILED: "FAILED",
    Phase.CANCELLED: "CANCELED",
}


class _Invalid(Exception):
    """A request DashScope would refuse; ``code`` is its error code."""

    def __init__(self, message: str, code: str = "InvalidParameter", status: int = 400) -> None:
        super().__init__(message)
        self.code, self.status = code, status


def _body(code: str, message: str) -> dict[str, str]:
    return {"request_id": str(uuid.uuid4()), "code": code, "message": message}


def _error(status: int, message: str) -> Response:
    return json_error(status, _body(_CODES.get(status, "InternalError"), message))


VENDOR = Vendor(name="wan", error=_error, auth_scheme="Bearer")


# -- validation ------------------------------------------------------------------------------------
def _object(body: dict[str, Any], name: str) -> dict[str, Any]:
    value = body.get(name, {})
    if not isinstance(value, dict):
        raise _Invalid(f"{name} must be an object.")
    return value


def _first_frame(inputs: dict[str, Any], takes_image: bool | None) -> str | None:
    if "img_url" in inputs:
        raise _Invalid("img_url is not supported by this model; use input.media.")
    media = inputs.get("media")
    if media is None:
        if takes_image:
            raise _Invalid("input.media with a first_frame is required for image-to-video.")
        return None
    if takes_image is False:
        raise _Invalid("input.media is not supported by this model.")
    if not isinstance(media, list) or not media:
        raise _Invalid("input.media must be a non-empty list.")
    frames = [m for m in media if isinstance(m, dict) and m.get("type") == "first_frame"]
    if len(frames) != 1 or len(media) != 1:
        raise _Invalid("input.media must hold exactly one item of type first_frame.")
    problem = image_ref_problem(frames[0].get("url"))
    if problem is not None:
        raise _Invalid(f"input.media[0].url: {problem}")
    return str(frames[0]["url"])


def _prompt(inputs: dict[str, Any], image: str | None) -> str:
    prompt = inputs.get("prompt", "")
    if not isinstance(prompt, str) or (not prompt.strip() and image is None):
        raise _Invalid("input.prompt is required.")
    if len(prompt) > _MAX_PROMPT:
        raise _Invalid(f"input.prompt must be at most {_MAX_PROMPT} characters.")
    return prompt


def _int(params: dict[str, Any], name: str, allowed: range | tuple[int, ...], default: int) -> int:
    value = params.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or value not in allowed:
        raise _Invalid(f"parameters.{name} must be an integer, one of the allowed values.")
    return value


def _choice(params: dict[str, Any], name: str, allowed: tuple[str, ...], default: str) -> str:
    value = params.get(name, default)
    if value not in allowed:
        raise _Invalid(f"parameters.{name} '{value}' must be one of {', '.join(allowed)}.")
    return str(value)


def _parse_create(body: Any) -> JobSpec:
    if not isinstance(body, dict):
        raise _Invalid("The request body must be a JSON object.")
    model = body.get("model")
    if model not in MODELS:
        raise _Invalid(f"Model not exist: {model}", code="Model.NotExist", status=404)
    takes_image, resolutions, durations = MODELS[model]
    inputs, params = _object(body, "input"), _object(body, "parameters")
    image = _first_frame(inputs, takes_image)
    prompt = _prompt(inputs, image)
    resolution = _choice(params, "resolution", resolutions, "1080P")
    ratio = _choice(params, "ratio", RATIOS, "16:9")
    duration = _int(params, "duration", durations, 5)
    _int(params, "seed", range(_MAX_SEED + 1), 0)
    for flag in ("prompt_extend", "watermark"):
        if not isinstance(params.get(flag, False), bool):
            raise _Invalid(f"parameters.{flag} must be a boolean.")
    if (resolution, ratio) not in SIZES:
        raise _Invalid(f"parameters.ratio '{ratio}' is not offered at {resolution}.")
    width, height = SIZES[(resolution, ratio)]
    vendor = {"resolution": resolution, "ratio": ratio}
    return JobSpec(model, prompt, dict(body), float(duration), width, height, vendor=vendor)


# -- answers ---------------------------------------------------------------------------------------
def _time(state: SandboxState, clock_time: float | None) -> str | None:
    if clock_time is None:
        return None
    return state.wall_time(clock_time).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def _failure(job: Job) -> dict[str, str]:
    policy = is_policy_code(job.failure_code)
    code = _POLICY_CODE if policy else job.failure_code or _DEFAULT_CODE
    message = job.failure_message or (_POLICY_MESSAGE if policy else _DEFAULT_MESSAGE)
    return {"code": code, "message": message}


def _task(call: Call, job: Job, now: float) -> dict[str, Any]:
    phase = job.phase(now)
    output: dict[str, Any] = {
        "task_id": job.id,
        "task_status": _STATUS[phase],
        "submit_time": _time(call.state, job.created_at),
        "scheduled_time": _time(call.state, job.started_at),
        "end_time": _time(call.state, job.finished_at),
        "orig_prompt": job.prompt,
    }
    answer: dict[str, Any] = {"request_id": str(uuid.uuid4()), "output": output}
    if phase is Phase.SUCCEEDED:
        output["video_url"] = call.file_url(job.id)
        answer["usage"] = {
            "video_count": 1,
            "duration": job.duration_s,
            "output_video_duration": int(job.duration_s),
            "SR": int(job.vendor["resolution"].rstrip("P")),
            "ratio": job.vendor["ratio"],
        }
    elif phase is Phase.FAILED:
        output.update(_failure(job))
    return answer


async def _create(call: Call) -> Response:
    if call.request.headers.get("x-dashscope-async") != "enable":
        return json_error(
            403, _body("AccessDenied", "current user api does not support synchronous calls")
        )
    try:
        spec = _parse_create(call.body)
    except _Invalid as exc:
        return json_error(exc.status, _body(exc.code, str(exc)))
    job = call.state.create_job(spec)
    await create_delay(call.state)
    output = {"task_id": job.id, "task_status": "PENDING"}
    return JSONResponse({"request_id": str(uuid.uuid4()), "output": output})


async def _get_task(call: Call) -> Response:
    with call.state.locked() as now:
        job = call.state.get_job(call.param("task_id"))
        if job is None:  # DashScope does not 404 an unknown task
            output = {"task_id": call.param("task_id"), "task_status": "UNKNOWN"}
            return JSONResponse({"request_id": str(uuid.uuid4()), "output": output})
        return JSONResponse(_task(call, job, now))


async def _cancel(call: Call) -> Response:
    """Only a PENDING task can be cancelled; anything else (running, ended, unknown) is refused."""
    state = call.state
    with state.locked() as now:
        job = state.get_job(call.param("task_id"))
        if job is None or job.phase(now) not in (Phase.WAITING, Phase.QUEUED):
            message = "Failed to cancel the task, please confirm if the task is in PENDING status."
            return json_error(400, _body("UnsupportedOperation", message))
        state.cancel_job(job.id)
    return JSONResponse({"request_id": str(uuid.uuid4())})


async def _list(call: Call) -> Response:
    query = call.request.query_params
    try:
        page_no, page_size = int(query.get("page_no", "1")), int(query.get("page_size", "10"))
    except ValueError:
        return _error(400, "page_no and page_size must be integers.")
    with call.state.locked() as now:
        jobs = list(reversed(call.state.jobs(now)))
        start = (page_no - 1) * page_size
        data = [_task(call, job, now)["output"] for job in jobs[start : start + page_size]]
    for item, job in zip(data, jobs[start:], strict=False):
        item["model_name"] = job.kind
    return JSONResponse(
        {
            "request_id": str(uuid.uuid4()),
            "data": data,
            "total": len(jobs),
            "total_page": max(1, -(-len(jobs) // max(page_size, 1))),
            "page_no": page_no,
            "page_size": page_size,
        }
    )


def _task_op(call: Call) -> str:
    """A status read of a task that does not exist is how clients probe DashScope (health)."""
    known = call.state.get_job(call.param("task_id")) is not None
    return "poll" if known else "health"


def create_app(state: SandboxState) -> Starlette:
    """The DashScope sandbox; clients use ``<root>/api/v1`` as their base URL."""
    one = PREFIX + "/tasks/{task_id}"
    routes = [
        vendor_route(VENDOR, state, CREATE_PATH, _create, methods=["POST"], op="create"),
        vendor_route(VENDOR, state, PREFIX + "/tasks", _list, methods=["GET"], op="poll"),
        vendor_route(VENDOR, state, one, _get_task, methods=["GET"], op=_task_op),
        vendor_route(VENDOR, state, one + "/cancel", _cancel, methods=["POST"], op="cancel"),
        file_route(VENDOR, state),
        *control_routes(state),
    ]
    return Starlette(routes=routes)
