"""Runway API sandbox (vendor-apis.md section A): create, poll and delete tasks under ``/v1``.

Speaks what the official ``runwayml`` SDK sends and parses: Bearer auth plus the required
``X-Runway-Version`` header, camelCase bodies, 200 ``{"id", "estimatedCost"}`` on create (the
installed SDK 5.24 declares ``estimatedCost``; older docs show ``{"id"}`` alone), and tasks that go
THROTTLED (over the concurrency limit) -> PENDING -> RUNNING (with ``progress``) -> SUCCEEDED |
FAILED | CANCELLED.
"""

from __future__ import annotations

from dataclasses import dataclass
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
    empty,
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

API_VERSION = "2024-11-06"
DEFAULT_FAILURE_CODE = "INTERNAL.BAD_OUTPUT.CODE01"
_DEFAULT_FAILURE = "An unexpected error occurred."
_POLICY_FAILURE = "The input was flagged by content moderation."
_MAX_PROMPT_UTF16_UNITS = 1000
_MAX_SEED = 4294967295
# Numbers from the real-world report quoted in vendor-apis.md A.5.
_CREDIT_BALANCE = 50250
_MAX_DAILY_GENERATIONS = 1000

_STATUS = {
    Phase.WAITING: "THROTTLED",
    Phase.QUEUED: "PENDING",
    Phase.RUNNING: "RUNNING",
    Phase.SUCCEEDED: "SUCCEEDED",
    Phase.FAILED: "FAILED",
    Phase.CANCELLED: "CANCELLED",
}


@dataclass(frozen=True)
class ModelRule:
    """What one model accepts on one endpoint (SDK ``*_create_params.py``)."""

    ratios: tuple[str, ...]
    durations: tuple[int, ...]
    default_duration: int | None
    """``None``: ``duration`` is required."""
    prompt_required: bool
    credits_per_second: int


_GEN4_RATIOS = ("1280:720", "720:1280", "1104:832", "832:1104", "960:960", "1584:672")
_VEO_RATIOS = ("1280:720", "720:1280", "1080:1920", "1920:1080")
_TWO_TO_TEN = tuple(range(2, 11))

IMAGE_TO_VIDEO: dict[str, ModelRule] = {
    # gen4_turbo's default duration is UNCONFIRMED; 10 s was its predecessors' default.
    "gen4_turbo": ModelRule(_GEN4_RATIOS, _TWO_TO_TEN, 10, False, 5),
    "gen4.5": ModelRule(_GEN4_RATIOS, _TWO_TO_TEN, None, True, 12),
    "veo3": ModelRule(_VEO_RATIOS, (8,), None, False, 40),
    "veo3.1": ModelRule(_VEO_RATIOS, (4, 6, 8), 8, False, 20),
    "veo3.1_fast": ModelRule(_VEO_RATIOS, (4, 6, 8), 8, False, 10),
}
TEXT_TO_VIDEO: dict[str, ModelRule] = {
    "gen4.5": ModelRule(("1280:720", "720:1280"), _TWO_TO_TEN, None, True, 12),
    "veo3": ModelRule(_VEO_RATIOS, (8,), None, True, 40),
    "veo3.1": ModelRule(_VEO_RATIOS, (4, 6, 8), 8, True, 20),
    "veo3.1_fast": ModelRule(_VEO_RATIOS, (4, 6, 8), 8, True, 10),
}


