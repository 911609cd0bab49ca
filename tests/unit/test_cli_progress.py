"""`submit --wait`'s edge over the pure lines: what it prints as a job's forecast changes, in
plain output and in the live view, when it stops, and which view a run gets. A scripted
generator and an injected clock stand in for the stack (the pipeline test runs the real one)."""

from __future__ import annotations

import io
import re

import click
import pytest
from rich.console import Console

from videogen.cli_progress import (
    LiveView,
    PlainView,
    QuietView,
    choose_view,
    follow,
    render,
)
from videogen.progress import SUMMARY_EVERY, JobView, SceneView, job_line, scene_line

NOW = 1_800_000_000.0
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def scene(id, state, **kw):
    return {"id": id, "state": state, "backend": None, "error": None, "place": None,
            "expected_start": None, "expected_finish": None} | kw  # fmt: skip


def forecast(*scenes, completion=NOW + 100):
    return {"job_id": "j", "priority": 0, "submitted_at": NOW, "states": {},
            "expected_completion": completion, "backlog": 2, "scenes": list(scenes)}  # fmt: skip


WAITING = forecast(
    scene("j-000", "pending", place=1, expected_start=NOW, expected_finish=NOW + 60),
    scene("j-001", "pending", place=2, expected_start=NOW + 60, expected_finish=NOW + 120),
)
ONE_RUNS = forecast(
    scene("j-000", "running", backend="runway", expected_start=NOW, expected_finish=NOW + 60),
    scene("j-001", "pending", place=1, expected_start=NOW + 55, expected_finish=NOW + 115),
)
DONE = forecast(
    scene("j-000", "succeeded", backend="runway", expected_finish=NOW + 50),
    scene("j-001", "failed", backend="luma", error="refused"),
    completion=NOW + 50,
)
RESULTS = [{"index": 0, "success": True}, {"index": 1, "success": False}]


class Script:
    """A generator whose job's forecast is the next of ``forecasts`` at each read (the last
    one for good), and a clock that only the follower's sleep moves."""

    def __init__(self, *forecasts, step=1.0):
        self.forecasts = list(forecasts)
        self.step = step
        self.now = NOW
        self.reads = 0

    def job_forecast(self, job_id):
        assert job_id == "j"
        self.reads += 1
        return self.forecasts.pop(0) if len(self.forecasts) > 1 else self.forecasts[0]

    def results(self, job_id):
        return RESULTS

    def clock(self):
        return self.now

    def sleep(self, seconds):
        self.now += self.step


def run(script, view, timeout=None):
    return follow(script, "j", timeout, view, clock=script.clock, sleep=script.sleep)


def line(row, now):
    return scene_line(SceneView.of(row), now)


def test_plain_output_is_a_line_per_state_change_and_a_summary_every_few_seconds():
    printed: list[str] = []
    script = Script(WAITING, WAITING, ONE_RUNS, ONE_RUNS, DONE, step=4.0)
    assert run(script, PlainView(printed.append)) == RESULTS
    at = [NOW + i * script.step for i in range(5)]
    assert printed == [
        line(WAITING["scenes"][0], at[0]),
        line(WAITING["scenes"][1], at[0]),
        job_line(JobView.of(WAITING), at[0]),  # the first read: a summary with the ETA
        line(ONE_RUNS["scenes"][0], at[2]),  # j-001 only moved up: no line
        job_line(JobView.of(ONE_RUNS), at[3]),  # SUMMARY_EVERY after the first
        line(DONE["scenes"][0], at[4]),
        line(DONE["scenes"][1], at[4]),
        job_line(JobView.of(DONE), at[4]),  # and at the end, however soon
    ]
    assert SUMMARY_EVERY == 10.0
    assert "ETA in 1 min 40 s" in printed[2]
    assert printed[-2].endswith("failed on luma: refused")
    assert "\x1b" not in "".join(printed)


def test_waiting_stops_at_the_timeout_with_one_line():
    script = Script(WAITING)
    with pytest.raises(click.ClickException, match="job j is still running after 2.5 s"):
        run(script, QuietView(), timeout=2.5)
    assert script.reads == 4  # read at +0, +1, +2, +3 s; over the deadline at the last


def test_a_finished_job_is_read_once_and_its_results_returned():
    script = Script(DONE)
    assert run(script, QuietView()) == RESULTS
    assert script.reads == 1


def terminal(width=100) -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, width=width, force_terminal=True, color_system="standard"), out


def plain_text(console: Console, renderable) -> str:
    """What the terminal shows: the drawing without its colours."""
    with console.capture() as capture:
        console.print(renderable)
    return ANSI.sub("", capture.get())


def test_the_live_view_shows_the_bar_with_its_eta_and_a_row_per_running_scene():
    console, _ = terminal()
    text = plain_text(console, render(JobView.of(ONE_RUNS), NOW + 20))
    bar, load, header, row = text.splitlines()[:4]
    assert bar.startswith("job j ") and "0/2" in bar and "ETA in 1 min 20 s" in bar
    assert bar.count("━") == 30  # rich's bar, all of it still to do
    assert load == "1 running, 1 waiting; backlog 2"
    assert header.split() == ["scene", "backend", "elapsed", "expected", "finish"]
    assert row.split()[:4] == ["j-000", "runway", "20", "s"] and "in 40 s" in row


def test_the_live_view_of_a_finished_job_has_no_running_table():
    console, _ = terminal()
    text = plain_text(console, render(JobView.of(DONE), NOW + 60))
    assert "2/2" in text and "finished 10 s ago" in text
    assert "expected finish" not in text and "waiting" not in text


def test_the_live_view_prints_each_finished_scene_above_it():
    console, out = terminal()
    script = Script(ONE_RUNS, DONE)
    assert run(script, LiveView(console)) == RESULTS
    text = ANSI.sub("", out.getvalue())
    assert "j-000 succeeded on runway" in text and "j-001 failed on luma: refused" in text
    assert "2/2" in text  # the last drawing stays on the screen
    assert "j-001 pending" not in text  # only finished scenes get a line of their own


@pytest.mark.parametrize(
    ("quiet", "is_terminal", "kind"),
    [
        (True, True, QuietView),
        (True, False, QuietView),
        (False, True, LiveView),
        (False, False, PlainView),
    ],
)
def test_which_view(quiet, is_terminal, kind):
    assert type(choose_view(quiet, is_terminal)) is kind
