"""MiniMax Hailuo sandbox (vendor-apis-2.md section 3): the V1 API with its files, and V2.

Bearer auth. Errors are what MiniMax mostly sends: HTTP 200 with a non-zero ``base_resp``
(1004 a bad key, 1002 over the rate, 2013 bad parameters...); only the infrastructure's own 5xx
(and V2's "record not found", a 404) are HTTP errors.

V1: ``POST /v1/video_generation`` -> ``{"task_id", "base_resp"}``; ``GET
/v1/query/video_generation?task_id=`` -> Preparing (waits for a slot) / Queueing (holds one) /
Processing / Success with a ``file_id`` / Fail (no reason; ``base_resp`` 1027 for a content
refusal); ``GET /v1/files/retrieve?file_id=`` -> ``file.download_url``; ``GET
/v1/files/list?purpose=``. 10 s only at 768P; the 2.3-Fast and I2V models need a first frame.
V2: ``POST /v2/video_generation`` (a ``content`` list) -> ``{"task_id"}``; ``GET
/v2/query/video_generation/{id}`` -> ``{"task": {...}}``; ``GET /v2/query/video_generation``
(newest first); ``DELETE /v2/video_generation/{id}`` cancels a task going on and deletes a
finished one. A task is seen only through the API it was made on.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
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
from videogen.sandbox.state import (
    TERMINAL_PHASES,
    Job,
    JobSpec,
    Phase,
    SandboxState,
    frame_size,
    is_policy_code,
)


@dataclass(frozen=True)
class Model:
    api: str
    text: bool
    image: bool
    resolutions: tuple[str, ...]
    """The first is the default."""
    durations: tuple[int, ...]


_HAILUO = ("768P", "1080P")
_01 = ("720P",)
MODELS = {
    "MiniMax-Hailuo-2.3": Model("v1", True, True, _HAILUO, (6, 10)),
    "MiniMax-Hailuo-2.3-Fast": Model("v1", False, True, _HAILUO, (6, 10)),
    "MiniMax-Hailuo-02": Model("v1", True, True, ("768P", "1080P", "512P"), (6, 10)),
    "T2V-01-Director": Model("v1", True, False, _01, (6,)),
    "T2V-01": Model("v1", True, False, _01, (6,)),
    "I2V-01-Director": Model("v1", False, True, _01, (6,)),
    "I2V-01-live": Model("v1", False, True, _01, (6,)),
    "I2V-01": Model("v1", False, True, _01, (6,)),
    "MiniMax-H3": Model("v2", True, True, ("768P", "2K"), tuple(range(4, 16))),
    "MiniMax-H3-Max": Model("v2", True, True, ("768P", "480P"), tuple(range(4, 16))),
}
SHORT_SIDE = {"480P": 480, "512P": 512, "720P": 720, "768P": 768, "1080P": 1080, "2K": 1440}
V2_RATIOS = ("16:9", "9:16", "1:1", "4:3", "3:4", "21:9", "adaptive")
MAX_PROMPT = 2000
_POLICY_CODE, _POLICY_MESSAGE = 1027, "output new_sensitive"
_FAILURE_CODE, _FAILURE_MESSAGE = 1024, "internal error"
_V1_STATUS = {
    Phase.WAITING: "Preparing",
    Phase.QUEUED: "Queueing",
    Phase.RUNNING: "Processing",
    Phase.SUCCEEDED: "Success",
    Phase.FAILED: "Fail",
    Phase.CANCELLED: "Fail",  # never reached: V1 has no cancel
}
_V2_STATUS = {
    Phase.WAITING: "queued",
    Phase.QUEUED: "queued",
    Phase.RUNNING: "running",
    Phase.SUCCEEDED: "succeeded",
    Phase.FAILED: "failed",
    Phase.CANCELLED: "cancelled",
}
_CODE_FOR_STATUS = {400: 2013, 401: 1004, 403: 1004, 404: 2013, 429: 1002, 504: 1001}
_MESSAGES = {
    1000: "unknown error",
    1001: "request timeout",
    1002: "rate limit exceeded",
    1004: "login fail: please carry the API secret key in the Authorization header",
    1008: "insufficient balance",
    1027: _POLICY_MESSAGE,
    2056: "usage limit exceeded",
}


def _base_resp(code: int = 0, message: str = "success") -> dict[str, Any]:
    return {"status_code": code, "status_msg": message}


def _coded_error(status: int, message: str, code: str) -> Response:
    """MiniMax's error: HTTP 200 with the code in ``base_resp``, except the 5xx of its
    infrastructure (and V2's 404), which keep their status."""
    number = int(code) if code.isdigit() else 1000
    text = _MESSAGES.get(number, message)
    http = status if status >= 500 or status == 404 else 200
    return json_error(http, {"base_resp": _base_resp(number, text)})


def _error(status: int, message: str) -> Response:
    return _coded_error(status, message, str(_CODE_FOR_STATUS.get(status, 1000)))


def _refused(message: str) -> Response:
    return _coded_error(400, message, "2013")


VENDOR = Vendor(name="minimax", error=_error, auth_scheme="Bearer", coded_error=_coded_error)


class _Invalid(Exception):
    """A request MiniMax refuses with ``base_resp`` 2013 (invalid params)."""


# -- validation ------------------------------------------------------------------------------------
def _model(body: Any, api: str) -> tuple[str, Model]:
    if not isinstance(body, dict):
        raise _Invalid("invalid params: the body must be a JSON object")
    name = body.get("model")
    model = MODELS.get(name) if isinstance(name, str) else None
    if model is None or model.api != api:
        known = ", ".join(n for n, m in MODELS.items() if m.api == api)
        raise _Invalid(f"invalid params: model must be one of {known}")
    return str(name), model


def _prompt(value: Any, required: bool) -> str:
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value.strip()):
        raise _Invalid("invalid params: prompt is required for text-to-video")
    if len(value) > MAX_PROMPT:
        raise _Invalid(f"invalid params: prompt is over {MAX_PROMPT} characters")
    return value


