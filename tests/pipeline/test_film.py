"""One film per job on the real stack: scenes made by backends that snap to different sizes,
lengths and frame rates, stitched by `videogen submit --film` and `videogen film` (run as
users run them) into one MP4 that PyAV reads back frame by frame.

The sandboxes serve their files at most 320 px wide (aspect ratio kept: 1280x720 is
320x180, 720x1280 is 320x568), not at full size: the sizes still differ in shape, and
full-size files made this test three times slower (the sandboxes draw each frame in
Python) without showing anything more.
"""

from __future__ import annotations

import json
from pathlib import Path

import av
import pytest

from .test_cli import clean_env, videogen

# Different shapes and lengths; each backend snaps them to sizes and lengths of its own.
SCENES = [
    {"prompt": "a wide valley", "duration": 5, "resolution": "1280x720"},
    {"prompt": "a tall tower", "duration": 9, "aspect_ratio": "9:16"},
    {"prompt": "a square window", "duration": 4, "aspect_ratio": "1:1"},
]
FPS = {"svd": 8, "runway": 8, "pika": 12, "luma": 12}
"""Each sandbox's frame rate: the film brings them to one."""


def round_robin(vg: dict) -> None:
    """Scenes go to free backends in turn: one job's scenes land on several backends. Both
    tests use it, so the second gets the first one's stack (see conftest)."""
    vg["strategy"] = "round_robin"


def read_back(path: Path) -> dict:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        sizes = [(f.width, f.height) for f in container.decode(stream)]
        return {
            "frames": len(sizes),
            "sizes": set(sizes),
            "duration": float(stream.duration * stream.time_base),
            "rate": float(stream.average_rate),
            "codec": stream.codec_context.name,
        }


def test_film_of_a_job_from_backends_of_different_sizes_and_lengths(
    make_stack, sandboxes, tmp_path
):
    stack = make_stack(round_robin).start()
    for name, fps in FPS.items():  # the enabled backends' sandboxes
        sandboxes[name].state.set_knobs(video_fps=fps)
    env = clean_env(VIDEOGEN_REDIS_URL=stack.redis_url)
    config = str(stack.config_path)
    scenes = tmp_path / "scenes.json"
    scenes.write_text(json.dumps(SCENES))

    first = tmp_path / "submitted.mp4"
    out = videogen("--config", config, "submit", str(scenes), "--film", str(first), "--json",
                   env=env)  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr + stack.logs()
    submitted = json.loads(out.stdout)
    results, made = submitted["results"], submitted["film"]
    assert all(r["success"] for r in results)
    # the premise: the parts really differ in size, length and rate, from several backends
    files = [read_back(Path(r["video_path"])) for r in results]
    sizes = [f["sizes"].pop() for f in files]
    assert len(set(sizes)) >= 2 and len({f["rate"] for f in files}) == 2
    assert len({f["duration"] for f in files}) >= 2
    assert len({r["backend_used"] for r in results}) >= 2
    assert [p["index"] for p in made["parts"]] == [0, 1, 2]
    assert [p["size"] for p in made["parts"]] == [f"{w}x{h}" for w, h in sizes]
    assert [p["duration"] for p in made["parts"]] == [f["duration"] for f in files]

    film = read_back(first)
    assert film["codec"] == "h264" and film["sizes"] == {(made["width"], made["height"])}
    assert (made["width"], made["height"]) in sizes  # the parts' most common, or largest
    assert film["frames"] == made["frames"] and film["rate"] == made["fps"]
    parts = sum(p["duration"] for p in made["parts"])
    assert film["duration"] == pytest.approx(parts, abs=1.5 / made["fps"])

    faded = tmp_path / "faded.mp4"
    out = videogen("--config", config, "film", submitted["job_id"], "-o", str(faded),
                   "--crossfade", "0.5", "--size", "640x360", "--fps", "10", env=env)  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"film {faded}: 640x360, 10 fps" in out.stdout and "3 parts: #0 " in out.stdout
    film = read_back(faded)
    assert film["sizes"] == {(640, 360)} and film["rate"] == 10
    assert film["duration"] == pytest.approx(parts - 2 * 0.5, abs=1.5 / 10)
    assert film["frames"] == round(film["duration"] * 10)


def test_film_refuses_missing_scenes_and_skips_them_when_asked(make_stack, sandboxes, tmp_path):
    stack = make_stack(round_robin).start()
    for sandbox in sandboxes.values():  # refused everywhere, whichever backend gets it
        sandbox.state.set_knobs(fail_prompts={"doomed": "SAFETY.INPUT.TEXT"})
    env = clean_env(VIDEOGEN_REDIS_URL=stack.redis_url)
    config = str(stack.config_path)
    scenes = tmp_path / "scenes.json"
    scenes.write_text(json.dumps([{"prompt": "fine", "duration": 5},
                                  {"prompt": "doomed", "duration": 5},
                                  {"prompt": "also fine", "duration": 5}]))  # fmt: skip
    out = videogen("--config", config, "submit", str(scenes), "--film",
                   str(tmp_path / "no.mp4"), env=env)  # fmt: skip
    assert out.returncode == 1, out.stdout + out.stderr
    job_id = out.stdout.split()[1].rstrip(":")
    assert "film not made" in out.stderr and "#1 " in out.stderr and "failed" in out.stderr
    assert not (tmp_path / "no.mp4").exists()

    out = videogen("--config", config, "film", job_id, "-o", str(tmp_path / "f.mp4"), env=env)
    assert out.returncode == 1 and f"#1 {job_id}-001 failed" in out.stderr
    assert "--skip-failed" in out.stderr and not (tmp_path / "f.mp4").exists()

    out = videogen("--config", config, "film", job_id, "-o", str(tmp_path / "f.mp4"),
                   "--skip-failed", "--json", env=env)  # fmt: skip
    assert out.returncode == 0, out.stderr
    made = json.loads(out.stdout)
    assert [p["index"] for p in made["parts"]] == [0, 2]
    assert [m["index"] for m in made["skipped"]] == [1]
    assert f"skipped #1 {job_id}-001 failed" in out.stderr
    assert read_back(tmp_path / "f.mp4")["frames"] == made["frames"] > 0

    out = videogen("--config", config, "film", "nope", "-o", str(tmp_path / "x.mp4"), env=env)
    assert out.returncode == 1 and "no job 'nope'" in out.stderr
