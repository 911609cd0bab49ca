"""fal's queue (vendor-apis.md C, vendor-apis-2.md §6), standing in for ``https://queue.fal.run``:
Pika and the other video models on fal (Kling, Hailuo, Veo, Wan, Seedance), each endpoint with
its own input schema (:data:`ENDPOINTS`), all on the one queue protocol.

Submit ``POST /{endpoint id}`` (``/fal-ai/pika/v2.2/text-to-video``, ``/wan/v2.6/text-to-video``)
with ``Authorization: Key <id:secret>``; the answer carries ``status_url``, ``response_url`` and
``cancel_url``, which keep only the endpoint's ``<owner>/<app>`` (``/fal-ai/pika/requests/...``)
and point at whatever origin the client used (so TLS works too). Status is HTTP 202
``IN_QUEUE``/``IN_PROGRESS`` then 200 ``COMPLETED``; failures show up when the result is fetched
(422 content policy, 500 runner error). Input errors are answered at submit as FastAPI-style 422s.
"""

from __future__ import annotations

from dataclasses import dataclass
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
    is_policy_code,
)


@dataclass(frozen=True)
class Schema:
    """One endpoint's inputs, as the sandbox checks them (from ``@fal-ai/client``'s types)."""

    image_field: str | None = None
    """The required first-frame input of an image-to-video endpoint; ``None``: text-to-video."""
    durations: tuple[Any, ...] = ("5", "10")
    """Accepted ``duration`` values, exactly as they go on the wire."""
    default_duration: Any = "5"
    aspect_ratios: tuple[str, ...] | None = ("16:9", "9:16", "1:1")
    """Accepted ``aspect_ratio`` values (the first is the default); ``None``: not an input
    (the output is 16:9, or the image's shape)."""
    resolutions: dict[str, int] | None = None
    """Accepted ``resolution`` values → short side; ``None``: not an input."""
    default_resolution: str = ""
    fixed_short: int = 1080
    """The output's short side when ``resolution`` is not an input."""


def _pair(
    family: str,
    t2v: str,
    i2v: str,
    image_field: str = "image_url",
    image_aspect_ratios: tuple[str, ...] | None = None,
    **inputs: Any,
) -> dict[str, Schema]:
    """A family's text- and image-to-video endpoints (``t2v`` ``""``: the family id itself)."""
    image = {**inputs, "image_field": image_field, "aspect_ratios": image_aspect_ratios}
    return {f"{family}/{t2v}".rstrip("/"): Schema(**inputs), f"{family}/{i2v}": Schema(**image)}


_SECONDS = tuple(str(n) for n in range(16))
ENDPOINTS: dict[str, Schema] = {
    **_pair(
        "fal-ai/pika/v2.2",
        "text-to-video",
        "image-to-video",
        durations=(5, 10, "5", "10"),
        default_duration=5,
        aspect_ratios=("16:9", "9:16", "1:1", "4:5", "5:4", "3:2", "2:3"),
        resolutions={"720p": 720, "1080p": 1080},
        default_resolution="720p",
    ),
    **_pair("fal-ai/kling-video/v2.5-turbo/pro", "text-to-video", "image-to-video"),
    **_pair(
        "fal-ai/kling-video/v3/pro",
        "text-to-video",
        "image-to-video",
        "start_image_url",
        durations=_SECONDS[3:16],
    ),
    **_pair(
        "fal-ai/minimax/hailuo-02/standard",
        "text-to-video",
        "image-to-video",
        durations=("6", "10"),
        default_duration="6",
        aspect_ratios=None,
        resolutions={"512P": 512, "768P": 768},
        default_resolution="768P",
    ),
    **_pair(
        "fal-ai/veo3.1/fast",
        "",
        "image-to-video",
        durations=("4s", "6s", "8s"),
        default_duration="8s",
        aspect_ratios=("16:9", "9:16"),
        image_aspect_ratios=("auto", "16:9", "9:16"),
        resolutions={"720p": 720, "1080p": 1080},
        default_resolution="720p",
    ),
    **_pair(
        "wan/v2.6",
        "text-to-video",
        "image-to-video",
        durations=("5", "10", "15"),
        resolutions={"720p": 720, "1080p": 1080},
        default_resolution="1080p",
    ),
    **_pair(
        "fal-ai/bytedance/seedance/v1.5/pro",
        "text-to-video",
        "image-to-video",
        durations=_SECONDS[4:13],
        aspect_ratios=("16:9", "21:9", "4:3", "1:1", "3:4", "9:16"),
        resolutions={"480p": 480, "720p": 720, "1080p": 1080},
        default_resolution="720p",
    ),
}
"""Every endpoint the sandbox serves (t2v and i2v of each family), by endpoint id."""


