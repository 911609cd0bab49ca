"""videogen as installed: the built wheel with its sandbox extra runs the demo outside the
repository, and without the extra `up` stops with the line to install it, leaving nothing
running."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import psutil

from .conftest import REPO
from .test_cli import clean_env
from .test_up import Up, write_scenes
from .wheel_venv import wheel_venv

WITHOUT_THE_EXTRA = "import sys; sys.modules.update(dict.fromkeys(('starlette', 'uvicorn')))\n"
"""Makes ``import starlette`` fail as if the ``sandbox`` extra were not installed."""


def install_wheel(tmp_path: Path) -> str:
    """Build the wheel and install it with the ``sandbox`` extra (the demo serves a sandbox
    for every vendor without a key) in a fresh venv (:mod:`.wheel_venv`: its dependencies are
    linked from the test venv, not downloaded again); returns that venv's python, after
    checking it imports videogen from the wheel, never from the repository."""
    dist, venv = tmp_path / "dist", tmp_path / "venv"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(dist), str(REPO)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    python = str(wheel_venv(next(dist.glob("videogen-*.whl")), venv, extras=("sandbox",)))
    where = subprocess.run(
        [python, "-c", "import celeryconfig, starlette, videogen, workers; "
         "print(videogen.__file__, workers.__file__, celeryconfig.__file__)"],
        cwd=tmp_path, env=clean_env(), capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert all(Path(f).is_relative_to(venv) for f in where.stdout.split()), where.stdout
    return python


def test_installed_wheel_runs_the_demo_and_takes_submits_outside_the_repo(tmp_path):
    """The built wheel in a fresh venv: `up --demo` in an empty folder, then `up` there and a
    submit from a third folder, with no config file anywhere."""
    python = install_wheel(tmp_path)
    empty, third = tmp_path / "empty", tmp_path / "third"
    empty.mkdir()
    third.mkdir()
    env = clean_env()
    demo = subprocess.run(
        [python, "-m", "videogen", "up", "--demo", "--no-flower"],
        cwd=empty, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert demo.returncode == 0, demo.stdout + demo.stderr
    assert demo.stdout.count(" ok ") == 4
    videos = [p for p in (empty / "output").rglob("*.mp4") if ".cache" not in p.parts]
    assert len(videos) == 4  # the cache keeps its own copies (hard links) in output/.cache
    redis_dir = empty / "var" / "redis"  # the embedded Redis kept its data (AOF) there
    assert (redis_dir / "appendonly.aof").exists() or list(redis_dir.glob("appendonlydir/*"))
    up = Up("--no-flower", run_dir=empty / "var", cwd=empty, env=env, python=python)
    try:
        up.wait_for("press Ctrl-C")
        scenes = write_scenes(third / "scenes.json", ["a lighthouse", "a harbour"])
        out = subprocess.run(
            [python, "-m", "videogen", "submit", str(scenes), "--wait", "--json"],
            cwd=third, env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert out.returncode == 0, out.stdout + out.stderr
        results = json.loads(out.stdout)["results"]
        assert [r["success"] for r in results] == [True, True]
        assert all(Path(r["video_path"]).is_file() for r in results)
        assert all(str(empty / "output") in r["video_path"] for r in results)
    finally:
        up.stop()


def test_up_without_the_sandbox_extra_says_what_to_install_and_stops_everything(tmp_path):
    """No key and no extra: `up` has started Redis when it finds it cannot serve sandboxes."""
    run_dir = tmp_path / "var"
    code = f"{WITHOUT_THE_EXTRA}from videogen.cli import main\nmain()\n"
    out = subprocess.run(
        [sys.executable, "-c", code, "up", "--no-flower", "--run-dir", str(run_dir)],
        cwd=tmp_path, env=clean_env(), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert out.returncode == 1, out.stdout + out.stderr
    assert out.stderr.splitlines() in (
        [
            "Error: svd, runway, pika, luma would run on sandboxes (no API key, or no ComfyUI "
            f"answering), and the vendor sandboxes need {missing}, which is not installed: "
            "pip install 'videogen[sandbox]'"
        ]
        for missing in ("starlette", "uvicorn")
    )
    assert (run_dir / "redis").is_dir()  # it got as far as the embedded Redis
    assert "stopped" in out.stdout and not (run_dir / "run" / "up.json").exists()
    left = [
        p
        for p in psutil.process_iter(["cmdline"])
        if str(run_dir) in " ".join(p.info["cmdline"] or [])
    ]
    assert left == []
