"""One film per job, the plan (pure): which scenes, in what order, at what size and rate.

Scenes come back from backends that each snap to their own sizes, lengths and frame rates, so
a film has to pick one frame size and one rate and bring every part to them. This module
decides everything and touches no file: :func:`choose` picks the succeeded scenes in index
order (and lists the others), :func:`make_plan` picks the film's size and rate, fits each
part into it (scaled to fit with its aspect ratio kept, then letterboxed or pillarboxed:
never stretched) and bounds the crossfade; :func:`pick` and :func:`join` lay out the frames
whatever they are, so the tests check the sequencing with numbers. :mod:`videogen.stitch` is
the PyAV edge that carries the plan out.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, TypeVar

from .errors import FilmError, MissingScenesError, UnknownJobError
from .models import SceneState, Size, parse_size
from .record import SceneRecord

T = TypeVar("T")

MAX_FILM_FPS = 120
"""Frame rates above this are refused: no backend makes them, and a typo (``--fps 240``)
would multiply the encoding work for nothing."""
FPS_DENOMINATOR = 1001
"""Rates are kept as fractions no finer than this: a file's 30000/1001 stays exact, and
``--fps 29.97`` becomes 2997/100, not the float's 53-bit fraction (an absurd time base)."""


@dataclass(frozen=True)
class Missing:
    """A scene left out of the film, and why."""

    index: int
    scene_id: str
    state: str
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {"index": self.index, "scene_id": self.scene_id, "state": self.state,
                "reason": self.reason}  # fmt: skip


@dataclass(frozen=True)
class Source:
    """A succeeded scene's video file."""

    index: int
    scene_id: str
    path: Path


@dataclass(frozen=True)
class Part:
    """A source as its file says: frame size, frame rate and length (seconds)."""

    index: int
    scene_id: str
    path: Path
    size: Size
    fps: Fraction
    duration: float


@dataclass(frozen=True)
class Fit:
    """Where a part's frames go on the film's canvas: scaled to ``width`` x ``height`` and
    placed at ``x``, ``y``; the rest of the canvas is black."""

    width: int
    height: int
    x: int
    y: int


@dataclass(frozen=True)
class FilmPlan:
    """Everything the edge needs to make and check a film."""

    job_id: str
    parts: tuple[Part, ...]
    size: Size
    fps: Fraction
    crossfade: float
    """Seconds each part blends into the next (as asked)."""
    fade_frames: int
    """The crossfade in whole frames at the film's rate (what is really blended)."""
    part_frames: tuple[int, ...]
    """Each part's length in frames at the film's rate."""
    missing: tuple[Missing, ...] = ()

    @property
    def fits(self) -> tuple[Fit, ...]:
        return tuple(fit(part.size, self.size) for part in self.parts)

    @property
    def frames(self) -> int:
        """The film's frames: every part's, less one crossfade per joint."""
        return sum(self.part_frames) - self.fade_frames * (len(self.parts) - 1)

    @property
    def expected_duration(self) -> float:
        """The sum of the parts' lengths less one crossfade per joint."""
        joints = len(self.parts) - 1
        return sum(part.duration for part in self.parts) - self.crossfade * joints

    @property
    def tolerance(self) -> float:
        """How far the film's length may be from :attr:`expected_duration`: every part's
        length and every crossfade is rounded to whole frames (half a frame each at most),
        plus one frame of container slack."""
        roundings = len(self.parts) + len(self.parts) - 1
        return float((1 + Fraction(roundings, 2)) / self.fps)


def choose(
    job_id: str, records: Sequence[SceneRecord], skip_failed: bool
) -> tuple[list[Source], list[Missing]]:
    """The job's succeeded scenes in index order, and the others.

    Raises:
        UnknownJobError: the job has no scenes (no such job).
        MissingScenesError: some scene did not succeed and ``skip_failed`` is false, or none
            succeeded.
    """
    if not records:
        raise UnknownJobError(job_id)
    sources: list[Source] = []
    missing: list[Missing] = []
    for record in sorted(records, key=lambda r: r.index):
        path = (record.result or {}).get("video_path")
        if record.state is SceneState.SUCCEEDED and path:
            sources.append(Source(record.index, record.id, Path(path)))
        else:
            missing.append(Missing(record.index, record.id, record.state.value, _reason(record)))
    if not sources or (missing and not skip_failed):
        rows = [(m.index, m.scene_id, m.state, m.reason) for m in missing]
        raise MissingScenesError(job_id, rows, none_left=not sources)
    return sources, missing


