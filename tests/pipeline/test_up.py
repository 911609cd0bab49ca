"""`videogen up` as a user meets it: the quick start in two terminals, a supervisor that
restarts what crashes, and a stop that leaves nothing behind (an installed wheel:
test_install.py). Every test drives the real command in a subprocess."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest
import redis

from tests.helpers import wait_until
from videogen.api import VideoGenerator
from videogen.constants import EMBEDDED_REDIS_PORT

from .conftest import REPO
from .test_cli import clean_env

REDIS_URL = f"redis://127.0.0.1:{EMBEDDED_REDIS_PORT}/0"
REPORT_ENV = "VIDEOGEN_UP_REPORT"
"""Where the quick-start test writes its figures (batch seconds before and after `health`)."""


class Up:
    """One `videogen up` subprocess, its output in a file, and every process it started."""

    def __init__(
        self,
        *args: str,
        run_dir: Path,
        cwd: Path,
        env: dict[str, str],
        python: str = sys.executable,
    ):
        self.run_dir = run_dir
        run_dir.mkdir(parents=True, exist_ok=True)
        self.out = run_dir / f"up-{time.monotonic_ns()}.out"
        self.cmd = [python, "-m", "videogen", "up", "--run-dir", str(run_dir), *args]
        with self.out.open("wb") as out:
            self.process = subprocess.Popen(
                self.cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT
            )

    def text(self) -> str:
        return self.out.read_text(errors="replace")

    def wait_for(self, pattern: str, timeout: float = 120) -> re.Match[str]:
        def found() -> re.Match[str] | None:
            match = re.search(pattern, self.text())
            assert match or self.process.poll() is None, f"up exited early:\n{self.text()}"
            return match

        return wait_until(found, timeout, lambda: f"{pattern!r} in:\n{self.text()}")

    def tree(self) -> list[psutil.Process]:
        me = psutil.Process(self.process.pid)
        return [me, *me.children(recursive=True)]

    def child(self, fragment: str) -> psutil.Process:
        return next(p for p in self.tree()[1:] if fragment in " ".join(p.cmdline()))

    def sandboxes(self) -> dict[str, str]:
        """Backend name -> the sandbox's root URL (its control routes live there)."""
        found = re.findall(r"sandbox:\s+(\w+)\s+(http://127\.0\.0\.1:\d+)", self.text())
        return dict(found)

    def stop(self) -> None:
        """Kill `up` and everything it started; never raises. Frozen first (SIGSTOP), so it
        can start nothing more while its children's process groups are killed. The orderly
        stop is what the stop-signal tests check; as every test's teardown it cost ~4 s."""
        if self.process.poll() is None:
            with contextlib.suppress(psutil.NoSuchProcess):
                self.process.send_signal(signal.SIGSTOP)
                for child in psutil.Process(self.process.pid).children(recursive=True):
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.killpg(child.pid, signal.SIGKILL)  # each runs in a group of its own
            self.process.kill()
            self.process.wait()
        for proc in self._leftovers():
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.kill()

    def _leftovers(self) -> list[psutil.Process]:
        run = str(self.out.parent)
        return [
            p for p in psutil.process_iter(["cmdline"]) if run in " ".join(p.info["cmdline"] or [])
        ]


def videogen(*args: str, cwd: Path, env: dict[str, str], timeout: float = 120):
    return subprocess.run(
        [sys.executable, "-m", "videogen", *args],
        capture_output=True, text=True, cwd=cwd, env=env, timeout=timeout,
    )  # fmt: skip


def write_scenes(path: Path, prompts: list[str]) -> Path:
    path.write_text(json.dumps([{"prompt": p, "duration": 5} for p in prompts]))
    return path


def vendor_jobs(up: Up) -> list[dict]:
    jobs = []
    for url in up.sandboxes().values():
        jobs.extend(httpx.get(f"{url}/__sandbox__/records", timeout=5).json()["jobs"])
    return jobs


def set_knobs(up: Up, **knobs: float) -> None:
    for url in up.sandboxes().values():
        httpx.post(f"{url}/__sandbox__/knobs", json=knobs, timeout=5).raise_for_status()