def _image(value: Any, model: Model, name: str) -> bool:
    """Whether a first frame was given (checked); each model takes one or not."""
    if value is None:
        if not model.text:
            raise _Invalid(f"invalid params: {name} takes image-to-video only")
        return False
    if not model.image:
        raise _Invalid(f"invalid params: {name} takes text-to-video only")
    problem = image_ref_problem(value)
    if problem is not None:
        raise _Invalid(f"invalid params: first frame image: {problem}")
    return True


def _length(body: dict[str, Any], model: Model, default: int) -> tuple[int, str]:
    duration = body.get("duration", default)
    if isinstance(duration, bool) or not isinstance(duration, int):
        raise _Invalid("invalid params: duration must be an integer")
    if duration not in model.durations:
        allowed = ", ".join(map(str, model.durations))
        raise _Invalid(f"invalid params: duration must be one of {allowed}")
    resolution = body.get("resolution", model.resolutions[0])
    if resolution not in model.resolutions:
        raise _Invalid(f"invalid params: resolution must be one of {', '.join(model.resolutions)}")
    if model.api == "v1" and duration == 10 and resolution != "768P":
        raise _Invalid("invalid params: 10-second videos are made at 768P only")
    return duration, str(resolution)


def _spec(
    kind: str, prompt: str, body: dict[str, Any], size: tuple[str, str], seconds: int
) -> JobSpec:
    ratio, resolution = size
    width, height = frame_size("16:9" if ratio == "adaptive" else ratio, SHORT_SIDE[resolution])
    vendor = {"api": kind.split("/")[-1], "file_id": _digits()}
    return JobSpec(kind, prompt, dict(body), float(seconds), width, height, vendor)


def _parse_v1(body: Any) -> JobSpec:
    name, model = _model(body, "v1")
    image = _image(body.get("first_frame_image"), model, name)
    prompt = _prompt(body.get("prompt"), required=not image)
    seconds, resolution = _length(body, model, 6)
    if not isinstance(body.get("prompt_optimizer", True), bool):
        raise _Invalid("invalid params: prompt_optimizer must be a boolean")
    return _spec(f"{name}/v1", prompt, body, ("16:9", resolution), seconds)