def _reason(record: SceneRecord) -> str:
    if not record.state.terminal:
        return "not finished yet"
    if record.state is SceneState.SUCCEEDED:
        return "no video file recorded"
    return record.error or "no reason recorded"


def parse_options(
    job_id: str,
    size: Size | tuple[int, int] | str | None,
    fps: float | Fraction | None,
    crossfade: float,
) -> tuple[Size | None, Fraction | None]:
    """``size`` and ``fps`` as the plan takes them, checked before any file is opened.

    Raises:
        FilmError: a size that is not WxH or is odd (H.264 in yuv420p needs even sides), a
            frame rate outside 1..120, or a negative crossfade.
    """
    if crossfade < 0:
        raise FilmError(job_id, f"crossfade {crossfade} s is negative")
    return _size(job_id, size), _fps(job_id, fps)


def _size(job_id: str, size: Size | tuple[int, int] | str | None) -> Size | None:
    if size is None:
        return None
    try:
        parsed = parse_size(size) if isinstance(size, str) else parse_size(f"{size[0]}x{size[1]}")
    except ValueError as error:
        raise FilmError(job_id, f"size: {error}") from None
    if parsed.width % 2 or parsed.height % 2:
        raise FilmError(job_id, f"size {parsed} has an odd side; H.264 (yuv420p) needs even")
    return parsed


def _fps(job_id: str, fps: float | Fraction | None) -> Fraction | None:
    if fps is None:
        return None
    if not 1 <= fps <= MAX_FILM_FPS:
        raise FilmError(job_id, f"frame rate {fps} is not between 1 and {MAX_FILM_FPS}")
    return Fraction(fps).limit_denominator(FPS_DENOMINATOR)


def target_size(sizes: Sequence[Size]) -> Size:
    """The most common size among the parts (the largest on a tie), made even."""
    counts = Counter(sizes)
    best = max(counts, key=lambda s: (counts[s], s.width * s.height, s.width))
    return Size(_even(best.width), _even(best.height))


def target_fps(rates: Sequence[Fraction]) -> Fraction:
    """The most common frame rate among the parts (the highest on a tie)."""
    counts = Counter(rates)
    return max(counts, key=lambda r: (counts[r], r))


def fit(source: Size, target: Size) -> Fit:
    """Scale ``source`` to fit ``target`` with its aspect ratio kept, and centre it: bars
    above and below (letterbox) or left and right (pillarbox), never a stretch. Sides and
    offsets are even, so the chroma planes of yuv420p line up with the picture."""
    scale = min(Fraction(target.width, source.width), Fraction(target.height, source.height))
    width = min(target.width, _even(round(source.width * scale)))
    height = min(target.height, _even(round(source.height * scale)))
    x = (target.width - width) // 2
    y = (target.height - height) // 2
    return Fit(width, height, x - x % 2, y - y % 2)


def _even(value: int) -> int:
    """Round down to an even number of at least 2."""
    return max(2, value - value % 2)


def frames_at(duration: float, fps: Fraction) -> int:
    """A part's length in whole frames at the film's rate (at least one)."""
    return max(1, round(duration * fps))


