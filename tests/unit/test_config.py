"""Config loading: the original keys, keys from the environment, placeholders, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from videogen.api_keys import is_placeholder
from videogen.config import Strategy
from videogen.errors import ConfigError
from videogen.loading import build_settings, config_path, load_config

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "config" / "config.json"
REAL_KEY = "key_" + "ab" * 64


def seed_config(**backend_overrides):
    data = json.loads(SAMPLE.read_text())
    for name, values in backend_overrides.items():
        data["video_generation"]["backends"][name].update(values)
    return data


def test_sample_config_has_the_original_keys():
    settings = load_config(SAMPLE, env={})
    vg = settings.video_generation
    assert vg.load_balancing is True and vg.fallback_enabled is True
    assert vg.effective_strategy is Strategy.EARLIEST_FINISH  # least_loaded, seconds-aware
    original = ["svd", "runway", "pika", "luma"]
    assert list(vg.backends)[:4] == original  # then the later backends, disabled
    assert [vg.backends[n].priority for n in original] == [1, 2, 3, 4]
    assert not any(b.enabled for n, b in vg.backends.items() if n not in original)
    assert vg.backends["runway"].max_concurrent_tasks == 3
    assert vg.backends["runway"].timeout == 600
    # The later backends ship disabled, with placeholder keys: the original four still run.
    assert vg.enabled_backends() == ["svd", "runway", "pika", "luma"]
    assert vg.backends["veo"].api_key is None and vg.backends["replicate"].api_key is None


def test_the_sample_names_the_newer_backends_disabled_with_placeholder_keys():
    settings = load_config(SAMPLE, env={})
    for name in ("wan", "seedance"):
        backend = settings.backend(name)
        assert not backend.enabled and backend.api_key is None
        assert "placeholder" in backend.key_source
    assert not {"wan", "seedance"} & set(settings.missing_keys())  # disabled: no key needed


@pytest.mark.parametrize(
    "value",
    ["your_runway_api_key", "YOUR-KEY", "<api key>", "${FAL_KEY}", "changeme", "", "  ", "xxxx"],
)
def test_placeholders(value):
    assert is_placeholder(value)


@pytest.mark.parametrize("value", [REAL_KEY, "luma-1234abcd", "abc:def", "sk-live"])
def test_real_looking_keys_are_not_placeholders(value):
    assert not is_placeholder(value)


def test_placeholder_in_file_counts_as_no_key_and_says_so():
    settings = build_settings(seed_config(), env={})
    runway = settings.backend("runway")
    assert runway.api_key is None
    assert "placeholder" in runway.key_source and "RUNWAYML_API_SECRET" in runway.key_source
    with pytest.raises(ConfigError) as caught:
        settings.require_keys()
    message = str(caught.value)
    assert "runway" in message and "pika" in message and "luma" in message
    assert "svd" not in message  # a local ComfyUI needs no key


@pytest.mark.parametrize(
    ("env", "source"),
    [
        ({"RUNWAYML_API_SECRET": REAL_KEY}, "env:RUNWAYML_API_SECRET"),
        ({"VIDEOGEN_RUNWAY_API_KEY": REAL_KEY}, "env:VIDEOGEN_RUNWAY_API_KEY"),
        (
            {"VIDEOGEN_RUNWAY_API_KEY": REAL_KEY, "RUNWAYML_API_SECRET": "key_other"},
            "env:VIDEOGEN_RUNWAY_API_KEY",
        ),
        ({"RUNWAYML_API_SECRET": "your_key"}, None),  # a placeholder in the env is no key either
    ],
)
def test_keys_from_the_environment(env, source):
    runway = build_settings(seed_config(), env=env).backend("runway")
    if source is None:
        assert runway.api_key is None
    else:
        assert runway.api_key is not None and runway.api_key.get_secret_value() == REAL_KEY
        assert runway.key_source == source


def test_vendor_env_names():
    env = {"LUMAAI_API_KEY": "luma-abc", "FAL_KEY": "id:secret"}
    settings = build_settings(seed_config(), env=env)
    assert settings.backend("luma").key_source == "env:LUMAAI_API_KEY"
    assert settings.backend("pika").key_source == "env:FAL_KEY"


def test_key_in_file_is_used_and_never_shown():
    settings = build_settings(seed_config(runway={"api_key": REAL_KEY}), env={})
    runway = settings.backend("runway")
    assert runway.api_key.get_secret_value() == REAL_KEY
    assert runway.key_source == "file"
    shown = repr(settings) + str(settings.describe()) + settings.model_dump_json()
    assert REAL_KEY not in shown


def test_base_url_overrides_the_vendor_host():
    settings = build_settings(
        seed_config(luma={"base_url": "http://127.0.0.1:9/dream-machine/v1/"})
    )
    assert settings.backend("luma").base_url == "http://127.0.0.1:9/dream-machine/v1"
    assert settings.describe()["backends"]["runway"]["base_url"] == "https://api.dev.runwayml.com"


@pytest.mark.parametrize(
    ("mutate", "fragment"),
    [
        (
            lambda d: d["video_generation"]["backends"].update(nosuchvendor={}),
            "unknown backend 'nosuchvendor'",
        ),
        (
            lambda d: d["video_generation"]["backends"]["runway"].update(max_concurrent_tasks=0),
            "max_concurrent_tasks",
        ),
        (lambda d: d["video_generation"]["backends"]["luma"].update(priority="high"), "priority"),
        (lambda d: d["video_generation"]["backends"]["pika"].update(timeout=-1), "timeout"),
        (lambda d: d["video_generation"]["backends"]["svd"].update(base_url="ftp://x"), "base_url"),
        (lambda d: d["video_generation"]["backends"]["runway"].update(image_model="gen9"), "gen9"),
        (lambda d: d["video_generation"]["backends"]["luma"].update(model="ray-9"), "ray-9"),
        (lambda d: d["video_generation"]["backends"]["svd"].update(colour="red"), "colour"),
        (lambda d: d["video_generation"].update(strategy="random"), "strategy"),
        (lambda d: d["video_generation"].update(backends=[]), "backends must be an object"),
        (lambda d: d["video_generation"].update(backends={}), "backends is empty"),
        (lambda d: d["video_generation"].update(backends=None), "backends must be an object"),
    ],
)
def test_bad_config_names_the_key(mutate, fragment):
    data = seed_config()
    mutate(data)
    with pytest.raises(ConfigError) as caught:
        build_settings(data, env={})
    assert fragment in str(caught.value)


def test_bad_config_error_never_echoes_a_key():
    data = seed_config(runway={"api_key": REAL_KEY, "max_concurrent_tasks": "lots"})
    with pytest.raises(ConfigError) as caught:
        build_settings(data, env={})
    assert REAL_KEY not in str(caught.value)


def test_config_path_order(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert config_path(None, {}) is None  # no default file here: built-in defaults
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "config.json").write_text("{}")
    assert config_path(None, {}) == Path("config/config.json")
    assert config_path(None, {"VIDEOGEN_CONFIG": "/x.json"}) == Path("/x.json")
    assert config_path("/y.json", {"VIDEOGEN_CONFIG": "/x.json"}) == Path("/y.json")


def test_unreadable_or_invalid_files(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.json", env={})
    bad = tmp_path / "bad.json"
    bad.write_text('{"video_generation": ')
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_config(bad, env={})


def test_redis_url_and_output_dir_from_the_environment_win(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(
        json.dumps({"redis_url": "redis://file:6379/0", "video_generation": {"output_dir": "o"}})
    )
    settings = load_config(path, env={})
    assert settings.redis_url == "redis://file:6379/0"
    assert settings.outputs == (tmp_path / "o").resolve()
    env = {"VIDEOGEN_REDIS_URL": "redis://env:6379/0", "VIDEOGEN_OUTPUT_DIR": str(tmp_path / "e")}
    settings = load_config(path, env=env)
    assert settings.redis == "redis://env:6379/0"
    assert settings.outputs == (tmp_path / "e").resolve()


def test_the_environment_is_read_from_the_mapping_alone(tmp_path, monkeypatch):
    """What the process has set never leaks into a config built from another mapping."""
    path = tmp_path / "c.json"
    path.write_text(
        json.dumps({"redis_url": "redis://file:6379/0", "video_generation": {"output_dir": "o"}})
    )
    for var, value in {
        "VIDEOGEN_REDIS_URL": "redis://process:6379/0",
        "VIDEOGEN_OUTPUT_DIR": str(tmp_path / "process"),
        "VIDEOGEN_CONFIG": str(tmp_path / "missing.json"),
        "RUNWAYML_API_SECRET": REAL_KEY,
        "VIDEOGEN_SVD_BASE_URL": "http://127.0.0.1:9/comfy",
        "VIDEOGEN_SANDBOX_HOST": "sandbox",
    }.items():
        monkeypatch.setenv(var, value)
    settings = load_config(path, env={})
    assert settings.redis == "redis://file:6379/0"
    assert settings.outputs == (tmp_path / "o").resolve()
    assert settings.backend("runway").api_key is None
    assert settings.base_url("svd") == "http://127.0.0.1:8188"
    assert settings.base_url("luma") == "https://api.lumalabs.ai/dream-machine/v1"
    by_default = load_config(path)  # the process's environment, when no mapping is given
    assert by_default.redis == "redis://process:6379/0"
    assert by_default.outputs == (tmp_path / "process").resolve()
    assert by_default.backend("runway").key_source == "env:RUNWAYML_API_SECRET"
    assert by_default.base_url("svd") == "http://127.0.0.1:9/comfy"
    assert by_default.base_url("luma") == "http://sandbox:9102/dream-machine/v1"
    with pytest.raises(ConfigError, match="missing.json"):
        load_config()  # $VIDEOGEN_CONFIG from the process


def test_no_config_file_means_the_original_four_backends(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    settings = load_config(env={})
    assert settings.source == "<defaults>"
    assert settings.video_generation.enabled_backends() == ["svd", "runway", "pika", "luma"]


def _kling(env, **values):
    raw = {"video_generation": {"backends": {"kling": values}}}
    return build_settings(raw, env=env).backend("kling")


@pytest.mark.parametrize(
    ("env", "key", "source"),
    [
        (
            {"KLING_ACCESS_KEY": "ak123", "KLING_SECRET_KEY": "sk456"},
            "ak123:sk456",
            "env:KLING_ACCESS_KEY+KLING_SECRET_KEY",
        ),
        (
            {"VIDEOGEN_KLING_API_KEY": "a:b", "KLING_ACCESS_KEY": "x", "KLING_SECRET_KEY": "y"},
            "a:b",
            "env:VIDEOGEN_KLING_API_KEY",
        ),
        ({"KLING_ACCESS_KEY": "ak123"}, None, "KLING_ACCESS_KEY with KLING_SECRET_KEY"),
        ({"KLING_ACCESS_KEY": "ak123", "KLING_SECRET_KEY": "your_secret"}, None, "none of"),
    ],
)
def test_kling_takes_its_key_as_two_variables(env, key, source):
    kling = _kling(env)
    assert (kling.api_key.get_secret_value() if kling.api_key else None) == key
    assert source in kling.key_source
    assert "sk456" not in kling.key_source


@pytest.mark.parametrize(
    ("values", "fragment"),
    [
        ({"text_model": "kling-v1-5"}, "text_model 'kling-v1-5'"),  # image-to-video only
        ({"image_model": "kling-v9"}, "kling-v9"),
        ({"modes": ("4k",)}, "has none of the modes"),  # only kling-v3 makes 4k
        ({"modes": ("8k",)}, "modes must be among"),
        ({"text_model": None, "image_model": None}, "nothing to generate"),
        ({"usd_per_unit": 0}, "usd_per_unit"),
    ],
)
def test_kling_settings_are_checked(values, fragment):
    with pytest.raises(ConfigError, match=fragment):
        _kling({}, **values)


def test_kling_4k_is_offered_with_kling_v3():
    kling = _kling({}, text_model="kling-v3", image_model=None, modes=("std", "4k"))
    assert kling.modes == ("std", "4k") and kling.image_model is None


def test_a_kling_key_without_its_secret_counts_as_none_and_says_why():
    kling = _kling({"VIDEOGEN_KLING_API_KEY": "only-the-access-key"})
    assert kling.api_key is None and not kling.has_key
    assert "ACCESS_KEY:SECRET_KEY" in kling.key_source
    assert "VIDEOGEN_KLING_API_KEY" in kling.key_source
    assert "only-the-access-key" not in kling.key_source
