"""One film per job, the edge (PyAV and numpy): read each part, scale and pad its frames,
crossfade, encode one H.264 MP4, check it like every output.

:mod:`videogen.film` decides everything; this module only carries the plan out. Frames are
decoded one part at a time and only a crossfade's worth is held, so a long job does not
need its whole film in memory. The film is written to a temporary file beside the
destination and renamed into place only once it passed its check: a failed run never
leaves a half film under the asked name.

Audio is dropped: the sandboxes' scenes have none, and vendors' soundtracks (where there
are any) would need their own resampling and crossfades.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator, Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
from av.video.stream import VideoStream

from . import film
from .errors import FilmError, InvalidOutputError
from .media import probe_video
from .models import Size
from .record import SceneRecord

FILM_CODEC = "libx264"
FILM_OPTIONS = {"preset": "veryfast", "crf": "20", "bf": "0"}
"""A quick, visually clean encode. No B-frames: the MP4's stream duration is then exactly
its frames over the rate, which the check compares with the plan."""
CHECKER = "film"
"""The name :func:`videogen.media.probe_video` gives the film in its messages."""

Image = np.ndarray[Any, np.dtype[np.uint8]]


def make_film(
    job_id: str,
    records: Sequence[SceneRecord],
    dest: Path,
    *,
    crossfade: float = 0.0,
    skip_failed: bool = False,
    size: Size | tuple[int, int] | str | None = None,
    fps: float | Fraction | None = None,
) -> dict[str, Any]:
    """Stitch the job's succeeded scenes into ``dest``; returns :func:`videogen.film.report`.

    Raises:
        UnknownJobError: the job has no scenes.
        MissingScenesError: scenes did not succeed (without ``skip_failed``), or none did.
        FilmError: a bad option, a part that is not a usable video, or a film that failed
            its check.
    """
    target, rate = film.parse_options(job_id, size, fps, crossfade)
    sources, missing = film.choose(job_id, records, skip_failed)
    parts = [probe_part(job_id, source) for source in sources]
    plan = film.make_plan(job_id, parts, missing, size=target, fps=rate, crossfade=crossfade)
    duration, frames = render(plan, dest)
    return film.report(plan, dest, duration, frames)


def probe_part(job_id: str, source: film.Source) -> film.Part:
    """A scene's file as a part: checked to be a video like every output, with its rate."""
    where = f"scene #{source.index} ({source.scene_id}) {source.path}"
    try:
        info = probe_video(CHECKER, source.path)
        with av.open(str(source.path)) as container:
            stream = container.streams.video[0]
            rate = stream.average_rate or stream.guessed_rate
    except OSError as error:
        raise FilmError(job_id, f"{where}: cannot read it ({error.strerror})") from None
    except InvalidOutputError as error:
        raise FilmError(job_id, f"{where}: {error.message}") from None
    fps = Fraction(rate) if rate else Fraction(info.frames) / Fraction(info.duration)
    return film.Part(
        source.index,
        source.scene_id,
        source.path,
        Size(info.width, info.height),
        fps.limit_denominator(film.FPS_DENOMINATOR),
        info.duration,
    )


def render(plan: film.FilmPlan, dest: Path) -> tuple[float, int]:
    """Encode the plan to ``dest`` (atomically) and check it; returns its duration and
    frames as read back."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    os.close(fd)
    tmp = Path(name)
    try:
        encode(plan, tmp)
        duration, frames = check(plan, tmp)
        tmp.replace(dest)
    finally:
        tmp.unlink(missing_ok=True)
    return duration, frames


def encode(plan: film.FilmPlan, path: Path) -> None:
    """Write the plan's frames as H.264 (yuv420p) in an MP4."""
    with av.open(str(path), mode="w", format="mp4") as container:
        stream = container.add_stream(FILM_CODEC, rate=plan.fps)
        assert isinstance(stream, VideoStream)
        stream.width, stream.height = plan.size
        stream.pix_fmt = "yuv420p"
        # Kept apart: once the header is written, the stream's time base is the muxer's.
        time_base = stream.time_base = 1 / plan.fps
        stream.options = dict(FILM_OPTIONS)
        for pts, image in enumerate(film_frames(plan)):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24").reformat(format="yuv420p")
            frame.pts = pts
            frame.time_base = time_base
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))


def film_frames(plan: film.FilmPlan) -> Iterator[Image]:
    """Every frame of the film, as RGB images of the film's size."""
    parts = (
        _part_frames(part, fit, count, plan)
        for part, fit, count in zip(plan.parts, plan.fits, plan.part_frames, strict=True)
    )
    return film.join(parts, plan.fade_frames, blend)


def _part_frames(
    part: film.Part, fit: film.Fit, count: int, plan: film.FilmPlan
) -> Iterator[Image]:
    """One part's frames, resampled to the film's rate and placed on its canvas."""
    with av.open(str(part.path)) as container:
        stream = container.streams.video[0]
        timed = ((_time(f, i, part.fps), f) for i, f in enumerate(container.decode(stream)))
        for frame in film.pick(timed, count, plan.fps):
            yield place(frame, fit, plan.size)


def _time(frame: av.VideoFrame, index: int, fps: Fraction) -> float:
    """A frame's time; by its place when the container does not stamp it."""
    return frame.time if frame.time is not None else float(index / fps)


def place(frame: av.VideoFrame, fit: film.Fit, size: Size) -> Image:
    """The frame scaled to its fit and put on a black canvas of the film's size."""
    picture = frame.to_ndarray(width=fit.width, height=fit.height, format="rgb24")
    canvas = np.zeros((size.height, size.width, 3), dtype=np.uint8)
    canvas[fit.y : fit.y + fit.height, fit.x : fit.x + fit.width] = picture
    return canvas


def blend(old: Image, new: Image, weight: float) -> Image:
    """``weight`` of ``new`` over ``old`` (a crossfade frame)."""
    mixed = old.astype(np.float32) * (1 - weight) + new.astype(np.float32) * weight
    return np.rint(mixed).astype(np.uint8)


def check(plan: film.FilmPlan, path: Path) -> tuple[float, int]:
    """The film checked like every output (a video stream, decodable frames, duration > 0),
    then against its plan: one frame size, the planned frames, the expected length."""
    try:
        info = probe_video(CHECKER, path)
    except InvalidOutputError as error:
        raise FilmError(plan.job_id, f"the film did not check out: {error.message}") from None
    found = film.problems(
        plan, info.width, info.height, info.frames, info.duration, frame_sizes(path)
    )
    if found:
        raise FilmError(plan.job_id, f"the film did not check out: {'; '.join(found)}")
    return info.duration, info.frames


def frame_sizes(path: Path) -> set[Size]:
    """Every frame size in the file's first video stream (one, for a good film)."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return {Size(f.width, f.height) for f in container.decode(stream)}
