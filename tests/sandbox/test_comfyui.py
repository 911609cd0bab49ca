"""The ComfyUI (SVD) sandbox's own contract: uploads, graph validation, queue, history, /view."""

from __future__ import annotations

import io
import uuid
from collections.abc import Callable
from typing import Any

import av
import pytest

from tests.helpers import png_bytes
from tests.sandbox.drivers import ComfyDriver, svd_graph


def _queue(svd: ComfyDriver, graph: dict[str, Any], **extra: Any) -> str:
    response = svd.http.post("/prompt", json={"prompt": graph, **extra})
    assert response.status_code == 200, response.text
    return str(response.json()["prompt_id"])


def _history(svd: ComfyDriver, prompt_id: str) -> dict[str, Any]:
    svd.watch(prompt_id)
    entry: dict[str, Any] = svd.poll(prompt_id).json()[prompt_id]
    return entry


# -- uploads ---------------------------------------------------------------------------------------
def test_upload_names_like_comfyui(svd: ComfyDriver) -> None:
    first = svd.upload("frame.png")
    assert first.json() == {"name": "frame.png", "subfolder": "", "type": "input"}
    assert svd.upload("frame.png").json()["name"] == "frame (1).png"
    files = {"image": ("frame.png", png_bytes(8, 8), "image/png")}
    overwritten = svd.http.post("/upload/image", files=files, data={"overwrite": "true"})
    assert overwritten.json()["name"] == "frame.png"
    assert svd.http.get("/view", params={"filename": "frame.png", "type": "input"}).content == (
        png_bytes(8, 8)
    )


@pytest.mark.parametrize(
    "data", [b"\xff\xd8\xff\xe0" + b"\0" * 16, b"RIFF\x10\0\0\0WEBPVP8 " + b"\0" * 8]
)
def test_jpeg_and_webp_uploads(svd: ComfyDriver, data: bytes) -> None:
    assert svd.upload("frame.img", data).status_code == 200


@pytest.mark.parametrize(
    ("files", "data"),
    [
        ({"image": ("page.png", b"<html>nope</html>", "image/png")}, {}),
        ({"image": ("frame.png", png_bytes(), "image/png")}, {"subfolder": "../../etc"}),
        ({"other": ("frame.png", png_bytes(), "image/png")}, {}),
    ],
)
def test_bad_uploads_are_refused(svd: ComfyDriver, files, data) -> None:
    assert svd.http.post("/upload/image", files=files, data=data).status_code == 400


def test_uploads_are_recorded_without_their_bytes(svd: ComfyDriver) -> None:
    svd.upload("frame.png")
    [request] = svd.state.records()["requests"]
    assert request["body"]["image"] == {"filename": "frame.png", "size": len(png_bytes())}


# -- a prompt's life -------------------------------------------------------------------------------
def test_image_to_video_with_save_video(svd: ComfyDriver) -> None:
    svd.upload("frame.png")
    submitted = svd.http.post(
        "/prompt",
        json={"prompt": svd_graph(image="frame.png", frames=14, fps=7), "client_id": "c1"},
    )
    body = submitted.json()
    assert body == {"prompt_id": body["prompt_id"], "number": body["number"], "node_errors": {}}
    prompt_id = body["prompt_id"]
    assert svd.poll(prompt_id).json() == {}  # nothing in history before it finishes
    entry = _history(svd, prompt_id)
    [saved] = entry["outputs"]["8"]["images"]
    assert saved == {
        "filename": f"svd_{body['number']:05}_.mp4",
        "subfolder": "video",
        "type": "output",
    }
    assert entry["outputs"]["8"]["animated"] == [True]
    assert entry["status"]["status_str"] == "success" and entry["status"]["completed"]
    assert [m[0] for m in entry["status"]["messages"]] == ["execution_start", "execution_success"]
    assert entry["prompt"][:2] == [body["number"], prompt_id] and entry["prompt"][4] == ["8"]
    assert entry["prompt"][3]["client_id"] == "c1"
    view = svd.http.get("/view", params=saved)
    assert view.headers["content-type"] == "video/mp4"
    with av.open(io.BytesIO(view.content), mode="r") as container:
        # 14 frames at 7 fps
        assert (container.duration or 0) / 1_000_000 == pytest.approx(2.0, abs=0.1)


def test_vhs_video_combine_output_is_under_gifs(svd: ComfyDriver) -> None:
    entry = _history(svd, _queue(svd, svd_graph(prompt="a fox", save="VHS_VideoCombine", fps=8)))
    [saved] = entry["outputs"]["8"]["gifs"]
    assert saved["format"] == "video/h264-mp4" and saved["frame_rate"] == 8
    assert saved["filename"].endswith(".mp4") and saved["subfolder"] == ""
    assert svd.http.get("/view", params={"filename": saved["filename"]}).status_code == 200


