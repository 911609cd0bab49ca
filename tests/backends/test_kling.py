"""The Kling client against its sandbox: signed tokens, codes over statuses, the lookup by our
own id, the units a task was charged."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path

import pytest

from tests.helpers import png_bytes
from videogen.backends.kling import jwt_token
from videogen.errors import (
    Action,
    AmbiguousSubmitError,
    AuthError,
    ConfigError,
    RateLimitedError,
    RejectedInputError,
)
from videogen.models import JobState, Mode, Scene, VendorJob
from videogen.sandbox import DEFAULT_KEYS

pytestmark = pytest.mark.parametrize("backend_name", ["kling"])


def _creates(sandbox):
    return [r for r in sandbox.state.records()["requests"] if r["op"] == "create"]


def _claims(token: str) -> dict:
    part = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def test_the_token_is_signed_from_the_key_and_lives_half_an_hour(backend_name, sandbox):
    access, secret = (DEFAULT_KEYS["kling"] or "").split(":")
    now = time.time()
    token = jwt_token(access, secret, now)
    claims = _claims(token)
    assert claims == {"iss": access, "exp": int(now) + 1800, "nbf": int(now) - 5}
    assert secret not in token and "." in token
    assert jwt_token(access, "another secret", now) != token  # the signature is the secret's


def test_a_key_without_its_two_parts_is_refused_before_any_request(
    backend_name, sandbox, make_backend
):
    report = make_backend(api_key="only-an-access-key").health_check()
    assert not report.healthy and "ACCESS_KEY:SECRET_KEY" in report.detail
    assert "only-an-access-key" not in report.detail
    assert sandbox.state.records()["requests"] == []


def test_the_create_body(backend_name, sandbox, make_backend, tmp_path):
    backend = make_backend(modes=("pro", "std"))
    scene = Scene(prompt="a boat", negative_prompt="blur", aspect_ratio="9:16", duration=9)
    request = backend.prepare(scene)
    backend.submit(request, key="scene-7-key")
    [create] = _creates(sandbox)
    assert create["path"] == "/v1/videos/text2video"
    assert create["body"] == {
        "model_name": "kling-v2-5-turbo",
        "mode": "pro",
        "duration": "10",
        "prompt": "a boat",
        "negative_prompt": "blur",
        "external_task_id": "scene-7-key",
        "aspect_ratio": "9:16",
    }
    assert request.estimated_cost_usd == pytest.approx(0.70)  # $0.07 a second in pro


def test_a_first_frame_file_goes_as_plain_base64_and_a_url_as_is(
    backend_name, sandbox, make_backend, images, tmp_path
):
    backend = make_backend()
    backend.submit(backend.prepare(Scene(prompt="turn", image=images["file"])))
    https = "https://cdn.example.com/frame.png"
    backend.submit(backend.prepare(Scene(prompt="turn", image=https)))
    first, second = (c["body"] for c in _creates(sandbox))
    assert first["image"].startswith("iVBORw0KGgo")  # a PNG in plain base64, no data: prefix
    assert "aspect_ratio" not in first  # the image sets the frame
    assert second["image"] == https
    webp = tmp_path / "frame.webp"
    webp.write_bytes(b"RIFF\x00\x00\x00\x00WEBPVP8 " + png_bytes())
    with pytest.raises(RejectedInputError, match="PNG or JPEG"):
        backend.submit(backend.prepare(Scene(prompt="turn", image=str(webp))))
    assert len(_creates(sandbox)) == 2


@pytest.mark.parametrize(
    ("code", "expected", "action"),
    [
        ("1102", AuthError, Action.FAILOVER),  # the resource pack is used up: a bill
        ("1101", AuthError, Action.FAILOVER),  # arrears
        ("1303", RateLimitedError, Action.RETRY_SAME),  # too many tasks at once
        ("1302", RateLimitedError, Action.RETRY_SAME),  # too many requests
    ],
)
def test_a_429_is_told_by_its_code(backend_name, sandbox, make_backend, code, expected, action):
    fault = {"status": 429, "count": 1, "on": "create", "code": code, "retry_after": 2}
    sandbox.state.set_knobs(http_faults=[fault])
    backend = make_backend()
    with pytest.raises(expected) as caught:
        backend.submit(backend.prepare(Scene(prompt="busy or broke?")))
    assert type(caught.value) is expected and caught.value.action is action
    assert caught.value.status_code == 429 and caught.value.vendor_code == code
    assert f"code {code}" in str(caught.value)
    assert sandbox.state.records()["jobs"] == []


def test_over_the_packs_concurrency_a_create_is_a_rate_limit(backend_name, sandbox, make_backend):
    sandbox.state.set_knobs(concurrency_limit=1, never_finish=True)
    backend = make_backend()
    backend.submit(backend.prepare(Scene(prompt="first")))
    with pytest.raises(RateLimitedError, match="parallel task") as caught:
        backend.submit(backend.prepare(Scene(prompt="second")))
    assert caught.value.vendor_code == "1303"


def test_a_finished_task_is_settled_at_the_units_it_was_charged(
    backend_name, sandbox, make_backend, tmp_path
):
    backend = make_backend(usd_per_unit=0.2)
    result = backend.generate_video(Scene(prompt="ten seconds", duration=10), tmp_path / "a.mp4")
    status = backend.poll(result.job)
    assert status.billed_units == 3.0  # kling-v2-5-turbo std: 0.3 units a second
    assert backend.billed_usd(status) == pytest.approx(0.6)
    assert result.request.estimated_cost_usd == pytest.approx(0.42)  # the published price


def test_a_lost_image_create_is_found_on_its_route(backend_name, sandbox, make_backend, images):
    sandbox.state.set_knobs(create_delay=1.0)
    backend = make_backend(request_timeout=0.3)
    request = backend.prepare(Scene(prompt="found again", image=images["url"]))
    assert request.mode is Mode.IMAGE_TO_VIDEO
    key = backend.new_key()
    with pytest.raises(AmbiguousSubmitError):
        backend.submit(request, key=key)
    job = backend.find_submitted(request, key, time.time())
    assert job is not None and job.urls == {"route": "image2video"}
    [made] = sandbox.state.records()["jobs"]
    assert job.job_id == made["id"]
    lookups = [r for r in sandbox.state.records()["requests"] if r["op"] == "poll"]
    assert lookups[-1]["path"] == "/v1/videos/image2video"
    assert lookups[-1]["query"] == {"external_task_id": key}


def test_a_bare_task_id_is_looked_for_on_both_routes(
    backend_name, sandbox, make_backend, images: dict[str, str]
):
    backend = make_backend()
    job = backend.submit(backend.prepare(Scene(prompt="animate", image=images["url"])))
    status = backend.wait(VendorJob(backend="kling", job_id=job.job_id), timeout=5)
    assert status.state is JobState.SUCCEEDED and status.output_url


def test_a_wrong_secret_is_refused_and_never_shown(
    backend_name, sandbox, make_backend, tmp_path: Path
):
    access = (DEFAULT_KEYS["kling"] or "").split(":")[0]
    wrong = f"{access}:not-the-secret-0123456789"
    with pytest.raises(AuthError, match="code 1002") as caught:
        make_backend(api_key=wrong).submit(make_backend().prepare(Scene(prompt="x")))
    assert "not-the-secret" not in str(caught.value)
    with pytest.raises(ConfigError):
        make_backend(api_key="no-colon").submit(make_backend().prepare(Scene(prompt="x")))


def test_a_second_create_with_our_key_is_refused_as_taken(backend_name, sandbox, make_backend):
    backend = make_backend()
    request = backend.prepare(Scene(prompt="sent twice"))
    first = backend.submit(request, key="the-one-key")
    with pytest.raises(RejectedInputError, match="exists") as caught:
        backend.submit(request, key="the-one-key")  # the resubmit after a lost answer
    assert caught.value.status_code == 409  # the pipeline resumes the task it names
    sandbox.state.set_knobs(http_faults=[{"status": 400, "on": "create"}])
    with pytest.raises(RejectedInputError) as refused:
        backend.submit(request, key="a-new-key")  # refused for another reason: no task has it
    assert refused.value.status_code == 400
    assert [j["id"] for j in sandbox.state.records()["jobs"]] == [first.job_id]
