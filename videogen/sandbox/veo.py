"""Veo on Vertex AI sandbox, API-key express mode (vendor-apis-2.md section 1), standing in for
``https://aiplatform.googleapis.com`` (paths under ``/v1beta1``, as google-genai sends them).

``POST /v1beta1/[projects/{p}/locations/{l}/]publishers/google/models/{model}:predictLongRunning``
answers ``{"name": "projects/.../operations/{id}"}``; ``POST .../{model}:fetchPredictOperation``
with ``{"operationName"}`` answers the operation: ``{"name"}`` while it runs (Veo shows no queue
and no progress), then ``done: true`` with ``response.videos[].bytesBase64Encoded`` (no
``storageUri``: the video comes inline), ``response.raiMediaFilteredCount`` and no video
(safety), or ``error {code, message}``. ``GET .../models/{model}`` is the model's card (the cheap
probe). Retired models answer 404 ``NOT_FOUND`` ("is no longer available", wording UNCONFIRMED).
There is no cancel. The key goes in ``x-goog-api-key``; errors are Google's
``{"error": {"code", "message", "status"}}``. A wrong key is refused with 401 here; Google
answers 400 ``API_KEY_INVALID`` for a malformed key (UNCONFIRMED which a revoked one gets).
"""

from __future__ import annotations

import base64
import binascii
import re
import uuid
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, Response

from videogen.sandbox.http import (
    Call,
    Vendor,
    control_routes,
    create_delay,
    json_error,
    vendor_route,
)
from videogen.sandbox.state import Job, JobSpec, Phase, SandboxState, is_policy_code

API_VERSION = "v1beta1"
PROJECT = "videogen-sandbox"
LOCATION = "us-central1"
LIVE_MODELS = {
    # model: resolutions it makes
    "veo-3.1-generate-001": ("720p", "1080p", "4k"),
    "veo-3.1-fast-generate-001": ("720p", "1080p", "4k"),
    "veo-3.1-lite-generate-001": ("720p", "1080p"),
}
RETIRED_MODELS = frozenset(
    {
        "veo-2.0-generate-001",
        "veo-3.0-generate-001",
        "veo-3.0-fast-generate-001",
        "veo-3.1-generate-preview",
        "veo-3.1-fast-generate-preview",
    }
)
RESOLUTION_PX = {"720p": 720, "1080p": 1080, "4k": 2160}
ASPECT_RATIOS = ("16:9", "9:16")
DURATIONS = (4, 6, 8)
PERSON_GENERATION = ("dont_allow", "allow_adult", "allow_all")
_MAX_SEED = 4294967295
_STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    502: "UNKNOWN",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
_RPC_INTERNAL = 13
_RPC_CANCELLED = 1
_POLICY_REASON = (
    "Veo could not generate videos because the input prompt violates Vertex AI's usage "
    "guidelines. Support codes: 58061214"
)
_DEFAULT_FAILURE = "Video generation failed due to an internal error. Please try again."
_RESOURCE = re.compile(
    r"^(?:projects/[^/]+/locations/[^/]+/)?publishers/google/models/(?P<model>[^/:]+)$"
)
_TOP_LEVEL = frozenset({"instances", "parameters", "labels"})


class _Invalid(Exception):
    """A request Vertex would refuse with 400 INVALID_ARGUMENT."""


def _error(status: int, message: str) -> Response:
    name = _STATUS_NAMES.get(status, "UNKNOWN")
    return json_error(status, {"error": {"code": status, "message": message, "status": name}})


VENDOR = Vendor(name="veo", error=_error, auth_scheme="", auth_header="x-goog-api-key")


# -- validation ------------------------------------------------------------------------------------
def _check_image(value: Any) -> None:
    if not isinstance(value, dict):
        raise _Invalid("instances[0].image: expected an object")
    if isinstance(value.get("gcsUri"), str):
        if not value["gcsUri"].startswith("gs://"):
            raise _Invalid("instances[0].image.gcsUri: expected a gs:// URI")
        return
    if value.get("mimeType") not in ("image/png", "image/jpeg", "image/webp"):
        raise _Invalid("instances[0].image.mimeType: expected image/png, image/jpeg or image/webp")
    try:
        data = base64.b64decode(str(value.get("bytesBase64Encoded", "")), validate=True)
    except (binascii.Error, ValueError):
        raise _Invalid("instances[0].image.bytesBase64Encoded: invalid base64") from None
    if not data:
        raise _Invalid("instances[0].image: bytesBase64Encoded or gcsUri is required")


