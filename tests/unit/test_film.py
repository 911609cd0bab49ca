"""The film plan (pure): which scenes, in what order, at what size and rate, how each part is
fitted, how long a crossfade may be, and how frames are resampled and joined."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest

from videogen import film
from videogen.errors import FilmError, MissingScenesError, UnknownJobError
from videogen.models import Scene, SceneState, Size
from videogen.record import new_record, replace

S, F, C, G = SceneState.SUCCEEDED, SceneState.FAILED, SceneState.CANCELLED, SceneState.RUNNING


def record(index, state=S, error=None, path="auto"):
    rec = new_record(f"job-{index:03d}", "job", index, Scene(prompt="x"), 0.0)
    result = {"video_path": f"/out/{index}.mp4"} if path == "auto" else path
    return replace(rec, state=state, error=error, result=result if state is S else None)


def part(index, width=320, height=180, fps=8, duration=5.0):
    return film.Part(
        index, f"job-{index:03d}", Path(f"/out/{index}.mp4"), Size(width, height),
        Fraction(fps), duration,
    )  # fmt: skip


# -- which scenes ------------------------------------------------------------------------------


def test_succeeded_scenes_come_in_index_order():
    sources, missing = film.choose("job", [record(2), record(0), record(1)], skip_failed=False)
    assert [s.index for s in sources] == [0, 1, 2]
    assert [s.path for s in sources] == [Path("/out/0.mp4"), Path("/out/1.mp4"), Path("/out/2.mp4")]
    assert missing == []


def test_missing_scenes_are_refused_with_each_listed():
    records = [record(0), record(1, F, "luma: SAFETY.INPUT"), record(2, C), record(3, G)]
    with pytest.raises(MissingScenesError) as caught:
        film.choose("job", records, skip_failed=False)
    assert caught.value.missing == [
        (1, "job-001", "failed", "luma: SAFETY.INPUT"),
        (2, "job-002", "cancelled", "no reason recorded"),
        (3, "job-003", "running", "not finished yet"),
    ]
    assert not caught.value.none_left and caught.value.job_id == "job"
    text = str(caught.value)
    assert "#1 job-001 failed: luma: SAFETY.INPUT" in text and "--skip-failed" in text


def test_skip_failed_makes_the_film_of_the_others_and_lists_them():
    records = [record(0), record(1, F, "boom"), record(2)]
    sources, missing = film.choose("job", records, skip_failed=True)
    assert [s.index for s in sources] == [0, 2]
    assert missing == [film.Missing(1, "job-001", "failed", "boom")]


def test_a_succeeded_scene_without_a_file_is_missing():
    _, missing = film.choose("job", [record(0), record(1, path={})], skip_failed=True)
    assert missing == [film.Missing(1, "job-001", "succeeded", "no video file recorded")]


@pytest.mark.parametrize("skip", [False, True])
def test_no_succeeded_scene_is_an_error_even_with_skip_failed(skip):
    with pytest.raises(MissingScenesError) as caught:
        film.choose("job", [record(0, F, "x"), record(1, C)], skip_failed=skip)
    assert caught.value.none_left and "nothing to stitch" in str(caught.value)


def test_an_unknown_job_is_named():
    with pytest.raises(UnknownJobError, match="no job 'nope'"):
        film.choose("nope", [], skip_failed=True)


# -- size and rate -----------------------------------------------------------------------------

SIZES = [
    # parts' sizes, the film's
    ([(320, 180), (320, 180), (1280, 720)], (320, 180)),  # the most common
    ([(320, 180), (1280, 720)], (1280, 720)),  # a tie: the largest
    ([(576, 1024), (1024, 576)], (1024, 576)),  # same area: the wider
    ([(321, 181)], (320, 180)),  # made even
]


@pytest.mark.parametrize(("sizes", "expected"), SIZES)
def test_target_size(sizes, expected):
    assert film.target_size([Size(*s) for s in sizes]) == Size(*expected)


@pytest.mark.parametrize(
    ("rates", "expected"),
    [([8, 8, 24], 8), ([8, 24], 24), ([Fraction(30000, 1001), 24, Fraction(30000, 1001)],
                                       Fraction(30000, 1001))],
)  # fmt: skip
def test_target_fps(rates, expected):
    assert film.target_fps([Fraction(r) for r in rates]) == expected


FITS = [
    # source, target, (scaled width, height, x, y)
    ((320, 180), (320, 180), (320, 180, 0, 0)),  # same size: untouched
    ((1280, 720), (320, 180), (320, 180, 0, 0)),  # same shape: scaled down
    ((240, 240), (320, 180), (180, 180, 70, 0)),  # square in wide: pillarbox
    ((1280, 720), (320, 240), (320, 180, 0, 30)),  # wide in 4:3: letterbox
    ((100, 100), (640, 360), (360, 360, 140, 0)),  # scaled up to fit
    ((720, 1280), (1280, 720), (404, 720, 438, 0)),  # 405 px made even; offset even
    ((1024, 576), (320, 180), (320, 180, 0, 0)),
]


@pytest.mark.parametrize(("source", "target", "expected"), FITS)
def test_fit_scales_to_fit_and_pads_never_stretches(source, target, expected):
    got = film.fit(Size(*source), Size(*target))
    assert (got.width, got.height, got.x, got.y) == expected
    assert got.x + got.width <= target[0] and got.y + got.height <= target[1]
    assert got.x % 2 == 0 and got.y % 2 == 0 and got.width % 2 == 0 and got.height % 2 == 0
    # the aspect ratio is kept to within the one pixel of rounding to even sides
    assert got.width / got.height == pytest.approx(source[0] / source[1], rel=0.03)


def test_a_sliver_keeps_two_pixels():
    assert film.fit(Size(1000, 10), Size(320, 180)) == film.Fit(320, 2, 0, 88)


@pytest.mark.parametrize(
    ("size", "fps", "crossfade", "message"),
    [
        ("big", None, 0.0, "size: resolution 'big' is not WIDTHxHEIGHT"),
        ("641x360", None, 0.0, "odd side"),
        ((640, 361), None, 0.0, "odd side"),
        (None, 0, 0.0, "frame rate 0 is not between 1 and 120"),
        (None, 500, 0.0, "frame rate 500"),
        (None, None, -1.0, "crossfade -1.0 s is negative"),
    ],
)
def test_bad_options_are_refused_before_any_file(size, fps, crossfade, message):
    with pytest.raises(FilmError, match=message):
        film.parse_options("job", size, fps, crossfade)


def test_options_as_the_plan_takes_them():
    assert film.parse_options("job", "640x360", 29.97, 0.5) == (
        Size(640, 360),
        Fraction(2997, 100),  # not the float's 53-bit fraction
    )
    assert film.parse_options("job", (1280, 720), 24, 0.0) == (Size(1280, 720), Fraction(24))
    assert film.parse_options("job", None, None, 0.0) == (None, None)


# -- the plan ----------------------------------------------------------------------------------


def test_plan_defaults_to_the_parts_most_common_size_and_rate():
    parts = [part(0), part(1, 240, 240, 12, 3.0), part(2, duration=1.5)]
    plan = film.make_plan("job", parts)
    assert plan.size == Size(320, 180) and plan.fps == 8
    assert plan.part_frames == (40, 24, 12) and plan.frames == 76
    assert plan.expected_duration == pytest.approx(9.5)
    assert plan.fits[1] == film.Fit(180, 180, 70, 0)


def test_plan_overrides_and_crossfade_frames():
    parts = [part(0, duration=2.0), part(1, duration=3.0), part(2, duration=1.0)]
    plan = film.make_plan("job", parts, size=Size(640, 480), fps=Fraction(24), crossfade=0.5)
    assert plan.size == Size(640, 480) and plan.fps == 24
    assert plan.part_frames == (48, 72, 24) and plan.fade_frames == 12
    assert plan.frames == 48 + 72 + 24 - 2 * 12
    assert plan.expected_duration == pytest.approx(6.0 - 2 * 0.5)
    assert plan.frames / plan.fps == pytest.approx(plan.expected_duration)


def test_a_crossfade_may_be_half_the_shortest_part_and_no_more():
    parts = [part(0, duration=5.0), part(1, duration=2.0)]
    assert film.make_plan("job", parts, crossfade=1.0).fade_frames == 8
    with pytest.raises(FilmError, match=r"longer than half the shortest part \(#1, 2.00 s\)"):
        film.make_plan("job", parts, crossfade=1.01)


def test_a_crossfade_is_bounded_in_frames_too():
    # 0.6 s is under half of 1.4 s, but at 1 fps that part is 1 frame and the crossfade
    # rounds to 1 frame: more than half of it
    parts = [part(0, fps=1, duration=2.0), part(1, fps=1, duration=1.4)]
    with pytest.raises(FilmError, match="longer than half"):
        film.make_plan("job", parts, crossfade=0.6)


def test_one_part_has_no_joint_to_fade():
    plan = film.make_plan("job", [part(0, duration=2.0)], crossfade=1.5)
    assert plan.fade_frames == 0 and plan.frames == 16
    assert plan.expected_duration == pytest.approx(2.0)


def test_no_parts_is_an_error():
    with pytest.raises(FilmError, match="no parts"):
        film.make_plan("job", [])


def test_the_tolerance_is_half_a_frame_per_rounding_plus_one_frame():
    plan = film.make_plan("job", [part(0), part(1), part(2)])
    assert plan.tolerance == pytest.approx((1 + 5 / 2) / 8)


# -- resampling and joining --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("times", "count", "fps", "expected"),
    [
        ([0, 0.5, 1.0, 1.5], 4, 2, ["f0", "f1", "f2", "f3"]),  # same rate
        ([0, 0.5, 1.0], 6, 4, ["f0", "f0", "f1", "f1", "f2", "f2"]),  # up: repeats
        ([0, 0.25, 0.5, 0.75, 1.0, 1.25], 3, 2, ["f0", "f2", "f4"]),  # down: drops
        ([0, 0.5], 4, 2, ["f0", "f1", "f1", "f1"]),  # short: the last repeats
        ([10.0, 10.5, 11.0], 3, 2, ["f0", "f1", "f2"]),  # times count from the first frame
        ([], 3, 2, []),
    ],
)
def test_pick_resamples(times, count, fps, expected):
    frames = [(t, f"f{i}") for i, t in enumerate(times)]
    assert list(film.pick(frames, count, Fraction(fps))) == expected


def lerp(old, new, weight):
    return old * (1 - weight) + new * weight


def test_join_without_a_crossfade_plays_parts_one_after_another():
    assert list(film.join([[1, 1], [2, 2, 2], [3]], 0, lerp)) == [1, 1, 2, 2, 2, 3]


def test_join_blends_each_joint_and_shortens_it():
    got = list(film.join([[0, 0, 0, 0], [3, 3, 3, 3, 3], [6, 6, 6]], 2, lerp))
    assert got == pytest.approx([0, 0, 1, 2, 3, 4, 5, 6])
    assert len(got) == 4 + 5 + 3 - 2 * 2


def test_fade_weights_rise_strictly_between_zero_and_one():
    assert film.fade_weights(3) == [0.25, 0.5, 0.75]
    assert film.fade_weights(0) == []


def test_join_takes_parts_lazily():
    opened = []

    def part_frames(value):
        opened.append(value)
        yield from [value] * 3

    frames = film.join((part_frames(v) for v in (1, 2)), 1, lerp)
    assert next(frames) == 1 and opened == [1]


# -- the check ---------------------------------------------------------------------------------


def test_problems_of_a_made_film():
    plan = film.make_plan("job", [part(0, duration=2.0), part(1, duration=3.0)], crossfade=0.5)
    good = {Size(320, 180)}
    assert film.problems(plan, 320, 180, 36, 4.5, good) == []
    assert film.problems(plan, 320, 180, 36, 4.5, {Size(320, 180), Size(240, 240)}) == [
        "frame sizes 240x240, 320x180, expected only 320x180"
    ]
    assert film.problems(plan, 640, 360, 36, 4.5, {Size(640, 360)})[0].startswith("frame sizes")
    assert film.problems(plan, 320, 180, 35, 4.5, good) == ["35 frames, planned 36"]
    assert "expected 4.500 s" in film.problems(plan, 320, 180, 36, 5.0, good)[0]


def test_report_lists_parts_and_skipped():
    plan = film.make_plan(
        "job", [part(0), part(2, 240, 240, 12, 3.0)], [film.Missing(1, "job-001", "failed", "x")]
    )
    made = film.report(plan, Path("/f.mp4"), 8.0, 64)
    assert made["path"] == "/f.mp4" and made["width"] == 320
    assert made["fps"] == 12.0  # 8 and 12 fps, one part each: the higher
    assert [p["index"] for p in made["parts"]] == [0, 2]
    assert made["parts"][1]["size"] == "240x240"
    assert made["skipped"] == [
        {"index": 1, "scene_id": "job-001", "state": "failed", "reason": "x"}
    ]
