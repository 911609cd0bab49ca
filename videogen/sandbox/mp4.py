"""Small, real, playable test-pattern videos for the vendor sandboxes.

The sandboxes hand out files that a client must download, validate (container, codec, duration) and
store, so they have to be real videos, not placeholder bytes. Everything here is pure: same
arguments, same bytes; the encoders are cached because every poll of a finished job may lead to a
download.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from fractions import Fraction
from functools import lru_cache

import av
from av.video.stream import VideoStream

# Keeps sandbox files tiny and encoding fast: clients only need a real video, not a sharp one.
MAX_SANDBOX_WIDTH = 320

# Eight luma levels with matching chroma: colour bars, moving one bar per second.
_BARS_Y = (235, 210, 170, 145, 106, 81, 41, 16)
_BARS_U = (128, 16, 166, 54, 202, 90, 240, 128)
_BARS_V = (128, 146, 16, 34, 222, 240, 110, 128)


def _even(value: int) -> int:
    """Round down to an even number of at least 2 (yuv420p needs even dimensions)."""
    return max(2, value - value % 2)


def scaled_size(width: int, height: int, max_width: int = MAX_SANDBOX_WIDTH) -> tuple[int, int]:
    """Scale ``width`` x ``height`` down to at most ``max_width`` wide, keeping the aspect ratio.

    Both results are even. Sizes already narrow enough are only made even.
    """
    if width > max_width:
        height = round(height * max_width / width)
        width = max_width
    return _even(width), _even(height)


def _plane_bytes(row: bytes, line_size: int, rows: int) -> bytearray:
    """One plane: the same row repeated, padded to the encoder's line size."""
    return bytearray(row.ljust(line_size, row[-1:]) * rows)


def _bar_row(levels: tuple[int, ...], width: int, shift: int) -> bytes:
    bar_width = max(1, width // len(levels))
    return bytes(levels[((x + shift) // bar_width) % len(levels)] for x in range(width))


def _draw_box(plane: bytearray, line_size: int, left: int, top: int, size: int) -> None:
    """A white square: it moves across the bars so that no two frames are alike."""
    for y in range(top, top + size):
        start = y * line_size + left
        plane[start : start + size] = b"\xeb" * size


def _pattern_frames(frames: int, width: int, height: int, fps: int) -> Iterator[av.VideoFrame]:
    for index in range(frames):
        frame = av.VideoFrame(width, height, "yuv420p")
        shift = index * max(1, width // len(_BARS_Y)) // max(1, fps)
        y_plane, u_plane, v_plane = frame.planes
        luma = _plane_bytes(_bar_row(_BARS_Y, width, shift), y_plane.line_size, height)
        box = max(2, height // 4)
        left = (index * 7) % max(1, width - box)
        _draw_box(luma, y_plane.line_size, left, (height - box) // 2, box)
        y_plane.update(bytes(luma))
        chroma_width, chroma_height = width // 2, height // 2
        u_row = _bar_row(_BARS_U, chroma_width, shift // 2)
        v_row = _bar_row(_BARS_V, chroma_width, shift // 2)
        u_plane.update(bytes(_plane_bytes(u_row, u_plane.line_size, chroma_height)))
        v_plane.update(bytes(_plane_bytes(v_row, v_plane.line_size, chroma_height)))
        frame.pts = index
        frame.time_base = Fraction(1, fps)
        yield frame


def _encode(
    duration_s: float, width: int, height: int, fps: int, container_format: str, codec: str
) -> bytes:
    if duration_s <= 0 or fps <= 0:
        raise ValueError("duration_s and fps must be positive")
    width, height = _even(width), _even(height)
    frames = max(1, round(duration_s * fps))
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format=container_format) as container:
        stream = container.add_stream(codec, rate=fps)
        assert isinstance(stream, VideoStream)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.time_base = Fraction(1, fps)
        if codec == "libx264":
            # ultrafast: no B-frames, so the stream's duration is exactly frames / fps.
            stream.options = {"preset": "ultrafast", "crf": "30"}
        for frame in _pattern_frames(frames, width, height, fps):
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return buffer.getvalue()


@lru_cache(maxsize=64)
def make_test_pattern_mp4(duration_s: float, width: int, height: int, fps: int) -> bytes:
    """Encode a moving colour-bar pattern as an H.264 (yuv420p) MP4.

    Args:
        duration_s: Length of the video: ``round(duration_s * fps)`` frames, at least one.
        width: Frame width in pixels; rounded down to an even number.
        height: Frame height in pixels; rounded down to an even number.
        fps: Frames per second.

    Returns:
        The MP4 file's bytes.
    """
    return _encode(duration_s, width, height, fps, "mp4", "libx264")


@lru_cache(maxsize=16)
def make_test_pattern_webp(duration_s: float, width: int, height: int, fps: int) -> bytes:
    """The same pattern as an animated WEBP (what ComfyUI's ``SaveAnimatedWEBP`` writes)."""
    return _encode(duration_s, width, height, fps, "webp", "libwebp_anim")
