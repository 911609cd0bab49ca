"""Replicate predictions sandbox (vendor-apis-2.md section 5), standing in for
``https://api.replicate.com`` (paths start with ``/v1``, as the ``replicate`` SDK sends them).

Create through an official model (``POST /v1/models/{owner}/{name}/predictions``), a version
(``POST /v1/predictions`` with ``version``) or a deployment
(``POST /v1/deployments/{owner}/{name}/predictions``); each answers 201 with the Prediction.
Inputs are checked against the model's schema (a few video models below; unknown inputs are
refused, as Replicate refuses additional properties) with 422 problem details. Predictions go
``starting`` -> ``processing`` -> ``succeeded`` | ``failed`` | ``canceled``; an output is
deleted :data:`OUTPUT_RETENTION_SECONDS` after the prediction ends (``data_removed``, output
``null``, the file 404s). Errors are RFC 7807 ``{"title", "detail", "status"}``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.responses import JSONResponse, Response

from videogen.sandbox.http import (
    FILES_PATH,
    Call,
    Vendor,
    control_routes,
    create_delay,
    image_ref_problem,
    iso_timestamp,
    json_error,
    vendor_route,
    video_response,
)
from videogen.sandbox.state import Job, JobSpec, Phase, SandboxState, is_policy_code

OUTPUT_RETENTION_SECONDS = 3600.0
""""Output files ... are automatically removed after an hour" (data-retention doc)."""
_TITLES = {
    400: "Bad request",
    401: "Unauthenticated",
    404: "Not found",
    422: "Input validation failed",
    429: "Too many requests",
}
_POLICY_FAILURE = (
    "The input or output was flagged as sensitive. Please try again with different inputs. (E005)"
)
_DEFAULT_FAILURE = "Prediction failed: the model raised an error while generating."
_STATUS = {
    Phase.WAITING: "starting",
    Phase.QUEUED: "starting",
    Phase.RUNNING: "processing",
    Phase.SUCCEEDED: "succeeded",
    Phase.FAILED: "failed",
    Phase.CANCELLED: "canceled",
}


@dataclass(frozen=True)
class Input:
    """One input of a model's schema."""

    kind: type | tuple[type, ...]
    choices: tuple[Any, ...] = ()
    default: Any = None
    required: bool = False
    uri: bool = False
    """A file input: an https URL or a data URI."""


@dataclass(frozen=True)
class Schema:
    inputs: dict[str, Input]
    prompt: str
    duration: str
    resolution: str
    aspect_ratio: str | None
    """``None``: the model always makes 16:9 (or follows the first frame)."""


RESOLUTION_PX = {"512p": 512, "720p": 720, "768p": 768, "1080p": 1080}
# Input names and choices as 3P catalogues transcribe the models' pages (vendor-apis-2.md §5.4,
# UNCONFIRMED); what matters here is that two models name the same things differently.
MODELS: dict[str, Schema] = {
    "google/veo-3": Schema(
        inputs={
            "prompt": Input(str, required=True),
            "image": Input(str, uri=True),
            "duration": Input(int, (8,), 8),
            "aspect_ratio": Input(str, ("16:9", "9:16"), "16:9"),
            "resolution": Input(str, ("720p", "1080p"), "720p"),
            "negative_prompt": Input(str),
            "seed": Input(int),
            "generate_audio": Input(bool, default=True),
        },
        prompt="prompt",
        duration="duration",
        resolution="resolution",
        aspect_ratio="aspect_ratio",
    ),
    "minimax/hailuo-02": Schema(
        inputs={
            "prompt": Input(str, required=True),
            "first_frame_image": Input(str, uri=True),
            "duration": Input(int, (6, 10), 6),
            "resolution": Input(str, ("512p", "768p", "1080p"), "1080p"),
            "prompt_optimizer": Input(bool, default=True),
        },
        prompt="prompt",
        duration="duration",
        resolution="resolution",
        aspect_ratio=None,
    ),
}
VERSIONS = {hashlib.sha256(name.encode()).hexdigest(): name for name in MODELS}
"""Version ids (64 hex, like Replicate's) of the models, for ``POST /v1/predictions``."""
DEPLOYMENTS = {"videogen/veo": "google/veo-3"}
"""The sandbox account's deployments and the model each runs."""
ACCOUNT = {"type": "organization", "username": "videogen", "name": "Videogen", "github_url": None}