def make_plan(
    job_id: str,
    parts: Sequence[Part],
    missing: Sequence[Missing] = (),
    *,
    size: Size | None = None,
    fps: Fraction | None = None,
    crossfade: float = 0.0,
) -> FilmPlan:
    """The film of ``parts`` (in the order given): its size (``size``, else
    :func:`target_size`), rate (``fps``, else :func:`target_fps`) and crossfade.

    Raises:
        FilmError: no parts, or a crossfade longer than half the shortest part (a part in
            the middle fades in and out: the two must not overlap).
    """
    if not parts:
        raise FilmError(job_id, "no parts to stitch")
    size = size or target_size([p.size for p in parts])
    fps = fps or target_fps([p.fps for p in parts])
    counts = tuple(frames_at(p.duration, fps) for p in parts)
    fade = round(crossfade * fps) if len(parts) > 1 else 0
    shortest = min(parts, key=lambda p: p.duration)
    if len(parts) > 1 and (crossfade > shortest.duration / 2 or fade > min(counts) // 2):
        raise FilmError(
            job_id,
            f"crossfade {crossfade} s is longer than half the shortest part "
            f"(#{shortest.index}, {shortest.duration:.2f} s)",
        )
    return FilmPlan(job_id, tuple(parts), size, fps, crossfade, fade, counts, tuple(missing))


def pick(frames: Iterable[tuple[float, T]], count: int, fps: Fraction) -> Iterator[T]:
    """Resample ``(time, frame)`` pairs to ``count`` frames at ``fps``: output frame ``k``
    shows the source frame on screen at ``k / fps`` after the first one (frames repeat when
    the rate goes up, are dropped when it goes down; the last repeats if the source is
    short)."""
    source = iter(frames)
    first = next(source, None)
    if first is None:
        return
    start, current = first
    upcoming = next(source, None)
    for k in range(count):
        due = start + float(k / fps) + 1e-6  # a frame stamped exactly on time is due
        while upcoming is not None and upcoming[0] <= due:
            current = upcoming[1]
            upcoming = next(source, None)
        yield current


def fade_weights(frames: int) -> list[float]:
    """The next part's share of each crossfade frame: strictly between 0 and 1, rising, so
    that neither part's own frame is repeated as a blend."""
    return [(j + 1) / (frames + 1) for j in range(frames)]


def join(parts: Iterable[Iterable[T]], fade: int, blend: Callable[[T, T, float], T]) -> Iterator[T]:
    """The parts' frames one after another; with ``fade`` > 0 the last ``fade`` frames of
    each part are blended with the first ``fade`` of the next (``blend(old, new, weight of
    new)``), so each joint is ``fade`` frames shorter. Parts are taken lazily, one at a
    time: only ``fade`` frames are held."""
    weights = fade_weights(fade)
    tail: list[T] = []
    queue = list(parts)
    for i, frames in enumerate(queue):
        keep = fade if i < len(queue) - 1 else 0
        held: deque[T] = deque()
        for j, frame in enumerate(frames):
            held.append(blend(tail[j], frame, weights[j]) if j < len(tail) else frame)
            if len(held) > keep:
                yield held.popleft()
        tail = list(held)


def problems(
    plan: FilmPlan, width: int, height: int, frames: int, duration: float, sizes: set[Size]
) -> list[str]:
    """What is wrong with a made film, as checked against its plan (empty when nothing)."""
    found = []
    if (width, height) != plan.size or sizes != {plan.size}:
        seen = ", ".join(str(s) for s in sorted(sizes)) or f"{width}x{height}"
        found.append(f"frame sizes {seen}, expected only {plan.size}")
    if frames != plan.frames:
        found.append(f"{frames} frames, planned {plan.frames}")
    if abs(duration - plan.expected_duration) > plan.tolerance:
        found.append(
            f"{duration:.3f} s long, expected {plan.expected_duration:.3f} s (the parts less "
            f"the crossfades) within {plan.tolerance:.3f} s"
        )
    return found


def report(plan: FilmPlan, path: Path, duration: float, frames: int) -> dict[str, Any]:
    """What was made, for people and scripts (``videogen film --json``)."""
    return {
        "job_id": plan.job_id,
        "path": str(path),
        "duration": round(duration, 3),
        "expected_duration": round(plan.expected_duration, 3),
        "frames": frames,
        "width": plan.size.width,
        "height": plan.size.height,
        "fps": float(plan.fps),
        "crossfade": plan.crossfade,
        "parts": [
            {
                "index": p.index,
                "scene_id": p.scene_id,
                "path": str(p.path),
                "size": str(p.size),
                "fps": float(p.fps),
                "duration": p.duration,
            }
            for p in plan.parts
        ],  # fmt: skip
        "skipped": [m.as_dict() for m in plan.missing],
    }
