"""The film edge on real files: parts of different sizes, rates and lengths (the sandboxes'
test patterns) stitched into one MP4, read back with PyAV frame by frame."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from videogen import stitch
from videogen.errors import FilmError, MissingScenesError
from videogen.models import Scene, SceneState
from videogen.record import new_record, replace
from videogen.sandbox.mp4 import make_test_pattern_mp4

# (seconds, width, height, fps): two wide parts at 8 fps around a square one at 12 fps
PARTS = [(2.0, 320, 180, 8), (3.0, 240, 240, 12), (1.5, 320, 180, 8)]


@pytest.fixture
def records(tmp_path):
    made = []
    for index, (seconds, width, height, fps) in enumerate(PARTS):
        path = tmp_path / f"part-{index}.mp4"
        path.write_bytes(make_test_pattern_mp4(seconds, width, height, fps))
        rec = new_record(f"job-{index:03d}", "job", index, Scene(prompt="x"), 0.0)
        made.append(replace(rec, state=SceneState.SUCCEEDED, result={"video_path": str(path)}))
    return made


def read_back(path: Path):
    """Frames (RGB), sizes, stream duration, codec and pixel format, as PyAV reads them."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
        duration = float(stream.duration * stream.time_base)
        return {
            "frames": frames,
            "sizes": {(f.shape[1], f.shape[0]) for f in frames},
            "duration": duration,
            "codec": stream.codec_context.name,
            "pix_fmt": stream.codec_context.pix_fmt,
            "rate": stream.average_rate,
        }


def test_parts_of_different_sizes_rates_and_lengths_make_one_film(records, tmp_path):
    dest = tmp_path / "films" / "film.mp4"
    made = stitch.make_film("job", records, dest)
    film = read_back(dest)
    assert film["codec"] == "h264" and film["pix_fmt"] == "yuv420p"
    assert film["sizes"] == {(320, 180)}  # the most common size; 8 fps, the most common rate
    assert film["rate"] == 8
    assert len(film["frames"]) == 16 + 24 + 12 == made["frames"]
    assert film["duration"] == pytest.approx(2.0 + 3.0 + 1.5, abs=1 / 8)
    assert made["duration"] == pytest.approx(film["duration"], abs=0.001)
    assert [p["size"] for p in made["parts"]] == ["320x180", "240x240", "320x180"]
    assert [p["fps"] for p in made["parts"]] == [8.0, 12.0, 8.0]
    assert made["skipped"] == [] and made["path"] == str(dest)
    assert sorted(p.name for p in dest.parent.iterdir()) == ["film.mp4"]  # no temp file left


def test_the_square_part_is_pillarboxed_not_stretched(records, tmp_path):
    dest = tmp_path / "film.mp4"
    stitch.make_film("job", records, dest)
    square = read_back(dest)["frames"][16 + 12]  # the middle of the 240x240 part
    # scaled to 180x180 at x=70: black bars left and right, the picture between
    assert square[:, :66].max() < 30 and square[:, 254:].max() < 30
    assert square[:, 74:246].mean() > 60
    wide = read_back(dest)["frames"][8]  # a 320x180 part fills the frame
    assert wide[:, :8].mean() > 30 and wide[:, -8:].mean() > 30


def test_a_crossfade_shortens_each_joint_and_blends(records, tmp_path):
    plain, faded = tmp_path / "plain.mp4", tmp_path / "faded.mp4"
    stitch.make_film("job", records, plain)
    made = stitch.make_film("job", records, faded, crossfade=0.5)
    film = read_back(faded)
    assert film["sizes"] == {(320, 180)}
    assert len(film["frames"]) == 52 - 2 * 4 == made["frames"]
    assert film["duration"] == pytest.approx(6.5 - 2 * 0.5, abs=1 / 8)
    assert made["expected_duration"] == pytest.approx(5.5)
    # the second frame of the first fade: part 0 (wide bars) and part 1 (pillarboxed) mixed,
    # so its left edge is neither the wide picture nor the black bar
    cut = read_back(plain)["frames"]
    mixed = film["frames"][12 + 1][:, :60].astype(float).mean()
    assert 5 < mixed < cut[13][:, :60].astype(float).mean() - 5
    assert cut[16 + 1][:, :60].max() < 30  # where the cut shows the bar alone


def test_size_and_rate_can_be_chosen(records, tmp_path):
    dest = tmp_path / "film.mp4"
    made = stitch.make_film("job", records, dest, size="640x480", fps=24)
    film = read_back(dest)
    assert film["sizes"] == {(640, 480)} and film["rate"] == 24
    assert len(film["frames"]) == 48 + 72 + 36 == made["frames"]
    assert film["duration"] == pytest.approx(6.5, abs=1 / 24)
    wide = film["frames"][10]  # 320x180 scaled to 640x360, letterboxed at y=60
    assert wide[:56].max() < 30 and wide[424:].max() < 30 and wide[64:416].mean() > 60


def test_skip_failed_leaves_the_scene_out_and_lists_it(records, tmp_path):
    records[1] = replace(records[1], state=SceneState.FAILED, error="runway: boom", result=None)
    with pytest.raises(MissingScenesError, match="#1 job-001 failed: runway: boom"):
        stitch.make_film("job", records, tmp_path / "no.mp4")
    assert not (tmp_path / "no.mp4").exists()
    made = stitch.make_film("job", records, tmp_path / "film.mp4", skip_failed=True)
    assert [p["index"] for p in made["parts"]] == [0, 2]
    assert made["skipped"] == [
        {"index": 1, "scene_id": "job-001", "state": "failed", "reason": "runway: boom"}
    ]
    assert len(read_back(tmp_path / "film.mp4")["frames"]) == 16 + 12


def test_a_part_that_is_not_a_video_is_named(records, tmp_path):
    Path(records[2].result["video_path"]).write_bytes(b"<html>not a video</html>")
    with pytest.raises(FilmError, match=r"scene #2 \(job-002\) .*part-2.mp4: output"):
        stitch.make_film("job", records, tmp_path / "film.mp4")
    Path(records[2].result["video_path"]).unlink()
    with pytest.raises(FilmError, match="scene #2 .* cannot read it"):
        stitch.make_film("job", records, tmp_path / "film.mp4")
    assert not (tmp_path / "film.mp4").exists()


def test_a_crossfade_too_long_is_refused_before_encoding(records, tmp_path):
    with pytest.raises(FilmError, match="longer than half the shortest part"):
        stitch.make_film("job", records, tmp_path / "film.mp4", crossfade=0.8)
    assert list(tmp_path.glob("*film*")) == []


def test_a_film_that_does_not_match_its_plan_is_refused(records, tmp_path, monkeypatch):
    """The check reads the file back: a plan that says otherwise fails it, and the half-made
    film never takes the destination's name."""
    real = stitch.film.problems

    def stricter(plan, *args):
        shifted = replace_frames(plan, plan.part_frames[0] + 1)
        return real(shifted, *args)

    monkeypatch.setattr(stitch.film, "problems", stricter)
    with pytest.raises(FilmError, match="did not check out: 52 frames, planned 53"):
        stitch.make_film("job", records, tmp_path / "film.mp4")
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"part-{i}.mp4" for i in range(3)]


def replace_frames(plan, first):
    import dataclasses

    return dataclasses.replace(plan, part_frames=(first, *plan.part_frames[1:]))


def test_blend_weighs_the_new_frame():
    old = np.zeros((2, 2, 3), np.uint8)
    new = np.full((2, 2, 3), 200, np.uint8)
    assert stitch.blend(old, new, 0.25).max() == 50 and stitch.blend(old, new, 0.75).min() == 150
