"""Kling sandbox (vendor-apis-2.md section 2): ``/v1/videos/{text2video|image2video}``.

Every request needs ``Authorization: Bearer <JWT>``: HS256, signed with the secret half of the
sandbox's key (``ACCESS:SECRET``), ``iss`` the access half, ``exp`` to come and ``nbf`` past. A
missing header is 401 with code 1001, a bad token 1002, one not valid yet 1003, an expired one
1004. Answers are ``{"code", "message", "request_id", "data"}`` with code 0; errors carry the
HTTP status and Kling's code (400/1201 a bad value, 429/1302 the rate, 5000...). Tasks go
submitted -> processing -> succeed (``task_result.videos``, ``final_unit_deduction`` units) |
failed (``task_status_msg``). Kling does not queue: over the concurrency limit a create is
refused with 429 and code 1303, "parallel task over resource pack limit". There is no cancel.
A task is found by its ``external_task_id`` too (``GET /v1/videos/{route}?external_task_id=``,
a form that is UNCONFIRMED), which must be unique: a second create with one is refused with
400/1201 (UNCONFIRMED too). ``GET /account/costs`` shows the resource pack.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
import uuid
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from videogen.sandbox.http import (
    Call,
    Handler,
    Vendor,
    control_routes,
    create_delay,
    file_route,
    image_ref_problem,
    json_error,
    vendor_route,
)
from videogen.sandbox.state import Job, JobSpec, Phase, SandboxState, frame_size, is_policy_code

FIVE_TEN = (5, 10)
UNITS_PER_SECOND: dict[str, dict[str, float]] = {
    # Kling's unit prices (vendor-apis-2.md 2.6, $0.14 a unit) as units per output second.
    "kling-v3": {"std": 0.6, "pro": 0.8, "4k": 3.0},
    "kling-v2-6": {"std": 0.3, "pro": 0.5},
    "kling-v2-5-turbo": {"std": 0.3, "pro": 0.5},
    "kling-v2-1": {"std": 0.4, "pro": 0.7},
    "kling-v2-1-master": {"pro": 2.0},
    "kling-v2-master": {"pro": 2.0},
    "kling-v1-6": {"std": 0.4, "pro": 0.7},
    "kling-v1-5": {"std": 0.4, "pro": 0.7},
    "kling-v1": {"std": 0.2, "pro": 0.7},
}
DURATIONS: dict[str, tuple[int, ...]] = {
    "kling-v3": tuple(range(3, 16)),
    "kling-v2-6": tuple(range(3, 11)),
}
IMAGE_ONLY = ("kling-v2-1", "kling-v1-5")
ROUTES = ("text2video", "image2video")
SHORT_SIDE = {"std": 720, "pro": 1080, "4k": 2160}
ASPECT_RATIOS = ("16:9", "9:16", "1:1")
MAX_PROMPT = 2500
MAX_IMAGE_BYTES = 10 * 1024 * 1024
PACK_UNITS = 1000.0
"""The sandbox account's one video resource pack."""
_POLICY_FAILURE = "Failure to pass the risk control system"
_DEFAULT_FAILURE = "Task failed due to an internal error, please try again"
_STATUS = {
    Phase.WAITING: "submitted",
    Phase.QUEUED: "submitted",
    Phase.RUNNING: "processing",
    Phase.SUCCEEDED: "succeed",
    Phase.FAILED: "failed",
    Phase.CANCELLED: "failed",  # never reached: Kling has no cancel
}
_CODE_FOR_STATUS = {400: 1201, 403: 1103, 404: 1203, 429: 1302, 500: 5000, 502: 5000, 503: 5001}
_MESSAGES = {
    1000: "Authentication failed",
    1001: "Authorization is empty",
    1002: "Authorization is invalid",
    1003: "Authorization is not yet valid",
    1004: "Authorization has expired",
    1202: "Invalid request method or path",
    1101: "Account is in arrears",
    1102: "Resource pack has been used up or has expired",
    1302: "The API request rate has exceeded the limit",
    1303: "parallel task over resource pack limit",
}


def _error(status: int, message: str) -> Response:
    if status == 401:  # the auth check's message names the code
        code = next((c for c, text in _MESSAGES.items() if text == message), 1000)
    else:
        code = _CODE_FOR_STATUS.get(status, 5002)
    return _coded_error(status, message, str(code))


def _coded_error(status: int, message: str, code: str) -> Response:
    number: int | str = int(code) if code.isdigit() else code
    text = _MESSAGES.get(number, message) if isinstance(number, int) else message
    return json_error(status, {"code": number, "message": text, "request_id": _request_id()})


def _request_id() -> str:
    return str(uuid.uuid4())


