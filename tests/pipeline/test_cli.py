"""The `videogen` command line, run as users run it (subprocesses)."""

from __future__ import annotations

import json
import os
import re
import select
import subprocess
import sys
from pathlib import Path

import pytest
import redis

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
    "cancel": "waiting and running scenes",
    "retry": "failed or cancelled scenes",
    "film": "one MP4",
    "webhooks": "Webhook deliveries",
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
    bad.write_text(json.dumps({"video_generation": {"backends": {"nosuchvendor": {}}}}))
    out = videogen("--config", str(bad), "config")
    assert out.returncode != 0 and "unknown backend 'nosuchvendor'" in out.stderr


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
    assert [s["state"] for s in status["scenes"]] == ["succeeded", "succeeded"]
    assert status["states"] == {"succeeded": 2} and status["job_id"] == job_id
    last = max(s["expected_finish"] for s in status["scenes"])  # rounded to the ms
    assert status["expected_completion"] == pytest.approx(last, abs=0.001)
    health = json.loads(videogen("--config", config, "health", "--json", env=env).stdout)
    assert health["overall_status"] == "healthy" and health["backends"]["runway"]["max_tasks"] == 3
    stats = json.loads(videogen("--config", config, "stats", "--json", env=env).stdout)
    assert sum(b["succeeded"] for b in stats["backends"].values()) == 2
    assert sum(b["job_time_samples"] for b in stats["backends"].values()) == 2  # learned
    assert stats["backlog"] == 0
    text = videogen("--config", config, "stats", env=env).stdout
    assert "backlog: 0" in text and ("(from 1 jobs)" in text or "(from 2 jobs)" in text)
    assert sum(len(jobs_of(s)) for s in sandboxes.values()) == 2
    # the money: what the two jobs settled, today and over all time, everywhere and per backend
    settled = stats["spend"]["all"]["day"]["settled"]
    assert settled > 0 and stats["spend"]["all"]["total"]["settled"] == settled
    assert sum(s["cost"]["spent_usd"] for s in status["scenes"]) == pytest.approx(settled)
    assert status["cost"]["settled"] == pytest.approx(settled) and status["cost"]["reserved"] == 0
    assert f"settled ${settled:.2f}, reserved $0.00" in text
    assert "saved $" in text and "against the default strategy" in text


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
    unknown = videogen("worker", "nosuchvendor")
    assert unknown.returncode != 0 and "unknown backend 'nosuchvendor'" in unknown.stderr


CLOCK = r"\(\d\d:\d\d:\d\d\)"
"""How a time is shown on the clock, after its relative form (``in 2 min (14:05:00)``)."""


def scene_file(path: Path, count: int) -> Path:
    path.write_text(json.dumps([{"prompt": f"shot {i}", "duration": 5} for i in range(count)]))
    return path


def test_submit_wait_into_a_pipe_prints_plain_progress_with_an_eta(make_stack, sandboxes, tmp_path):
    stack = make_stack().start()
    env = clean_env(VIDEOGEN_REDIS_URL=stack.redis_url)
    scenes = scene_file(tmp_path / "scenes.json", 9)  # text scenes have 7 slots: some wait
    out = videogen("--config", str(stack.config_path), "submit", str(scenes), "--wait", env=env)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "\x1b" not in out.stdout + out.stderr  # a pipe gets no escape codes
    lines = out.stdout.splitlines()
    job_id = lines[0].split()[1].rstrip(":")
    assert lines[0] == f"job {job_id}: 9 scenes"

    summaries = [line for line in lines[1:] if line.startswith(f"job {job_id}: ")]
    assert re.fullmatch(
        rf"job {job_id}: 0/9 done, \d running, \d waiting; backlog \d+; "
        rf"ETA (in [\w ]+|now) {CLOCK}",  # "now": the learned jobs are short, the box slow
        summaries[0],
    ), summaries[0]
    assert re.fullmatch(rf"job {job_id}: 9/9 done \(9 succeeded\); finished .+", summaries[-1])

    order = ["pending", "routed", "running", "succeeded"]
    for i in range(9):
        scene_id = f"{job_id}-{i:03d}"
        states = [line.split()[1].rstrip(":") for line in lines if line.startswith(scene_id)]
        assert states == sorted(set(states), key=order.index), (scene_id, states)  # a line each
        assert states[-1] == "succeeded"
    waiting = rf"{job_id}-\d+ pending: place \d+ in the backlog; expected start .+, finish in .+"
    assert any(re.fullmatch(waiting, line) for line in lines), lines
    assert out.stdout.count("succeeded on") == 9
    assert [line.split()[1] for line in lines if line.startswith("  #")] == ["ok"] * 9


def test_submit_wait_on_a_terminal_draws_a_live_view(make_stack, sandboxes, tmp_path):
    import fcntl
    import pty
    import struct
    import termios

    stack = make_stack().start()
    # Jobs long enough for the view to draw while none has ended: the first job time learned
    # (0.3 s here, against the 120-s seed) makes every running scene's expected finish "now",
    # and a busy machine can take a second to draw the first frame.
    for server in sandboxes.values():
        server.state.set_knobs(run_seconds=3.0)
    env = clean_env(VIDEOGEN_REDIS_URL=stack.redis_url, TERM="xterm-256color")
    for var in ("COLUMNS", "LINES", "NO_COLOR", "FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE"):
        env.pop(var, None)
    scenes = scene_file(tmp_path / "scenes.json", 3)
    main, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 110, 0, 0))
    process = subprocess.Popen(
        [sys.executable, "-m", "videogen", "--config", str(stack.config_path), "submit",
         str(scenes), "--wait"],
        stdin=subprocess.DEVNULL, stdout=terminal, stderr=subprocess.PIPE, env=env, cwd=REPO,
    )  # fmt: skip
    os.close(terminal)
    raw = read_terminal(main, timeout=120)
    assert process.wait(timeout=10) == 0, (
        raw.decode(errors="replace") + process.stderr.read().decode()
    )
    process.stderr.close()
    shown = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", raw.decode()).replace("\r", "")
    assert "\x1b[" in raw.decode()  # a terminal gets rich's escape codes
    assert "━" in shown and "3/3" in shown  # rich's bar, full at the end
    assert re.search(rf"ETA in [\w ]+ {CLOCK}", shown), shown  # while it ran
    assert shown.count("succeeded on") == 3  # each finished scene printed above the view
    assert shown.count(" ok ") == 3  # then the results, as before


