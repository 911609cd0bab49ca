"""What only the generic Replicate backend does: any model, its own input names, an output
that is deleted after an hour."""

from __future__ import annotations

import pytest

from videogen.errors import GenerationFailedError, RejectedInputError
from videogen.models import JobState, Scene, Size
from videogen.sandbox import replicate as sandbox_replicate

pytestmark = pytest.mark.parametrize("backend_name", ["replicate"])

HAILUO = {
    "model": "minimax/hailuo-02",
    "inputs": {
        "prompt": "prompt", "image": "first_frame_image", "duration": "duration",
        "resolution": "resolution", "aspect_ratio": None, "seed": None, "negative_prompt": None,
    },
    "extra_input": {"prompt_optimizer": False},
    "durations": (6.0, 10.0),
    "aspect_ratios": ("16:9",),
    "resolutions": ("768p", "1080p"),
    "usd_per_second": 0.075,
}  # fmt: skip


def _creates(sandbox):
    return [r for r in sandbox.state.records()["requests"] if r["op"] == "create"]


def test_another_model_gets_its_own_input_names(
    backend_name, sandbox, make_backend, images, tmp_path
):
    backend = make_backend(**HAILUO)
    scene = Scene(prompt="a heron", image=images["url"], duration=7, seed=3, negative_prompt="x")
    result = backend.generate_video(scene, tmp_path / "h.mp4")
    assert (result.request.duration, result.request.size) == (6.0, Size(1366, 768))
    assert result.request.seed is None and result.request.negative_prompt is None
    assert result.request.estimated_cost_usd == pytest.approx(0.45)
    [create] = _creates(sandbox)
    assert create["path"] == "/v1/models/minimax/hailuo-02/predictions"
    assert create["body"] == {
        "input": {"prompt_optimizer": False, "prompt": "a heron", "duration": 6,
                  "resolution": "768p", "first_frame_image": images["url"]},
    }  # fmt: skip


def test_a_text_only_mapping_refuses_image_scenes(backend_name, sandbox, make_backend, images):
    inputs = {**HAILUO["inputs"], "image": None}
    caps = make_backend(**{**HAILUO, "inputs": inputs}).get_capabilities()
    assert caps.text_to_video and not caps.image_to_video


@pytest.mark.parametrize(
    ("target", "path"),
    [
        ({"model": None, "deployment": "videogen/veo"}, "/v1/deployments/videogen/veo/predictions"),
        ({"model": None, "version": next(iter(sandbox_replicate.VERSIONS))}, "/v1/predictions"),
    ],
)  # fmt: skip
def test_deployments_and_versions(backend_name, sandbox, make_backend, tmp_path, target, path):
    backend = make_backend(**target)
    backend.generate_video(Scene(prompt="by another door"), tmp_path / "d.mp4")
    [create] = _creates(sandbox)
    assert create["path"] == path
    assert ("version" in create["body"]) is (path == "/v1/predictions")


def test_one_target_only(backend_name):
    from videogen.backends.replicate import ReplicateSettings

    with pytest.raises(ValueError, match="exactly one of model, version, deployment"):
        ReplicateSettings(model="a/b", deployment="c/d")
    with pytest.raises(ValueError, match="not 'owner/name'"):
        ReplicateSettings(model="no-slash")


def test_an_unknown_input_is_refused_by_the_model(backend_name, sandbox, make_backend):
    backend = make_backend(extra_input={"fps": 24})
    with pytest.raises(RejectedInputError, match="Additional property fps") as caught:
        backend.submit(backend.prepare(Scene(prompt="x")))
    assert caught.value.status_code == 422
    assert sandbox.state.records()["jobs"] == []


def test_an_output_older_than_the_hour_is_gone(
    backend_name, sandbox, make_backend, tmp_path, monkeypatch
):
    monkeypatch.setattr(sandbox_replicate, "OUTPUT_RETENTION_SECONDS", 0.0)
    backend = make_backend()
    job = backend.submit(backend.prepare(Scene(prompt="too late")))
    status = backend.wait(job, timeout=10)
    assert status.state is JobState.FAILED and "one hour" in (status.failure_reason or "")
    with pytest.raises(GenerationFailedError, match="deleted"):
        backend.finish(job, status, tmp_path / "late.mp4")