def _b64decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def _claims(token: str, secret: str) -> dict[str, Any] | None:
    """The token's claims when it is an HS256 JWT signed with ``secret``, else ``None``."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        header, claims = (json.loads(_b64decode(p)) for p in parts[:2])
        signature = _b64decode(parts[2])
    except (ValueError, binascii.Error):
        return None
    signed = hmac.new(secret.encode(), f"{parts[0]}.{parts[1]}".encode(), hashlib.sha256).digest()
    if not isinstance(header, dict) or header.get("alg") != "HS256" or not isinstance(claims, dict):
        return None
    return claims if hmac.compare_digest(signature, signed) else None


def _auth(request: Request, state: SandboxState) -> str | None:
    """Why the request's token is refused (Kling's message for it), or ``None``."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if not scheme:
        return _MESSAGES[1001]
    access, _, secret = (state.api_key or "").partition(":")
    claims = _claims(token, secret) if scheme == "Bearer" else None
    if claims is None or claims.get("iss") != access:
        return _MESSAGES[1002]
    now = time.time()  # a JWT's times are wall-clock times
    expires, not_before = claims.get("exp"), claims.get("nbf", 0)
    if not isinstance(expires, int | float) or not isinstance(not_before, int | float):
        return _MESSAGES[1002]
    if expires <= now:
        return _MESSAGES[1004]
    return _MESSAGES[1003] if not_before > now else None


VENDOR = Vendor(name="kling", error=_error, auth=_auth, coded_error=_coded_error)


class _Invalid(Exception):
    """A request Kling would refuse with 400 and code 1201 (or the code given)."""

    def __init__(self, message: str, code: int = 1201) -> None:
        super().__init__(message)
        self.code = code


# -- validation ------------------------------------------------------------------------------------
def _choice(body: dict[str, Any], name: str, allowed: tuple[str, ...], default: str) -> str:
    value = body.get(name, default)
    if value not in allowed:
        raise _Invalid(f"{name} must be one of {', '.join(allowed)}")
    return str(value)


def _text(body: dict[str, Any], name: str, required: bool) -> str:
    value = body.get(name)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value.strip()):
        raise _Invalid(f"{name} must be a non-empty string")
    if len(value) > MAX_PROMPT:
        raise _Invalid(f"{name} must be at most {MAX_PROMPT} characters")
    return value


def _duration(body: dict[str, Any], model: str) -> int:
    value = body.get("duration", "5")
    if not isinstance(value, str):
        raise _Invalid('duration must be a string, e.g. "5"')
    allowed = DURATIONS.get(model, FIVE_TEN)
    if not value.isdigit() or int(value) not in allowed:
        raise _Invalid(f"duration must be one of {', '.join(map(str, allowed))} for {model}")
    return int(value)


def _check_image(value: Any) -> None:
    """A URL, or plain base64 (Kling refuses a ``data:`` prefix), of at most 10 MB."""
    if not isinstance(value, str) or not value:
        raise _Invalid("image is required for image2video")
    if value.startswith("data:"):
        raise _Invalid("image must be a URL or base64 without the data: prefix")
    if value.startswith(("http://", "https://")):
        problem = image_ref_problem(value)
        if problem is not None:
            raise _Invalid(f"image: {problem}")
        return
    try:
        data = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise _Invalid("image is neither a URL nor base64") from None
    if len(data) > MAX_IMAGE_BYTES:
        raise _Invalid("image is over 10 MB")


def _check_key(state: SandboxState, key: Any) -> str | None:
    if key is None:
        return None
    if not isinstance(key, str) or not key:
        raise _Invalid("external_task_id must be a non-empty string")
    if any(job.vendor.get("external_task_id") == key for job in state.jobs()):
        raise _Invalid(f"external_task_id {key} already exists")
    return key


def _parse_create(body: Any, route: str, state: SandboxState) -> JobSpec:
    if not isinstance(body, dict):
        raise _Invalid("the body must be a JSON object", 1200)
    image = route == "image2video"
    models = tuple(m for m in UNITS_PER_SECOND if image or m not in IMAGE_ONLY)
    model = _choice(body, "model_name", models, "kling-v1")
    mode = _choice(body, "mode", tuple(UNITS_PER_SECOND[model]), "std")
    seconds = _duration(body, model)
    prompt = _text(body, "prompt", required=not image)
    _text(body, "negative_prompt", required=False)
    if image:
        if "aspect_ratio" in body:
            raise _Invalid("aspect_ratio is not a parameter of image2video", 1200)
        _check_image(body.get("image"))
    aspect = "16:9" if image else _choice(body, "aspect_ratio", ASPECT_RATIOS, "16:9")
    width, height = frame_size(aspect, SHORT_SIDE[mode])  # an image is taken as 16:9: not read
    vendor = {
        "route": route,
        "external_task_id": _check_key(state, body.get("external_task_id")),
        "units": round(UNITS_PER_SECOND[model][mode] * seconds, 4),
    }
    return JobSpec(f"{model}/{route}", prompt, dict(body), float(seconds), width, height, vendor)


# -- answers ---------------------------------------------------------------------------------------
def _ok(data: Any) -> JSONResponse:
    return JSONResponse(
        {"code": 0, "message": "SUCCEED", "request_id": _request_id(), "data": data}
    )


