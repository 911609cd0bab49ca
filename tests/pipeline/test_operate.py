"""What an operator sees: Prometheus metrics, Flower behind auth, one log line per event."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import httpx
from prometheus_client.parser import text_string_to_metric_families

from videogen.embedded import free_port

from .conftest import REPO


def wait_http(url: str, auth=None, timeout: float = 30) -> httpx.Response:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return httpx.get(url, auth=auth, timeout=2)
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def scrape(port: int) -> dict[tuple[str, str], float]:
    text = wait_http(f"http://127.0.0.1:{port}/metrics").text
    values = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if "backend" in sample.labels:
                key = sample.name + "".join(
                    f"[{k}={v}]" for k, v in sorted(sample.labels.items()) if k != "backend"
                )
                values[(key, sample.labels["backend"])] = sample.value
    return values


def test_metrics_served_over_http_from_shared_state(make_stack, sandboxes):
    stack = make_stack().start()
    generator = stack.generator()
    generator.wait(generator.submit([{"prompt": "one"}, {"prompt": "two"}]), timeout=60)
    port = free_port()
    server = stack.spawn("metrics", "metrics", "--port", str(port))
    try:
        m = scrape(port)
    finally:
        server.terminate()
    succeeded = sum(v for (k, _), v in m.items() if k == "videogen_succeeded_total")
    assert succeeded == 2
    assert m[("videogen_capacity", "runway")] == 3
    assert m[("videogen_in_flight", "runway")] == 0
    assert m[("videogen_queued", "pika")] == 0
    assert m[("videogen_healthy", "luma")] == 1
    assert m[("videogen_circuit_open", "svd")] == 0
    counts = sum(v for (k, _), v in m.items() if k == "videogen_generation_seconds_count")
    assert counts == 2
    assert sum(v for (k, _), v in m.items() if k == "videogen_cost_usd_total") > 0


def test_flower_needs_credentials_beyond_loopback(make_stack, sandboxes):
    stack = make_stack().start()
    generator = stack.generator()
    job_id = generator.submit([{"prompt": "watched by flower"}])
    generator.wait(job_id, timeout=60)

    refused = subprocess.run(
        [sys.executable, "-m", "videogen", "flower", "--address", "0.0.0.0", "--port", "1"],
        env=stack.env(), capture_output=True, text=True, cwd=REPO, timeout=60,
    )  # fmt: skip
    assert refused.returncode != 0 and "without auth" in refused.stderr

    port = free_port()
    env = stack.env() | {"VIDEOGEN_FLOWER_AUTH": "ops:s3cret-pass"}
    flower = subprocess.Popen(
        [sys.executable, "-m", "videogen", "flower", "--address", "0.0.0.0", "--port", str(port)],
        env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}/api/workers"
        assert wait_http(url).status_code == 401
        assert wait_http(url, auth=("ops", "wrong")).status_code == 401
        deadline = time.monotonic() + 30
        while True:
            workers = wait_http(url, auth=("ops", "s3cret-pass"))
            assert workers.status_code == 200
            if any(name.startswith("runway-") for name in workers.json()):
                break
            assert time.monotonic() < deadline, workers.text
            time.sleep(0.5)
        generator.wait(generator.submit([{"prompt": "seen by flower"}]), timeout=60)
        time.sleep(1)
        tasks = wait_http(f"http://127.0.0.1:{port}/api/tasks", auth=("ops", "s3cret-pass")).json()
        shown = [t["args"] for t in tasks.values() if t.get("args")]
        assert shown, tasks
        assert all("prompt" not in a and "seen by" not in a for a in shown)  # ids only
    finally:
        flower.terminate()
        flower.wait(10)


def test_one_json_log_line_per_scene_event(make_stack, sandboxes):
    def runway_only(vg):
        for name in ("svd", "pika", "luma"):
            vg["backends"][name]["enabled"] = False

    stack = make_stack(runway_only)
    stack.write_config()
    stack.spawn("router", "worker", "router", "--log-json")
    stack.spawn("runway-0", "worker", "runway", "--log-json")
    stack.wait_ready(2)
    sandboxes["runway"].state.set_knobs(http_faults=[{"status": 503, "count": 1, "on": "create"}])
    generator = stack.generator()
    job_id = generator.submit([{"prompt": "log me"}])
    assert generator.wait(job_id, timeout=60)[0]["success"]
    time.sleep(0.5)
    lines = [
        json.loads(line)
        for path in (stack.root / "router.log", stack.root / "runway-0.log")
        for line in path.read_text().splitlines()
        if line.startswith("{")
    ]
    messages = [line["message"] for line in lines if line["logger"] == "videogen"]
    scene = f"{job_id}-000"
    for event in ("routed to runway", "retry on runway", "job", "succeeded on runway"):
        assert any(scene in m and event in m for m in messages), (event, messages)
    assert any("is running" in m or "is queued" in m for m in messages)
