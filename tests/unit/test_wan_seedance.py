"""Wan (DashScope) and Seedance (Ark): their error shapes, states, codes and prices, as tables."""

from __future__ import annotations

import uuid

import httpx
import pytest
from pydantic import ValidationError

from videogen.backends import seedance, wan
from videogen.errors import (
    AuthError,
    ContentPolicyError,
    GenerationFailedError,
    MalformedResponseError,
    RateLimitedError,
    RejectedInputError,
)
from videogen.models import JobState, JobStatus, Mode, Size
from videogen.sandbox.defaults import SANDBOX_NAMES
from videogen.sandbox_host import sandboxed
from videogen.transport import classify_status, error_detail


def _response(status, body):
    request = httpx.Request("POST", "https://vendor.invalid/api/v1/x")
    return httpx.Response(status, json=body, request=request)


@pytest.mark.parametrize(
    ("response", "message", "code"),
    [
        (
            _response(400, {"request_id": "r", "code": "InvalidParameter", "message": "bad size"}),
            "bad size",
            "InvalidParameter",
        ),
        (
            _response(
                400,
                {
                    "error": {
                        "code": "InputTextSensitiveContentDetected",
                        "message": "The request failed because the input text may contain "
                        "sensitive information.",
                        "param": "",
                        "type": "BadRequest",
                    }
                },
            ),
            "may contain sensitive",
            "InputTextSensitiveContentDetected",
        ),
    ],
)
def test_error_detail_reads_dashscope_and_ark_bodies(response, message, code):
    text, found = error_detail(response)
    assert message in text and found == code


@pytest.mark.parametrize(
    ("status", "code", "expected"),
    [
        (400, "DataInspectionFailed", ContentPolicyError),
        (400, "InputTextSensitiveContentDetected", ContentPolicyError),
        (400, "InputImageSensitiveContentDetected", ContentPolicyError),
        (400, "InvalidParameter", RejectedInputError),
        (401, "InvalidApiKey", AuthError),
        (429, "Throttling.RateQuota", RateLimitedError),
        (429, "RateLimitExceeded.EndpointRPMExceeded", RateLimitedError),
        (429, "QuotaExceeded", AuthError),  # Ark: free quota spent, not a busy endpoint
        (400, "Arrearage", AuthError),  # DashScope: the account is overdue
        (403, "AccessDenied.Unpurchased", AuthError),
        (404, "ModelNotOpen", AuthError),  # Ark: the model is not activated on the account
        (404, "InvalidEndpointOrModel.NotFound", RejectedInputError),
    ],
)
def test_classify_dashscope_and_ark_codes(status, code, expected):
    assert classify_status(status, code) is expected


def _wan(output, **extra):
    return wan.parse_task("wan", {"request_id": "r", "output": output, **extra})


@pytest.mark.parametrize(
    ("status", "state"),
    [
        ("PENDING", JobState.QUEUED),
        ("SUSPENDED", JobState.QUEUED),
        ("RUNNING", JobState.RUNNING),
        ("FAILED", JobState.FAILED),
        ("CANCELED", JobState.CANCELLED),
        ("UNKNOWN", JobState.FAILED),
    ],
)
def test_wan_task_states(status, state):
    assert _wan({"task_id": "t", "task_status": status}).state is state


def test_wan_unknown_says_why_and_succeeded_needs_a_url():
    unknown = _wan({"task_id": "t", "task_status": "UNKNOWN"})
    assert unknown.failure_code == "UNKNOWN" and "24 h" in (unknown.failure_reason or "")
    done = _wan({"task_id": "t", "task_status": "SUCCEEDED", "video_url": "https://o/v.mp4"})
    assert done.output_url == "https://o/v.mp4"
    for body in ({"task_id": "t", "task_status": "SUCCEEDED"}, {"task_status": "DONE"}):
        with pytest.raises(MalformedResponseError):
            _wan(body)
    with pytest.raises(MalformedResponseError):
        wan.parse_task("wan", {"code": "InternalError", "message": "x"})  # no output


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("DataInspectionFailed", ContentPolicyError),
        ("InternalError.Algo", GenerationFailedError),
        ("UNKNOWN", GenerationFailedError),
        (None, GenerationFailedError),
    ],
)
def test_wan_failure_codes(code, expected):
    assert wan.failure_class(code) is expected


@pytest.mark.parametrize(
    ("status", "state"),
    [
        ("queued", JobState.QUEUED),
        ("running", JobState.RUNNING),
        ("failed", JobState.FAILED),
        ("expired", JobState.FAILED),
        ("cancelled", JobState.CANCELLED),
    ],
)
def test_seedance_task_states(status, state):
    assert seedance.parse_task("seedance", {"id": "cgt-1", "status": status}).state is state


def test_seedance_failures_and_success():
    expired = seedance.parse_task("seedance", {"id": "c", "status": "expired", "error": None})
    assert expired.failure_code == "expired"
    failed = seedance.parse_task(
        "seedance",
        {"id": "c", "status": "failed", "error": {"code": "X", "message": "why"}},
    )
    assert (failed.failure_code, failed.failure_reason) == ("X", "why")
    body = {"id": "c", "status": "succeeded", "content": {"video_url": "https://o/v.mp4"}}
    assert seedance.parse_task("seedance", body).output_url == "https://o/v.mp4"
    with pytest.raises(MalformedResponseError):
        seedance.parse_task("seedance", {"id": "c", "status": "succeeded", "content": None})


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("OutputVideoSensitiveContentDetected", ContentPolicyError),
        ("OutputVideoSensitiveContentDetected.PolicyViolation", ContentPolicyError),
        ("OutputAudioSensitiveContentDetected.PolicyViolation", ContentPolicyError),
        ("InternalServiceError", GenerationFailedError),
        ("expired", GenerationFailedError),
        (None, GenerationFailedError),
    ],
)
def test_seedance_failure_codes(code, expected):
    assert seedance.failure_class(code) is expected