def _millis(state: SandboxState, clock_time: float) -> int:
    return int(state.wall_time(clock_time).timestamp() * 1000)


def _task(call: Call, job: Job, now: float) -> dict[str, Any]:
    phase = job.phase(now)
    task: dict[str, Any] = {
        "task_id": job.id,
        "task_status": _STATUS[phase],
        "task_status_msg": "",
        "task_info": {"external_task_id": job.vendor["external_task_id"]},
        "created_at": _millis(call.state, job.created_at),
        "updated_at": _millis(call.state, job.finished_at or job.started_at or job.created_at),
    }
    if phase is Phase.SUCCEEDED:
        task["final_unit_deduction"] = f"{job.vendor['units']:g}"
        video = {
            "id": f"{job.id}-0",
            "url": call.file_url(job.id),
            "duration": f"{job.duration_s:g}",
        }
        task["task_result"] = {"videos": [video]}
    elif phase is Phase.FAILED:
        default = _POLICY_FAILURE if is_policy_code(job.failure_code) else _DEFAULT_FAILURE
        task["task_status_msg"] = job.failure_message or default
        task["final_unit_deduction"] = "0"  # failed tasks are not charged
    return task


def _creator(route: str) -> Handler:
    async def create(call: Call) -> Response:
        state = call.state
        with state.locked():  # the limit check and the creation are one step
            try:
                spec = _parse_create(call.body, route, state)
            except _Invalid as exc:
                return _coded_error(400, str(exc), str(exc.code))
            limit = state.knobs.concurrency_limit
            active = sum(1 for job in state.jobs() if job.finished_at is None)
            if limit is not None and active >= limit:
                return _coded_error(429, "", "1303")
            job = state.create_job(spec)
        await create_delay(state)
        with state.locked() as now:
            return _ok(_task(call, job, now))

    return create


def _route_job(call: Call, job_id: str) -> Job | None:
    job = call.state.get_job(job_id)
    return job if job is not None and job.vendor["route"] == call.param("route") else None


async def _get_task(call: Call) -> Response:
    if call.param("route") not in ROUTES:
        return _coded_error(404, "", "1202")
    with call.state.locked() as now:
        job = _route_job(call, call.param("task_id"))
        if job is None:
            return _coded_error(404, "task not found", "1203")
        return _ok(_task(call, job, now))


async def _query(call: Call) -> Response:
    """By ``external_task_id`` (one task), else a page of the route's tasks, newest first."""
    if call.param("route") not in ROUTES:
        return _coded_error(404, "", "1202")
    query = call.request.query_params
    with call.state.locked() as now:
        jobs = [
            j for j in reversed(call.state.jobs(now)) if j.vendor["route"] == call.param("route")
        ]
        key = query.get("external_task_id")
        if key is not None:
            found = [j for j in jobs if j.vendor["external_task_id"] == key]
            if not found:
                return _coded_error(404, "task not found", "1203")
            return _ok(_task(call, found[0], now))
        try:
            number, size = int(query.get("pageNum", "1")), int(query.get("pageSize", "30"))
        except ValueError:
            return _coded_error(400, "pageNum and pageSize must be integers", "1201")
        page = jobs[(number - 1) * size : number * size]
        return _ok([_task(call, job, now) for job in page])


async def _costs(call: Call) -> Response:
    query = call.request.query_params
    if not all(query.get(name, "").isdigit() for name in ("start_time", "end_time")):
        return _coded_error(400, "start_time and end_time (ms) are required", "1200")
    with call.state.locked() as now:
        done = [j for j in call.state.jobs(now) if j.phase(now) is Phase.SUCCEEDED]
    used = sum(float(job.vendor["units"]) for job in done)
    pack = {
        "resource_pack_name": "Video Generation - 1000 Units",
        "resource_pack_id": "sandbox-pack",
        "resource_pack_type": "decreasing_total",
        "total_quantity": PACK_UNITS,
        "remaining_quantity": round(PACK_UNITS - used, 4),
        "status": "online",
    }
    return _ok({"code": 0, "msg": "success", "resource_pack_subscribe_infos": [pack]})


def create_app(state: SandboxState) -> Starlette:
    """The Kling sandbox; its base URL is the server root (paths start with ``/v1``)."""
    routes = [
        *(
            vendor_route(
                VENDOR, state, f"/v1/videos/{route}", _creator(route), methods=["POST"], op="create"
            )
            for route in ROUTES
        ),
        vendor_route(VENDOR, state, "/v1/videos/{route}", _query, methods=["GET"], op="poll"),
        vendor_route(
            VENDOR, state, "/v1/videos/{route}/{task_id}", _get_task, methods=["GET"], op="poll"
        ),
        vendor_route(VENDOR, state, "/account/costs", _costs, methods=["GET"], op="health"),
        file_route(VENDOR, state),
        *control_routes(state),
    ]
    return Starlette(routes=routes)
