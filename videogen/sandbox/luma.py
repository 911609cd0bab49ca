"""Luma Dream Machine sandbox (vendor-apis.md section B), under ``/dream-machine/v1``.

Create (``POST /generations/video``, or the legacy ``POST /generations``) answers 201 with the full
Generation object; polling shows ``queued`` -> ``dreaming`` -> ``completed`` (``assets.video``) |
``failed`` (``failure_reason``). ``DELETE`` is the only way to stop one and removes it: later reads
404. Errors are FastAPI-style ``{"detail": "..."}``. Keyframe images must be URLs: Luma's docs say
hosted URLs are the only way to pass an image, so data URIs are refused.
"""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from starlette.responses import JSONResponse, Response

from videogen.sandbox.http import (
    Call,
    Vendor,
    control_routes,
    create_delay,
    empty,
    file_route,
    image_ref_problem,
    iso_timestamp,
    json_error,
    vendor_route,
)
from videogen.sandbox.state import Job, JobSpec, Phase, SandboxState, frame_size, is_policy_code

PREFIX = "/dream-machine/v1"
MODELS = ("ray-2", "ray-flash-2", "ray-1-6")
DURATIONS = {"5s": 5.0, "9s": 9.0}
# Short side of the frame for each resolution.
RESOLUTIONS = {"540p": 540, "720p": 720, "1080p": 1080, "4k": 2160}
ASPECT_RATIOS = ("1:1", "16:9", "9:16", "4:3", "3:4", "21:9", "9:21")
CONCEPTS = ("dolly_zoom", "aerial", "orbit_left", "orbit_right", "crane_up", "handheld")
# Observed in the wild (lumalabs/ComfyUI-LumaAI-API issue #7); other reasons are UNCONFIRMED.
_POLICY_FAILURE = "Advanced moderation failed"
_DEFAULT_FAILURE = "Generation failed due to an internal error, please try again"
_CREDIT_BALANCE = 100000.0

_STATE = {
    Phase.WAITING: "queued",
    Phase.QUEUED: "queued",
    Phase.RUNNING: "dreaming",
    Phase.SUCCEEDED: "completed",
    Phase.FAILED: "failed",
    Phase.CANCELLED: "failed",
}


class _Invalid(Exception):
    """A request Luma would refuse with 400."""


def _error(status: int, message: str) -> Response:
    return json_error(status, {"detail": message})


VENDOR = Vendor(name="luma", error=_error, auth_scheme="Bearer")


# -- validation ------------------------------------------------------------------------------------
def _choice(body: dict[str, Any], name: str, allowed: tuple[str, ...], default: str) -> str:
    value = body.get(name, default)
    if value not in allowed:
        raise _Invalid(f"{name}: '{value}' is not one of {', '.join(allowed)}")
    return str(value)


def _check_frame(name: str, frame: Any, state: SandboxState) -> None:
    if not isinstance(frame, dict) or frame.get("type") not in ("image", "generation"):
        raise _Invalid(f"keyframes.{name}: expected {{'type': 'image'|'generation', ...}}")
    if frame["type"] == "generation":
        if state.get_job(str(frame.get("id"))) is None:
            raise _Invalid(f"keyframes.{name}.id: generation not found")
        return
    url = frame.get("url")
    problem = (
        "data URIs are not supported" if str(url).startswith("data:") else image_ref_problem(url)
    )
    if problem is not None:
        raise _Invalid(f"keyframes.{name}.url: {problem}")


def _check_keyframes(value: Any, state: SandboxState) -> None:
    if value is None:
        return
    if not isinstance(value, dict) or not set(value) <= {"frame0", "frame1"}:
        raise _Invalid("keyframes: expected an object with frame0 and/or frame1")
    for name, frame in value.items():
        _check_frame(name, frame, state)


def _check_prompt(body: dict[str, Any]) -> str:
    prompt = body.get("prompt", "")
    if not isinstance(prompt, str):
        raise _Invalid("prompt: expected a string")
    if not prompt.strip() and not body.get("keyframes"):
        raise _Invalid("prompt: a prompt is required for text-to-video")
    return prompt


