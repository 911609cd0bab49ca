"""Pika through fal's queue (vendor-apis.md section C), standing in for ``https://queue.fal.run``.

Submit ``POST /fal-ai/pika/v2.2/{text-to-video|image-to-video}`` with ``Authorization: Key
<id:secret>``; the answer carries ``status_url``, ``response_url`` and ``cancel_url``, which drop
the endpoint's sub-path (``/fal-ai/pika/requests/{id}...``) and point at whatever origin the client
used (so TLS works too). Status is HTTP 202 ``IN_QUEUE``/``IN_PROGRESS`` then 200 ``COMPLETED``;
failures show up when the result is fetched (422 content policy, 500 runner error). Input errors are
answered at submit as FastAPI-style 422s.
"""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from videogen.sandbox.http import (
    Call,
    Handler,
    Vendor,
    control_routes,
    create_delay,
    file_route,
    image_ref_problem,
    iso_timestamp,
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

APP = "/fal-ai/pika"
ENDPOINTS = ("v2.2/text-to-video", "v2.2/image-to-video")
ASPECT_RATIOS = ("16:9", "9:16", "1:1", "4:5", "5:4", "3:2", "2:3")
RESOLUTIONS = {"720p": 720, "1080p": 1080}
DURATIONS: dict[int | str, int] = {5: 5, 10: 10, "5": 5, "10": 10}
_POLICY_MESSAGE = (
    "The content could not be processed because it contained material flagged by a content checker."
)
_RUNNER_ERROR = "runner_server_error"
# fal's infrastructure error types by status (vendor-apis.md C.2).
_ERROR_TYPES = {
    500: "internal_error",
    502: "runner_incomplete_response",
    503: "runner_scheduling_failure",
    504: "request_timeout",
}


def _error(status: int, message: str) -> Response:
    error_type = _ERROR_TYPES.get(status)
    if error_type is None:
        return json_error(status, {"detail": message})
    body = {"detail": message, "error_type": error_type}
    return json_error(status, body, headers={"X-Fal-Error-Type": error_type})


VENDOR = Vendor(name="pika", error=_error, auth_scheme="Key")


# -- validation ------------------------------------------------------------------------------------
def _issue(
    field: str, message: str, kind: str = "value_error", value: Any = None
) -> dict[str, Any]:
    return {"loc": ["body", field], "msg": message, "type": kind, "input": value}


def _check_choices(body: dict[str, Any], image: bool) -> list[dict[str, Any]]:
    issues = []
    if not image and body.get("aspect_ratio", "16:9") not in ASPECT_RATIOS:
        issues.append(_issue("aspect_ratio", f"Input should be {', '.join(ASPECT_RATIOS)}", "enum"))
    if body.get("resolution", "720p") not in tuple(RESOLUTIONS):
        issues.append(
            _issue(
                "resolution", "Input should be '720p' or '1080p'", "enum", body.get("resolution")
            )
        )
    duration = body.get("duration", 5)
    if isinstance(duration, bool) or duration not in tuple(DURATIONS):
        issues.append(_issue("duration", "Input should be 5 or 10", "enum", duration))
    seed = body.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        issues.append(_issue("seed", "Input should be a valid integer", "int_type", seed))
    return issues


def _check_texts(body: dict[str, Any], image: bool) -> list[dict[str, Any]]:
    issues = []
    prompt = body.get("prompt")
    if prompt is None:
        issues.append(_issue("prompt", "Field required", "missing"))
    elif not isinstance(prompt, str) or not prompt.strip():
        issues.append(_issue("prompt", "Input should be a non-empty string", "string_type", prompt))
    if not isinstance(body.get("negative_prompt", ""), str):
        issues.append(_issue("negative_prompt", "Input should be a valid string", "string_type"))
    if image:
        problem = image_ref_problem(body.get("image_url"))
        if problem is not None:
            issues.append(
                _issue(
                    "image_url", problem, "missing" if "image_url" not in body else "value_error"
                )
            )
    return issues


def _size(body: dict[str, Any], image: bool) -> tuple[int, int]:
    short = RESOLUTIONS[body.get("resolution", "720p")]
    aspect = "16:9" if image else body.get("aspect_ratio", "16:9")
    return frame_size(str(aspect), short)


def _parse_submit(endpoint: str, body: Any) -> JobSpec | list[dict[str, Any]]:
    """The job to create, or the validation issues that refuse it."""
    if not isinstance(body, dict):
        return [{"loc": ["body"], "msg": "Input should be a valid dictionary", "type": "dict_type"}]
    image = endpoint.endswith("image-to-video")
    issues = _check_texts(body, image) + _check_choices(body, image)
    if issues:
        return issues
    width, height = _size(body, image)
    duration = DURATIONS[body.get("duration", 5)]
    return JobSpec(
        f"fal-ai/pika/{endpoint}", body["prompt"], dict(body), float(duration), width, height
    )


# -- answers ---------------------------------------------------------------------------------------
def _urls(call: Call, request_id: str) -> dict[str, str]:
    base = f"{call.root}{APP}/requests/{request_id}"
    return {"response_url": base, "status_url": base + "/status", "cancel_url": base + "/cancel"}


def _log(call: Call, message: str, at: float) -> dict[str, Any]:
    stamp = iso_timestamp(call.state, at)
    return {"message": message, "level": "INFO", "source": "user", "timestamp": stamp}


def _logs(call: Call, job: Job, now: float) -> list[dict[str, Any]]:
    started = (job.started_at or now) + job.queue_seconds
    percent = round(job.progress(now) * 100)
    return [
        _log(call, f"Generating video ({job.kind})", started),
        _log(call, f"Progress: {percent}%", now),
    ]


def _status(call: Call, job: Job, now: float) -> tuple[dict[str, Any], int]:
    """The status body and its HTTP code: 202 while queued or running, 200 once completed."""
    phase = job.phase(now)
    response_url = _urls(call, job.id)["response_url"]
    if phase in (Phase.WAITING, Phase.QUEUED):
        position = call.state.waiting_position(job)
        return {"status": "IN_QUEUE", "queue_position": position, "response_url": response_url}, 202
    with_logs = call.request.query_params.get("logs", "").lower() in ("1", "true")
    logs = _logs(call, job, now) if with_logs else None
    if phase is Phase.RUNNING:
        return {"status": "IN_PROGRESS", "logs": logs, "response_url": response_url}, 202
    metrics = {"inference_time": (job.finished_at or now) - (job.started_at or now)}
    body = {"status": "COMPLETED", "logs": logs, "metrics": metrics, "response_url": response_url}
    if phase is not Phase.SUCCEEDED:
        # Newer fal payloads name the failure on COMPLETED too (vendor-apis.md C.2).
        _, message, error_type = _failure(job)
        body.update(error=message, error_type=error_type)
    return body, 200


def _failure(job: Job) -> tuple[int, str, str]:
    """HTTP status, message and fal error type of a job that did not succeed."""
    if job.cancelled:
        return 400, "Request was cancelled", "client_cancelled"
    if is_policy_code(job.failure_code):
        return 422, job.failure_message or _POLICY_MESSAGE, "content_policy_violation"
    return 500, job.failure_message or "Internal error while running the model", _RUNNER_ERROR


def _failure_response(job: Job) -> Response:
    status, message, error_type = _failure(job)
    if status == 422:
        issue = _issue("prompt", message, error_type, job.prompt)
        issue["url"] = "https://docs.fal.ai/errors#content_policy_violation"
        return json_error(422, {"detail": [issue]}, headers={"X-Fal-Retryable": "false"})
    headers = {
        "X-Fal-Error-Type": error_type,
        "X-Fal-Retryable": "true" if status == 500 else "false",
    }
    return json_error(status, {"detail": message, "error_type": error_type}, headers=headers)


async def _submit(call: Call) -> Response:
    endpoint = call.param("endpoint")
    if endpoint not in ENDPOINTS:
        return _error(404, f"Application 'fal-ai/pika/{endpoint}' not found")
    parsed = _parse_submit(endpoint, call.body)
    if isinstance(parsed, list):
        return json_error(422, {"detail": parsed}, headers={"X-Fal-Retryable": "false"})
    job = call.state.create_job(parsed)
    await create_delay(call.state)
    position = call.state.waiting_position(job)
    body = {
        "request_id": job.id,
        **_urls(call, job.id),
        "status": "IN_QUEUE",
        "queue_position": position,
    }
    return JSONResponse(body)


async def _get_status(call: Call) -> Response:
    with call.state.locked() as now:
        job = call.state.get_job(call.param("request_id"))
        if job is None:
            return _error(404, "Request not found")
        body, status = _status(call, job, now)
    return JSONResponse(body, status_code=status)


async def _get_result(call: Call) -> Response:
    with call.state.locked() as now:
        job = call.state.get_job(call.param("request_id"))
        phase = job.phase(now) if job is not None else None
    if job is None:
        return _error(404, "Request not found")
    if phase is Phase.SUCCEEDED:
        size = len(await run_in_threadpool(call.state.video_bytes, job))
        video = {
            "url": call.file_url(job.id),
            "content_type": "video/mp4",
            "file_name": "output.mp4",
        }
        return JSONResponse({"video": {**video, "file_size": size}})
    if phase in TERMINAL_PHASES:
        return _failure_response(job)
    return _error(400, "Request is still in progress")


async def _cancel(call: Call) -> Response:
    with call.state.locked() as now:
        job = call.state.get_job(call.param("request_id"))
        if job is None:
            return json_error(404, {"status": "NOT_FOUND"})
        if job.phase(now) in TERMINAL_PHASES:
            return json_error(400, {"status": "ALREADY_COMPLETED"})
        call.state.cancel_job(job.id)
    return JSONResponse({"status": "CANCELLATION_REQUESTED"}, status_code=202)


def _status_op(call: Call) -> str:
    """A status call on an unknown id is how clients probe fal (404: key fine, 401: key bad)."""
    return "poll" if call.state.get_job(call.param("request_id")) is not None else "health"


def _request_routes(state: SandboxState) -> list[Route]:
    """Status, result and cancel, both without (as returned) and with the endpoint's sub-path."""
    routes = []
    actions: list[tuple[str, Handler, str, Any]] = [
        ("/status", _get_status, "GET", _status_op),
        ("/cancel", _cancel, "PUT", "cancel"),
        ("", _get_result, "GET", "result"),
    ]
    for prefix in (APP, APP + "/{subpath:path}"):
        for suffix, handler, method, op in actions:
            path = prefix + "/requests/{request_id}" + suffix
            routes.append(vendor_route(VENDOR, state, path, handler, methods=[method], op=op))
    return routes


def create_app(state: SandboxState) -> Starlette:
    """The fal queue sandbox; its base URL (for ``https://queue.fal.run``) is the server root."""
    routes = [
        *_request_routes(state),
        vendor_route(
            VENDOR, state, APP + "/{endpoint:path}", _submit, methods=["POST"], op="create"
        ),
        file_route(VENDOR, state),
        *control_routes(state),
    ]
    return Starlette(routes=routes)
