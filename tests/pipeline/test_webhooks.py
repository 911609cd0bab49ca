"""Webhooks on the real stack: a receiver on loopback that fails its first two deliveries gets
every event exactly once after deduplication by Idempotency-Key, each signed."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections import defaultdict
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.helpers import wait_until
from videogen.embedded import free_port
from videogen.webhooks import verify

from .conftest import REPO

JOB_SECRET = "per-job-secret-0123456789"
CONFIG_SECRET = "config-secret-9876543210"
SCENES = [
    {"prompt": "a calm lake at dawn", "duration": 5},
    {"prompt": "a forbidden scene", "duration": 5},
    {"prompt": "a city at night", "duration": 5},
]


class Receiver(ThreadingHTTPServer):
    """Keeps every request; answers 500 to the first ``failures`` of them, then 200."""

    def __init__(self, failures: int) -> None:
        super().__init__(("127.0.0.1", free_port()), _Handler)
        self.failures = failures
        self.lock = threading.Lock()
        self.requests: list[dict[str, Any]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def take(self, path: str, headers: dict[str, str], body: bytes) -> int:
        with self.lock:
            status = 500 if len(self.requests) < self.failures else 200
            self.requests.append({"path": path, "headers": headers, "body": body, "status": status})
            return status

    def unique(self, path: str) -> dict[str, list[dict[str, Any]]]:
        """The requests to ``path`` by Idempotency-Key (what a receiver keeps after dedupe)."""
        by_key: dict[str, list[dict[str, Any]]] = defaultdict(list)
        with self.lock:
            for r in self.requests:
                if r["path"] == path:
                    by_key[r["headers"]["idempotency-key"]].append(r)
        return by_key

    def taken(self, path: str) -> int:
        """Events to ``path`` answered 200 at least once."""
        copies = self.unique(path).values()
        return sum(1 for c in copies if any(r["status"] == 200 for r in c))


class _Handler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        body = self.rfile.read(int(self.headers["Content-Length"]))
        headers = {k.lower(): v for k, v in self.headers.items()}
        status = self.server.take(self.path, headers, body)
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver(failures=2)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_every_event_arrives_once_after_dedupe_signed_despite_two_failures(
    make_stack, sandboxes, receiver
):
    def hooks(vg):
        vg["webhooks"] = [
            {"url": f"{receiver.url}/config", "secret": CONFIG_SECRET,
             "events": ["scene.failed", "job.finished"]},
        ]  # fmt: skip
        vg["webhook_delivery"] = {"base_delay": 0.2, "max_delay": 1.0, "interval": 0.1}

    stack = make_stack(hooks).start()
    for server in sandboxes.values():  # a content-policy refusal: failed, never retried
        server.state.set_knobs(fail_prompts={"forbidden": "SAFETY.INPUT.TEXT"})
    generator = stack.generator()
    job_id = generator.submit(SCENES, webhook=f"{receiver.url}/job", webhook_secret=JOB_SECRET)
    results = generator.wait(job_id, timeout=30)
    assert [r["success"] for r in results] == [True, False, True], results
    scene_ids = [r["scene_id"] for r in results]

    def arrived() -> bool:
        return receiver.taken("/job") == 4 and receiver.taken("/config") == 2

    wait_until(arrived, 20, lambda: f"{receiver.requests}\n{stack.logs()}")

    job_events = _deduped(receiver, "/job", JOB_SECRET)
    assert sorted((e["type"], (e.get("scene") or {}).get("id")) for e in job_events) == [
        ("job.finished", None),
        ("scene.failed", scene_ids[1]),
        ("scene.succeeded", scene_ids[0]),
        ("scene.succeeded", scene_ids[2]),
    ]
    config_events = _deduped(receiver, "/config", CONFIG_SECRET)
    assert sorted(e["type"] for e in config_events) == ["job.finished", "scene.failed"]

    for event in job_events + config_events:
        assert event["job_id"] == job_id
        if event["type"] == "job.finished":
            assert event["job"] == {
                "scenes": 3, "states": {"succeeded": 2, "failed": 1, "cancelled": 0}
            }  # fmt: skip
        elif event["type"] == "scene.failed":
            assert (
                event["scene"]["error"] == results[1]["error"] and "content" in results[1]["error"]
            )
            assert event["scene"]["video_path"] is None
        else:
            assert event["scene"]["video_path"] == results[event["scene"]["index"]]["video_path"]
            assert event["scene"]["video"]["duration"] > 0

    # The two failed deliveries were retried under their own keys, and nothing else repeated.
    assert len(receiver.requests) == 6 + 2
    assert [r["status"] for r in receiver.requests].count(500) == 2
    assert len(receiver.unique("/job")) == 4 and len(receiver.unique("/config")) == 2
    stats = generator.get_statistics()["webhooks"]
    delivered = sum(row["delivered"] for row in stats["destinations"].values())
    failed = sum(row["failed_attempts"] for row in stats["destinations"].values())
    assert (delivered, failed, stats["pending"], stats["dead"]) == (6, 2, 0, 0)

    shown = _videogen(stack, "webhooks").stdout
    assert "webhooks: 0 pending, 0 dead" in shown
    assert f"{receiver.url}/job  delivered 4  retrying 0  dead 0" in shown
    assert "last error" in shown and "HTTP 500" in shown
    assert JOB_SECRET not in shown and CONFIG_SECRET not in shown


def test_a_refused_webhook_url_enqueues_nothing(make_stack, tmp_path):
    stack = make_stack()  # Redis, and no worker: the refusal comes before anything runs
    stack.write_config()
    scenes = tmp_path / "scenes.json"
    scenes.write_text(json.dumps(SCENES[:1]))
    out = _videogen(stack, "submit", str(scenes), "--webhook", "http://169.254.169.254/latest")
    assert out.returncode == 1
    assert "webhook URL refused: 169.254.169.254 is a cloud metadata address" in out.stderr
    assert stack.generator().store.recent_jobs() == []


def _videogen(stack, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "videogen", *args],
        capture_output=True, text=True, env=stack.env(), cwd=REPO, timeout=60,
    )  # fmt: skip


def _deduped(receiver: Receiver, path: str, secret: str) -> list[dict[str, Any]]:
    """One body per Idempotency-Key, after checking every copy's signature and that the
    copies are the same event."""
    events = []
    for key, copies in receiver.unique(path).items():
        for copy in copies:
            verify(secret, copy["body"], copy["headers"]["videogen-signature"])
            assert copy["headers"]["content-type"] == "application/json"
        bodies = {c["body"] for c in copies}
        assert len(bodies) == 1, f"{key}: different bodies under one key"
        event = json.loads(bodies.pop())
        assert copies[0]["headers"]["videogen-event"] == event["type"]
        events.append(event)
    return events
