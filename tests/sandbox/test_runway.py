"""The Runway sandbox's own contract: version header, field validation, task words, delete."""

from __future__ import annotations

import base64
import re
import time
from typing import Any

import httpx
import pytest

from tests.helpers import png_bytes
from tests.sandbox.drivers import RunwayDriver

PNG_URI = "data:image/png;base64," + base64.b64encode(png_bytes()).decode()
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def _i2v(**fields: Any) -> dict[str, Any]:
    return {"model": "gen4_turbo", "promptImage": PNG_URI, "ratio": "1280:720", **fields}


@pytest.mark.parametrize("version", [None, "2024-09-13", "2026-01-01"])
def test_the_version_header_is_required(runway: RunwayDriver, version: str | None) -> None:
    headers = {"Authorization": f"Bearer {runway.key}"}
    if version:
        headers["X-Runway-Version"] = version
    response = httpx.post(
        runway.server.base_url + "/v1/text_to_video", json={"model": "gen4.5"}, headers=headers
    )
    assert response.status_code == 400
    assert "X-Runway-Version" in response.json()["error"]
    [request] = runway.state.records()["requests"]
    assert request["auth_ok"] is True and runway.state.records()["jobs"] == []


@pytest.mark.parametrize(
    ("path", "body", "field", "reason"),
    [
        (
            "image_to_video",
            _i2v(promptImage="http://example.com/a.png"),
            "promptImage",
            "Only HTTPS",
        ),
        (
            "image_to_video",
            _i2v(promptImage="data:image/png;base64,%%%"),
            "promptImage",
            "data URI",
        ),
        ("image_to_video", _i2v(promptImage="ftp://example.com/a.png"), "promptImage", "URL"),
        ("image_to_video", _i2v(ratio="1280:768"), "ratio", "1280:720"),
        ("image_to_video", _i2v(duration=11), "duration", "2|3"),
        ("image_to_video", _i2v(duration="5"), "duration", "integer"),
        ("image_to_video", _i2v(promptText="x" * 1001), "promptText", "1000"),
        ("image_to_video", _i2v(seed=-1), "seed", "integer"),
        ("image_to_video", _i2v(model="gen4.5", duration=5), "promptText", "non-empty"),
        ("image_to_video", _i2v(model="veo3.1", ratio="1280:720", duration=5), "duration", "4|6|8"),
        ("image_to_video", _i2v(model="gen3a_turbo"), "model", "gen4_turbo"),
        (
            "text_to_video",
            {"model": "gen4_turbo", "promptText": "x", "ratio": "1280:720"},
            "model",
            "",
        ),
        (
            "text_to_video",
            {"model": "gen4.5", "promptText": "x", "ratio": "1104:832", "duration": 5},
            "ratio",
            "720:1280",
        ),
        (
            "text_to_video",
            {"model": "gen4.5", "ratio": "1280:720", "duration": 5},
            "promptText",
            "",
        ),
        ("text_to_video", ["not", "an", "object"], "body", "object"),
    ],
)
def test_bad_input_is_refused_naming_the_field(
    runway: RunwayDriver, path, body, field, reason
) -> None:
    response = runway.http.post(f"/v1/{path}", json=body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert f"'{field}'" in error and reason in error
    assert runway.state.records()["jobs"] == []


@pytest.mark.parametrize(
    "body",
    [
        _i2v(),
        _i2v(promptImage="https://example.com/frame.jpg", promptText="a fox", duration=2, seed=7),
        _i2v(promptImage="http://127.0.0.1:9/frame.png"),
        _i2v(promptImage="http://localhost:9/frame.png"),
        _i2v(promptImage=[{"uri": PNG_URI, "position": "first"}]),
        _i2v(model="veo3.1", ratio="1080:1920"),
        _i2v(model="gen4.5", promptText="a fox", duration=10, ratio="1584:672"),
    ],
)
def test_good_image_to_video_input_is_accepted(runway: RunwayDriver, body) -> None:
    response = runway.http.post("/v1/image_to_video", json=body)
    assert response.status_code == 200, response.text
    assert set(response.json()) == {"id", "estimatedCost"}
    [job] = runway.state.records()["jobs"]
    assert job["kind"] == body["model"] + "/image_to_video"
    assert job["params"]["model"] == body["model"]


def test_defaults_and_sizes_come_from_the_model(runway: RunwayDriver) -> None:
    runway.http.post("/v1/image_to_video", json=_i2v())
    runway.http.post("/v1/image_to_video", json=_i2v(model="veo3.1", ratio="720:1280"))
    jobs = runway.state.records()["jobs"]
    assert [(j["duration_s"], j["width"], j["height"]) for j in jobs] == [
        (10.0, 1280, 720),
        (8.0, 720, 1280),
    ]


def test_task_words_throttled_pending_running_succeeded(runway: RunwayDriver) -> None:
    runway.state.set_knobs(concurrency_limit=1, queue_seconds=0.1, run_seconds=0.2)
    first, second = runway.submit("one"), runway.submit("two")
    assert runway.poll(second).json()["status"] == "THROTTLED"
    seen: list[str] = []
    progress: list[float] = []
    for _ in range(1000):
        task = runway.poll(second).json()
        if not seen or seen[-1] != task["status"]:
            seen.append(task["status"])
        if task["status"] == "RUNNING":
            progress.append(task["progress"])
        if task["status"] == "SUCCEEDED":
            break
        time.sleep(0.005)
    assert seen == ["THROTTLED", "PENDING", "RUNNING", "SUCCEEDED"]
    assert progress == sorted(progress) and 0 <= progress[0] and progress[-1] < 1
    assert ISO.match(task["createdAt"]) and task["cost"] == {"credits": 60}
    assert task["output"][0].startswith(runway.server.root_url + "/__sandbox__/files/")
    assert runway.poll(first).json()["status"] == "SUCCEEDED"


def test_non_terminal_tasks_show_an_estimated_cost(runway: RunwayDriver) -> None:
    task = runway.poll(runway.submit()).json()
    assert task["status"] == "PENDING" and task["estimatedCost"] == {"credits": 60}
    assert set(task) == {"id", "status", "createdAt", "estimatedCost"}


@pytest.mark.parametrize(
    ("knobs", "code", "failure"),
    [
        ({"fail_next_jobs": 1}, "INTERNAL.BAD_OUTPUT.CODE01", "An unexpected error occurred."),
        ({"fail_prompts": {"a red fox": "SAFETY.INPUT.TEXT"}}, "SAFETY.INPUT.TEXT", "moderation"),
        (
            {"fail_next_jobs": 1, "failure_code": "INTERNAL", "failure_message": "GPU fell over"},
            "INTERNAL",
            "GPU fell over",
        ),
    ],
)
def test_failed_tasks(runway: RunwayDriver, knobs, code, failure) -> None:
    runway.state.set_knobs(**knobs)
    task_id = runway.submit()
    runway.watch(task_id)
    task = runway.poll(task_id).json()
    assert (task["status"], task["failureCode"]) == ("FAILED", code)
    assert failure in task["failure"] and task["cost"] == {"credits": 0}


def test_delete_cancels_then_deletes(runway: RunwayDriver) -> None:
    runway.state.set_knobs(never_finish=True)
    task_id = runway.submit()
    deleted = runway.http.delete(f"/v1/tasks/{task_id}")
    assert (deleted.status_code, deleted.content) == (204, b"")
    assert runway.poll(task_id).json()["status"] == "CANCELLED"
    assert runway.http.delete(f"/v1/tasks/{task_id}").status_code == 204
    assert runway.poll(task_id).status_code == 404
    assert runway.http.delete(f"/v1/tasks/{task_id}").status_code == 404
    assert runway.poll("no-such-task").json() == {"error": "Task not found."}


def test_organization_reports_credits_and_usage(runway: RunwayDriver) -> None:
    runway.state.set_knobs(concurrency_limit=3)
    before = runway.health().json()
    task_id = runway.submit()
    assert runway.health().json()["creditBalance"] == before["creditBalance"]  # not charged yet
    runway.watch(task_id)
    after = runway.health().json()
    assert before["creditBalance"] - after["creditBalance"] == 60  # gen4.5: 12 credits/s x 5 s
    assert after["tier"]["models"]["gen4.5"]["maxConcurrentGenerations"] == 3
    assert after["usage"]["models"]["gen4.5"]["dailyGenerations"] == 1
    assert after["tier"]["maxMonthlyCreditSpend"] > 0
