"""A video's poster frame: its first frame as a JPEG beside it (``<video>.poster.jpg``), made
once with PyAV and reused, for players that show something before they load the video."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import av

from .errors import NoVideoError

SUFFIX = ".poster.jpg"
MAX_WIDTH = 640


def poster_path(video: Path) -> Path:
    return video.with_name(video.name + SUFFIX)


def poster(video: Path) -> Path:
    """The poster of ``video``, made on first use; :class:`NoVideoError` when the file
    has no frame to show."""
    target = poster_path(video)
    if target.is_file() and target.stat().st_mtime >= video.stat().st_mtime:
        return target
    data = first_frame_jpeg(video)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".poster-")
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    os.replace(tmp, target)  # atomic: two requests at once both see a whole file
    return target


def first_frame_jpeg(video: Path) -> bytes:
    try:
        with av.open(str(video)) as container:
            frame = next(container.decode(video=0), None)
    except (av.FFmpegError, StopIteration) as error:
        raise NoVideoError(f"{video.name}: cannot read a frame ({error})") from None
    if frame is None:
        raise NoVideoError(f"{video.name}: the video has no frame")
    width = min(frame.width, MAX_WIDTH) // 2 * 2
    height = max(2, round(frame.height * width / frame.width) // 2 * 2)
    codec = av.CodecContext.create("mjpeg", "w")
    codec.width, codec.height, codec.pix_fmt = width, height, "yuvj420p"
    codec.time_base = frame.time_base or av.time_base_fraction()  # type: ignore[attr-defined]
    image = frame.reformat(width=width, height=height, format="yuvj420p")
    packets = [*codec.encode(image), *codec.encode(None)]
    return b"".join(bytes(p) for p in packets)