def _instance(body: dict[str, Any]) -> tuple[str, bool]:
    """The prompt and whether a first frame came."""
    instances = body.get("instances")
    if not isinstance(instances, list) or len(instances) != 1 or not isinstance(instances[0], dict):
        raise _Invalid("instances: exactly one instance is required")
    instance = instances[0]
    prompt = instance.get("prompt", "")
    if not isinstance(prompt, str):
        raise _Invalid("instances[0].prompt: expected a string")
    has_image = instance.get("image") is not None
    if has_image:
        _check_image(instance["image"])
    elif not prompt.strip():
        raise _Invalid("instances[0].prompt: a prompt is required without an image")
    return prompt, has_image


def _choice(params: dict[str, Any], name: str, allowed: tuple[Any, ...], default: Any) -> Any:
    value = params.get(name, default)
    if isinstance(value, bool) or value not in allowed:
        raise _Invalid(f"parameters.{name}: {value!r} is not one of {allowed}")
    return value


def _check_extras(params: dict[str, Any]) -> None:
    seed = params.get("seed")
    if seed is not None and (
        isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= _MAX_SEED
    ):
        raise _Invalid(f"parameters.seed: expected an integer from 0 to {_MAX_SEED}")
    for name, kind in (("negativePrompt", str), ("generateAudio", bool), ("enhancePrompt", bool)):
        if name in params and not isinstance(params[name], kind):
            raise _Invalid(f"parameters.{name}: expected a {kind.__name__}")
    _choice(params, "personGeneration", PERSON_GENERATION, "allow_adult")
    _choice(params, "sampleCount", (1, 2, 3, 4), 1)


