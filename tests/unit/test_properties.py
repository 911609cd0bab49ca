"""Property tests: every scene file and config file either loads or gets a clear error.

Never a crash, never a half-load: a bad scene file raises before anything could be enqueued,
and the error names the scene and field; a bad config names the key.
"""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from videogen.errors import ConfigError, SceneValidationError
from videogen.loading import build_settings
from videogen.models import Scene
from videogen.scenes import parse_scenes

REPO = Path(__file__).resolve().parents[2]
SAMPLE = json.loads((REPO / "config" / "config.json").read_text())

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**6), max_value=10**6),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.sampled_from(["1280x720", "16:9", "9:16", "5", "-1", "", "a cat", "http://x/y.png"]),
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
scene_keys = st.sampled_from(
    ["prompt", "image", "duration", "resolution", "aspect_ratio", "seed", "negative_prompt",
     "style", "id", "colour"]
)  # fmt: skip
scene_dicts = st.dictionaries(scene_keys, json_values, max_size=6)
scene_files = st.one_of(
    json_values,
    st.lists(scene_dicts, max_size=5),
    st.fixed_dictionaries({"scenes": st.lists(scene_dicts, max_size=5)}),
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scene_files)
def test_scene_files_load_or_fail_clearly(data):
    try:
        scenes = parse_scenes(data, base_dir=REPO)
    except SceneValidationError as error:
        assert error.problems
        for label, field, message in error.problems:
            assert label.startswith(("scene ", "file")) and field and message
        assert str(error).startswith("invalid scenes:")
        return
    assert scenes and all(isinstance(s, Scene) for s in scenes)
    assert all(s.prompt or s.image for s in scenes)


backend_keys = st.sampled_from(
    ["enabled", "priority", "max_concurrent_tasks", "base_url", "api_key", "timeout",
     "poll_interval", "model", "image_model", "resolutions", "workflow", "nonsense"]
)  # fmt: skip
top_keys = st.sampled_from(
    ["load_balancing", "fallback_enabled", "strategy", "lease_ttl", "max_retries", "output_dir",
     "backends", "surprise"]
)  # fmt: skip


@st.composite
def mutated_configs(draw):
    data = json.loads(json.dumps(SAMPLE))
    vg = data["video_generation"]
    if draw(st.booleans()):
        name = draw(st.sampled_from([*vg["backends"], "nosuchvendor"]))
        key = draw(backend_keys)
        vg["backends"].setdefault(name, {})[key] = draw(json_values)
        return data, key
    key = draw(top_keys)
    vg[key] = draw(json_values)
    return data, key


@settings(max_examples=400, deadline=None)
@given(mutated_configs())
def test_config_files_load_or_name_the_key(case):
    data, key = case
    try:
        settings_ = build_settings(data, env={})
    except ConfigError as error:
        text = str(error)
        assert key in text or "nosuchvendor" in text or "backends" in text, text
        return
    assert settings_.video_generation.backends  # a loaded config is usable
