"""BytePlus ModelArk / Volcengine Ark sandbox for Seedance (vendor-apis-2.md §7), ``/api/v3``.

``POST /contents/generations/tasks`` answers ``{"id": "cgt-<time>-<suffix>"}``; ``GET
/contents/generations/tasks/{id}`` shows ``queued`` -> ``running`` -> ``succeeded``
(``content.video_url``, ``usage.completion_tokens``) | ``failed`` (``error.code``) |
``cancelled`` | ``expired`` (past ``execution_expires_after``); ``GET /contents/generations/tasks``
lists them newest first (``page_num``, ``page_size``, ``filter.*``) as ``{"total", "items"}``;
``DELETE`` cancels a queued task and deletes a finished one's record, and refuses a running one
(its code and status are UNCONFIRMED). Errors are ``{"error": {"code", "message", "param",
"type"}}``. The seed a task used is echoed (a random one when none was sent).
"""

from __future__ import annotations

import random
import secrets
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
    is_policy_code,
)

PREFIX = "/api/v3"
TASKS = PREFIX + "/contents/generations/tasks"
SIZES = {
    ("480p", "16:9"): (864, 480),
    ("480p", "4:3"): (736, 544),
    ("480p", "1:1"): (640, 640),
    ("480p", "3:4"): (544, 736),
    ("480p", "9:16"): (480, 864),
    ("480p", "21:9"): (960, 416),
    ("720p", "16:9"): (1248, 704),
    ("720p", "4:3"): (1120, 832),
    ("720p", "1:1"): (960, 960),
    ("720p", "3:4"): (832, 1120),
    ("720p", "9:16"): (704, 1248),
    ("720p", "21:9"): (1504, 640),
    ("1080p", "16:9"): (1920, 1088),
    ("1080p", "4:3"): (1664, 1248),
    ("1080p", "1:1"): (1440, 1440),
    ("1080p", "3:4"): (1248, 1664),
    ("1080p", "9:16"): (1088, 1920),
    ("1080p", "21:9"): (2176, 928),
}
MODELS = {
    "seedance-1-5-pro-251215": tuple(range(4, 13)),
    "seedance-1-0-pro-250528": tuple(range(2, 13)),
    "dreamina-seedance-2-0-260128": tuple(range(4, 16)),
}
ROLES = ("first_frame", "last_frame", "reference_image")
_FPS = 24
_MAX_SEED = 2**32 - 1
_POLICY_CODE = "OutputVideoSensitiveContentDetected"
_POLICY_MESSAGE = "The generated video may contain sensitive content."
_DEFAULT_CODE = "InternalServiceError"
_DEFAULT_MESSAGE = "The service encountered an unexpected internal error."
_CODES = {
    400: ("InvalidParameter", "BadRequest"),
    401: ("AuthenticationError", "Unauthorized"),
    404: ("ResourceNotFound", "NotFound"),
    429: ("RateLimitExceeded.EndpointRPMExceeded", "TooManyRequests"),
    500: ("InternalServiceError", "InternalServerError"),
    502: ("InternalServiceError", "BadGateway"),
    503: ("ServerOverloaded", "ServiceUnavailable"),
    504: ("InternalServiceError", "GatewayTimeout"),
}
_STATUS = {
    Phase.WAITING: "queued",
    Phase.QUEUED: "queued",
    Phase.RUNNING: "running",
    Phase.SUCCEEDED: "succeeded",
    Phase.FAILED: "failed",
    Phase.CANCELLED: "cancelled",
}


class _Invalid(Exception):
    """A request Ark would refuse; ``param`` names the field."""

    def __init__(self, param: str, message: str, code: str = "InvalidParameter") -> None:
        super().__init__(message)
        self.param, self.code = param, code


def _body(status: int, message: str, code: str | None = None, param: str = "") -> dict[str, Any]:
    default_code, kind = _CODES.get(status, ("InternalServiceError", "InternalServerError"))
    error = {"code": code or default_code, "message": message, "param": param, "type": kind}
    return {"error": error}


def _error(status: int, message: str) -> Response:
    return json_error(status, _body(status, message))


VENDOR = Vendor(name="seedance", error=_error, auth_scheme="Bearer")


