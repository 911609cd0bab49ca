"""``videogen submit --wait``: follow a job to its end, showing its progress.

A thin edge over :mod:`videogen.progress`: poll the job's forecast, and draw what that module
says, as a live ``rich`` view on a terminal, or as plain lines (one per scene state change and
a periodic job summary, no escape codes) into a file or a pipe.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol

import click

from .progress import JobView, changed, eta, job_line, load, running_rows, scene_line, summary_due

if TYPE_CHECKING:
    from rich.console import Console, RenderableType
    from rich.live import Live

POLL_SECONDS = 0.3
"""Seconds between two reads of the job's forecast (a few Redis round trips each)."""
LIVE_REFRESH = 4
"""Redraws per second of the live view (its content changes at each poll)."""


class View(Protocol):
    def __enter__(self) -> View: ...

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    def update(self, job: JobView, now: float) -> None: ...


def follow(
    generator: Any,
    job_id: str,
    timeout: float | None,
    view: View,
    *,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
) -> list[dict[str, Any]]:
    """Show the job in ``view`` until every scene is finished; returns the results."""
    deadline = None if timeout is None else clock() + timeout
    with view:
        while True:
            job = JobView.of(generator.job_forecast(job_id))
            now = clock()
            view.update(job, now)
            if job.finished:
                break
            if deadline is not None and now > deadline:
                raise click.ClickException(f"job {job_id} is still running after {timeout:g} s")
            sleep(POLL_SECONDS)
    return list(generator.results(job_id))


def choose_view(quiet: bool, terminal: bool) -> View:
    """Nothing for ``--json``; the live view on a terminal; plain lines elsewhere."""
    if quiet:
        return QuietView()
    return LiveView() if terminal else PlainView()


class QuietView:
    def __enter__(self) -> QuietView:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def update(self, job: JobView, now: float) -> None:
        return None


class PlainView:
    """A line per scene state change, and the job's summary every ``SUMMARY_EVERY`` seconds
    (and at the end): readable in a log, greppable, no escape codes."""

    def __init__(self, echo: Callable[[str], None] = click.echo) -> None:
        self.echo = echo
        self.before: JobView | None = None
        self.last_summary: float | None = None

    def __enter__(self) -> PlainView:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def update(self, job: JobView, now: float) -> None:
        for scene in changed(self.before, job):
            self.echo(scene_line(scene, now))
        self.before = job
        if job.finished or summary_due(self.last_summary, now):
            self.echo(job_line(job, now))
            self.last_summary = now


class LiveView:
    """A ``rich`` live view: the job's bar with its ETA, a row per running scene; a finished
    scene's line is printed above it, so that the terminal keeps the job's story."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console
        """Where to draw (rich's own console, on stdout, when ``None``)."""
        self.before: JobView | None = None
        self.live: Live | None = None

    def __enter__(self) -> LiveView:
        from rich.live import Live

        self.live = Live(console=self.console, refresh_per_second=LIVE_REFRESH, transient=False)
        self.live.__enter__()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.live is not None:
            self.live.__exit__(kind, error, tb)

    def update(self, job: JobView, now: float) -> None:
        from rich.text import Text

        assert self.live is not None, "update() outside `with`"
        for scene in changed(self.before, job):
            if scene.state.terminal:
                self.live.console.print(Text(scene_line(scene, now)))
        self.before = job
        self.live.update(render(job, now), refresh=True)  # at once: a job can be quick


def render(job: JobView, now: float) -> RenderableType:
    """The live view of one job: its bar, done of total and ETA, then its running scenes."""
    from rich.console import Group
    from rich.progress_bar import ProgressBar
    from rich.table import Table
    from rich.text import Text

    bar = Table.grid(padding=(0, 1))
    bar.add_row(
        Text(f"job {job.id}"),
        ProgressBar(total=job.total or 1, completed=job.done, width=30),
        Text(f"{job.done}/{job.total}"),
        Text(eta(job, now)),
    )
    parts: list[RenderableType] = [bar]
    if not job.finished:
        parts.append(Text(load(job)))
    rows = running_rows(job, now)
    if rows:
        table = Table("scene", "backend", "elapsed", "expected finish", box=None)
        for row in rows:
            table.add_row(row.scene, row.backend, row.elapsed, row.finish)
        parts.append(table)
    return Group(*parts)