def _parse_create(body: Any, state: SandboxState) -> JobSpec:
    if not isinstance(body, dict):
        raise _Invalid("expected a JSON object")
    model = _choice(body, "model", MODELS, "")
    duration = _choice(body, "duration", tuple(DURATIONS), "5s")
    resolution = _choice(body, "resolution", tuple(RESOLUTIONS), "720p")
    aspect_ratio = _choice(body, "aspect_ratio", ASPECT_RATIOS, "16:9")
    prompt = _check_prompt(body)
    _check_keyframes(body.get("keyframes"), state)
    if body.get("generation_type", "video") != "video":
        raise _Invalid("generation_type: expected 'video'")
    request = {
        **{key: value for key, value in body.items() if value is not None},
        "generation_type": "video",
        "duration": duration,
        "resolution": resolution,
        "aspect_ratio": aspect_ratio,
    }
    width, height = frame_size(aspect_ratio, RESOLUTIONS[resolution])
    return JobSpec(
        model, prompt, dict(body), DURATIONS[duration], width, height, vendor={"request": request}
    )


# -- answers ---------------------------------------------------------------------------------------
def _failure_reason(job: Job) -> str:
    if job.failure_message:
        return job.failure_message
    return _POLICY_FAILURE if is_policy_code(job.failure_code) else _DEFAULT_FAILURE


def _generation(call: Call, job: Job, now: float) -> dict[str, Any]:
    phase = job.phase(now)
    assets = None
    if phase is Phase.SUCCEEDED:
        assets = {"video": call.file_url(job.id), "image": None, "progress_video": None}
    return {
        "id": job.id,
        "generation_type": "video",
        "state": _STATE[phase],
        "failure_reason": _failure_reason(job) if phase is Phase.FAILED else None,
        "created_at": iso_timestamp(call.state, job.created_at),
        "assets": assets,
        "model": job.kind,
        "request": job.vendor["request"],
    }


async def _create(call: Call) -> Response:
    try:
        spec = _parse_create(call.body, call.state)
    except _Invalid as exc:
        return _error(400, str(exc))
    job = call.state.create_job(spec)
    await create_delay(call.state)
    with call.state.locked() as now:
        return JSONResponse(_generation(call, job, now), status_code=201)


async def _get(call: Call) -> Response:
    with call.state.locked() as now:
        job = call.state.get_job(call.param("generation_id"))
        if job is None:
            return _error(404, "Generation not found")
        return JSONResponse(_generation(call, job, now))


async def _list(call: Call) -> Response:
    query = call.request.query_params
    try:
        limit, offset = int(query.get("limit", "100")), int(query.get("offset", "0"))
    except ValueError:
        return _error(400, "limit and offset must be integers")
    with call.state.locked() as now:
        jobs = [job for job in reversed(call.state.jobs(now)) if not job.deleted]
        page = [_generation(call, job, now) for job in jobs[offset : offset + limit]]
    body = {"generations": page, "count": len(page), "has_more": offset + limit < len(jobs)}
    return JSONResponse({**body, "limit": limit, "offset": offset})


async def _delete(call: Call) -> Response:
    """Removes the generation (stopping it first if it is still going)."""
    if call.state.get_job(call.param("generation_id")) is None:
        return _error(404, "Generation not found")
    call.state.delete_job(call.param("generation_id"))
    return empty(204)


async def _credits(call: Call) -> Response:
    return JSONResponse({"credit_balance": _CREDIT_BALANCE})


async def _ping(call: Call) -> Response:
    return JSONResponse({"message": "pong"})


async def _concepts(call: Call) -> Response:
    return JSONResponse(list(CONCEPTS))


def create_app(state: SandboxState) -> Starlette:
    """The Luma sandbox; clients use ``<root>/dream-machine/v1`` as their base URL."""
    one = PREFIX + "/generations/{generation_id}"
    routes = [
        vendor_route(
            VENDOR, state, PREFIX + "/generations/video", _create, methods=["POST"], op="create"
        ),
        vendor_route(
            VENDOR, state, PREFIX + "/generations", _create, methods=["POST"], op="create"
        ),
        vendor_route(VENDOR, state, PREFIX + "/generations", _list, methods=["GET"], op="poll"),
        vendor_route(
            VENDOR,
            state,
            PREFIX + "/generations/concepts/list",
            _concepts,
            methods=["GET"],
            op="health",
        ),
        vendor_route(VENDOR, state, one, _get, methods=["GET"], op="poll"),
        vendor_route(VENDOR, state, one, _delete, methods=["DELETE"], op="cancel"),
        vendor_route(VENDOR, state, PREFIX + "/credits", _credits, methods=["GET"], op="health"),
        vendor_route(VENDOR, state, PREFIX + "/ping", _ping, methods=["GET"], op="health"),
        file_route(VENDOR, state),
        *control_routes(state),
    ]
    return Starlette(routes=routes)
