"""The Luma sandbox's own contract: 201 Generation objects, string durations, delete-only cancel."""

from __future__ import annotations

import base64
import time

import pytest

from tests.helpers import png_bytes
from tests.sandbox.drivers import LumaDriver

FRAME = {"type": "image", "url": "https://storage.cdn-luma.com/frames/frame0.jpg"}


def test_create_answers_201_with_the_whole_generation(luma: LumaDriver) -> None:
    created = luma.create("a tiger in snow", aspect_ratio="9:16", resolution="720p")
    assert created.status_code == 201
    generation = created.json()
    assert generation["state"] == "queued" and generation["generation_type"] == "video"
    assert generation["assets"] is None and generation["failure_reason"] is None
    assert generation["model"] == "ray-2" and generation["created_at"].endswith("Z")
    assert generation["request"] == {
        "model": "ray-2",
        "prompt": "a tiger in snow",
        "duration": "5s",
        "resolution": "720p",
        "aspect_ratio": "9:16",
        "generation_type": "video",
    }
    [job] = luma.state.records()["jobs"]
    assert (job["duration_s"], job["width"], job["height"]) == (5.0, 720, 1280)


def test_the_legacy_create_path_works_too(luma: LumaDriver) -> None:
    created = luma.http.post("/generations", json={"model": "ray-flash-2", "prompt": "a heron"})
    assert created.status_code == 201
    assert created.json()["request"]["duration"] == "5s"  # the default
    assert luma.state.records()["jobs"][0]["kind"] == "ray-flash-2"


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"duration": "7s"}, "duration"),
        ({"duration": 5}, "duration"),
        ({"resolution": "8k"}, "resolution"),
        ({"aspect_ratio": "2:1"}, "aspect_ratio"),
        ({"model": "ray-3"}, "model"),
        ({"prompt": ""}, "prompt"),
        ({"prompt": 42}, "prompt"),
        ({"generation_type": "image"}, "generation_type"),
        ({"keyframes": {"frame0": {"type": "image", "url": "http://example.com/a.jpg"}}}, "url"),
        (
            {"keyframes": {"frame0": {"type": "image", "url": "data:image/png;base64,AAAA"}}},
            "data URIs",
        ),
        ({"keyframes": {"frame0": {"type": "generation", "id": "nope"}}}, "not found"),
        ({"keyframes": {"frame2": FRAME}}, "keyframes"),
    ],
)
def test_bad_input_is_refused_with_detail(luma: LumaDriver, fields, named) -> None:
    refused = luma.create(**fields)
    assert refused.status_code == 400
    assert named in refused.json()["detail"]
    assert luma.state.records()["jobs"] == []


def test_image_to_video_needs_no_prompt(luma: LumaDriver) -> None:
    keyframes = {"frame0": {"type": "image", "url": "http://127.0.0.1:9/frame.png"}}
    assert luma.create(prompt="", keyframes=keyframes).status_code == 201
    previous = luma.state.records()["jobs"][0]["id"]
    follow_on = {"frame0": {"type": "generation", "id": previous}, "frame1": FRAME}
    assert luma.create("and then", keyframes=follow_on).status_code == 201


def test_states_queued_dreaming_completed(luma: LumaDriver) -> None:
    luma.state.set_knobs(queue_seconds=0.1, run_seconds=0.2)
    generation_id = luma.submit()
    words: list[str] = []
    for _ in range(1000):
        state = luma.poll(generation_id).json()["state"]
        if not words or words[-1] != state:
            words.append(state)
        if state == "completed":
            break
        time.sleep(0.005)
    assert words == ["queued", "dreaming", "completed"]
    assets = luma.poll(generation_id).json()["assets"]
    assert assets["video"] == f"{luma.server.root_url}/__sandbox__/files/{generation_id}.mp4"


@pytest.mark.parametrize(
    ("knobs", "reason"),
    [
        ({"fail_prompts": {"fox": "SAFETY.INPUT.TEXT"}}, "Advanced moderation failed"),
        ({"fail_next_jobs": 1}, "internal error"),
        ({"fail_next_jobs": 1, "failure_message": "model crashed"}, "model crashed"),
    ],
)
def test_failed_generations_give_a_reason(luma: LumaDriver, knobs, reason) -> None:
    luma.state.set_knobs(**knobs)
    generation_id = luma.submit("a red fox")
    luma.watch(generation_id)
    generation = luma.poll(generation_id).json()
    assert generation["state"] == "failed" and reason in generation["failure_reason"]
    assert generation["assets"] is None


def test_delete_removes_the_generation(luma: LumaDriver) -> None:
    luma.state.set_knobs(never_finish=True)
    generation_id = luma.submit()
    deleted = luma.http.delete(f"/generations/{generation_id}")
    assert (deleted.status_code, deleted.content) == (204, b"")
    assert luma.poll(generation_id).json() == {"detail": "Generation not found"}
    assert luma.http.delete(f"/generations/{generation_id}").status_code == 404
    assert luma.http.get("/generations").json()["generations"] == []
    [job] = luma.state.records()["jobs"]
    assert job["cancelled"] and job["deleted"]


def test_list_pages_newest_first(luma: LumaDriver) -> None:
    ids = [luma.submit(f"scene {n}") for n in range(3)]
    page = luma.http.get("/generations", params={"limit": 2, "offset": 0}).json()
    assert [g["id"] for g in page["generations"]] == ids[::-1][:2]
    assert (page["count"], page["has_more"], page["limit"], page["offset"]) == (2, True, 2, 0)
    assert luma.http.get("/generations", params={"limit": "x"}).status_code == 400


def test_cheap_endpoints(luma: LumaDriver) -> None:
    assert luma.http.get("/ping").json() == {"message": "pong"}
    assert isinstance(luma.http.get("/credits").json()["credit_balance"], float)
    assert "dolly_zoom" in luma.http.get("/generations/concepts/list").json()
    assert luma.state.records()["jobs"] == []


def test_a_base64_keyframe_is_cut_in_the_records(luma: LumaDriver) -> None:
    blob = base64.b64encode(png_bytes(640, 360) * 4).decode()
    luma.create(keyframes={"frame0": {"type": "image", "url": "data:image/png;base64," + blob}})
    body = luma.state.records()["requests"][0]["body"]
    assert body["keyframes"]["frame0"]["url"].endswith("...")
    assert len(body["keyframes"]["frame0"]["url"]) == 103
