"""What only Veo does: a retired model is final for the backend, the video comes inline."""

from __future__ import annotations

import pytest

from videogen.backends import veo
from videogen.errors import Action, ModelUnavailableError, RejectedInputError
from videogen.models import Scene
from videogen.policy import after_error
from videogen.states import Event

pytestmark = pytest.mark.parametrize("backend_name", ["veo"])


@pytest.fixture
def retired(monkeypatch: pytest.MonkeyPatch) -> str:
    """A videogen whose model table still lists a model Google has retired."""
    model = "veo-3.0-generate-001"
    monkeypatch.setitem(veo.MODELS, model, {"720p": 0.40})
    return model


def test_a_retired_model_is_final_and_says_why(backend_name, sandbox, make_backend, retired):
    backend = make_backend(model=retired)
    with pytest.raises(ModelUnavailableError) as caught:
        backend.submit(backend.prepare(Scene(prompt="an old model")))
    error = caught.value
    assert error.status_code == 404 and not error.retryable
    assert error.action is Action.FAILOVER
    assert "no longer available" in str(error) and "set backends.veo.model" in str(error)
    assert sandbox.state.records()["jobs"] == []
    step = after_error(error.action, str(error), retries_here=0, fallback_enabled=True)
    assert step.event is Event.REROUTE and "no longer available" in step.reason
    alone = after_error(error.action, str(error), retries_here=0, fallback_enabled=False)
    assert alone.event is Event.FAIL  # never a retry on the same backend
    report = backend.health_check()  # the probe says so too, so routing stays away
    assert not report.healthy and "no longer available" in report.detail


def test_the_create_is_vertex_shaped(backend_name, sandbox, make_backend, images, tmp_path):
    backend = make_backend()
    scene = Scene(prompt="a kite", image=images["file"], seed=5, negative_prompt="blur")
    backend.generate_video(scene, tmp_path / "k.mp4")
    [create] = [r for r in sandbox.state.records()["requests"] if r["op"] == "create"]
    model = "/v1beta1/publishers/google/models/veo-3.1-fast-generate-001"
    assert create["path"] == model + ":predictLongRunning"  # express mode: no project in it
    [instance] = create["body"]["instances"]
    assert instance["prompt"] == "a kite" and instance["image"]["mimeType"] == "image/png"
    assert create["body"]["parameters"] == {
        "aspectRatio": "16:9", "resolution": "720p", "durationSeconds": 6, "sampleCount": 1,
        "generateAudio": False, "personGeneration": "allow_adult", "seed": 5,
        "negativePrompt": "blur",
    }  # fmt: skip
    polls = [r for r in sandbox.state.records()["requests"] if r["op"] == "poll"]
    assert polls and all(r["path"].endswith(":fetchPredictOperation") for r in polls)
    assert {r["body"]["operationName"] for r in polls} == {
        j["id"] for j in sandbox.state.records()["jobs"]
    }  # polled by the operation's name
    assert not [r for r in sandbox.state.records()["requests"] if r["op"] == "download"]


def test_the_last_poll_carries_the_video_so_it_is_not_fetched_twice(
    backend_name, sandbox, make_backend, tmp_path
):
    backend = make_backend()
    job = backend.submit(backend.prepare(Scene(prompt="once")))
    status = backend.wait(job, timeout=10)
    polls = len(sandbox.state.records()["requests"])
    backend.finish(job, status, tmp_path / "o.mp4")
    assert len(sandbox.state.records()["requests"]) == polls
    again = make_backend()  # a fresh worker (the sweeper) fetches the operation once more
    info = again.finish(job, status, tmp_path / "p.mp4")
    assert info.frames > 0 and len(sandbox.state.records()["requests"]) == polls + 1


def test_a_1080p_clip_is_refused_unless_it_is_8_seconds(backend_name, sandbox, make_backend):
    backend = make_backend(resolutions=("1080p",), durations=(4.0,))
    with pytest.raises(RejectedInputError, match="1080p needs 8 seconds"):
        backend.submit(backend.prepare(Scene(prompt="big and short")))