def _v2_content(content: Any) -> tuple[str, Any]:
    """The text and the first frame of a V2 ``content`` list."""
    if not isinstance(content, list) or not content:
        raise _Invalid("invalid params: content must be a non-empty list")
    text, frame = None, None
    for item in content:
        kind = item.get("type") if isinstance(item, dict) else None
        if kind == "text":
            text = item.get("text")
        elif kind == "image_url" and item.get("role", "first_frame") == "first_frame":
            frame = (item.get("image_url") or {}).get("url")
        else:
            raise _Invalid("invalid params: content items are text or first_frame image_url")
    return (text if text is not None else ""), frame


def _parse_v2(body: Any) -> JobSpec:
    name, model = _model(body, "v2")
    text, frame = _v2_content(body.get("content"))
    image = _image(frame, model, name)
    prompt = _prompt(text or None, required=not image)
    seconds, resolution = _length(body, model, 5)
    ratio = "16:9" if image else body.get("ratio", "16:9")
    if ratio not in V2_RATIOS:
        raise _Invalid(f"invalid params: ratio must be one of {', '.join(V2_RATIOS)}")
    return _spec(f"{name}/v2", prompt, body, (str(ratio), resolution), seconds)


# -- answers ---------------------------------------------------------------------------------------
def _digits() -> str:
    """A 15-digit id, as MiniMax's task and file ids look (no leading zero: a file id is a
    number in the files endpoint's answers)."""
    return str(10**14 + uuid.uuid4().int % (9 * 10**14))


def _api_job(call: Call, job_id: str | None, api: str) -> Job | None:
    job = call.state.get_job(job_id or "")
    return job if job is not None and job.vendor["api"] == api else None


def _failure(job: Job) -> tuple[int, str]:
    if is_policy_code(job.failure_code):
        return _POLICY_CODE, job.failure_message or _POLICY_MESSAGE
    return _FAILURE_CODE, job.failure_message or _FAILURE_MESSAGE


def _v1_task(job: Job, now: float) -> dict[str, Any]:
    phase = job.phase(now)
    done = phase is Phase.SUCCEEDED
    task = {
        "task_id": job.id,
        "status": _V1_STATUS[phase],
        "file_id": job.vendor["file_id"] if done else "",
        "video_width": job.width if done else 0,
        "video_height": job.height if done else 0,
        "base_resp": _base_resp(),
    }
    if phase is Phase.FAILED and is_policy_code(job.failure_code):
        task["base_resp"] = _base_resp(*_failure(job))
    return task


def _file(call: Call, job: Job) -> dict[str, Any]:
    return {
        "file_id": int(job.vendor["file_id"]),
        "bytes": 0,
        "created_at": int(call.state.wall_time(job.finished_at or job.created_at).timestamp()),
        "filename": "output.mp4",
        "purpose": "video_generation",
        "download_url": call.file_url(job.id),
        "backup_download_url": call.file_url(job.id),
    }


def _v2_task(call: Call, job: Job, now: float) -> dict[str, Any]:
    phase = job.phase(now)
    task: dict[str, Any] = {
        "id": job.id,
        "model": job.kind.split("/")[0],
        "status": _V2_STATUS[phase],
        "created_at": int(call.state.wall_time(job.created_at).timestamp()),
        "updated_at": int(call.state.wall_time(job.finished_at or job.created_at).timestamp()),
        "resolution": job.params.get("resolution", "768P"),
        "duration": int(job.duration_s),
        "content": None,
        "error": None,
    }
    if phase is Phase.SUCCEEDED:
        task["content"] = {"url": call.file_url(job.id), "prompt": job.prompt}
        seconds = int(job.duration_s)
        task["usage"] = {"total_seconds": seconds, "input_seconds": 0, "output_seconds": seconds}
    elif phase is Phase.FAILED:
        code, message = _failure(job)
        task["error"] = {"code": str(code), "message": message}
    return task


async def _create_v1(call: Call) -> Response:
    try:
        spec = _parse_v1(call.body)
    except _Invalid as exc:
        return _refused(str(exc))
    job = call.state.create_job(spec, job_id=_digits())
    await create_delay(call.state)
    return JSONResponse({"task_id": job.id, "base_resp": _base_resp()})