def read_terminal(fd: int, timeout: float) -> bytes:
    """All a program writes to its terminal until it closes it (EIO on Linux)."""
    chunks = []
    while True:
        ready, _, _ = select.select([fd], [], [], timeout)
        assert ready, f"no output for {timeout} s: {b''.join(chunks)[-2000:]!r}"
        try:
            chunk = os.read(fd, 65536)
        except OSError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(fd)
    return b"".join(chunks)


def test_status_shows_each_waiting_scenes_place_and_expected_times(make_stack, tmp_path):
    # Not the kept stack's config, so no worker runs: the scenes stay in the backlog.
    stack = make_stack(lambda vg: vg.update(sweep_interval=2))
    stack.write_config()
    env = clean_env(VIDEOGEN_REDIS_URL=stack.redis_url)
    config = str(stack.config_path)

    def submit(*args: str) -> str:
        out = videogen("--config", config, "submit", *args, env=env)
        assert out.returncode == 0, out.stderr
        return out.stdout.strip()

    def status(*args: str):
        out = videogen("--config", config, "status", *args, env=env)
        assert out.returncode == 0, out.stderr
        return out.stdout

    try:
        first = submit(str(scene_file(tmp_path / "nine.json", 9)))
        urgent = submit(str(scene_file(tmp_path / "two.json", 2)), "--priority", "10")
        job = json.loads(status(first, "--json"))
        ahead = json.loads(status(urgent, "--json"))
        text = status(first).splitlines()
    finally:
        redis.Redis.from_url(stack.redis_url).delete("router")  # the dispatch nobody took

    assert (ahead["priority"], [s["place"] for s in ahead["scenes"]]) == (10, [1, 2])
    assert job["priority"] == 0 and job["states"] == {"pending": 9} and job["backlog"] == 11
    scenes = job["scenes"]
    assert [s["place"] for s in scenes] == list(range(3, 12))  # behind the urgent job
    starts = [s["expected_start"] for s in scenes]
    finishes = [s["expected_finish"] for s in scenes]
    assert starts == sorted(starts) and starts[-1] > starts[0]  # 7 slots: the last ones wait
    assert all(f > s for s, f in zip(starts, finishes, strict=True))
    assert job["expected_completion"] == pytest.approx(max(finishes), abs=1)  # another read

    assert re.fullmatch(
        rf"job {first}: 0/9 done, 0 running, 9 waiting; backlog 11; ETA in [\w ]+ {CLOCK}",
        text[0],
    ), text[0]
    # nine 5-s text scenes at their cheapest backend's price (Pika: $0.20 a clip)
    assert text[1] == "  cost: estimated $1.80; settled $0.00, reserved $0.00", text[1]
    for i, line in enumerate(text[2:]):
        assert re.fullmatch(
            rf"  {first}-{i:03d} pending: place {i + 3} in the backlog; "
            rf"expected start (now|in [\w ]+) {CLOCK}, finish in [\w ]+ {CLOCK}",
            line,
        ), line
    assert "expected start in" in text[-1]
    assert len(text) == 11


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("101", "priority 101 is outside -100..100 (higher goes first)"),
        ("-101", "priority -101 is outside -100..100 (higher goes first)"),
        ("high", "'high' is not a whole number from -100 to 100"),
        ("2.5", "'2.5' is not a whole number from -100 to 100"),
    ],
)
def test_submit_refuses_a_bad_priority_before_enqueueing(make_stack, tmp_path, value, why):
    stack = make_stack()
    stack.write_config()
    env = clean_env(VIDEOGEN_REDIS_URL=stack.redis_url)
    scenes = scene_file(tmp_path / "scenes.json", 1)
    out = videogen("--config", str(stack.config_path), "submit", str(scenes),
                   "--priority", value, env=env)  # fmt: skip
    assert out.returncode == 1  # like a bad scene file
    assert out.stderr.splitlines() == [f"Error: --priority: {why}"]
    assert stack.generator().store.recent_jobs() == []


@pytest.mark.parametrize(
    ("options", "why"),
    [
        (["--max-cost-per-second", "0.001"], "every backend that can take it costs more than"),
        (["--deadline", "0"], "invalid job options: deadline: Input should be greater than 0"),
        (["--max-cost", "-1"], "invalid job options: max_cost_usd: Input should be greater than 0"),
    ],
)
def test_submit_refuses_bad_cost_options_before_enqueueing(make_stack, tmp_path, options, why):
    stack = make_stack()
    stack.write_config()
    env = clean_env(VIDEOGEN_REDIS_URL=stack.redis_url)
    scenes = scene_file(tmp_path / "scenes.json", 1)
    out = videogen("--config", str(stack.config_path), "submit", str(scenes), *options, env=env)
    assert out.returncode == 1 and why in out.stderr, out.stderr
    assert stack.generator().store.recent_jobs() == []