# -- validation ------------------------------------------------------------------------------------
def _content(value: Any) -> tuple[str, list[str]]:
    """The prompt and the image URLs of a ``content`` list."""
    if not isinstance(value, list) or not value:
        raise _Invalid("content", "content must be a non-empty array.", "MissingParameter")
    texts, images = [], []
    for index, item in enumerate(value):
        kind = item.get("type") if isinstance(item, dict) else None
        if kind == "text" and isinstance(item.get("text"), str):
            texts.append(item["text"])
        elif kind == "image_url":
            images.append(_image(index, item))
        else:
            raise _Invalid(f"content[{index}]", f"content[{index}] has an unsupported type.")
    if len(texts) > 1 or not (texts or images):
        raise _Invalid("content", "content needs one text item and/or images.")
    return (texts[0] if texts else ""), images


def _image(index: int, item: dict[str, Any]) -> str:
    image = item.get("image_url")
    url = image.get("url") if isinstance(image, dict) else None
    problem = image_ref_problem(url, extra_schemes=("asset",))
    if problem is not None:
        raise _Invalid(f"content[{index}].image_url.url", problem)
    if item.get("role", "first_frame") not in ROLES:
        raise _Invalid(f"content[{index}].role", f"role must be one of {', '.join(ROLES)}.")
    return str(url)


def _number(body: dict[str, Any], name: str, allowed: range | tuple[int, ...]) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value not in allowed:
        raise _Invalid(name, f"The parameter `{name}` specified in the request is not valid.")
    return value


def _parse_create(body: Any) -> JobSpec:
    if not isinstance(body, dict):
        raise _Invalid("", "The request body must be a JSON object.")
    model = body.get("model")
    if model not in MODELS:
        message = f"The model or endpoint {model} does not exist or you do not have access to it."
        raise _Invalid("model", message, "InvalidEndpointOrModel.NotFound")
    prompt, images = _content(body.get("content"))
    # The SDK sends every option, unset ones as null: null means "the default".
    resolution = body.get("resolution") or "720p"
    ratio = body.get("ratio") or "16:9"
    if (resolution, ratio) not in SIZES:
        raise _Invalid("resolution", f"resolution {resolution!r} / ratio {ratio!r} not offered.")
    duration = _number(body, "duration", MODELS[model]) or 5
    seed = _number(body, "seed", range(-1, _MAX_SEED + 1))
    expires = _number(body, "execution_expires_after", range(1, 259201))
    for flag in ("generate_audio", "watermark", "camera_fixed", "return_last_frame", "draft"):
        if body.get(flag) is not None and not isinstance(body[flag], bool):
            raise _Invalid(flag, f"The parameter `{flag}` must be a boolean.")
    width, height = SIZES[(resolution, ratio)]
    vendor = {
        "model": model,
        "seed": seed if seed is not None and seed >= 0 else random.randint(0, _MAX_SEED),
        "resolution": resolution,
        "ratio": ratio,
        "duration": duration,
        "generate_audio": bool(body.get("generate_audio", False)),
        "expires": expires,
        "images": len(images),
    }
    return JobSpec(model, prompt, dict(body), float(duration), width, height, vendor=vendor)


# -- answers ---------------------------------------------------------------------------------------
def _expire(state: SandboxState, job: Job, now: float) -> None:
    """End a task still going past its ``execution_expires_after`` as ``expired``."""
    expires = job.vendor.get("expires")
    if expires is None or job.phase(now) in TERMINAL_PHASES or now - job.created_at < expires:
        return
    state.cancel_job(job.id)
    job.cancelled, job.end_phase = False, Phase.FAILED
    job.vendor["expired"] = True


def _status(job: Job, now: float) -> str:
    return "expired" if job.vendor.get("expired") else _STATUS[job.phase(now)]


def _failure(job: Job) -> dict[str, str]:
    policy = is_policy_code(job.failure_code)
    if job.failure_code and "SensitiveContent" in job.failure_code:
        code = job.failure_code
    else:
        code = _POLICY_CODE if policy else job.failure_code or _DEFAULT_CODE
    message = job.failure_message or (_POLICY_MESSAGE if policy else _DEFAULT_MESSAGE)
    return {"code": code, "message": message}


