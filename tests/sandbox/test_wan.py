"""The DashScope sandbox's own contract: the async header, 200 UNKNOWN, PENDING-only cancel."""

from __future__ import annotations

import base64
import time

import pytest

from tests.helpers import png_bytes
from tests.sandbox.drivers import WanDriver

CREATE = "/services/aigc/video-generation/video-synthesis"
ASYNC = {"X-DashScope-Async": "enable"}


def test_create_answers_a_pending_task(wan: WanDriver) -> None:
    created = wan.create("a lighthouse at dusk", ratio="9:16", resolution="1080P", seed=42)
    assert created.status_code == 200
    answer = created.json()
    assert answer["request_id"] and answer["output"]["task_status"] == "PENDING"
    [job] = wan.state.records()["jobs"]
    assert job["id"] == answer["output"]["task_id"] and job["kind"] == "wan2.7-t2v"
    assert (job["duration_s"], job["width"], job["height"]) == (5.0, 1080, 1920)


def test_a_create_without_the_async_header_is_refused(wan: WanDriver) -> None:
    body = {"model": "wan2.7-t2v", "input": {"prompt": "x"}, "parameters": {"duration": 5}}
    refused = wan.http.post(CREATE, json=body)
    assert refused.status_code == 403
    assert refused.json()["code"] == "AccessDenied"
    assert "synchronous" in refused.json()["message"]
    assert wan.state.records()["jobs"] == []


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"parameters": {"duration": "5"}}, 400, "InvalidParameter"),  # an int, not a string
        ({"parameters": {"duration": 16}}, 400, "InvalidParameter"),
        ({"parameters": {"resolution": "720p"}}, 400, "InvalidParameter"),  # upper-case P
        ({"parameters": {"ratio": "21:9"}}, 400, "InvalidParameter"),
        ({"parameters": {"seed": -1}}, 400, "InvalidParameter"),
        ({"input": {"prompt": ""}}, 400, "InvalidParameter"),
        ({"model": "wan9-t2v"}, 404, "Model.NotExist"),
        ({"input": {"prompt": "x", "media": [{"type": "first_frame", "url": "https://a/b.png"}]}},
         400, "InvalidParameter"),  # text-to-video takes no media
    ],
)  # fmt: skip
def test_invalid_creates_use_dashscope_codes(wan: WanDriver, body, status, code) -> None:
    full = {
        "model": "wan2.7-t2v",
        "input": {"prompt": "a fox"},
        "parameters": {"resolution": "720P", "duration": 5},
    }
    for key, value in body.items():
        full[key] = {**full[key], **value} if isinstance(value, dict) else value
    refused = wan.http.post(CREATE, json=full, headers=ASYNC)
    assert refused.status_code == status
    assert refused.json()["code"] == code and refused.json()["message"]
    assert wan.state.records()["jobs"] == []


def test_image_to_video_takes_a_first_frame_in_media_only(wan: WanDriver) -> None:
    frame = "data:image/png;base64," + base64.b64encode(png_bytes()).decode()
    body = {
        "model": "wan2.7-i2v",
        "input": {"prompt": "it turns", "media": [{"type": "first_frame", "url": frame}]},
        "parameters": {"resolution": "720P", "duration": 3},
    }
    assert wan.http.post(CREATE, json=body, headers=ASYNC).status_code == 200
    legacy = {**body, "input": {"prompt": "it turns", "img_url": "https://a/b.png"}}
    refused = wan.http.post(CREATE, json=legacy, headers=ASYNC)
    assert refused.status_code == 400 and "media" in refused.json()["message"]
    [job] = wan.state.records()["jobs"]
    assert job["duration_s"] == 3.0


def test_an_unknown_task_is_a_200_unknown(wan: WanDriver) -> None:
    answer = wan.poll("no-such-task")
    assert answer.status_code == 200
    assert answer.json()["output"] == {"task_id": "no-such-task", "task_status": "UNKNOWN"}


def test_a_finished_task_has_its_video_and_usage(wan: WanDriver) -> None:
    task_id = wan.submit()
    assert wan.watch(task_id) == ["queued", "running", "succeeded"]
    answer = wan.poll(task_id).json()
    output = answer["output"]
    assert output["video_url"].endswith(f"{task_id}.mp4")
    assert output["submit_time"] and output["end_time"] and output["orig_prompt"]
    assert answer["usage"] == {
        "video_count": 1, "duration": 5.0, "output_video_duration": 5, "SR": 720, "ratio": "16:9"
    }  # fmt: skip


def test_failures_carry_a_code_and_content_filtering_is_data_inspection(wan: WanDriver) -> None:
    wan.state.set_knobs(fail_next_jobs=1, fail_prompts={"forbidden": "SAFETY.INPUT.TEXT"})
    broken, filtered = wan.submit("plain"), wan.submit("forbidden")
    wan.watch(broken), wan.watch(filtered)
    assert wan.poll(broken).json()["output"]["code"] == "InternalError.Algo"
    output = wan.poll(filtered).json()["output"]
    assert output["task_status"] == "FAILED" and output["code"] == "DataInspectionFailed"
    assert "video_url" not in output


def test_only_a_pending_task_can_be_cancelled(wan: WanDriver) -> None:
    wan.state.set_knobs(never_finish=True, queue_seconds=0.05)
    running = wan.submit("runs on")
    deadline = time.monotonic() + 3
    while wan.status(running) != "running":
        assert time.monotonic() < deadline
        time.sleep(0.01)
    refused = wan.http.post(f"/tasks/{running}/cancel")
    assert refused.status_code == 400 and refused.json()["code"] == "UnsupportedOperation"
    assert wan.status(running) == "running"
    wan.state.set_knobs(queue_seconds=60)
    pending = wan.submit("stopped")
    wan.cancel(pending)
    assert wan.status(pending) == "cancelled"
    again = wan.http.post(f"/tasks/{pending}/cancel")  # no longer PENDING
    assert again.status_code == 400
    assert [j["cancelled"] for j in wan.state.records()["jobs"]] == [False, True]


def test_the_task_list_is_newest_first(wan: WanDriver) -> None:
    first, second = wan.submit("one"), wan.submit("two")
    listed = wan.http.get("/tasks", params={"page_no": 1, "page_size": 1}).json()
    assert listed["total"] == 2 and [t["task_id"] for t in listed["data"]] == [second]
    assert listed["data"][0]["model_name"] == "wan2.7-t2v" and first != second
