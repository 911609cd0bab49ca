"""The generic fal backend's per-endpoint mapping: which scene field goes to which input name,
in which form (pure: no HTTP)."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from videogen.backends.fal import KNOWN_ENDPOINTS, FalBackend, FalSettings, wire_duration
from videogen.errors import ConfigError
from videogen.loading import build_settings
from videogen.models import Scene, Size

IMAGE = "https://example.com/frame.png"


def _backend(**settings: object) -> FalBackend:
    made = FalSettings(**settings).model_copy(update={"api_key": SecretStr("id:secret")})
    return FalBackend(made)


@pytest.mark.parametrize(
    ("model", "scene", "endpoint", "body"),
    [
        (
            "kling-2.5-turbo-pro",
            Scene(prompt="p", duration=7, aspect_ratio="9:16", negative_prompt="blur", seed=3),
            "fal-ai/kling-video/v2.5-turbo/pro/text-to-video",
            {"prompt": "p", "duration": "5", "aspect_ratio": "9:16", "negative_prompt": "blur"},
        ),
        (
            "kling-3-pro",
            Scene(prompt="p", duration=7, image=IMAGE),
            "fal-ai/kling-video/v3/pro/image-to-video",
            {"prompt": "p", "duration": "7", "start_image_url": IMAGE, "generate_audio": False},
        ),
        (
            "hailuo-02-standard",
            Scene(prompt="p", duration=9, resolution="910x512", seed=3),
            "fal-ai/minimax/hailuo-02/standard/text-to-video",
            {"prompt": "p", "duration": "10", "resolution": "512P"},
        ),
        (
            "veo-3.1-fast",
            Scene(prompt="p", duration=5, image=IMAGE, aspect_ratio="9:16", seed=3),
            "fal-ai/veo3.1/fast/image-to-video",
            {
                "prompt": "p",
                "duration": "6s",
                "resolution": "720p",
                "aspect_ratio": "9:16",
                "image_url": IMAGE,
                "seed": 3,
                "generate_audio": False,
            },
        ),
        (
            "wan-2.6",
            Scene(prompt="p", duration=12, resolution="1920x1080"),
            "wan/v2.6/text-to-video",
            {"prompt": "p", "duration": "10", "resolution": "1080p", "aspect_ratio": "16:9"},
        ),
    ],
)
def test_scene_fields_go_to_each_endpoints_input_names(model, scene, endpoint, body):
    backend = _backend(model=model)
    request = backend.prepare(scene)
    assert backend.endpoint(request) == endpoint
    assert backend.payload(request) == body


def test_prices_come_from_the_endpoint_by_resolution():
    backend = _backend(model="veo-3.1-fast")
    request = backend.prepare(Scene(prompt="p", duration=8, resolution="1920x1080"))
    assert request.size == Size(1920, 1080)
    assert request.estimated_cost_usd == pytest.approx(8 * 0.12)
    assert _backend().prepare(Scene(prompt="p")).estimated_cost_usd == pytest.approx(5 * 0.07)


def test_a_configured_endpoint_and_its_mapping():
    backend = _backend(
        model="pika-ints",
        endpoints={
            "pika-ints": {
                "image_endpoint": "fal-ai/pika/v2.2/image-to-video",
                "duration_format": "integer",
                "image_field": "image_url",
                "resolution_field": "resolution",
                "resolutions": ["720p", "1080p"],
                "seed_field": None,
                "usd_per_second": {"720p": 0.04, "1080p": 0.09},
            }
        },
    )
    caps = backend.get_capabilities()
    assert caps.text is None and caps.image is not None and not caps.seed
    request = backend.prepare(Scene(prompt="p", image=IMAGE, duration=10, seed=1))
    assert backend.payload(request) == {
        "prompt": "p",
        "duration": 10,
        "resolution": "720p",
        "image_url": IMAGE,
    }
    assert backend.home_app() == "fal-ai/pika"


@pytest.mark.parametrize(
    ("seconds", "form", "wire"),
    [(5.0, "string", "5"), (5.0, "integer", 5), (8.0, "seconds", "8s"), (6.0001, "string", "6")],
)
def test_wire_duration(seconds, form, wire):
    assert wire_duration(seconds, form) == wire


def test_every_known_endpoint_prices_what_it_offers():
    for name, spec in KNOWN_ENDPOINTS.items():
        assert set(spec.offered_resolutions()) <= set(spec.usd_per_second), name
        assert spec.size_labels(), name


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"model": "sora-9"}, "model 'sora-9' is not a known endpoint"),
        ({"model": "x", "endpoints": {"x": {"durations": [5]}}}, "needs text_endpoint"),
        (
            {"model": "x", "endpoints": {"x": {"text_endpoint": "a/b", "resolutions": ["big"]}}},
            "not like 720p",
        ),
        (
            {
                "model": "x",
                "endpoints": {"x": {"text_endpoint": "a/b", "usd_per_second": {"720p": 1}}},
            },
            "no price for 1080p",
        ),
    ],
)
def test_bad_endpoint_config_is_refused_at_load(entry, message):
    raw = {"video_generation": {"backends": {"fal": {"api_key": "id:secret", **entry}}}}
    with pytest.raises(ConfigError, match=message):
        build_settings(raw, env={})