def test_a_seedance_seed_from_a_key_is_stable_and_in_range():
    key = str(uuid.uuid4())
    assert seedance.seed_for(key) == seedance.seed_for(key)
    assert 0 <= seedance.seed_for(key) <= seedance.MAX_SEED


def _caps(name, **settings):
    cls = {"wan": wan.WanBackend, "seedance": seedance.SeedanceBackend}[name]
    backend = cls(cls.settings_model(api_key="k" * 24, **settings))
    try:
        return backend.get_capabilities()
    finally:
        backend.close()


@pytest.mark.parametrize(
    ("name", "settings", "mode", "seconds", "size", "usd"),
    [
        ("wan", {}, Mode.TEXT_TO_VIDEO, 5.0, Size(1280, 720), 0.50),
        ("wan", {}, Mode.TEXT_TO_VIDEO, 10.0, Size(1080, 1920), 1.50),
        ("wan", {}, Mode.IMAGE_TO_VIDEO, 4.0, Size(960, 960), 0.40),
        ("wan", {"text_model": "wan3.0-video", "resolutions": ("480P",)},
         Mode.TEXT_TO_VIDEO, 5.0, Size(832, 480), 0.25),
        # 1248 x 704 x 24 fps x 5 s / 1024 = 102,960 tokens at $1.20 per million
        ("seedance", {}, Mode.TEXT_TO_VIDEO, 5.0, Size(1248, 704), 0.1236),
        ("seedance", {"generate_audio": True}, Mode.TEXT_TO_VIDEO, 5.0, Size(1248, 704), 0.2471),
        ("seedance", {"model": "dreamina-seedance-2-0-260128"},
         Mode.IMAGE_TO_VIDEO, 5.0, Size(1248, 704), 0.7207),
    ],
)  # fmt: skip
def test_published_prices(name, settings, mode, seconds, size, usd):
    spec = _caps(name, **settings).spec(mode)
    assert size in spec.sizes
    assert spec.cost(seconds, size) == pytest.approx(usd, abs=0.0002)


def test_wan_modes_follow_the_models():
    caps = _caps("wan", text_model=None, image_model="wan3.0-video")
    assert caps.text is None and caps.image is not None and caps.image.model == "wan3.0-video"
    assert _caps("wan", text_model="wan2.7-i2v").text is None  # an i2v model takes no text-only
    with pytest.raises(ValidationError):
        wan.WanSettings(resolutions=("720p",))  # DashScope spells it 720P
    with pytest.raises(ValidationError):
        seedance.SeedanceSettings(resolutions=("720P",))  # Ark spells it 720p


def test_billing_figures_are_read_from_successful_tasks_only():
    usage = {"video_count": 1, "duration": 10.0, "SR": 1080, "ratio": "16:9"}
    done = _wan({"task_id": "t", "task_status": "SUCCEEDED", "video_url": "u"}, usage=usage)
    assert done.usage == {"seconds": 10.0, "resolution": 1080.0}
    older = _wan(
        {"task_id": "t", "task_status": "SUCCEEDED", "video_url": "u"},
        usage={"video_duration": 5, "SR": 720},
    )
    assert older.usage == {"seconds": 5.0, "resolution": 720.0}
    assert _wan({"task_id": "t", "task_status": "FAILED"}, usage=usage).usage == {}
    body = {"id": "c", "status": "succeeded", "content": {"video_url": "u"}}
    ark = seedance.parse_task("seedance", {**body, "usage": {"completion_tokens": 48600}})
    assert ark.usage == {"completion_tokens": 48600.0}
    failed = {"id": "c", "status": "failed", "usage": {"completion_tokens": 9}}
    assert seedance.parse_task("seedance", failed).usage == {}


@pytest.mark.parametrize(
    ("settings", "usage", "usd"),
    [
        ({}, {"seconds": 10.0, "resolution": 1080.0}, 1.50),
        ({"image_model": "wan3.0-video"}, {"seconds": 10.0, "resolution": 720.0}, 1.00),
        ({"image_model": "wan3.0-video"}, {"seconds": 10.0, "resolution": 1080.0}, None),
        ({}, {"seconds": 10.0}, None),
    ],
)
def test_wan_settles_billed_seconds_where_the_rate_is_certain(settings, usage, usd):
    backend = wan.WanBackend(wan.WanSettings(api_key="k" * 24, **settings))
    status = JobStatus(state=JobState.SUCCEEDED, vendor_state="SUCCEEDED", usage=usage)
    assert backend.billed_usd(status) == (None if usd is None else pytest.approx(usd))
    backend.close()


@pytest.mark.parametrize(("name", "path"), [("wan", "/api/v1"), ("seedance", "/api/v3")])
def test_compose_points_keyless_backends_at_their_sandbox(name, path):
    cls = {"wan": wan.WanSettings, "seedance": seedance.SeedanceSettings}[name]
    settings = sandboxed(name, cls(), {"VIDEOGEN_SANDBOX_HOST": "sandbox"})
    port = 9100 + SANDBOX_NAMES.index(name)  # `videogen sandbox --port-base 9100`
    assert settings.base_url == f"http://sandbox:{port}{path}" and settings.api_key is not None
