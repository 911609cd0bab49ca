"""The result cache's rules, as tables: what changes a scene's key and what does not, what is
left out of the cache, how a job's scenes are marked, and what is evicted."""

from __future__ import annotations

import base64
import hashlib

import pytest

from videogen.cache import (
    DAY,
    Mark,
    Stored,
    cache_key,
    evictions,
    image_digest,
    key_of,
    plan,
    uncached_reason,
)
from videogen.config import CacheSettings
from videogen.models import Scene

BASE = {"prompt": "a lighthouse at dawn", "duration": 5, "seed": 7}
ON = CacheSettings()


def key(**changes) -> str | None:
    return key_of(Scene.model_validate({**BASE, **changes}), ON)


@pytest.mark.parametrize(
    "changes",
    [
        {"prompt": "  a   lighthouse\n at\tdawn "},  # whitespace only
        {"duration": 5.0},
        {"id": "shot-12"},  # a label, not the request
        {"no_cache": False},
        {"resolution": None},
        {"style": None, "negative_prompt": None},
        {"negative_prompt": ""},
    ],
)
def test_what_does_not_change_the_key(changes):
    assert key(**changes) == key()


@pytest.mark.parametrize(
    "changes",
    [
        {"prompt": "a lighthouse at dusk"},
        {"prompt": "A lighthouse at dawn"},  # case is kept: models read it
        {"style": "watercolour"},
        {"negative_prompt": "blurry"},
        {"duration": 4},
        {"seed": 8},
        {"resolution": "1280x720"},
        {"aspect_ratio": "16:9"},
    ],
)
def test_what_changes_the_key(changes):
    assert key(**changes) != key()


def test_resolution_and_aspect_are_normalised():
    assert key(aspect_ratio="16:9") == key(aspect_ratio="32:18")
    assert key(resolution="1280x720") == key(resolution="1280 x 720")
    # with a resolution, an agreeing aspect adds nothing
    assert key(resolution="1280x720", aspect_ratio="16:9") == key(resolution="1280x720")
    assert key(aspect_ratio="16:9") != key(aspect_ratio="9:16")


def test_a_first_frame_counts_by_its_bytes_not_its_name(tmp_path):
    one, same, other = tmp_path / "a.png", tmp_path / "b.png", tmp_path / "c.png"
    one.write_bytes(b"frame-1")
    same.write_bytes(b"frame-1")
    other.write_bytes(b"frame-2")
    assert key(image=str(one)) == key(image=str(same))
    assert key(image=str(one)) != key(image=str(other))
    assert key(image=str(one)) != key()
    data = "data:image/png;base64," + base64.b64encode(b"frame-1").decode()
    assert key(image=data) == key(image=str(one))  # the same picture, inline
    assert image_digest(Scene(image=str(one))) == hashlib.sha256(b"frame-1").hexdigest()


def test_a_pinned_backend_or_model_makes_its_own_key():
    scene = Scene.model_validate(BASE)
    anywhere = cache_key(scene, "")
    assert cache_key(scene, "", ("runway", "gen4.5")) not in (anywhere, None)
    assert cache_key(scene, "", ("runway", "gen4.5")) != cache_key(scene, "", ("luma", "ray-2"))
    assert cache_key(scene, "", ("runway", "gen4.5")) != cache_key(scene, "", ("runway", "gen3"))
    assert key() == anywhere  # a scene cannot pin one today: any backend will do


@pytest.mark.parametrize(
    ("changes", "settings", "job_no_cache", "why"),
    [
        ({}, ON, False, None),
        ({}, CacheSettings(enabled=False), False, "the cache is off"),
        ({}, ON, True, "no_cache"),
        ({"no_cache": True}, ON, False, "no_cache"),
        ({"seed": None}, ON, False, None),  # a resubmitted file pays nothing again
        ({"seed": None}, CacheSettings(unseeded=False), False, "no seed"),
        ({"image": "https://example.com/f.png"}, ON, False, "first frame by URL"),
    ],
)
def test_what_is_left_out_of_the_cache(changes, settings, job_no_cache, why):
    scene = Scene.model_validate({**BASE, **changes})
    assert uncached_reason(scene, settings, job_no_cache) == why
    assert (key_of(scene, settings, job_no_cache) is None) == (why is not None)


def test_a_job_is_marked_hits_leaders_and_followers():
    marks = plan(["a", None, "a", "b", "a", "b", "c", "c"], stored={"c"})
    assert marks == [
        Mark("a"),
        Mark(),
        Mark("a", leader=0),
        Mark("b"),
        Mark("a", leader=0),
        Mark("b", leader=3),
        Mark("c", hit=True),
        Mark("c", hit=True),
    ]
    assert [m.held for m in marks] == [False, False, True, False, True, True, True, True]


NOW = 1_800_000_000.0


@pytest.mark.parametrize(
    ("ages_days", "sizes", "total", "max_bytes", "max_age", "evicted"),
    [
        ([40, 10, 1], [5, 5, 5], 15, None, 30, ["k0"]),  # too old
        ([40, 31, 1], [5, 5, 5], 15, None, 30, ["k0", "k1"]),
        ([10, 5, 1], [5, 5, 5], 15, 10, None, ["k0"]),  # too big: the least recently used
        ([10, 5, 1], [5, 5, 5], 15, 4, None, ["k0", "k1", "k2"]),
        ([10, 5, 1], [5, 5, 5], 15, 15, 30, []),  # fits, young enough
        ([10, 5, 1], [5, 5, 5], 15, None, None, []),  # no limits
    ],
)
def test_eviction(ages_days, sizes, total, max_bytes, max_age, evicted):
    oldest = [
        Stored(f"k{i}", NOW - days * DAY, size)
        for i, (days, size) in enumerate(zip(ages_days, sizes, strict=True))
    ]
    settings = CacheSettings(max_bytes=max_bytes, max_age_days=max_age)
    assert evictions(oldest, total, NOW, settings) == evicted