def test_animated_webp_output(svd: ComfyDriver) -> None:
    entry = _history(svd, _queue(svd, svd_graph(prompt="a fox", save="SaveAnimatedWEBP")))
    [saved] = entry["outputs"]["8"]["images"]
    view = svd.http.get("/view", params=saved)
    assert view.headers["content-type"] == "image/webp" and view.content[8:12] == b"WEBP"


def test_records_read_the_graph(svd: ComfyDriver) -> None:
    _queue(svd, svd_graph(prompt="scene-7 a fox at dusk", seed=1234, frames=25, fps=6))
    [job] = svd.state.jobs_with_prompt("scene-7")
    assert job["prompt"] == "scene-7 a fox at dusk"  # the positive text, not the negative
    assert job["params"]["seed"] == 1234  # the SVD sampler's seed, not the image sampler's
    assert job["params"]["checkpoint"] == "svd_xt_1_1.safetensors"
    assert (job["duration_s"], job["width"], job["height"]) == (25 / 6, 1024, 576)


def test_routes_also_answer_under_api(svd: ComfyDriver) -> None:
    response = svd.http.post("/api/prompt", json={"prompt": svd_graph(prompt="x")})
    assert response.status_code == 200
    assert svd.http.get("/api/queue").json()["queue_pending"][0][1] == response.json()["prompt_id"]
    assert svd.http.get("/api/system_stats").status_code == 200


def test_failure_is_an_execution_error(svd: ComfyDriver) -> None:
    svd.state.set_knobs(fail_next_jobs=1, failure_message="CUDA out of memory")
    entry = _history(svd, _queue(svd, svd_graph(prompt="x")))
    assert entry["status"]["status_str"] == "error" and not entry["status"]["completed"]
    assert entry["outputs"] == {}
    name, error = entry["status"]["messages"][-1]
    assert name == "execution_error" and error["exception_message"] == "CUDA out of memory"
    assert error["node_type"] == "KSampler"


# -- validation ------------------------------------------------------------------------------------
def _broken(change: Callable[[dict[str, Any]], object]) -> dict[str, Any]:
    graph = svd_graph(image="frame.png")
    change(graph)
    return graph


@pytest.mark.parametrize(
    ("body", "error_type", "node", "node_error"),
    [
        ({"client_id": "x"}, "no_prompt", None, None),
        (
            {"prompt": _broken(lambda g: g["4"].update(class_type="NoSuchNode"))},
            "invalid_prompt",
            None,
            None,
        ),
        ({"prompt": _broken(lambda g: g["4"].pop("class_type"))}, "invalid_prompt", None, None),
        ({"prompt": _broken(lambda g: g.pop("8"))}, "prompt_no_outputs", None, None),
        (
            {"prompt": _broken(lambda g: None)},  # frame.png was never uploaded
            "prompt_outputs_failed_validation",
            "2",
            "custom_validation_failed",
        ),
        (
            {"prompt": _broken(lambda g: g["1"]["inputs"].update(ckpt_name="svd_v9.safetensors"))},
            "prompt_outputs_failed_validation",
            "1",
            "value_not_in_list",
        ),
        (
            {"prompt": _broken(lambda g: g["3"]["inputs"].update(width=8))},
            "prompt_outputs_failed_validation",
            "3",
            "value_smaller_than_min",
        ),
        (
            {"prompt": _broken(lambda g: g["3"]["inputs"].update(fps="six"))},
            "prompt_outputs_failed_validation",
            "3",
            "invalid_input_type",
        ),
        (
            {"prompt": _broken(lambda g: g["5"]["inputs"].pop("seed"))},
            "prompt_outputs_failed_validation",
            "5",
            "required_input_missing",
        ),
        (
            {"prompt": _broken(lambda g: g["6"]["inputs"].update(samples=["99", 0]))},
            "prompt_outputs_failed_validation",
            "6",
            "bad_linked_input",
        ),
        (
            {"prompt": _broken(lambda g: g["8"]["inputs"].update(format="mkv"))},
            "prompt_outputs_failed_validation",
            "8",
            "value_not_in_list",
        ),
    ],
)
def test_invalid_graphs_are_refused_like_comfyui(
    svd: ComfyDriver, body, error_type, node, node_error
) -> None:
    refused = svd.http.post("/prompt", json=body)
    assert refused.status_code == 400
    answer = refused.json()
    assert answer["error"]["type"] == error_type and answer["error"]["message"]
    if node is None:
        assert answer["node_errors"] == {}
    else:
        errors = answer["node_errors"][node]
        assert [e["type"] for e in errors["errors"]] == [node_error]
        assert errors["dependent_outputs"] == ["8"] and errors["class_type"]
    assert svd.state.records()["jobs"] == []


