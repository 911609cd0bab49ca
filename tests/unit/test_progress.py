"""What people are told about a job's progress (the pure lines of `status` and `submit --wait`),
as tables: times said relatively and on the clock, a line per scene by state, the job's summary
with its ETA, the live view's rows, and which scenes changed."""

from __future__ import annotations

from datetime import UTC

import pytest

from videogen.models import SceneState
from videogen.progress import (
    SUMMARY_EVERY,
    JobView,
    RunningRow,
    SceneView,
    changed,
    job_line,
    moment,
    running_rows,
    scene_line,
    span,
    summary_due,
)

NOW = 1_800_000_000.0
"""2027-01-15 08:00:00 UTC."""


def scene(id="j-000", state="pending", **kw):
    return {"id": id, "state": state, "backend": None, "place": None,
            "expected_start": None, "expected_finish": None} | kw  # fmt: skip


def forecast(*scenes, completion=None, backlog=0, priority=0):
    return {"job_id": "j", "priority": priority, "submitted_at": NOW - 60,
            "states": {}, "expected_completion": completion, "backlog": backlog,
            "scenes": list(scenes)}  # fmt: skip


def job(*scenes, **kw) -> JobView:
    return JobView.of(forecast(*scenes, **kw))


@pytest.mark.parametrize(
    ("seconds", "said"),
    [
        (0, "0 s"),
        (0.4, "0 s"),
        (12, "12 s"),
        (59.6, "1 min"),
        (60, "1 min"),
        (125, "2 min 5 s"),
        (3600, "1 h"),
        (3600 + 600 + 59, "1 h 10 min"),
        (-5, "0 s"),
    ],
)
def test_span(seconds, said):
    assert span(seconds) == said


@pytest.mark.parametrize(
    ("t", "said"),
    [
        (None, "unknown"),
        (NOW + 12, "in 12 s (08:00:12)"),
        (NOW + 0.2, "in 1 s (08:00:00)"),  # still to come: never "now"
        (NOW, "now (08:00:00)"),
        (NOW - 0.5, "now (07:59:59)"),
        (NOW - 42, "42 s ago (07:59:18)"),
        (NOW + 125, "in 2 min 5 s (08:02:05)"),
        (NOW + 86400, "in 24 h (2027-01-16 08:00:00)"),  # another day: with its date
    ],
)
def test_moment(t, said):
    assert moment(t, NOW, UTC) == said


@pytest.mark.parametrize(
    ("row", "line"),
    [
        (scene(place=3, expected_start=NOW + 5, expected_finish=NOW + 65),
         "j-000 pending: place 3 in the backlog; expected start in 5 s (08:00:05), "
         "finish in 1 min 5 s (08:01:05)"),
        (scene(place=1, expected_start=NOW, expected_finish=NOW + 60),
         "j-000 pending: place 1 in the backlog; expected start now (08:00:00), "
         "finish in 1 min (08:01:00)"),
        (scene(place=7),  # no backend up: nothing to promise
         "j-000 pending: place 7 in the backlog; expected start unknown, finish unknown"),
        (scene(backend="luma"),  # between backlog and backend; luma is where it last ran
         "j-000 pending"),
        (scene(state="routed", backend="runway", expected_start=NOW, expected_finish=NOW + 30),
         "j-000 routed to runway; expected finish in 30 s (08:00:30)"),
        (scene(state="running", backend="pika", expected_start=NOW - 12,
               expected_finish=NOW + 48),
         "j-000 running on pika; started 12 s ago, expected finish in 48 s (08:00:48)"),
        (scene(state="running", backend="pika", expected_finish=NOW),
         "j-000 running on pika; expected finish now (08:00:00)"),
        (scene(state="succeeded", backend="runway", expected_finish=NOW - 3),
         "j-000 succeeded on runway"),
        (scene(state="failed", backend="luma", error="content policy: refused"),
         "j-000 failed on luma: content policy: refused"),
        (scene(state="failed"), "j-000 failed"),
        (scene(state="cancelled"), "j-000 cancelled"),
    ],
)  # fmt: skip
def test_scene_line(row, line):
    assert scene_line(SceneView.of(row), NOW, UTC) == line


def test_a_scene_line_says_its_state_with_the_one_vocabulary():
    for state in SceneState:
        assert state.value in scene_line(SceneView.of(scene(state=state.value)), NOW, UTC)


@pytest.mark.parametrize(
    ("view", "line"),
    [
        (job(scene(place=4, expected_finish=NOW + 130), scene("j-001", "running", backend="x"),
             completion=NOW + 130, backlog=9),
         "job j: 0/2 done, 1 running, 1 waiting; backlog 9; ETA in 2 min 10 s (08:02:10)"),
        (job(scene(state="succeeded"), scene("j-001", "routed", backend="x"),
             scene("j-002", "failed"), completion=None, backlog=0, priority=-5),
         "job j: 2/3 done (1 succeeded, 1 failed), 0 running, 1 waiting; priority -5; "
         "backlog 0; ETA unknown"),
        (job(scene(state="succeeded"), scene("j-001", "cancelled"), completion=NOW - 4),
         "job j: 2/2 done (1 succeeded, 1 cancelled); finished 4 s ago (07:59:56)"),
    ],
)  # fmt: skip
def test_job_line(view, line):
    assert job_line(view, NOW, UTC) == line


def test_the_live_view_has_a_row_per_running_scene():
    view = job(
        scene("j-000", "running", backend="runway", expected_start=NOW - 75,
              expected_finish=NOW + 45),
        scene("j-001", "routed", backend="luma", expected_finish=NOW + 90),
        scene("j-002", "running", backend="pika", expected_finish=NOW + 5),
        scene("j-003", "succeeded", backend="pika"),
    )  # fmt: skip
    assert running_rows(view, NOW, UTC) == [
        RunningRow("j-000", "runway", "1 min 15 s", "in 45 s (08:00:45)"),
        RunningRow("j-002", "pika", "-", "in 5 s (08:00:05)"),
    ]


def test_a_view_counts_its_scenes():
    view = job(scene(), scene("j-001", "succeeded"), scene("j-002", "failed"))
    assert (view.done, view.total, view.finished) == (2, 3, False)
    assert job(scene(state="succeeded")).finished
    assert JobView.of(forecast()).finished  # an empty job waits for nothing


def test_changed_scenes_are_those_with_a_new_state_or_backend():
    first = job(scene("a", place=2), scene("b", place=3), scene("c", "routed", backend="luma"))
    assert [s.id for s in changed(None, first)] == ["a", "b", "c"]  # all, the first time
    moved = job(
        scene("a", "routed", backend="runway"),  # new state
        scene("b", place=2, expected_start=NOW),  # only its place and times moved
        scene("c", "routed", backend="pika"),  # re-routed elsewhere
    )
    assert [s.id for s in changed(first, moved)] == ["a", "c"]
    assert changed(moved, moved) == []


@pytest.mark.parametrize(
    ("last", "now", "due"),
    [
        (None, NOW, True),
        (NOW, NOW, False),
        (NOW, NOW + SUMMARY_EVERY - 0.1, False),
        (NOW, NOW + SUMMARY_EVERY, True),
    ],
)
def test_summary_due(last, now, due):
    assert summary_due(last, now) is due
