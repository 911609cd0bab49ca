"""The `videogen` command line, run as users run it (subprocesses)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import REPO, jobs_of

COMMANDS = {
    "up": "whole stack",
    "submit": "Validate SCENE_FILE",
    "status": "job's scenes",
    "health": "Probe every enabled backend",
    "stats": "success rate",
    "worker": "Celery worker",
    "beat": "only one runs",
    "flower": "Flower",
    "sandbox": "sandbox",
    "generate": "one scene on one backend",
    "probe": "health probe",
    "config": "Validate the config",
}


def videogen(*args: str, env: dict[str, str] | None = None, cwd: Path = REPO, timeout: float = 120):
    return subprocess.run(
        [sys.executable, "-m", "videogen", *args],
        capture_output=True,
        text=True,
        env=env or clean_env(),
        cwd=cwd,
        timeout=timeout,
    )


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIDEOGEN_")}
    env.update(extra)
    return env


@pytest.mark.parametrize(("command", "fragment"), COMMANDS.items())
def test_every_command_has_useful_help(command, fragment):
    out = videogen(command, "--help")
    assert out.returncode == 0, out.stderr
    assert fragment.lower() in out.stdout.lower()
    assert "Usage: videogen" in out.stdout


def test_top_level_help_lists_every_command():
    out = videogen("--help")
    assert all(command in out.stdout for command in COMMANDS)


def test_config_command_explains_missing_keys_without_leaking():
    secret = "key_" + "9f" * 64
    out = videogen("config", env=clean_env(RUNWAYML_API_SECRET=secret))
    assert out.returncode == 0, out.stderr
    assert "env:RUNWAYML_API_SECRET" in out.stdout
    assert "placeholder ('your_luma_api_key')" in out.stdout
    assert secret not in out.stdout + out.stderr


def test_bad_config_is_refused_with_the_reason(tmp_path):
    bad = tmp_path / "c.json"
    bad.write_text(json.dumps({"video_generation": {"backends": {"kling": {}}}}))
    out = videogen("--config", str(bad), "config")
    assert out.returncode != 0 and "unknown backend 'kling'" in out.stderr


def test_generate_on_a_sandbox(tmp_path):
    out = videogen(
        "generate", "--sandbox", "-b", "luma", "-p", "a lighthouse", "--duration", "7",
        "-o", str(tmp_path / "l.mp4"), "--json",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["request"]["duration"] == 9.0 and result["video"]["frames"] > 0
    assert (tmp_path / "l.mp4").stat().st_size > 0


def test_probe_sandboxes():
    out = videogen("probe", "--sandbox")
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.count("healthy") == 4


def test_submit_status_health_stats_against_a_running_stack(make_stack, sandboxes, tmp_path):
    stack = make_stack().start()
    env = clean_env(VIDEOGEN_REDIS_URL=stack.redis_url)
    config = str(stack.config_path)
    scenes = tmp_path / "scenes.json"
    scenes.write_text(json.dumps([{"prompt": "a", "duration": 5}, {"prompt": "b", "duration": 9}]))

    out = videogen("--config", config, "submit", str(scenes), "--wait", env=env)
    assert out.returncode == 0, out.stdout + out.stderr
    job_id = out.stdout.split()[1].rstrip(":")
    assert out.stdout.count("succeeded on") == 2 and "ok" in out.stdout

    status = json.loads(videogen("--config", config, "status", job_id, "--json", env=env).stdout)
    assert [s["state"] for s in status] == ["succeeded", "succeeded"]
    health = json.loads(videogen("--config", config, "health", "--json", env=env).stdout)
    assert health["overall_status"] == "healthy" and health["backends"]["runway"]["max_tasks"] == 3
    stats = json.loads(videogen("--config", config, "stats", "--json", env=env).stdout)
    assert sum(b["succeeded"] for b in stats["backends"].values()) == 2
    assert sum(len(jobs_of(s)) for s in sandboxes.values()) == 2


def test_submit_refuses_a_bad_file_before_enqueueing(make_stack, tmp_path):
    stack = make_stack()
    stack.write_config()
    scenes = tmp_path / "scenes.json"
    scenes.write_text(json.dumps([{"prompt": "ok"}, {"prompt": "x", "resolution": "big"}]))
    env = clean_env(VIDEOGEN_REDIS_URL=stack.redis_url)
    out = videogen("--config", str(stack.config_path), "submit", str(scenes), env=env)
    assert out.returncode != 0
    assert "scene 2: resolution" in out.stderr
    assert stack.generator().store.recent_jobs() == []


def test_worker_for_a_real_backend_without_a_key_is_refused_at_start():
    out = videogen("worker", "runway")  # the sample config holds only a placeholder
    assert out.returncode != 0
    assert "runway has no API key" in out.stderr and "placeholder" in out.stderr
    unknown = videogen("worker", "kling")
    assert unknown.returncode != 0 and "unknown backend 'kling'" in unknown.stderr