def test_a_missing_image_says_invalid_image_file(svd: ComfyDriver) -> None:
    refused = svd.http.post("/prompt", json={"prompt": svd_graph(image="missing.png")}).json()
    [error] = refused["node_errors"]["2"]["errors"]
    assert "Invalid image file: missing.png" in error["details"]


def test_client_chosen_prompt_ids(svd: ComfyDriver) -> None:
    chosen = str(uuid.uuid4())
    assert _queue(svd, svd_graph(prompt="x"), prompt_id=chosen) == chosen
    again = svd.http.post("/prompt", json={"prompt": svd_graph(prompt="x"), "prompt_id": chosen})
    assert (again.status_code, again.json()) == (409, {"error": "prompt_id already exists"})
    bad = svd.http.post("/prompt", json={"prompt": svd_graph(prompt="x"), "prompt_id": "ABC"})
    assert bad.status_code == 400 and bad.json()["error"]["type"] == "invalid_prompt_id"
    assert len(svd.state.records()["jobs"]) == 1


# -- queue, cancel ---------------------------------------------------------------------------------
def test_one_prompt_runs_at_a_time_by_default(svd: ComfyDriver) -> None:
    svd.state.reset()  # the vendor defaults: concurrency 1
    svd.state.set_knobs(queue_seconds=0.0, run_seconds=0.3)
    ids = [_queue(svd, svd_graph(prompt=f"scene {n}")) for n in range(3)]
    queue = svd.http.get("/queue").json()
    assert [item[1] for item in queue["queue_running"]] == ids[:1]
    assert [item[1] for item in queue["queue_pending"]] == ids[1:]
    number, prompt_id, graph, extra, outputs = queue["queue_pending"][0]
    assert (prompt_id, graph["8"]["class_type"], outputs) == (ids[1], "SaveVideo", ["8"])
    assert svd.http.get("/prompt").json() == {"exec_info": {"queue_remaining": 3}}


def test_deleting_a_pending_prompt_makes_it_vanish(svd: ComfyDriver) -> None:
    svd.state.set_knobs(concurrency_limit=1, never_finish=True, queue_seconds=0.0)
    running, pending, other = (_queue(svd, svd_graph(prompt=f"p{n}")) for n in range(3))
    assert svd.http.post("/queue", json={"delete": [pending, running]}).status_code == 200
    assert svd.status(pending) == "gone"  # like ComfyUI: not queued, never in history
    assert svd.status(running) == "running"  # delete never touches the running one
    svd.http.post("/queue", json={"clear": True})
    assert svd.http.get("/queue").json()["queue_pending"] == []
    jobs = {job["id"]: job for job in svd.state.records()["jobs"]}
    assert jobs[pending]["cancelled"] and jobs[pending]["deleted"] and jobs[other]["deleted"]


def test_interrupt_stops_only_the_named_running_prompt(svd: ComfyDriver) -> None:
    svd.state.set_knobs(never_finish=True, queue_seconds=0.0)
    prompt_id = _queue(svd, svd_graph(prompt="x"))
    svd.http.post("/interrupt", json={"prompt_id": str(uuid.uuid4())})
    assert svd.status(prompt_id) == "running"
    svd.http.post("/interrupt")
    entry = svd.poll(prompt_id).json()[prompt_id]
    assert entry["status"]["status_str"] == "error"
    assert entry["status"]["messages"][-1][0] == "execution_interrupted"


# -- files and health ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"filename": "../../etc/passwd"}, 400),
        ({"filename": "/etc/passwd"}, 400),
        ({"filename": "svd_00001_.mp4", "subfolder": "../secrets"}, 403),
        ({"filename": "svd_99999_.mp4", "subfolder": "video"}, 404),
        ({"filename": "nothing.png", "type": "input"}, 404),
        ({}, 400),
    ],
)
def test_view_refuses_bad_paths(svd: ComfyDriver, params, status) -> None:
    assert svd.http.get("/view", params=params).status_code == status


def test_health_endpoints(svd: ComfyDriver) -> None:
    stats = svd.http.get("/system_stats").json()
    assert stats["devices"][0]["type"] == "cuda" and stats["system"]["comfyui_version"]
    assert "svd_xt_1_1.safetensors" in svd.http.get("/models/checkpoints").json()
    assert [r["auth_ok"] for r in svd.state.records()["requests"]] == [None, None]
