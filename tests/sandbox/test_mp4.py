"""The test-pattern videos are real, playable, of the asked length, and cheap."""

from __future__ import annotations

import io

import av
import pytest

from videogen.sandbox import SandboxState
from videogen.sandbox.mp4 import make_test_pattern_mp4, make_test_pattern_webp, scaled_size
from videogen.sandbox.state import JobSpec


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        ((1280, 720), (320, 180)),
        ((720, 1280), (320, 568)),
        ((1024, 576), (320, 180)),
        ((320, 240), (320, 240)),
        ((101, 51), (100, 50)),
        ((3840, 2160), (320, 180)),
        ((1584, 672), (320, 136)),
    ],
)
def test_scaled_size(size, expected) -> None:
    assert scaled_size(*size) == expected


@pytest.mark.parametrize(
    ("duration", "fps", "frames"), [(2.0, 8, 16), (0.3, 10, 3), (25 / 6, 6, 25), (0.01, 8, 1)]
)
def test_frame_count_and_duration(duration: float, fps: int, frames: int) -> None:
    data = make_test_pattern_mp4(duration, 160, 90, fps)
    with av.open(io.BytesIO(data), mode="r") as container:
        stream = container.streams.video[0]
        decoded = list(container.decode(stream))
        assert (stream.codec_context.name, stream.codec_context.pix_fmt) == ("h264", "yuv420p")
        assert (container.duration or 0) / 1_000_000 == pytest.approx(frames / fps, abs=0.01)
    assert len(decoded) == frames


def test_the_pattern_moves() -> None:
    data = make_test_pattern_mp4(1.0, 64, 36, 8)
    with av.open(io.BytesIO(data), mode="r") as container:
        first, second = [bytes(f.planes[0]) for f in list(container.decode(video=0))[:2]]
    assert first != second


def test_odd_sizes_become_even() -> None:
    with av.open(io.BytesIO(make_test_pattern_mp4(0.5, 99, 57, 8)), mode="r") as container:
        stream = container.streams.video[0]
        assert (stream.width, stream.height) == (98, 56)


def test_results_are_cached() -> None:
    assert make_test_pattern_mp4(1.0, 64, 36, 8) is make_test_pattern_mp4(1.0, 64, 36, 8)


def test_nonsense_is_refused() -> None:
    with pytest.raises(ValueError):
        make_test_pattern_mp4(0, 64, 36, 8)


def test_animated_webp() -> None:
    data = make_test_pattern_webp(1.0, 64, 36, 6)
    assert data[:4] == b"RIFF" and data[8:12] == b"WEBP" and b"ANIM" in data[:64]


@pytest.mark.parametrize(("full", "width"), [(False, 320), (True, 1280)])
def test_full_size_knob(full: bool, width: int) -> None:
    state = SandboxState("runway")
    state.set_knobs(full_size_video=full, video_fps=4)
    job = state.create_job(JobSpec("gen4.5", "x", {}, 1.0, 1280, 720))
    with av.open(io.BytesIO(state.video_bytes(job)), mode="r") as container:
        stream = container.streams.video[0]
        assert stream.width == width
        assert len(list(container.decode(stream))) == 4
