"""The MiniMax sandbox's own contract: errors inside a 200, V1's three steps, V2's tasks."""

from __future__ import annotations

import base64

import pytest

from tests.helpers import png_bytes
from tests.sandbox.drivers import MiniMaxDriver, MiniMaxV2Driver

PNG_URI = "data:image/png;base64," + base64.b64encode(png_bytes()).decode()


def test_v1_is_a_task_then_a_file_then_a_url(minimax: MiniMaxDriver) -> None:
    created = minimax.create("a lantern on water", resolution="1080P")
    assert created.status_code == 200
    assert created.json()["base_resp"] == {"status_code": 0, "status_msg": "success"}
    task_id = minimax.job_id(created)
    assert task_id.isdigit() and len(task_id) == 15
    minimax.watch(task_id)
    task = minimax.poll(task_id).json()
    assert task["status"] == "Success" and task["file_id"].isdigit()
    assert (task["video_width"], task["video_height"]) == (1920, 1080)
    found = minimax.http.get("/v1/files/retrieve", params={"file_id": task["file_id"]}).json()
    assert found["file"]["file_id"] == int(task["file_id"])  # a number here
    assert found["file"]["purpose"] == "video_generation"
    assert minimax.download(task_id).headers["content-type"] == "video/mp4"
    listed = minimax.health().json()["files"]
    assert [f["file_id"] for f in listed] == [int(task["file_id"])]


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"duration": "6"}, "integer"),
        ({"duration": 7}, "6, 10"),
        ({"duration": 10, "resolution": "1080P"}, "768P only"),
        ({"resolution": "2K"}, "resolution"),
        ({"model": "MiniMax-Hailuo-2.3-Fast"}, "image-to-video only"),
        ({"model": "T2V-01", "first_frame_image": PNG_URI}, "text-to-video only"),
        ({"model": "MiniMax-H3"}, "model"),  # a V2 model on the V1 API
        ({"prompt": ""}, "prompt is required"),
        ({"first_frame_image": "http://example.com/a.png", "prompt": None}, "HTTPS"),
    ],
)
def test_v1_bad_input_is_a_200_with_code_2013(minimax: MiniMaxDriver, fields, named) -> None:
    refused = minimax.create(**fields)
    assert refused.status_code == 200
    base = refused.json()["base_resp"]
    assert base["status_code"] == 2013 and named in base["status_msg"]
    assert minimax.state.records()["jobs"] == []


def test_a_first_frame_makes_a_prompt_optional(minimax: MiniMaxDriver) -> None:
    body = {"model": "MiniMax-Hailuo-2.3-Fast", "first_frame_image": PNG_URI, "duration": 10}
    created = minimax.http.post("/v1/video_generation", json=body)
    assert created.json()["base_resp"]["status_code"] == 0
    [job] = minimax.state.records()["jobs"]
    assert (job["duration_s"], job["height"]) == (10.0, 768)


def test_a_bad_key_and_a_bill_are_answered_inside_a_200(minimax: MiniMaxDriver) -> None:
    minimax.http.headers["Authorization"] = "Bearer sk-api-wrong"
    refused = minimax.create()
    assert refused.status_code == 200 and refused.json()["base_resp"]["status_code"] == 1004
    minimax.http.headers.update(minimax.headers())
    minimax.state.set_knobs(http_faults=[{"status": 429, "code": "1008", "on": "create"}])
    unpaid = minimax.create()
    assert unpaid.status_code == 200
    assert unpaid.json()["base_resp"] == {"status_code": 1008, "status_msg": "insufficient balance"}


@pytest.mark.parametrize(
    ("knobs", "base_resp"),
    [
        ({"fail_prompts": {"fox": "SAFETY.OUTPUT"}}, {"status_code": 1027}),
        ({"fail_next_jobs": 1}, {"status_code": 0}),
    ],
)
def test_a_v1_failure_says_only_fail(minimax: MiniMaxDriver, knobs, base_resp) -> None:
    minimax.state.set_knobs(**knobs)
    task_id = minimax.submit("a red fox")
    assert minimax.watch(task_id)[-1] == "failed"
    task = minimax.poll(task_id).json()
    assert task["status"] == "Fail" and task["file_id"] == ""
    assert task["base_resp"]["status_code"] == base_resp["status_code"]


def test_an_unknown_task_or_file_is_code_2013(minimax: MiniMaxDriver) -> None:
    assert minimax.poll("123").json()["base_resp"]["status_code"] == 2013
    missing = minimax.http.get("/v1/files/retrieve", params={"file_id": "1"}).json()
    assert missing["base_resp"]["status_code"] == 2013


def test_v2_tasks_with_a_ratio_usage_and_errors(minimax_v2: MiniMaxV2Driver) -> None:
    minimax_v2.state.set_knobs(fail_prompts={"doomed": "INTERNAL"})
    tall = minimax_v2.submit("a tall tower", ratio="9:16", resolution="2K", duration=8)
    doomed = minimax_v2.submit("a doomed take")
    minimax_v2.watch(tall), minimax_v2.watch(doomed)
    task = minimax_v2.poll(tall).json()["task"]
    assert task["status"] == "succeeded" and task["model"] == "MiniMax-H3"
    assert task["usage"]["output_seconds"] == 8 and task["content"]["url"].endswith(".mp4")
    jobs = {job["id"]: job for job in minimax_v2.state.records()["jobs"]}
    assert (jobs[tall]["width"], jobs[tall]["height"]) == (1440, 2560)
    failed = minimax_v2.poll(doomed).json()["task"]
    assert failed["status"] == "failed" and failed["error"]["message"]
    listed = minimax_v2.http.get("/v2/query/video_generation", params={"page_size": 1}).json()
    assert listed["total"] == 2 and [t["id"] for t in listed["items"]] == [doomed]


def test_v2_delete_cancels_then_removes(minimax_v2: MiniMaxV2Driver) -> None:
    minimax_v2.state.set_knobs(never_finish=True)
    task_id = minimax_v2.submit()
    assert minimax_v2.http.delete(f"/v2/video_generation/{task_id}").json()["status"] == "cancelled"
    assert minimax_v2.status(task_id) == "cancelled"
    assert minimax_v2.http.delete(f"/v2/video_generation/{task_id}").status_code == 200
    gone = minimax_v2.poll(task_id)
    assert gone.status_code == 404 and gone.json()["base_resp"]["status_msg"] == "record not found"


def test_each_api_sees_only_its_own_tasks(
    minimax: MiniMaxDriver, minimax_v2: MiniMaxV2Driver
) -> None:
    v1, v2 = minimax.submit(), minimax_v2.submit()
    assert minimax_v2.poll(v1).status_code == 404
    assert minimax.poll(v2).json()["base_resp"]["status_code"] == 2013


@pytest.mark.parametrize(
    ("content", "named"),
    [
        ([], "non-empty"),
        ([{"type": "video_url"}], "content items"),
        ([{"type": "text", "text": ""}], "prompt is required"),
    ],
)
def test_v2_bad_content_is_refused(minimax_v2: MiniMaxV2Driver, content, named) -> None:
    refused = minimax_v2.create(content=content)
    assert refused.json()["base_resp"]["status_code"] == 2013
    assert named in refused.json()["base_resp"]["status_msg"]