def _parse_create(model: str, body: Any) -> JobSpec:
    if not isinstance(body, dict):
        raise _Invalid("expected a JSON object")
    unknown = sorted(set(body) - _TOP_LEVEL)
    if unknown:
        raise _Invalid(f'Invalid JSON payload received. Unknown name "{unknown[0]}"')
    prompt, has_image = _instance(body)
    params = body.get("parameters") or {}
    if not isinstance(params, dict):
        raise _Invalid("parameters: expected an object")
    duration = _choice(params, "durationSeconds", DURATIONS, 8)
    aspect = _choice(params, "aspectRatio", ASPECT_RATIOS, "16:9")
    resolution = _choice(params, "resolution", LIVE_MODELS[model], "720p")
    if resolution != "720p" and duration != 8:
        raise _Invalid(f"parameters.durationSeconds: {resolution} needs 8 seconds")
    _check_extras(params)
    short = RESOLUTION_PX[resolution]
    width, height = (short * 16 // 9, short) if aspect == "16:9" else (short, short * 16 // 9)
    kind = f"{model}/{'image' if has_image else 'text'}"
    return JobSpec(kind, prompt, dict(body), float(duration), width, height)


# -- answers ---------------------------------------------------------------------------------------
def operation_name(model: str, job_id: str) -> str:
    """The operation's full name: it is the job's id in the sandbox, as it is at Google."""
    model_path = f"projects/{PROJECT}/locations/{LOCATION}/publishers/google/models/{model}"
    return f"{model_path}/operations/{job_id}"


def _video(state: SandboxState, job: Job) -> dict[str, str]:
    """The inline video, or the fake ``Knobs.fake_video`` asks for."""
    fake = state.knobs.fake_video
    if fake == "html":
        data, mime = b"<!doctype html><html><body>Denied</body></html>", "text/html"
    elif fake == "empty":
        data, mime = b"", "video/mp4"
    else:
        data, mime = state.video_bytes(job), "video/mp4"
    return {"bytesBase64Encoded": base64.b64encode(data).decode("ascii"), "mimeType": mime}


def _done(state: SandboxState, job: Job, phase: Phase) -> dict[str, Any]:
    if phase is Phase.CANCELLED:
        return {"error": {"code": _RPC_CANCELLED, "message": "The operation was cancelled."}}
    if phase is Phase.FAILED and is_policy_code(job.failure_code):
        reason = job.failure_message or _POLICY_REASON
        response = {"raiMediaFilteredCount": 1, "raiMediaFilteredReasons": [reason]}
        return {"response": {"@type": _RESPONSE_TYPE, **response, "videos": []}}
    if phase is Phase.FAILED:
        return {
            "error": {"code": _RPC_INTERNAL, "message": job.failure_message or _DEFAULT_FAILURE}
        }
    response = {"raiMediaFilteredCount": 0, "videos": [_video(state, job)]}
    return {"response": {"@type": _RESPONSE_TYPE, **response}}


_RESPONSE_TYPE = "type.googleapis.com/cloud.ai.large_models.vision.GenerateVideoResponse"


def _operation(state: SandboxState, job: Job, name: str) -> dict[str, Any]:
    with state.locked() as now:
        phase = job.phase(now)
    if phase not in (Phase.SUCCEEDED, Phase.FAILED, Phase.CANCELLED):
        return {"name": name}
    return {"name": name, "done": True, **_done(state, job, phase)}


def _split(call: Call) -> tuple[str, str, str | None]:
    """``(model, verb, problem)`` of a ``{resource}:{verb}`` path."""
    resource, _, verb = call.param("resource").partition(":")
    match = _RESOURCE.match(resource)
    if match is None:
        return "", verb, f"Resource {resource} is not a publisher model"
    return match["model"], verb, None


def _model_missing(model: str) -> Response | None:
    path = f"projects/{PROJECT}/locations/{LOCATION}/publishers/google/models/{model}"
    if model in RETIRED_MODELS:
        return _error(404, f"Publisher Model `{path}` is no longer available.")
    if model not in LIVE_MODELS:
        return _error(
            404,
            f"Publisher Model `{path}` was not found or your project does not have access to it.",
        )
    return None


async def _create(call: Call, model: str) -> Response:
    try:
        spec = _parse_create(model, call.body)
    except _Invalid as exc:
        return _error(400, str(exc))
    job = call.state.create_job(spec, job_id=operation_name(model, str(uuid.uuid4())))
    await create_delay(call.state)
    return JSONResponse({"name": job.id})


async def _fetch(call: Call, model: str) -> Response:
    name = call.body.get("operationName") if isinstance(call.body, dict) else None
    if not isinstance(name, str) or "/operations/" not in name:
        return _error(400, "operationName: a full operation name is required")
    resource = name.rpartition("/operations/")[0]
    if not resource.endswith(f"publishers/google/models/{model}"):
        return _error(400, f"Operation {name} does not belong to model {model}")
    job = call.state.get_job(name)
    if job is None:
        return _error(404, f"Operation {name} not found.")
    body = await run_in_threadpool(_operation, call.state, job, name)
    return JSONResponse(body)


async def _post(call: Call) -> Response:
    model, verb, problem = _split(call)
    if problem is not None:
        return _error(404, problem)
    if (missing := _model_missing(model)) is not None:
        return missing
    if verb == "predictLongRunning":
        return await _create(call, model)
    if verb == "fetchPredictOperation":
        return await _fetch(call, model)
    return _error(404, f"Method {verb} is not found for publisher models.")


async def _model_card(call: Call) -> Response:
    resource = call.param("resource")
    match = _RESOURCE.match(resource)
    if match is None:
        return _error(404, f"Resource {resource} not found.")
    if (missing := _model_missing(match["model"])) is not None:
        return missing
    name = f"publishers/google/models/{match['model']}"
    return JSONResponse({"name": name, "versionId": "001", "launchStage": "GA"})


def _post_op(call: Call) -> str:
    verb = call.param("resource").rpartition(":")[2]
    return {"predictLongRunning": "create", "fetchPredictOperation": "poll"}.get(verb, "poll")


def create_app(state: SandboxState) -> Starlette:
    """The Veo (Vertex express) sandbox; its base URL is the server root."""
    path = f"/{API_VERSION}/{{resource:path}}"
    routes = [
        *control_routes(state),
        vendor_route(VENDOR, state, path, _post, methods=["POST"], op=_post_op),
        vendor_route(VENDOR, state, path, _model_card, methods=["GET"], op="health"),
    ]
    return Starlette(routes=routes)
