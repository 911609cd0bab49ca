"""The pipeline end to end: real Redis, real Celery worker processes, sandboxes over HTTP."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import av
import pytest

from videogen.errors import SceneValidationError
from videogen.redis_keys import LIVE

from .conftest import REPO, jobs_of


def playable(path: str) -> tuple[int, float]:
    with av.open(path) as container:
        stream = container.streams.video[0]
        frames = sum(1 for _ in container.decode(stream))
        return frames, float(stream.duration * stream.time_base)


def test_original_sample_config_and_scenes_end_to_end(make_stack, sandboxes):
    stack = make_stack().start()
    generator = stack.generator()
    scenes = json.loads((REPO / "examples" / "scenes.json").read_text())
    scenes[3]["image"] = str(REPO / "examples" / scenes[3]["image"])
    results = asyncio.run(generator.generate_videos(scenes, timeout=90))

    assert [r["index"] for r in results] == [0, 1, 2, 3]
    assert all(r["success"] for r in results), results
    for result, scene in zip(results, scenes, strict=True):
        frames, duration = playable(result["video_path"])
        assert frames > 0 and duration == pytest.approx(result["effective_duration"], abs=0.4)
        assert result["requested_duration"] == scene["duration"]
        meta = json.loads(Path(result["video_path"]).with_suffix(".json").read_text())
        assert meta["backend"] == result["backend_used"]
        assert meta["vendor_job_id"] and meta["requested"]["duration"] == scene["duration"]
    # text-only scenes never go to SVD (its workflow has no text-to-image stage)
    assert all(r["backend_used"] != "svd" for r in results[:3])
    # one vendor job per scene, summed over every sandbox
    assert sum(len(jobs_of(s)) for s in sandboxes.values()) == len(scenes)
    stats = generator.get_statistics()
    assert sum(b["succeeded"] for b in stats["backends"].values()) == 4
    assert stats["total_active_tasks"] == 0
    assert generator.store.r.scard(LIVE) == 0  # the sweeper's index forgets finished scenes


def test_bad_scene_file_enqueues_nothing(make_stack, redis_server):
    stack = make_stack()
    stack.write_config()
    generator = stack.generator()
    bad = [{"prompt": "fine"}, {"prompt": "bad", "duration": -1}, {"image": "/no/such/file.png"}]
    with pytest.raises(SceneValidationError) as caught:
        generator.submit(bad)
    text = str(caught.value)
    assert "scene 2: duration" in text and "scene 3: image" in text
    assert generator.store.recent_jobs() == []


def test_scene_no_backend_can_take_is_refused_up_front(make_stack):
    def only_svd(vg):
        for name in ("runway", "pika", "luma"):
            vg["backends"][name]["enabled"] = False

    stack = make_stack(only_svd)
    stack.write_config()
    with pytest.raises(SceneValidationError, match="no backend can take it"):
        stack.generator().submit([{"prompt": "text only"}])
