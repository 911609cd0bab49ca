"""Snapping and capability checks: plain functions, tested as tables."""

from __future__ import annotations

import pytest

from videogen.backends import kling, minimax
from videogen.capabilities import (
    Capabilities,
    ImageInput,
    ModeSpec,
    can_take,
    plan,
    snap_duration,
    snap_size,
)
from videogen.errors import CapabilityError
from videogen.models import Mode, Scene, Size

HD = Size(1280, 720)
PORTRAIT = Size(720, 1280)
SQUARE = Size(960, 960)
WIDE = Size(1584, 672)


@pytest.mark.parametrize(
    ("requested", "allowed", "expected"),
    [
        (5, (5.0, 9.0), 5.0),
        (4, (5.0, 9.0), 5.0),
        (7, (5.0, 9.0), 9.0),  # a tie goes to the longer clip
        (6.9, (5.0, 9.0), 5.0),
        (30, (5.0, 10.0), 10.0),
        (0.5, tuple(float(s) for s in range(2, 11)), 2.0),
        (7.4, tuple(float(s) for s in range(2, 11)), 7.0),
        (4.0, (4.0, 6.0, 8.0), 4.0),
    ],
)
def test_snap_duration(requested, allowed, expected):
    assert snap_duration(requested, allowed) == expected


SIZES = (HD, PORTRAIT, SQUARE, WIDE)


@pytest.mark.parametrize(
    ("size", "aspect", "expected"),
    [
        (None, None, HD),  # nothing asked: the backend's default
        (Size(1920, 1080), None, HD),
        (Size(1080, 1920), None, PORTRAIT),
        (Size(512, 512), None, SQUARE),
        (None, 21 / 9, WIDE),
        (None, 9 / 16, PORTRAIT),
        (None, 5 / 4, SQUARE),  # 5:4 is nearer 1:1 than 16:9 on a log scale
        (Size(1000, 1000), None, SQUARE),
    ],
)
def test_snap_size(size, aspect, expected):
    assert snap_size(SIZES, size, aspect) == expected


def test_snap_size_prefers_nearest_pixel_count_among_equal_shapes():
    sizes = (Size(1280, 720), Size(960, 540), Size(1920, 1080))
    assert snap_size(sizes, Size(1000, 562)) == Size(960, 540)
    assert snap_size(sizes, Size(3840, 2160)) == Size(1920, 1080)


SPEC = ModeSpec(model="m", durations=(5.0, 9.0), sizes=(HD, PORTRAIT), cost_per_second_usd=0.1)
IMAGE_ONLY = Capabilities(
    text=None, image=SPEC, prompt_max_chars=50, image_inputs=frozenset({ImageInput.UPLOAD})
)
URL_ONLY = Capabilities(
    text=SPEC, image=SPEC, prompt_max_chars=50, image_inputs=frozenset({ImageInput.PUBLIC_URL})
)


@pytest.mark.parametrize(
    ("caps", "scene", "reason"),
    [
        (IMAGE_ONLY, {"prompt": "a cat"}, "text-only scenes are not supported"),
        (URL_ONLY, {"prompt": "a cat", "image": "frame.png"}, "public https URL"),
        (URL_ONLY, {"prompt": "x" * 51}, "51 characters; the limit is 50"),
        (URL_ONLY, {"prompt": "cat", "style": "noir " * 10}, "the limit is 50"),
    ],
)
def test_capability_errors_name_the_reason(caps, scene, reason):
    with pytest.raises(CapabilityError) as caught:
        plan("b", caps, Scene(**scene))
    assert reason in str(caught.value)
    assert caught.value.backend == "b"
    assert reason in (can_take("b", caps, Scene(**scene)) or "")


def test_plan_keeps_requested_and_effective_parameters():
    scene = Scene(prompt="a cat", duration=7, resolution="1080x1920", seed=3, style="noir")
    request = plan("b", URL_ONLY, scene)
    assert request.mode is Mode.TEXT_TO_VIDEO
    assert (request.requested_duration, request.duration) == (7, 9.0)
    assert (request.requested_size, request.size) == (Size(1080, 1920), PORTRAIT)
    assert request.prompt == "a cat. Style: noir"
    assert request.estimated_cost_usd == pytest.approx(0.9)
    assert request.effective()["effective"] == {"duration": 9.0, "resolution": "720x1280"}
    assert can_take("b", URL_ONLY, scene) is None


def test_url_images_go_to_url_only_backends():
    scene = Scene(prompt="cat", image="https://example.invalid/frame.png")
    assert plan("b", URL_ONLY, scene).mode is Mode.IMAGE_TO_VIDEO


@pytest.mark.parametrize(
    ("spec", "duration", "size", "usd"),
    [
        (ModeSpec(durations=(5.0,), sizes=(HD,), cost_per_second_usd=0.05), 5.0, HD, 0.25),
        (ModeSpec(durations=(5.0,), sizes=(HD,), cost_per_clip_usd=0.4), 5.0, HD, 0.4),
        # Luma ray-2 720p 5 s: 1280 x 720 x 24 x 5 px at $0.0064 per Mpx = $0.71 (vendor table)
        (ModeSpec(durations=(5.0,), sizes=(HD,), cost_per_megapixel_usd=0.0064), 5.0, HD, 0.7078),
        (
            ModeSpec(durations=(5.0, 10.0), sizes=(HD,), price_table=((10.0, 720, 0.6),)),
            10.0,
            HD,
            0.6,
        ),
    ],
)
def test_cost_models(spec, duration, size, usd):
    assert spec.cost(duration, size) == pytest.approx(usd, abs=1e-3)


def test_kling_offers_each_mode_its_model_has_at_its_price():
    spec = kling.mode_spec("kling-v2-1-master", ("std", "pro"))  # 1080p only
    assert set(spec.sizes) == {Size(1920, 1080), Size(1080, 1920), Size(1080, 1080)}
    assert spec.cost(10.0, Size(1920, 1080)) == pytest.approx(2.8)
    turbo = kling.mode_spec("kling-v2-5-turbo", ("std", "pro"))
    assert turbo.sizes[0] == Size(1280, 720)  # the first mode, 16:9, is the default
    assert turbo.cost(5.0, Size(720, 1280)) == pytest.approx(0.21)
    assert turbo.cost(5.0, Size(1080, 1080)) == pytest.approx(0.35)
    assert kling.size_labels("kling-v3", ("4k",))[Size(3840, 2160)] == ("16:9", "4k")


def test_minimax_v1_keeps_a_long_clips_length_and_drops_to_768p():
    spec = minimax.mode_spec("MiniMax-Hailuo-2.3")
    scene = Scene(prompt="long", duration=10, resolution="1920x1080")
    request = plan("minimax", Capabilities(text=spec, image=None, prompt_max_chars=2000), scene)
    assert (request.duration, request.size) == (10.0, Size(1920, 1080))
    fitted = minimax.fit_long_clip(request, spec)
    assert (fitted.duration, fitted.size, fitted.estimated_cost_usd) == (10.0, Size(1366, 768), 0.5)
    six = request.model_copy(update={"duration": 6.0})
    assert minimax.fit_long_clip(six, spec) is six
    h3 = minimax.mode_spec("MiniMax-H3")
    assert Size(1440, 2560) in h3.sizes and h3.cost(10.0, Size(2560, 1440)) == pytest.approx(1.3)
