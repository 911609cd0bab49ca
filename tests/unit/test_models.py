"""Scene validation: bad input gets an error that names the field."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from videogen.models import Scene, Size, parse_ratio, parse_size


@pytest.mark.parametrize(
    ("text", "size"),
    [("1280x720", Size(1280, 720)), ("720 × 1280", Size(720, 1280)), ("960:960", Size(960, 960))],
)
def test_parse_size(text, size):
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["1280", "big", "0x0", "1x99999", "-5x10"])
def test_bad_sizes(text):
    with pytest.raises(ValueError, match="resolution"):
        parse_size(text)


@pytest.mark.parametrize(("text", "value"), [("16:9", 16 / 9), ("1:1", 1.0), ("2.39:1", 2.39)])
def test_parse_ratio(text, value):
    assert parse_ratio(text) == pytest.approx(value)


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ({}, "needs a prompt, an image, or both"),
        ({"prompt": "  "}, "needs a prompt"),
        ({"prompt": "x", "duration": 0}, "duration"),
        ({"prompt": "x", "duration": -4}, "duration"),
        ({"prompt": "x", "duration": 600}, "duration"),
        ({"prompt": "x", "resolution": "huge"}, "resolution"),
        ({"prompt": "x", "aspect_ratio": "wide"}, "aspect_ratio"),
        ({"prompt": "x", "resolution": "1280x720", "aspect_ratio": "9:16"}, "disagree"),
        ({"prompt": "x", "seed": -1}, "seed"),
        ({"prompt": "x", "image": "ftp://host/a.png"}, "http(s) URL"),
        ({"prompt": "x", "colour": "red"}, "colour"),
        ({"prompt": "x" * 10_001}, "the limit is 10000"),
    ],
)
def test_invalid_scenes_name_the_field(data, fragment):
    with pytest.raises(ValidationError) as caught:
        Scene.model_validate(data)
    assert fragment in str(caught.value)


def test_scene_derived_values():
    scene = Scene(prompt="cat", image="frame.png", resolution="1920x1080", style="noir")
    assert scene.has_image and not scene.image_is_url
    assert str(scene.image_path) == "frame.png"
    assert scene.requested_aspect == pytest.approx(16 / 9)
    assert scene.full_prompt == "cat. Style: noir"
    url = Scene(image="https://example.invalid/f.png")
    assert url.image_is_url and url.image_path is None and url.full_prompt == ""
