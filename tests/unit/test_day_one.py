"""Day-one edges: the restart policy, the published stack view, paths that resolve against
the config file, shipped data files, `--config` after the command, a fast Redis error."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from videogen.capabilities import Capabilities
from videogen.constants import DATA_DIR, DEFAULT_SVD_WORKFLOW, DEMO_SCENES
from videogen.embedded import free_port
from videogen.errors import StoreUnavailableError
from videogen.loading import build_settings, load_config
from videogen.redis_conn import check_reachable, safe_url
from videogen.stackview import (
    ROUTER_ROLE,
    PublishedStack,
    PublishedWorker,
    backend_entry,
    differences,
    merge,
    publish,
)
from videogen.supervise import RestartPolicy, after_exit

REPO = Path(__file__).resolve().parents[2]
POLICY = RestartPolicy(stable_after=10, max_fast_crashes=4, base_delay=0.5, max_delay=3)


@pytest.mark.parametrize(
    ("fast_crashes", "uptime", "give_up", "delay", "after"),
    [
        (0, 3600.0, False, 0.0, 0),  # ran for an hour: an event, restart at once
        (3, 10.0, False, 0.0, 0),  # a stable run forgives earlier fast crashes
        (0, 1.0, False, 0.5, 1),
        (1, 1.0, False, 1.0, 2),
        (2, 0.1, False, 2.0, 3),
        (3, 0.1, True, 0.0, 4),  # the fourth fast crash in a row: give up
    ],
)
def test_restart_policy(fast_crashes, uptime, give_up, delay, after):
    decision = after_exit(fast_crashes, uptime, POLICY)
    assert (decision.give_up, decision.delay, decision.fast_crashes) == (give_up, delay, after)


def test_backoff_is_capped():
    policy = RestartPolicy(max_fast_crashes=100, base_delay=1, max_delay=5)
    assert after_exit(20, 0.0, policy).delay == 5


class Recorder:
    def __init__(self) -> None:
        self.records: dict[str, str] = {}

    def publish(self, role: str, view: str) -> None:
        self.records[role] = view


def sample(**changes) -> dict:
    raw = json.loads((REPO / "config" / "config.json").read_text())
    raw["video_generation"].update(changes)
    return raw


def caps_of(name: str) -> Capabilities:
    from videogen.backends import create_backend

    settings = build_settings(sample(), env={})
    with create_backend(name, settings.backend(name)) as backend:
        return backend.get_capabilities()


def test_router_and_workers_publish_what_they_use_never_the_key():
    secret = "key_" + "5e" * 40
    settings = build_settings(sample(), env={"RUNWAYML_API_SECRET": secret})
    store = Recorder()
    publish(store, settings, ROUTER_ROLE, "router-1@h", caps_of)
    publish(store, settings, "runway", "runway-1@h", caps_of)
    assert secret not in json.dumps(store.records)
    stack = merge(store.records)
    assert stack is not None and stack.strategy == "earliest_finish"
    assert stack.backends["runway"].has_key and not stack.backends["luma"].has_key
    assert stack.backends["runway"].max_concurrent_tasks == 3
    assert set(stack.capabilities()) == {"svd", "runway", "pika", "luma"}


def test_a_backend_worker_endpoint_wins_over_the_routers():
    settings = build_settings(sample(), env={})
    store = Recorder()
    publish(store, settings, ROUTER_ROLE, "router-1@h", caps_of)
    worker = PublishedWorker(
        backend="luma", base_url="http://127.0.0.1:9/x", has_key=True, node="n", published_at=0
    )
    store.records["backend:luma"] = worker.model_dump_json()
    stack = merge(store.records)
    assert stack is not None
    assert (stack.backends["luma"].base_url, stack.backends["luma"].has_key) == (
        "http://127.0.0.1:9/x",
        True,
    )


def test_no_router_record_means_no_stack_view():
    assert merge({}) is None
    assert merge({ROUTER_ROLE: "{not json"}) is None


def test_differences_name_what_the_client_config_says_otherwise():
    stack_settings = build_settings(sample(), env={})
    entries = {n: backend_entry(stack_settings, n, None) for n in ("svd", "runway", "pika", "luma")}
    stack = PublishedStack(
        config="x", strategy="earliest_finish", fallback_enabled=True, backends=entries,
        node="n", published_at=0,
    )  # fmt: skip
    assert differences(stack_settings, stack) == []
    raw = sample(load_balancing=False)
    raw["video_generation"]["backends"]["runway"]["max_concurrent_tasks"] = 5
    raw["video_generation"]["backends"]["luma"]["enabled"] = False
    found = differences(build_settings(raw, env={}), stack)
    assert found == [
        "strategy priority (stack: earliest_finish)",
        "enabled ['pika', 'runway', 'svd'] (stack: ['luma', 'pika', 'runway', 'svd'])",
        "runway max_concurrent_tasks 5 (stack: 3)",
    ]


def test_relative_paths_resolve_against_the_config_files_folder(tmp_path):
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "wf.json").write_text(DEFAULT_SVD_WORKFLOW.read_text())
    raw = sample(output_dir="videos")
    raw["video_generation"]["backends"]["svd"]["workflow"] = "wf.json"
    (folder / "config.json").write_text(json.dumps(raw))
    settings = load_config(folder / "config.json", env={})
    assert settings.outputs == folder / "videos"
    assert settings.backend("svd").workflow == str(folder / "wf.json")  # type: ignore[attr-defined]


def test_the_sample_config_and_defaults_use_the_shipped_workflow():
    for settings in (load_config(REPO / "config" / "config.json", env={}), build_settings({})):
        assert settings.backend("svd").workflow == str(DEFAULT_SVD_WORKFLOW)  # type: ignore[attr-defined]
    assert settings.outputs.is_absolute()
    assert DEMO_SCENES.is_file() and DATA_DIR in DEMO_SCENES.parents
    assert (REPO / "examples" / "scenes.json").resolve() == DEMO_SCENES.resolve()


def test_the_wheel_ships_the_data_files():
    import tomllib

    data = tomllib.loads((REPO / "pyproject.toml").read_text())
    patterns = data["tool"]["setuptools"]["package-data"]["videogen"]
    shipped = {p for pattern in patterns for p in (REPO / "videogen").glob(pattern)}
    assert DEFAULT_SVD_WORKFLOW in shipped and DEMO_SCENES in shipped
    assert DEMO_SCENES.with_name("first_frame.png") in shipped


def test_unreachable_redis_is_reported_fast_and_without_a_password():
    url = f"redis://user:hunter2@127.0.0.1:{free_port()}/0"
    started = time.monotonic()
    with pytest.raises(StoreUnavailableError) as caught:
        check_reachable(url, timeout=2)
    assert time.monotonic() - started < 5
    assert "hunter2" not in str(caught.value) and "127.0.0.1" in str(caught.value)
    assert safe_url(url) == url.replace("hunter2", "***")


def run_cli(*args: str, cwd: Path, timeout: float = 60):
    return subprocess.run(
        [sys.executable, "-m", "videogen", *args],
        capture_output=True, text=True, cwd=cwd, timeout=timeout,
        env={"PATH": "/usr/bin:/bin", "VIDEOGEN_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"},
    )  # fmt: skip


def test_config_is_accepted_after_the_subcommand(tmp_path):
    raw = sample(strategy="round_robin")
    (tmp_path / "c.json").write_text(json.dumps(raw))
    before = run_cli("--config", "c.json", "config", "--json", cwd=tmp_path)
    after = run_cli("config", "--json", "--config", "c.json", cwd=tmp_path)
    assert before.returncode == after.returncode == 0, before.stderr + after.stderr
    assert json.loads(after.stdout)["strategy"] == "round_robin"
    assert json.loads(after.stdout) == json.loads(before.stdout)
    assert (
        "No such option" not in run_cli("up", "--config", "c.json", "--help", cwd=tmp_path).stderr
    )


def test_client_commands_fail_within_seconds_when_redis_is_down(tmp_path):
    (tmp_path / "s.json").write_text(json.dumps([{"prompt": "x"}]))
    for args in (("submit", "s.json"), ("status",), ("health",), ("stats",)):
        started = time.monotonic()
        out = run_cli(*args, cwd=tmp_path)
        assert time.monotonic() - started < 5 + 3  # the interpreter's start on a busy machine
        assert out.returncode == 1 and "Traceback" not in out.stderr
        assert "cannot reach Redis at redis://127.0.0.1:" in out.stderr
        assert "videogen up" in out.stderr