def app_of(endpoint: str) -> str:
    """``<owner>/<app>``: what the request URLs keep of an endpoint id."""
    return "/".join(endpoint.strip("/").split("/")[:2])


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


VENDOR = Vendor(name="fal", error=_error, auth_scheme="Key")


# -- validation ------------------------------------------------------------------------------------
def _issue(
    field: str, message: str, kind: str = "value_error", value: Any = None
) -> dict[str, Any]:
    return {"loc": ["body", field], "msg": message, "type": kind, "input": value}


def _choices(values: Any) -> str:
    return ", ".join(repr(v) for v in values)


def _check_choices(schema: Schema, body: dict[str, Any]) -> list[dict[str, Any]]:
    issues = []
    aspect = body.get("aspect_ratio")
    if schema.aspect_ratios is not None and aspect is not None:
        if aspect not in schema.aspect_ratios:
            issues.append(
                _issue(
                    "aspect_ratio",
                    f"Input should be {_choices(schema.aspect_ratios)}",
                    "enum",
                    aspect,
                )
            )
    resolution = body.get("resolution")
    if schema.resolutions is not None and resolution is not None:
        if resolution not in schema.resolutions:
            issues.append(
                _issue(
                    "resolution",
                    f"Input should be {_choices(schema.resolutions)}",
                    "enum",
                    resolution,
                )
            )
    duration = body.get("duration", schema.default_duration)
    if isinstance(duration, bool) or duration not in schema.durations:
        issues.append(
            _issue("duration", f"Input should be {_choices(schema.durations)}", "enum", duration)
        )
    seed = body.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        issues.append(_issue("seed", "Input should be a valid integer", "int_type", seed))
    return issues


def _check_texts(schema: Schema, body: dict[str, Any]) -> list[dict[str, Any]]:
    issues = []
    prompt = body.get("prompt")
    if prompt is None:
        issues.append(_issue("prompt", "Field required", "missing"))
    elif not isinstance(prompt, str) or not prompt.strip():
        issues.append(_issue("prompt", "Input should be a non-empty string", "string_type", prompt))
    if not isinstance(body.get("negative_prompt", ""), str):
        issues.append(_issue("negative_prompt", "Input should be a valid string", "string_type"))
    field = schema.image_field
    if field is not None:
        problem = image_ref_problem(body.get(field))
        if problem is not None:
            kind = "missing" if field not in body else "value_error"
            issues.append(_issue(field, problem, kind))
    return issues


def _seconds(duration: Any) -> float:
    """``5``, ``"5"`` or ``"5s"`` → 5.0."""
    return float(str(duration).rstrip("s"))


def _size(schema: Schema, body: dict[str, Any]) -> tuple[int, int]:
    if schema.resolutions is None:
        short = schema.fixed_short
    else:
        short = schema.resolutions[body.get("resolution", schema.default_resolution)]
    aspect = "16:9"
    if schema.aspect_ratios is not None:
        aspect = body.get("aspect_ratio", schema.aspect_ratios[0])
    across, down = (int(part) for part in aspect.replace("auto", "16:9").split(":"))
    if across >= down:
        return round(short * across / down), short
    return short, round(short * down / across)


