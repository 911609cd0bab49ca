"""The Kling sandbox's own contract: signed tokens, coded errors, string durations, no queue."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import pytest

from tests.helpers import png_bytes
from tests.sandbox.drivers import KlingDriver, kling_token

PNG = base64.b64encode(png_bytes()).decode()


def _i2v(**fields: Any) -> dict[str, Any]:
    return {"model_name": "kling-v2-5-turbo", "image": PNG, "duration": "5", **fields}


def test_create_answers_code_0_with_the_task(kling: KlingDriver) -> None:
    created = kling.create("a crane at dusk", external_task_id="scene-1-try-1", mode="pro")
    assert created.status_code == 200
    answer = created.json()
    assert answer["code"] == 0 and answer["message"] == "SUCCEED" and answer["request_id"]
    task = answer["data"]
    assert task["task_status"] in ("submitted", "processing")
    assert task["task_info"] == {"external_task_id": "scene-1-try-1"}
    assert isinstance(task["created_at"], int) and task["created_at"] > 1_700_000_000_000
    [job] = kling.state.records()["jobs"]
    assert (job["kind"], job["duration_s"], job["width"], job["height"]) == (
        "kling-v2-5-turbo/text2video",
        5.0,
        1920,
        1080,
    )


@pytest.mark.parametrize(
    ("path", "body", "code", "named"),
    [
        ("text2video", {"duration": 5}, 1201, "duration must be a string"),
        ("text2video", {"duration": "7"}, 1201, "duration"),
        ("text2video", {"mode": "4k"}, 1201, "mode"),
        ("text2video", {"aspect_ratio": "4:3"}, 1201, "aspect_ratio"),
        ("text2video", {"model_name": "kling-v9"}, 1201, "model_name"),
        ("text2video", {"model_name": "kling-v1-5"}, 1201, "model_name"),  # i2v only
        ("text2video", {"prompt": ""}, 1201, "prompt"),
        ("text2video", {"prompt": "x" * 2501}, 1201, "2500"),
        ("image2video", _i2v(image=None), 1201, "image is required"),
        ("image2video", _i2v(image="data:image/png;base64," + PNG), 1201, "data: prefix"),
        ("image2video", _i2v(image="%%%"), 1201, "neither a URL nor base64"),
        ("image2video", _i2v(image="http://example.com/a.png"), 1201, "HTTPS"),
        ("image2video", _i2v(aspect_ratio="16:9"), 1200, "aspect_ratio"),
    ],
)
def test_bad_input_is_refused_with_a_code(kling: KlingDriver, path, body, code, named) -> None:
    if path == "text2video":
        refused = kling.create(**body)
    else:
        refused = kling.http.post(f"/v1/videos/{path}", json=body)
    assert refused.status_code == 400
    assert refused.json()["code"] == code and named in refused.json()["message"]
    assert kling.state.records()["jobs"] == []


def test_image_to_video_takes_plain_base64_or_a_url(kling: KlingDriver) -> None:
    for image in (PNG, "https://cdn.example.com/frame.jpg"):
        created = kling.http.post("/v1/videos/image2video", json=_i2v(image=image))
        assert created.json()["code"] == 0, created.text
    kinds = [job["kind"] for job in kling.state.records()["jobs"]]
    assert kinds == ["kling-v2-5-turbo/image2video"] * 2


def test_an_external_task_id_is_unique_and_finds_its_task(kling: KlingDriver) -> None:
    task_id = kling.submit(external_task_id="mine")
    again = kling.create(external_task_id="mine")
    assert again.status_code == 400 and "already exists" in again.json()["message"]
    found = kling.http.get("/v1/videos/text2video", params={"external_task_id": "mine"})
    assert found.json()["data"]["task_id"] == task_id
    other_route = kling.http.get("/v1/videos/image2video", params={"external_task_id": "mine"})
    assert other_route.status_code == 404 and other_route.json()["code"] == 1203
    assert kling.http.get(f"/v1/videos/image2video/{task_id}").json()["code"] == 1203
    listed = kling.http.get("/v1/videos/text2video", params={"pageNum": 1, "pageSize": 5})
    assert [t["task_id"] for t in listed.json()["data"]] == [task_id]


@pytest.mark.parametrize(
    ("authorization", "code"),
    [
        (None, 1001),
        ("Bearer not.a.jwt", 1002),
        ("Token " + "x" * 20, 1002),
        ("expired", 1004),
        ("not yet valid", 1003),
        ("another access key", 1002),
    ],
)
def test_tokens_are_checked(kling: KlingDriver, authorization: str | None, code: int) -> None:
    key = kling.key or ""
    made = {
        "expired": kling_token(key, expires_in=-10),
        "not yet valid": kling_token(key, valid_in=60),
        "another access key": kling_token("someone-else:" + key.partition(":")[2]),
    }
    headers = {}
    if authorization is not None:
        token = made.get(authorization)
        headers["Authorization"] = f"Bearer {token}" if token else authorization
    refused = httpx.get(kling.server.base_url + "/v1/videos/text2video/x", headers=headers)
    assert refused.status_code == 401 and refused.json()["code"] == code
    assert [r["auth_ok"] for r in kling.state.records()["requests"]] == [False]


def test_over_the_concurrency_limit_a_create_is_refused_not_queued(kling: KlingDriver) -> None:
    kling.state.set_knobs(concurrency_limit=1, run_seconds=0.2)
    first = kling.submit("first")
    refused = kling.create("second")
    assert refused.status_code == 429
    assert refused.json()["code"] == 1303 and "parallel task" in refused.json()["message"]
    assert len(kling.state.records()["jobs"]) == 1  # nothing waits at Kling
    kling.watch(first)
    assert kling.create("second").json()["code"] == 0  # the slot is free again


@pytest.mark.parametrize(
    ("fault", "code"),
    [
        ({"status": 429}, 1302),
        ({"status": 429, "code": "1102"}, 1102),
        ({"status": 429, "code": "1101"}, 1101),
    ],
)
def test_a_429_is_a_rate_limit_or_a_bill_by_its_code(kling: KlingDriver, fault, code) -> None:
    kling.state.set_knobs(http_faults=[{**fault, "on": "create"}])
    refused = kling.create()
    assert refused.status_code == 429 and refused.json()["code"] == code
    assert kling.state.records()["jobs"] == []


def test_a_finished_task_says_what_it_charged(kling: KlingDriver) -> None:
    kling.state.set_knobs(fail_prompts={"forbidden": "SAFETY.INPUT.TEXT"}, fail_next_jobs=0)
    done = kling.submit("fine", mode="pro", duration="10")
    refused = kling.submit("something forbidden")
    kling.watch(done), kling.watch(refused)
    task = kling.task(done)
    assert task["final_unit_deduction"] == "5"  # 0.5 units a second in pro
    assert task["task_result"]["videos"][0]["duration"] == "10"
    failed = kling.task(refused)
    assert failed["final_unit_deduction"] == "0" and "risk control" in failed["task_status_msg"]
    costs = kling.health().json()["data"]["resource_pack_subscribe_infos"][0]
    assert costs["remaining_quantity"] == 995.0 and costs["status"] == "online"


def test_account_costs_needs_a_time_range(kling: KlingDriver) -> None:
    refused = kling.http.get("/account/costs")
    assert refused.status_code == 400 and refused.json()["code"] == 1200
    assert kling.health().json()["code"] == 0