class _Invalid(Exception):
    """A request field Runway would refuse with 400."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"Invalid parameter '{field}': {reason}")


def _error(status: int, message: str) -> Response:
    return json_error(status, {"error": message})


def _version_check(request: Request) -> Response | None:
    version = request.headers.get("x-runway-version")
    if version == API_VERSION:
        return None
    if version is None:
        return _error(400, f"The X-Runway-Version header is required. Use '{API_VERSION}'.")
    return _error(400, f"Invalid API version '{version}' in X-Runway-Version. Use '{API_VERSION}'.")


VENDOR = Vendor(name="runway", error=_error, auth_scheme="Bearer", precheck=_version_check)


# -- validation ------------------------------------------------------------------------------------
def _check_prompt_image(value: Any) -> None:
    if isinstance(value, list):
        if not value:
            raise _Invalid("promptImage", "Expected at least one image.")
        for item in value:
            if not isinstance(item, dict) or item.get("position") not in ("first", "last"):
                raise _Invalid(
                    "promptImage", "Expected objects with 'uri' and 'position' ('first'|'last')."
                )
            _check_prompt_image(item.get("uri"))
        return
    problem = image_ref_problem(value, extra_schemes=("runway",))
    if problem is not None:
        raise _Invalid("promptImage", problem)


def _check_prompt_text(value: Any, required: bool) -> str:
    if value is None and not required:
        return ""
    if not isinstance(value, str) or not value.strip():
        raise _Invalid("promptText", "Expected a non-empty string.")
    if len(value.encode("utf-16-le")) // 2 > _MAX_PROMPT_UTF16_UNITS:
        raise _Invalid("promptText", f"Must be at most {_MAX_PROMPT_UTF16_UNITS} characters.")
    return value


def _check_duration(value: Any, rule: ModelRule) -> int:
    if value is None and rule.default_duration is not None:
        return rule.default_duration
    if isinstance(value, bool) or not isinstance(value, int) or value not in rule.durations:
        allowed = "|".join(str(d) for d in rule.durations)
        raise _Invalid("duration", f"Expected an integer, one of {allowed}.")
    return value


def _check_seed(value: Any) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _MAX_SEED:
        raise _Invalid("seed", f"Expected an integer from 0 to {_MAX_SEED}.")


def _parse_create(body: Any, models: dict[str, ModelRule], with_image: bool) -> JobSpec:
    """Validate a create body into a job spec (estimated cost in ``vendor["credits"]``)."""
    if not isinstance(body, dict):
        raise _Invalid("body", "Expected a JSON object.")
    model = body.get("model")
    rule = models.get(model) if isinstance(model, str) else None
    if rule is None:
        raise _Invalid("model", f"Expected one of: {', '.join(models)}.")
    if with_image:
        _check_prompt_image(body.get("promptImage"))
    prompt = _check_prompt_text(body.get("promptText"), rule.prompt_required)
    if body.get("ratio") not in rule.ratios:
        raise _Invalid("ratio", f"Expected one of: {', '.join(rule.ratios)}.")
    duration = _check_duration(body.get("duration"), rule)
    _check_seed(body.get("seed"))
    width, height = (int(side) for side in str(body["ratio"]).split(":"))
    kind = f"{model}/{'image_to_video' if with_image else 'text_to_video'}"
    credits = {"credits": duration * rule.credits_per_second}
    return JobSpec(kind, prompt, dict(body), float(duration), width, height, vendor=credits)


# -- answers ---------------------------------------------------------------------------------------
def _failure(job: Job) -> dict[str, str]:
    code = job.failure_code or DEFAULT_FAILURE_CODE
    default = _POLICY_FAILURE if is_policy_code(code) else _DEFAULT_FAILURE
    return {"failure": job.failure_message or default, "failureCode": code}


def _task(call: Call, job: Job, now: float) -> dict[str, Any]:
    phase = job.phase(now)
    credits = int(job.vendor["credits"])
    task: dict[str, Any] = {
        "id": job.id,
        "status": _STATUS[phase],
        "createdAt": iso_timestamp(call.state, job.created_at),
    }
    if phase not in TERMINAL_PHASES:
        task["estimatedCost"] = {"credits": credits}
    else:
        task["cost"] = {"credits": credits if phase is Phase.SUCCEEDED else 0}
    if phase is Phase.RUNNING:
        task["progress"] = round(job.progress(now), 3)
    elif phase is Phase.SUCCEEDED:
        task["output"] = [call.file_url(job.id)]
    elif phase is Phase.FAILED:
        task.update(_failure(job))
    return task


def _creator(models: dict[str, ModelRule], with_image: bool) -> Handler:
    async def create(call: Call) -> Response:
        try:
            spec = _parse_create(call.body, models, with_image)
        except _Invalid as exc:
            return _error(400, str(exc))
        job = call.state.create_job(spec)
        await create_delay(call.state)
        return JSONResponse({"id": job.id, "estimatedCost": {"credits": job.vendor["credits"]}})

    return create


async def _get_task(call: Call) -> Response:
    with call.state.locked() as now:
        job = call.state.get_job(call.param("task_id"))
        if job is None:
            return _error(404, "Task not found.")
        return JSONResponse(_task(call, job, now))


async def _delete_task(call: Call) -> Response:
    """Cancels a task that is still going; deletes a finished one (it 404s from then on)."""
    state = call.state
    with state.locked() as now:
        job = state.get_job(call.param("task_id"))
        if job is None:
            return _error(404, "Task not found.")
        if job.phase(now) in TERMINAL_PHASES:
            state.delete_job(job.id)
        else:
            state.cancel_job(job.id)
    return empty(204)


async def _organization(call: Call) -> Response:
    with call.state.locked() as now:
        jobs = call.state.jobs(now)
        done = [job for job in jobs if job.phase(now) is Phase.SUCCEEDED]
    spent = sum(int(job.vendor["credits"]) for job in done)
    limit = call.state.knobs.concurrency_limit
    models = sorted(set(IMAGE_TO_VIDEO) | set(TEXT_TO_VIDEO))
    tier_models = {
        model: {
            "maxConcurrentGenerations": limit or 20,
            "maxDailyGenerations": _MAX_DAILY_GENERATIONS,
        }
        for model in models
    }
    usage = {
        model: {"dailyGenerations": sum(1 for j in jobs if j.kind.startswith(model + "/"))}
        for model in models
    }
    return JSONResponse(
        {
            "creditBalance": _CREDIT_BALANCE - spent,
            "tier": {"maxMonthlyCreditSpend": 200000, "models": tier_models},
            "usage": {"models": usage},
        }
    )


def create_app(state: SandboxState) -> Starlette:
    """The Runway sandbox; its base URL is the server root (paths start with ``/v1``)."""
    routes = [
        vendor_route(
            VENDOR,
            state,
            "/v1/image_to_video",
            _creator(IMAGE_TO_VIDEO, True),
            methods=["POST"],
            op="create",
        ),
        vendor_route(
            VENDOR,
            state,
            "/v1/text_to_video",
            _creator(TEXT_TO_VIDEO, False),
            methods=["POST"],
            op="create",
        ),
        vendor_route(VENDOR, state, "/v1/tasks/{task_id}", _get_task, methods=["GET"], op="poll"),
        vendor_route(
            VENDOR, state, "/v1/tasks/{task_id}", _delete_task, methods=["DELETE"], op="cancel"
        ),
        vendor_route(
            VENDOR, state, "/v1/organization", _organization, methods=["GET"], op="health"
        ),
        file_route(VENDOR, state),
        *control_routes(state),
    ]
    return Starlette(routes=routes)