def _parse_submit(endpoint: str, body: Any) -> JobSpec | list[dict[str, Any]]:
    """The job to create, or the validation issues that refuse it."""
    if not isinstance(body, dict):
        return [{"loc": ["body"], "msg": "Input should be a valid dictionary", "type": "dict_type"}]
    schema = ENDPOINTS[endpoint]
    issues = _check_texts(schema, body) + _check_choices(schema, body)
    if issues:
        return issues
    width, height = _size(schema, body)
    duration = _seconds(body.get("duration", schema.default_duration))
    return JobSpec(endpoint, body["prompt"], dict(body), duration, width, height)


# -- answers ---------------------------------------------------------------------------------------
def _urls(call: Call, job: Job) -> dict[str, str]:
    base = f"{call.root}/{app_of(job.kind)}/requests/{job.id}"
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
    response_url = _urls(call, job)["response_url"]
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
        return _error(404, f"Application '{endpoint}' not found")
    parsed = _parse_submit(endpoint, call.body)
    if isinstance(parsed, list):
        return json_error(422, {"detail": parsed}, headers={"X-Fal-Retryable": "false"})
    job = call.state.create_job(parsed)
    await create_delay(call.state)
    position = call.state.waiting_position(job)
    body = {
        "request_id": job.id,
        **_urls(call, job),
        "status": "IN_QUEUE",
        "queue_position": position,
    }
    return JSONResponse(body)


def _job(call: Call) -> Job | None:
    """The request the URL names, on the app it was submitted to (another app's: none)."""
    job = call.state.get_job(call.param("request_id"))
    app = f"{call.param('owner')}/{call.param('app')}"
    return job if job is not None and app_of(job.kind) == app else None


async def _get_status(call: Call) -> Response:
    with call.state.locked() as now:
        job = _job(call)
        if job is None:
            return _error(404, "Request not found")
        body, status = _status(call, job, now)
    return JSONResponse(body, status_code=status)


async def _get_result(call: Call) -> Response:
    with call.state.locked() as now:
        job = _job(call)
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
        job = _job(call)
        if job is None:
            return json_error(404, {"status": "NOT_FOUND"})
        if job.phase(now) in TERMINAL_PHASES:
            return json_error(400, {"status": "ALREADY_COMPLETED"})
        call.state.cancel_job(job.id)
    return JSONResponse({"status": "CANCELLATION_REQUESTED"}, status_code=202)


def _status_op(call: Call) -> str:
    """A status call on an unknown id is how clients probe fal (404: key fine, 401: key bad)."""
    return "poll" if _job(call) is not None else "health"


def _request_routes(state: SandboxState) -> list[Route]:
    """Status, result and cancel, both without (as returned) and with the endpoint's sub-path."""
    routes = []
    actions: list[tuple[str, Handler, str, Any]] = [
        ("/status", _get_status, "GET", _status_op),
        ("/cancel", _cancel, "PUT", "cancel"),
        ("", _get_result, "GET", "result"),
    ]
    app = "/{owner}/{app}"
    for prefix in (app, app + "/{subpath:path}"):
        for suffix, handler, method, op in actions:
            path = prefix + "/requests/{request_id}" + suffix
            routes.append(vendor_route(VENDOR, state, path, handler, methods=[method], op=op))
    return routes


def create_app(state: SandboxState) -> Starlette:
    """The fal queue sandbox; its base URL (for ``https://queue.fal.run``) is the server root."""
    routes = [
        *control_routes(state),  # before the submit route, which takes any POST path
        file_route(VENDOR, state),
        *_request_routes(state),
        vendor_route(VENDOR, state, "/{endpoint:path}", _submit, methods=["POST"], op="create"),
    ]
    return Starlette(routes=routes)
