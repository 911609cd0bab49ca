"""The Ark sandbox's own contract: content lists, lower-case states, expiry, the list, DELETE."""

from __future__ import annotations

import base64
import re
import time

import pytest

from tests.helpers import png_bytes
from tests.sandbox.drivers import SeedanceDriver

TASKS = "/contents/generations/tasks"


def _until(seedance: SeedanceDriver, task_id: str, word: str) -> None:
    deadline = time.monotonic() + 3
    while seedance.poll(task_id).json()["status"] != word:
        assert time.monotonic() < deadline, f"never {word}"
        time.sleep(0.01)


def test_create_answers_a_task_id_and_the_task_echoes_its_request(
    seedance: SeedanceDriver,
) -> None:
    created = seedance.create("a fox", ratio="9:16", resolution="1080p", duration=7, seed=11)
    assert created.status_code == 200
    task_id = created.json()["id"]
    assert re.fullmatch(r"cgt-\d{14}-[0-9a-f]{5}", task_id)
    task = seedance.poll(task_id).json()
    assert task["status"] == "queued" and task["error"] is None and "content" not in task
    fields = ("model", "seed", "resolution", "ratio", "duration", "framespersecond")
    assert [task[f] for f in fields] == ["seedance-1-5-pro-251215", 11, "1080p", "9:16", 7, 24]
    assert abs(task["created_at"] - time.time()) < 5  # Unix seconds
    [job] = seedance.state.records()["jobs"]
    assert (job["duration_s"], job["width"], job["height"]) == (7.0, 1088, 1920)


def test_a_task_without_a_seed_echoes_the_one_it_drew(seedance: SeedanceDriver) -> None:
    seeds = {seedance.poll(seedance.submit(f"n{n}")).json()["seed"] for n in range(3)}
    assert len(seeds) == 3 and all(isinstance(s, int) and s >= 0 for s in seeds)


@pytest.mark.parametrize(
    ("fields", "status", "code"),
    [
        ({"content": []}, 400, "MissingParameter"),
        ({"content": [{"type": "video", "text": "x"}]}, 400, "InvalidParameter"),
        ({"ratio": "2:1"}, 400, "InvalidParameter"),
        ({"resolution": "4k"}, 400, "InvalidParameter"),
        ({"duration": 13}, 400, "InvalidParameter"),  # 1.5 pro: 4-12 s
        ({"duration": "5"}, 400, "InvalidParameter"),
        ({"model": "seedance-9"}, 404, "InvalidEndpointOrModel.NotFound"),
    ],
)
def test_invalid_creates_use_ark_error_bodies(seedance, fields, status, code) -> None:
    refused = seedance.create("a fox", **fields)
    assert refused.status_code == status
    error = refused.json()["error"]
    assert error["code"] == code and error["message"] and "type" in error
    assert seedance.state.records()["jobs"] == []


def test_first_frames_may_be_urls_or_data_uris(seedance: SeedanceDriver) -> None:
    uri = "data:image/png;base64," + base64.b64encode(png_bytes()).decode()
    for url in (uri, "https://example.com/frame.png"):
        image = {"type": "image_url", "image_url": {"url": url}, "role": "first_frame"}
        assert seedance.create("it moves", content=[image]).status_code == 200
    bad = {"type": "image_url", "image_url": {"url": "ftp://x/y.png"}, "role": "first_frame"}
    refused = seedance.create("x", content=[bad])
    assert refused.status_code == 400 and refused.json()["error"]["param"].startswith("content[0]")
    assert len(seedance.state.records()["jobs"]) == 2


def test_a_finished_task_has_its_video_and_tokens(seedance: SeedanceDriver) -> None:
    task_id = seedance.submit()
    assert seedance.watch(task_id) == ["queued", "running", "succeeded"]
    task = seedance.poll(task_id).json()
    assert task["content"]["video_url"].endswith(f"{task_id}.mp4")
    assert task["usage"]["completion_tokens"] == 864 * 480 * 24 * 5 // 1024


def test_failures_carry_an_error_code_and_moderation_is_sensitive_content(seedance) -> None:
    seedance.state.set_knobs(fail_next_jobs=1, fail_prompts={"forbidden": "SAFETY.INPUT.TEXT"})
    broken, flagged = seedance.submit("plain"), seedance.submit("forbidden")
    seedance.watch(broken), seedance.watch(flagged)
    assert seedance.poll(broken).json()["error"]["code"] == "InternalServiceError"
    task = seedance.poll(flagged).json()
    assert task["status"] == "failed" and "usage" not in task
    assert task["error"]["code"] == "OutputVideoSensitiveContentDetected"


def test_a_task_past_its_expiry_is_expired(seedance: SeedanceDriver) -> None:
    seedance.state.set_knobs(never_finish=True)
    task_id = seedance.submit("slow", execution_expires_after=1)
    assert seedance.poll(task_id).json()["status"] == "queued"
    _until(seedance, task_id, "expired")
    assert seedance.poll(task_id).json()["error"]["code"] == "TaskExpired"
    [job] = seedance.state.records()["jobs"]
    assert job["state"] == "failed" and not job["cancelled"]


def test_delete_cancels_queued_refuses_running_and_removes_finished(seedance) -> None:
    seedance.state.set_knobs(never_finish=True, queue_seconds=0.05)
    running = seedance.submit("runs on")
    _until(seedance, running, "running")
    refused = seedance.http.delete(f"{TASKS}/{running}")
    assert refused.status_code == 400 and refused.json()["error"]["message"]
    assert seedance.status(running) == "running"
    seedance.state.set_knobs(queue_seconds=60)
    queued = seedance.submit("stopped")
    seedance.cancel(queued)
    assert seedance.status(queued) == "cancelled"
    seedance.cancel(queued)  # a finished task's record is deleted
    assert seedance.poll(queued).status_code == 404
    assert seedance.http.delete(f"{TASKS}/{queued}").status_code == 404


def test_the_list_is_newest_first_and_filters(seedance: SeedanceDriver) -> None:
    seedance.state.set_knobs(fail_next_jobs=1)
    failed, ok = seedance.submit("one"), seedance.submit("two")
    seedance.watch(failed), seedance.watch(ok)
    page = seedance.http.get(TASKS, params={"page_size": 1}).json()
    assert page["total"] == 2 and [t["id"] for t in page["items"]] == [ok]
    only = seedance.http.get(TASKS, params={"filter.status": "failed"}).json()
    assert [t["id"] for t in only["items"]] == [failed]
    both = seedance.http.get(TASKS, params=[("filter.task_ids", failed), ("filter.task_ids", ok)])
    assert both.json()["total"] == 2
    other = seedance.http.get(TASKS, params={"filter.model": "dreamina-seedance-2-0-260128"})
    assert other.json() == {"total": 0, "items": []}
