"""Worker groups: backends whose ``worker`` names the same group share one process, which
consumes all their queues with their threads together (pure: config and the worker's args)."""

from __future__ import annotations

import click
import pytest

from videogen.cli_processes import _worker_args
from videogen.errors import ConfigError
from videogen.loading import build_settings
from videogen.stackview import role_keys


def _settings(**workers: str | None):
    backends = {
        "svd": {"priority": 1, "max_concurrent_tasks": 2},
        "runway": {"priority": 2, "max_concurrent_tasks": 3, "api_key": "key_x"},
        "pika": {"priority": 3, "max_concurrent_tasks": 2, "api_key": "id:secret"},
        "luma": {"priority": 4, "max_concurrent_tasks": 2, "api_key": "luma-x"},
        "fal": {"priority": 5, "enabled": False, "api_key": "id:secret"},
    }
    for name, group in workers.items():
        backends[name]["worker"] = group
    return build_settings({"video_generation": {"backends": backends}}, env={})


@pytest.mark.parametrize(
    ("workers", "groups"),
    [
        ({}, {"svd": ["svd"], "runway": ["runway"], "pika": ["pika"], "luma": ["luma"]}),
        (
            {"runway": "cloud", "pika": "cloud", "luma": "cloud"},
            {"svd": ["svd"], "cloud": ["runway", "pika", "luma"]},
        ),
        ({"luma": "cloud", "fal": "cloud"}, {**{n: [n] for n in ("svd", "runway", "pika")},
                                             "cloud": ["luma"]}),  # fal is disabled
    ],
)  # fmt: skip
def test_groups_by_worker(workers, groups):
    assert _settings(**workers).video_generation.worker_groups() == groups


def test_a_groups_worker_consumes_every_members_queue_with_their_threads():
    settings = _settings(runway="cloud", pika="cloud", luma="cloud")
    args = _worker_args(settings, "cloud", replicas=1)
    assert args[:4] == ["-Q", "backend.runway,backend.pika,backend.luma", "-c", str(3 + 2 + 2 + 3)]
    assert args[5].startswith("cloud-")
    assert _worker_args(settings, "cloud", replicas=2)[3] == str(2 + 1 + 1 + 3)
    alone = _worker_args(settings, "pika", replicas=1)  # a member can still run on its own
    assert alone[:4] == ["-Q", "backend.pika", "-c", "3"]
    assert role_keys(settings, "cloud") == ["backend:runway", "backend:pika", "backend:luma"]
    assert role_keys(settings, "router") == ["router"]


def test_an_unknown_group_is_refused():
    with pytest.raises(click.ClickException, match="unknown backend 'clod', and no worker group"):
        _worker_args(_settings(runway="cloud"), "clod", replicas=1)


@pytest.mark.parametrize(
    ("workers", "message"),
    [
        ({"pika": "router"}, "is the name of the router"),
        ({"pika": "runway"}, "is the name of the backend 'runway'"),
        ({"pika": "Cloud Workers"}, "should match pattern"),
    ],
)
def test_bad_group_names_are_refused(workers, message):
    with pytest.raises(ConfigError, match=message):
        _settings(**workers)