def no_tracebacks(run_dir: Path) -> dict[str, str]:
    logs = [*run_dir.glob("log/*.log"), *run_dir.glob("redis/*.log")]
    return {p.name: p.read_text(errors="replace") for p in logs if "Traceback" in p.read_text()}


def submit_batch(folder: Path, name: str, env: dict[str, str]) -> tuple[float, str]:
    """Submit 4 scenes from ``folder`` and wait: (seconds it took, the job id)."""
    scenes = write_scenes(folder / f"{name}.json", [f"{name} {i}" for i in range(4)])
    started = time.monotonic()
    out = videogen("submit", str(scenes), "--wait", cwd=folder, env=env)
    assert out.returncode == 0, out.stdout + out.stderr
    return time.monotonic() - started, out.stdout.split()[1].rstrip(":")


def test_quick_start_clients_see_the_stack_from_another_folder(tmp_path):
    """README: `up` in one terminal (the repo, its config); health, submit, status, stats
    from another folder with no config file. `health` must neither lie nor poison routing."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = clean_env(VIDEOGEN_OUTPUT_DIR=str(tmp_path / "output"))
    up = Up("--no-flower", run_dir=tmp_path / "var", cwd=REPO, env=env)
    try:
        dashboard = up.wait_for(r"dashboard: (http://\S+)/ ").group(1)
        up.wait_for("press Ctrl-C")
        client = clean_env()
        before, _ = submit_batch(elsewhere, "before", client)
        health = videogen("health", cwd=elsewhere, env=client)
        assert health.returncode == 0, health.stdout + health.stderr
        assert "probed now by the running stack" in health.stdout
        assert health.stdout.count(" healthy ") == 4 and "UNHEALTHY" not in health.stdout
        # The client has no config file (defaults: `priority`); the stack runs the repo's.
        assert health.stderr.count("\n") == 1
        assert "strategy priority (stack: earliest_finish)" in health.stderr
        circuits = redis.Redis.from_url(REDIS_URL).keys("vg:circuit:*")
        after, job = submit_batch(elsewhere, "after", client)

        status = json.loads(videogen("status", job, "--json", cwd=elsewhere, env=client).stdout)
        assert [s["state"] for s in status["scenes"]] == ["succeeded"] * 4
        assert all(Path(s["result"]["video_path"]).is_absolute() for s in status["scenes"])
        stats = videogen("stats", "--json", cwd=elsewhere, env=client)
        assert stats.returncode == 0, stats.stderr
        backends = json.loads(stats.stdout)["backends"]
        assert sum(b["succeeded"] for b in backends.values()) == 8
        assert sum(b["failovers"] + b["errors"] for b in backends.values()) == 0
        assert len(vendor_jobs(up)) == 8
        # `up` serves the API and the dashboard (open on loopback: no tokens configured)
        listed = httpx.get(f"{dashboard}/v1/jobs", timeout=10).json()["jobs"]
        assert job in [j["job_id"] for j in listed]
        page = httpx.get(f"{dashboard}/jobs/{job}", timeout=10)
        assert page.status_code == 200 and "succeeded 4" in page.text
        figures = {"batch_before_s": before, "batch_after_s": after, "ratio": after / before}
        print(f"quick start: {json.dumps(figures)}; circuit records after health: {circuits}")
        if os.environ.get(REPORT_ENV):
            Path(os.environ[REPORT_ENV]).write_text(json.dumps(figures, indent=2))
    finally:
        up.stop()


def short_timings(tmp_path: Path) -> Path:
    """The sample config with recovery timings a test can wait for."""
    raw = json.loads((REPO / "config" / "config.json").read_text())
    raw["video_generation"].update(
        lease_ttl=3, route_claim_timeout=3, sweep_interval=1, health_check_interval=2,
        retry_base_delay=0.05, output_dir=str(tmp_path / "output"),
    )  # fmt: skip
    path = tmp_path / "config.json"
    path.write_text(json.dumps(raw))
    return path


def test_up_restarts_each_killed_child_and_every_scene_succeeds_once(tmp_path):
    config = short_timings(tmp_path)
    up = Up("--no-flower", "--config", str(config), run_dir=tmp_path / "var", cwd=tmp_path,
            env=clean_env())  # fmt: skip
    try:
        up.wait_for("press Ctrl-C")
        set_knobs(up, run_seconds=1.5, queue_seconds=0.05)
        generator = VideoGenerator(str(config), redis_url=REDIS_URL)
        prompts = [f"shot {i}" for i in range(14)]
        job = generator.submit([{"prompt": p, "duration": 5} for p in prompts])
        kills = [("worker runway", "worker-runway"), ("worker router", "worker-router"),
                 ("videogen beat", "beat")]  # fmt: skip
        for fragment, name in kills:
            up.child(fragment).kill()
            up.wait_for(rf"{name} restarted \(restart 1\)", timeout=60)
            assert up.process.poll() is None
        results = generator.wait(job, timeout=180)
        assert [r["success"] for r in results] == [True] * len(prompts), results
        jobs = vendor_jobs(up)
        per_prompt = {p: sum(1 for j in jobs if j["prompt"] == p) for p in prompts}
        assert per_prompt == {p: 1 for p in prompts}, per_prompt  # 0 duplicate vendor jobs
        assert up.process.poll() is None, up.text()
    finally:
        up.stop()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_up_leaves_no_process_behind_on_a_stop_signal(tmp_path, sig):
    run_dir = tmp_path / "var"
    args = ("--config", str(short_timings(tmp_path)))
    up = Up(*args, run_dir=run_dir, cwd=tmp_path, env=clean_env())
    try:
        up.wait_for("press Ctrl-C")
        if sig == signal.SIGHUP:  # also: a SIGKILLed `up` is cleaned up by the next one
            orphans = up.tree()[1:]
            up.process.kill()
            up.process.wait()
            up = Up(*args, run_dir=run_dir, cwd=tmp_path, env=clean_env())
            up.wait_for("press Ctrl-C")
            assert re.search(r"cleaned up \d+ process\(es\) left by a previous", up.text())
            assert not [p for p in orphans if p.is_running() and p.status() != "zombie"]
        tree = up.tree()
        names = " ".join(" ".join(p.cmdline()) for p in tree)
        assert "redis-server" in names and "worker router" in names and "flower" in names
        assert "celery" in names  # beat's and Flower's own children: grandchildren of `up`
        up.process.send_signal(sig)
        assert up.process.wait(30) == 0, up.text()
        _, alive = psutil.wait_procs(tree, timeout=30)
        assert [p for p in alive if p.status() != "zombie"] == []
        assert no_tracebacks(run_dir) == {}
        assert "stopped" in up.text() and "Traceback" not in up.text()
        assert not (run_dir / "run" / "up.json").exists()
    finally:
        up.stop()


class Recording:
    def __init__(self) -> None:
        self.sent: list[tuple] = []

    def dispatch(self) -> None:
        self.sent.append(("dispatch",))

    def generate(self, backend: str, scene_id: str, countdown: float = 0.0) -> None:
        self.sent.append(("generate", backend, scene_id))


def test_a_probe_without_a_key_never_writes_a_verdict(redis_server, sandboxes):
    """What made `videogen health` poison routing: a keyless client's verdict in Redis."""
    from videogen.loading import build_settings
    from videogen.pipeline import Pipeline
    from videogen.store import Store

    from .conftest import clear_state

    clear_state(redis_server.url)
    raw = json.loads((REPO / "config" / "config.json").read_text())
    raw["video_generation"]["backends"]["svd"]["base_url"] = sandboxes["svd"].base_url
    keyless = Pipeline(build_settings(raw, env={}), Store.from_url(redis_server.url), Recording())
    reports = keyless.probe_all()
    assert not reports["runway"]["healthy"] and reports["svd"]["healthy"]
    store = keyless.store
    assert [store.health(n) for n in ("runway", "pika", "luma")] == [None, None, None]
    assert [store.circuit(n).failures for n in ("runway", "pika", "luma")] == [0, 0, 0]
    assert store.health("svd")["healthy"]  # needs no key: its verdict is real