async def _query_v1(call: Call) -> Response:
    with call.state.locked() as now:
        job = _api_job(call, call.request.query_params.get("task_id"), "v1")
        if job is None:
            return _refused("invalid params: task not found")
        return JSONResponse(_v1_task(job, now))


async def _retrieve(call: Call) -> Response:
    file_id = call.request.query_params.get("file_id")
    with call.state.locked() as now:
        for job in call.state.jobs(now):
            if job.vendor["file_id"] == file_id and job.phase(now) is Phase.SUCCEEDED:
                return JSONResponse({"file": _file(call, job), "base_resp": _base_resp()})
    return _refused("invalid params: file not found")


async def _list_files(call: Call) -> Response:
    if not call.request.query_params.get("purpose"):
        return _refused("invalid params: purpose is required")
    with call.state.locked() as now:
        done = [j for j in call.state.jobs(now) if j.phase(now) is Phase.SUCCEEDED]
        files = [_file(call, job) for job in done if job.vendor["api"] == "v1"]
    return JSONResponse({"files": files, "base_resp": _base_resp()})


async def _create_v2(call: Call) -> Response:
    try:
        spec = _parse_v2(call.body)
    except _Invalid as exc:
        return _refused(str(exc))
    job = call.state.create_job(spec, job_id=_digits())
    await create_delay(call.state)
    return JSONResponse({"task_id": job.id})


def _not_found() -> Response:
    return _coded_error(404, "record not found", "2013")


async def _query_v2(call: Call) -> Response:
    with call.state.locked() as now:
        job = _api_job(call, call.param("task_id"), "v2")
        if job is None:
            return _not_found()
        return JSONResponse({"task": _v2_task(call, job, now)})


async def _list_v2(call: Call) -> Response:
    query = call.request.query_params
    try:
        number, size = int(query.get("page_num", "1")), int(query.get("page_size", "20"))
    except ValueError:
        return _refused("invalid params: page_num and page_size must be integers")
    with call.state.locked() as now:
        jobs = [
            j for j in reversed(call.state.jobs(now)) if j.vendor["api"] == "v2" and not j.deleted
        ]
        page = [_v2_task(call, job, now) for job in jobs[(number - 1) * size : number * size]]
    return JSONResponse({"items": page, "total": len(jobs)})


async def _delete_v2(call: Call) -> Response:
    """Cancels a task going on; deletes a finished one (it is "record not found" from then)."""
    state = call.state
    with state.locked() as now:
        job = _api_job(call, call.param("task_id"), "v2")
        if job is None:
            return _not_found()
        if job.phase(now) in TERMINAL_PHASES:
            state.delete_job(job.id)
        else:
            state.cancel_job(job.id)
        return JSONResponse({"task_id": job.id, "status": _V2_STATUS[job.phase(now)]})


def create_app(state: SandboxState) -> Starlette:
    """The MiniMax sandbox; its base URL is the server root (paths start with ``/v1``, ``/v2``)."""
    v2_one = "/v2/query/video_generation/{task_id}"
    routes = [
        vendor_route(
            VENDOR, state, "/v1/video_generation", _create_v1, methods=["POST"], op="create"
        ),
        vendor_route(
            VENDOR, state, "/v1/query/video_generation", _query_v1, methods=["GET"], op="poll"
        ),
        vendor_route(VENDOR, state, "/v1/files/retrieve", _retrieve, methods=["GET"], op="result"),
        vendor_route(VENDOR, state, "/v1/files/list", _list_files, methods=["GET"], op="health"),
        vendor_route(
            VENDOR, state, "/v2/video_generation", _create_v2, methods=["POST"], op="create"
        ),
        vendor_route(VENDOR, state, v2_one, _query_v2, methods=["GET"], op="poll"),
        vendor_route(
            VENDOR, state, "/v2/query/video_generation", _list_v2, methods=["GET"], op="health"
        ),
        vendor_route(
            VENDOR,
            state,
            "/v2/video_generation/{task_id}",
            _delete_v2,
            methods=["DELETE"],
            op="cancel",
        ),
        file_route(VENDOR, state),
        *control_routes(state),
    ]
    return Starlette(routes=routes)