class _Invalid(Exception):
    """An input Replicate would refuse with 422."""

    def __init__(self, field: str, description: str) -> None:
        super().__init__(f"- input.{field}: {description}")
        self.field = field
        self.description = description


def _error(status: int, message: str) -> Response:
    title = _TITLES.get(status, "Internal server error" if status >= 500 else "Error")
    return json_error(status, {"title": title, "detail": message, "status": status})


VENDOR = Vendor(name="replicate", error=_error, auth_scheme="Bearer")


# -- validation ------------------------------------------------------------------------------------
def _check_input(name: str, spec: Input, value: Any) -> None:
    if isinstance(value, bool) and spec.kind is not bool:
        raise _Invalid(name, f"Invalid type. Expected: {getattr(spec.kind, '__name__', 'value')}")
    if not isinstance(value, spec.kind):
        raise _Invalid(name, f"Invalid type. Expected: {getattr(spec.kind, '__name__', 'value')}")
    if spec.choices and value not in spec.choices:
        allowed = ", ".join(str(c) for c in spec.choices)
        raise _Invalid(name, f"{name} must be one of the following: {allowed}")
    if spec.uri and (problem := image_ref_problem(value)) is not None:
        raise _Invalid(name, problem)


def _validated(schema: Schema, given: Any) -> dict[str, Any]:
    """The input with the schema's defaults filled in, or :class:`_Invalid`."""
    if not isinstance(given, dict):
        raise _Invalid("input", "Invalid type. Expected: object")
    for name in given:
        if name not in schema.inputs:
            raise _Invalid(name, f"Additional property {name} is not allowed")
    merged: dict[str, Any] = {}
    for name, spec in schema.inputs.items():
        value = given.get(name, spec.default)
        if value is None:
            if spec.required:
                raise _Invalid(name, f"{name} is required")
            continue
        _check_input(name, spec, value)
        merged[name] = value
    return merged


def _size(schema: Schema, values: dict[str, Any]) -> tuple[int, int]:
    short = RESOLUTION_PX[values[schema.resolution]]
    aspect = values.get(schema.aspect_ratio or "", "16:9")
    across, down = (int(part) for part in str(aspect).split(":"))
    if across >= down:
        return round(short * across / down), short
    return short, round(short * down / across)


def _spec(model: str, version: str, given: Any) -> JobSpec:
    schema = MODELS[model]
    values = _validated(schema, given)
    width, height = _size(schema, values)
    prompt = str(values[schema.prompt])
    extras = {"model": model, "version": version}
    duration = float(values[schema.duration])
    return JobSpec(model, prompt, values, duration, width, height, vendor=extras)


# -- answers ---------------------------------------------------------------------------------------
def _removed(job: Job, now: float) -> bool:
    return job.finished_at is not None and now - job.finished_at >= OUTPUT_RETENTION_SECONDS


def _failure(job: Job) -> str:
    if job.failure_message:
        return job.failure_message
    return _POLICY_FAILURE if is_policy_code(job.failure_code) else _DEFAULT_FAILURE


def _prediction(call: Call, job: Job, now: float) -> dict[str, Any]:
    phase = job.phase(now)
    base = f"{call.root}/v1/predictions/{job.id}"
    removed = _removed(job, now)
    body: dict[str, Any] = {
        "id": job.id,
        "model": job.vendor["model"],
        "version": job.vendor["version"],
        "input": None if removed else job.params,
        "logs": None if removed else "",
        "output": None,
        "data_removed": removed,
        "error": _failure(job) if phase is Phase.FAILED else None,
        "status": _STATUS[phase],
        "created_at": iso_timestamp(call.state, job.created_at),
        "urls": {"get": base, "cancel": base + "/cancel", "web": base},
    }
    if job.started_at is not None:
        body["started_at"] = iso_timestamp(call.state, job.started_at)
    if job.finished_at is not None:
        body["completed_at"] = iso_timestamp(call.state, job.finished_at)
        body["metrics"] = {"predict_time": round(job.finished_at - (job.started_at or 0), 3)}
    if phase is Phase.RUNNING:
        percent = round(job.progress(now) * 100)
        body["logs"] = f"{percent}%|{'#' * (percent // 10):<10}| {percent}/100"
    if phase is Phase.SUCCEEDED and not removed:
        body["output"] = call.file_url(job.id)
    return body


