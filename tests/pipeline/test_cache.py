"""The result cache on the real stack, through the CLI as users run it: the same scene file
twice makes no vendor job the second time and finishes in well under a second per scene;
duplicates in a file make one vendor job each; ``--no-cache`` makes new ones."""

from __future__ import annotations

import json
import time

from videogen.api import VideoGenerator

from .conftest import jobs_of
from .test_cli import clean_env, videogen

SCENES = [
    {"prompt": "a lighthouse at dawn", "duration": 5, "seed": 1},
    {"prompt": "the keeper climbs the stairs", "duration": 5, "seed": 2},
    {"prompt": "gulls over a grey sea", "duration": 5, "seed": 3},
]


def vendor_jobs(sandboxes) -> int:
    return sum(len(jobs_of(s)) for s in sandboxes.values())


def submit(stack, path, *options: str) -> dict:
    env = clean_env(VIDEOGEN_REDIS_URL=stack.redis_url)
    config = str(stack.config_path)
    out = videogen("--config", config, "submit", str(path), "--wait", "--json", *options, env=env)
    assert out.returncode == 0, out.stdout + out.stderr + stack.logs()
    return json.loads(out.stdout)


def span(generator: VideoGenerator, job_id: str) -> float:
    """Seconds from the job's submit to its last scene's end, as the pipeline recorded them."""
    job = generator.store.job(job_id) or {}
    ends = [r.finished_at or 0.0 for r in generator.records(job_id)]
    return max(ends) - float(job["created_at"])


def test_the_same_scene_file_twice_makes_no_vendor_job_the_second_time(
    make_stack, sandboxes, tmp_path
):
    stack = make_stack().start()
    path = tmp_path / "scenes.json"
    path.write_text(json.dumps(SCENES))
    first = submit(stack, path)
    assert all(r["success"] and not r["cached"] for r in first["results"])
    assert vendor_jobs(sandboxes) == len(SCENES)

    started = time.monotonic()
    second = submit(stack, path)
    wall = time.monotonic() - started
    assert vendor_jobs(sandboxes) == len(SCENES)  # none new
    assert all(r["success"] and r["cached"] for r in second["results"])
    generator = stack.generator()
    seconds = span(generator, second["job_id"])
    print(f"\nsecond run: {seconds * 1000:.1f} ms in the pipeline for {len(SCENES)} scenes "
          f"({wall:.2f} s for the whole `videogen submit --wait` process)")  # fmt: skip
    assert seconds < 1.0 * len(SCENES)
    stats = generator.get_statistics()["cache"]
    assert (stats["hits"], stats["misses"], stats["entries"]) == (3, 3, 3)
    assert stats["saved_usd"] > 0 and stats["bytes_stored"] > 0
    env = clean_env(VIDEOGEN_REDIS_URL=stack.redis_url)
    text = videogen("--config", str(stack.config_path), "stats", env=env).stdout
    assert "cache: 3 hits, 3 misses, 3 videos" in text


def test_duplicates_make_one_vendor_job_each_and_no_cache_makes_new_ones(
    make_stack, sandboxes, tmp_path
):
    stack = make_stack().start()
    path = tmp_path / "scenes.json"
    a, b = SCENES[0], SCENES[1]
    path.write_text(
        json.dumps([a, b, {**a, "id": "again"}, a, {**b, "prompt": f" {b['prompt']} "}])
    )
    results = submit(stack, path)["results"]
    assert vendor_jobs(sandboxes) == 2
    assert [r["cached"] for r in results] == [False, False, True, True, True]
    assert all(r["success"] for r in results)
    assert len({r["video_path"] for r in results}) == 5  # each scene has its own file

    results = submit(stack, path, "--no-cache")["results"]
    assert vendor_jobs(sandboxes) == 2 + 5
    assert all(r["success"] and not r["cached"] for r in results)