def _task(call: Call, job: Job, now: float) -> dict[str, Any]:
    status, extra = _status(job, now), job.vendor
    task: dict[str, Any] = {
        "id": job.id,
        "model": extra["model"],
        "status": status,
        "error": None,
        "created_at": int(call.state.wall_time(job.created_at).timestamp()),
        "updated_at": int(call.state.wall_time(job.finished_at or job.created_at).timestamp()),
        "seed": extra["seed"],
        "resolution": extra["resolution"],
        "ratio": extra["ratio"],
        "duration": extra["duration"],
        "framespersecond": _FPS,
        "generate_audio": extra["generate_audio"],
        "draft": False,
        "service_tier": "default",
        "execution_expires_after": extra["expires"] or 172800,
    }
    if status == "succeeded":
        task["content"] = {"video_url": call.file_url(job.id)}
        tokens = job.width * job.height * _FPS * job.duration_s / 1024
        task["usage"] = {"completion_tokens": int(tokens), "total_tokens": int(tokens)}
    elif status == "failed":
        task["error"] = _failure(job)
    elif status == "expired":
        task["error"] = {"code": "TaskExpired", "message": "The task expired before it ran."}
    return task


def _new_id(state: SandboxState) -> str:
    stamp = state.wall_time(state.now()).strftime("%Y%m%d%H%M%S")
    return f"cgt-{stamp}-{secrets.token_hex(3)[:5]}"


async def _create(call: Call) -> Response:
    try:
        spec = _parse_create(call.body)
    except _Invalid as exc:
        status = 404 if exc.code.endswith("NotFound") else 400
        return json_error(status, _body(status, str(exc), exc.code, exc.param))
    job = call.state.create_job(spec, job_id=_new_id(call.state))
    await create_delay(call.state)
    return JSONResponse({"id": job.id})


def _find(call: Call, now: float) -> Job | None:
    job = call.state.get_job(call.param("task_id"))
    if job is not None:
        _expire(call.state, job, now)
    return job


def _not_found(call: Call) -> Response:
    message = f"The specified task {call.param('task_id')} is not found."
    return json_error(404, _body(404, message))


async def _get(call: Call) -> Response:
    with call.state.locked() as now:
        job = _find(call, now)
        if job is None:
            return _not_found(call)
        return JSONResponse(_task(call, job, now))


async def _delete(call: Call) -> Response:
    """Cancels a queued task, deletes a finished one's record, refuses a running one."""
    state = call.state
    with state.locked() as now:
        job = _find(call, now)
        if job is None:
            return _not_found(call)
        phase = job.phase(now)
        if phase is Phase.RUNNING:
            message = "The task is running and cannot be cancelled."
            return json_error(400, _body(400, message, "InvalidParameter", "task_id"))
        if phase in TERMINAL_PHASES:
            state.delete_job(job.id)
        else:
            state.cancel_job(job.id)
    return JSONResponse({})


def _matches(job: Job, now: float, query: Any) -> bool:
    wanted = {
        "filter.status": _status(job, now),
        "filter.model": job.vendor["model"],
        "filter.service_tier": "default",
    }
    if any(query.get(key) not in (None, value) for key, value in wanted.items()):
        return False
    ids = query.getlist("filter.task_ids")
    return not ids or job.id in ids


async def _list(call: Call) -> Response:
    query = call.request.query_params
    try:
        page_num, page_size = int(query.get("page_num", "1")), int(query.get("page_size", "10"))
    except ValueError:
        return _error(400, "page_num and page_size must be integers.")
    if not 1 <= page_size <= 500 or page_num < 1:
        return _error(400, "page_size must be 1 to 500 and page_num at least 1.")
    with call.state.locked() as now:
        jobs = [job for job in reversed(call.state.jobs(now)) if not job.deleted]
        for job in jobs:
            _expire(call.state, job, now)
        jobs = [job for job in jobs if _matches(job, now, query)]
        start = (page_num - 1) * page_size
        items = [_task(call, job, now) for job in jobs[start : start + page_size]]
    return JSONResponse({"total": len(jobs), "items": items})


def create_app(state: SandboxState) -> Starlette:
    """The Ark sandbox; clients use ``<root>/api/v3`` as their base URL."""
    one = TASKS + "/{task_id}"
    routes = [
        vendor_route(VENDOR, state, TASKS, _create, methods=["POST"], op="create"),
        # The list is Ark's cheap authenticated read: what a probe uses.
        vendor_route(VENDOR, state, TASKS, _list, methods=["GET"], op="health"),
        vendor_route(VENDOR, state, one, _get, methods=["GET"], op="poll"),
        vendor_route(VENDOR, state, one, _delete, methods=["DELETE"], op="cancel"),
        file_route(VENDOR, state),
        *control_routes(state),
    ]
    return Starlette(routes=routes)