async def _create_for(call: Call, model: str, version: str) -> Response:
    body = call.body if isinstance(call.body, dict) else {}
    try:
        spec = _spec(model, version, body.get("input"))
    except _Invalid as exc:
        fields = [
            {"type": "invalid", "field": f"input.{exc.field}", "description": exc.description}
        ]
        return json_error(
            422,
            {"title": _TITLES[422], "detail": str(exc), "status": 422, "invalid_fields": fields},
        )
    job = call.state.create_job(spec)
    await create_delay(call.state)
    with call.state.locked() as now:
        return JSONResponse(_prediction(call, job, now), status_code=201)


async def _create_model(call: Call) -> Response:
    model = f"{call.param('owner')}/{call.param('name')}"
    if model not in MODELS:
        return _error(404, f"Model {model} not found.")
    version = next(v for v, m in VERSIONS.items() if m == model)
    return await _create_for(call, model, version)


async def _create_version(call: Call) -> Response:
    version = call.body.get("version") if isinstance(call.body, dict) else None
    if not isinstance(version, str):
        return _error(422, "- version: version is required")
    model = VERSIONS.get(version.rpartition(":")[2])
    if model is None:
        return _error(422, f"- version: Invalid version or not permitted: {version}")
    return await _create_for(call, model, version.rpartition(":")[2])


async def _create_deployment(call: Call) -> Response:
    model = DEPLOYMENTS.get(f"{call.param('owner')}/{call.param('name')}")
    if model is None:
        return _error(404, "Deployment not found.")
    version = next(v for v, m in VERSIONS.items() if m == model)
    return await _create_for(call, model, version)


async def _get(call: Call) -> Response:
    with call.state.locked() as now:
        job = call.state.get_job(call.param("prediction_id"))
        if job is None:
            return _error(404, "The requested resource could not be found.")
        return JSONResponse(_prediction(call, job, now))


async def _cancel(call: Call) -> Response:
    """Cancels one still going; a finished one is answered as it is."""
    state = call.state
    if state.get_job(call.param("prediction_id")) is None:
        return _error(404, "The requested resource could not be found.")
    state.cancel_job(call.param("prediction_id"))
    with state.locked() as now:
        job = state.get_job(call.param("prediction_id"))
        assert job is not None
        return JSONResponse(_prediction(call, job, now))


async def _account(call: Call) -> Response:
    return JSONResponse(ACCOUNT)


def _file_route(state: SandboxState) -> Any:
    """Outputs at ``/__sandbox__/files/{id}.mp4`` (replicate.delivery needs no key), gone
    once the retention hour has passed."""
    vendor = VENDOR.without_auth()

    async def serve(call: Call) -> Response:
        with state.locked() as now:
            job = state.get_job(call.param("job_id"))
            ok = job is not None and job.phase(now) is Phase.SUCCEEDED and not _removed(job, now)
        if not ok or job is None:
            return vendor.error(404, "File not found.")
        return await video_response(state, job)

    return vendor_route(vendor, state, FILES_PATH, serve, methods=["GET"], op="download")


def create_app(state: SandboxState) -> Starlette:
    """The Replicate sandbox; its base URL is the server root (paths start with ``/v1``)."""
    one = "/v1/predictions/{prediction_id}"
    routes = [
        vendor_route(
            VENDOR,
            state,
            "/v1/models/{owner}/{name}/predictions",
            _create_model,
            methods=["POST"],
            op="create",
        ),
        vendor_route(
            VENDOR, state, "/v1/predictions", _create_version, methods=["POST"], op="create"
        ),
        vendor_route(
            VENDOR,
            state,
            "/v1/deployments/{owner}/{name}/predictions",
            _create_deployment,
            methods=["POST"],
            op="create",
        ),
        vendor_route(VENDOR, state, one, _get, methods=["GET"], op="poll"),
        vendor_route(VENDOR, state, one + "/cancel", _cancel, methods=["POST"], op="cancel"),
        vendor_route(VENDOR, state, "/v1/account", _account, methods=["GET"], op="health"),
        _file_route(state),
        *control_routes(state),
    ]
    return Starlette(routes=routes)
