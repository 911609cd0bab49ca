"""The MiniMax client against its sandbox: errors inside a 200, V1's file retrieval, V2 picked
by the model's name."""

from __future__ import annotations

import pytest

from videogen.backends import create_backend
from videogen.errors import (
    Action,
    AuthError,
    ConfigError,
    ContentPolicyError,
    RateLimitedError,
    RejectedInputError,
)
from videogen.loading import build_settings
from videogen.models import JobState, Scene, Size, VendorJob

pytestmark = pytest.mark.parametrize("backend_name", ["minimax"])
H3 = {"text_model": "MiniMax-H3", "image_model": "MiniMax-H3"}


def _vendor(sandbox):
    return [r for r in sandbox.state.records()["requests"] if "__sandbox__" not in r["path"]]


def test_v1_asks_for_the_file_of_a_finished_task(backend_name, sandbox, make_backend, tmp_path):
    backend = make_backend()
    result = backend.generate_video(Scene(prompt="rain on a window"), tmp_path / "a.mp4")
    assert result.job.urls == {"api": "v1"} and result.request.duration == 6
    paths = [r["path"] for r in _vendor(sandbox)]
    assert paths[0] == "/v1/video_generation" and "/v1/files/retrieve" in paths
    [create] = [r for r in _vendor(sandbox) if r["op"] == "create"]
    assert create["body"] == {
        "model": "MiniMax-Hailuo-2.3",
        "duration": 6,
        "resolution": "768P",
        "prompt_optimizer": True,
        "prompt": "rain on a window",
    }
    retrieve = [r for r in _vendor(sandbox) if r["path"] == "/v1/files/retrieve"][-1]
    assert retrieve["query"]["file_id"].isdigit()


def test_a_ten_second_v1_clip_is_made_at_768p(backend_name, sandbox, make_backend):
    backend = make_backend()
    request = backend.prepare(Scene(prompt="long", duration=10, resolution="1920x1080"))
    assert (request.duration, request.size) == (10.0, Size(1366, 768))
    assert request.estimated_cost_usd == pytest.approx(0.5)  # 768P's price, not 1080P's
    short = backend.prepare(Scene(prompt="short", duration=6, resolution="1920x1080"))
    assert short.size == Size(1920, 1080) and short.estimated_cost_usd == pytest.approx(0.48)
    assert backend.submit(request).job_id  # the sandbox refuses 10 s at 1080P


def test_a_first_frame_file_goes_as_a_data_uri(backend_name, sandbox, make_backend, images):
    backend = make_backend(image_model="MiniMax-Hailuo-2.3-Fast", text_model=None)
    backend.submit(backend.prepare(Scene(prompt="", image=images["file"])))
    [create] = [r for r in _vendor(sandbox) if r["op"] == "create"]
    assert create["body"]["first_frame_image"].startswith("data:image/png;base64,")
    assert "prompt" not in create["body"]
    with pytest.raises(Exception, match="text-only scenes are not supported"):
        backend.prepare(Scene(prompt="no frame"))


def test_v2_is_picked_by_the_models_name(backend_name, sandbox, make_backend, tmp_path):
    backend = make_backend(**H3)
    result = backend.generate_video(
        Scene(prompt="a tall tower", aspect_ratio="9:16", duration=8), tmp_path / "b.mp4"
    )
    assert result.job.urls == {"api": "v2"} and result.video.height > result.video.width
    [create] = [r for r in _vendor(sandbox) if r["op"] == "create"]
    assert create["path"] == "/v2/video_generation"
    assert create["body"] == {
        "model": "MiniMax-H3",
        "duration": 8,
        "resolution": "768P",
        "ratio": "9:16",
        "content": [{"type": "text", "text": "a tall tower"}],
    }
    assert not any("/v1/" in r["path"] for r in _vendor(sandbox))


def test_v2_sends_the_first_frame_in_the_content(backend_name, sandbox, make_backend, images):
    backend = make_backend(**H3)
    backend.submit(backend.prepare(Scene(prompt="turn", image=images["url"])))
    [create] = [r for r in _vendor(sandbox) if r["op"] == "create"]
    frame = create["body"]["content"][1]
    assert frame["role"] == "first_frame" and frame["image_url"]["url"].startswith("data:")
    assert "ratio" not in create["body"]


def test_v2_cancels_and_v1_cannot(backend_name, sandbox, make_backend):
    sandbox.state.set_knobs(never_finish=True)
    v2 = make_backend(**H3)
    job = v2.submit(v2.prepare(Scene(prompt="stop me")))
    assert v2.cancel_quietly(job)
    assert v2.poll(job).state is JobState.CANCELLED
    v2.cancel(job)  # cancelling twice is harmless (the second deletes it)
    assert v2.poll(job).state is JobState.CANCELLED  # "record not found": gone
    v1 = make_backend()
    assert not v1.cancellable(v1.submit(v1.prepare(Scene(prompt="unstoppable"))))


def test_a_bare_task_id_is_polled_on_the_configured_api(backend_name, sandbox, make_backend):
    backend = make_backend(**H3)
    job = backend.submit(backend.prepare(Scene(prompt="bare")))
    status = backend.wait(VendorJob(backend="minimax", job_id=job.job_id), timeout=5)
    assert status.state is JobState.SUCCEEDED and status.output_url


@pytest.mark.parametrize(
    ("code", "expected", "action"),
    [
        ("1008", AuthError, Action.FAILOVER),  # insufficient balance: a bill
        ("2056", AuthError, Action.FAILOVER),  # the plan's quota is used up
        ("1002", RateLimitedError, Action.RETRY_SAME),
        ("1041", RateLimitedError, Action.RETRY_SAME),
        ("1026", ContentPolicyError, Action.FAIL_SCENE),
        ("2013", RejectedInputError, Action.FAILOVER),
    ],
)
def test_an_error_inside_a_200_is_told_by_its_code(
    backend_name, sandbox, make_backend, code, expected, action
):
    fault = {"status": 429, "count": 1, "on": "create", "code": code, "retry_after": 4}
    sandbox.state.set_knobs(http_faults=[fault])
    backend = make_backend()
    with pytest.raises(expected) as caught:
        backend.submit(backend.prepare(Scene(prompt="refused")))
    error = caught.value
    assert type(error) is expected and error.action is action
    assert (error.status_code, error.vendor_code, error.retry_after) == (None, code, 4.0)
    assert sandbox.state.records()["jobs"] == []


def test_the_key_comes_from_minimax_api_key(backend_name, sandbox):
    raw = {"video_generation": {"backends": {"minimax": {"base_url": sandbox.base_url}}}}
    key = "sk-api-" + "e" * 40
    cfg = build_settings(raw, env={"MINIMAX_API_KEY": key}).backend("minimax")
    assert cfg.key_source == "env:MINIMAX_API_KEY"
    with create_backend("minimax", cfg) as backend:
        assert not backend.health_check().healthy  # the sandbox expects its own key
    with pytest.raises(ConfigError, match="image_model 'T2V-01'"):
        build_settings({"video_generation": {"backends": {"minimax": {"image_model": "T2V-01"}}}})
