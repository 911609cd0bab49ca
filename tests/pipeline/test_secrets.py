"""With real-looking keys configured, the keys appear nowhere a person or a tool can read.

Searched: every Redis command of the run (MONITOR: Celery messages included), the Redis
dump and AOF on disk, every worker log, Flower's API answers, the CLI's output, and the
error text of every scene.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading

import httpx
import redis

from tests.helpers import wait_until
from videogen.embedded import free_port
from videogen.sandbox import DEFAULT_KEYS

from .conftest import REPO
from .test_operate import wait_http


class Monitor(threading.Thread):
    """Records every command Redis executes while it runs."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.client = redis.Redis.from_url(url)
        self.lines: list[str] = []
        self.stop = False
        self.listening = threading.Event()

    def run(self) -> None:
        with self.client.monitor() as monitor:  # Redis has said OK to MONITOR on entry
            self.listening.set()
            for command in monitor.listen():
                self.lines.append(str(command.get("command", "")))
                if self.stop:
                    return


def test_keys_never_leak(make_stack, sandboxes, redis_server, tmp_path):
    keys = [k for k in DEFAULT_KEYS.values() if k]
    wrong = "luma-" + "7" * 32 + "-" + "e" * 40  # a real-looking key the vendor refuses

    def with_failures(vg):
        vg["backends"]["luma"]["api_key"] = wrong
        vg["fallback_enabled"] = True

    stack = make_stack(with_failures)
    secrets = keys + [wrong]
    monitor = Monitor(redis_server.url)
    monitor.start()
    assert monitor.listening.wait(10)
    stack.start()
    sandboxes["runway"].state.set_knobs(fail_prompts={"doomed": "INTERNAL.BAD_OUTPUT.CODE01"})
    generator = stack.generator()
    scenes = [{"prompt": f"scene {i}"} for i in range(4)] + [{"prompt": "doomed scene"}]
    job_id = generator.submit(scenes)
    results = generator.wait(job_id, timeout=90)
    assert sum(r["success"] for r in results) >= 4

    port = free_port()
    auth = ("ops", "pw-for-tests")
    stack.spawn(
        "flower", "flower", "--port", str(port), env={"VIDEOGEN_FLOWER_AUTH": ":".join(auth)}
    )
    base = f"http://127.0.0.1:{port}/api"
    wait_http(f"{base}/workers", auth=auth)

    def flower_shows_a_generation() -> str:
        generator.wait(generator.submit([{"prompt": "for flower"}]), timeout=30)
        text = httpx.get(f"{base}/tasks", auth=auth, timeout=5).text
        text += httpx.get(f"{base}/workers", auth=auth, timeout=5).text
        return text if "videogen.generate" in text else ""

    flower_text = wait_until(flower_shows_a_generation, 30, "Flower shows a generate task")

    cli = ""
    for args in (
        ["status", job_id, "--json"],
        ["stats", "--json"],
        ["health", "--json"],
        ["config"],
    ):
        out = subprocess.run(
            [sys.executable, "-m", "videogen", "--config", str(stack.config_path), *args],
            env=stack.env(), cwd=REPO, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert out.returncode == 0, out.stderr
        cli += out.stdout + out.stderr
    monitor.stop = True
    redis.Redis.from_url(redis_server.url).ping()  # one more command wakes the monitor up
    monitor.join(5)

    client = redis.Redis.from_url(redis_server.url, decode_responses=True)
    dump = json.dumps({k: _value(client, k) for k in client.scan_iter("*")})
    on_disk = b"".join(p.read_bytes() for p in redis_server.data_dir.rglob("*") if p.is_file())
    health = [generator.store.health(name) for name in sandboxes]
    errors = json.dumps(
        [r["error"] for r in results]
        + [s.get("attempts") for s in generator.job_status(job_id)]
        + [h["detail"] for h in health if h]
    )
    places = {
        "redis commands (incl. Celery messages)": "\n".join(monitor.lines),
        "redis contents": dump,
        "redis files on disk": on_disk.decode("latin-1"),
        "worker logs": stack.logs(),
        "flower": flower_text,
        "cli output": cli,
        "error texts": errors,
    }
    assert (
        len(monitor.lines) > 100
        and "videogen.generate" in places["redis commands (incl. Celery messages)"]
    )
    assert "401" in errors  # the refused key did produce error texts worth searching
    leaks = {place: [s[:12] for s in secrets if s in text] for place, text in places.items()}
    assert leaks == {place: [] for place in places}


def _value(client: redis.Redis, key: str) -> object:
    kind = client.type(key)
    reader = {
        "string": client.get,
        "hash": client.hgetall,
        "list": lambda k: client.lrange(k, 0, -1),
        "set": client.smembers,
        "zset": lambda k: client.zrange(k, 0, -1),
    }.get(kind)
    return sorted(map(str, reader(key))) if kind == "set" else (reader(key) if reader else kind)
