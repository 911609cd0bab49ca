"""The HTTP API on the real stack: `videogen api` as users run it, over loopback, in front of
real workers and sandboxes."""

from __future__ import annotations

import json
from pathlib import Path

import av
import httpx
import redis
from httpx_sse import connect_sse

from tests.helpers import wait_until
from tests.pipeline.conftest import REPO
from videogen.embedded import free_port
from videogen.redis_keys import EVENTS
from videogen.sandbox import DEFAULT_KEYS

FULL = "full-token-" + "0123456789abcdef" * 2
READ = "read-token-" + "fedcba9876543210" * 2
TOKEN_ENV = {"VG_TEST_API_FULL": FULL, "VG_TEST_API_READ": READ}


def _with_tokens(vg):
    vg["api"] = {
        "tokens": [
            {"name": "ops", "token_env": "VG_TEST_API_FULL", "scope": "full"},
            {"name": "viewer", "token_env": "VG_TEST_API_READ", "scope": "read"},
        ]
    }


def _serve(stack) -> httpx.Client:
    port = free_port()
    stack.spawn("api", "api", "--port", str(port), env=TOKEN_ENV)
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}/v1", timeout=10)

    def up() -> bool:
        try:
            return client.get("/openapi.json").status_code == 200
        except httpx.TransportError:
            return False

    wait_until(up, 20, stack.logs)
    return client


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _error(response: httpx.Response, status: int, name: str) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"] == name and body["message"], body
    return body


def test_submit_follow_download_and_every_refusal(make_stack, tmp_path):
    stack = make_stack(_with_tokens).start()
    client = _serve(stack)
    store = stack.generator().store
    jobs_before = store.recent_jobs()
    texts: list[str] = []

    # refusals: nothing is enqueued by any of them
    bad = {"scenes": [{"prompt": "fine"}, {"prompt": "bad", "duration": -1}]}
    answer = client.post("/jobs", json=bad, headers=_bearer(FULL))
    body = _error(answer, 422, "SceneValidationError")
    assert [(p["scene"], p["field"]) for p in body["problems"]] == [("scene 2", "duration")]
    texts.append(answer.text)
    good = {"scenes": [{"prompt": "a lighthouse", "duration": 2}, {"prompt": "waves"}]}
    answer = client.post("/jobs", json=good)
    _error(answer, 401, "APIAuthError")
    answer = client.post("/jobs", json=good, headers=_bearer(READ[:-1] + "x"))
    _error(answer, 401, "APIAuthError")
    answer = client.post("/jobs", json=good, headers=_bearer(READ))
    texts.append(_error(answer, 403, "APIScopeError")["message"])
    answer = client.get("/jobs/no-such-job", headers=_bearer(READ))
    assert "no-such-job" in _error(answer, 404, "UnknownJobError")["message"]
    assert store.recent_jobs() == jobs_before

    # submit, then follow the job's events from before the submit to job.finished
    newest = redis.Redis.from_url(stack.redis_url).xrevrange(EVENTS, count=1)
    since = newest[0][0].decode() if newest else "0-0"
    answer = client.post("/jobs", json=good, headers=_bearer(FULL))
    assert answer.status_code == 201, answer.text
    job_id = answer.json()["job_id"]
    assert answer.json()["scenes"] == 2 and store.recent_jobs()[0] == job_id
    headers = {**_bearer(READ), "Last-Event-ID": since}
    events = []
    with connect_sse(client, "GET", f"/jobs/{job_id}/events", headers=headers) as source:
        for event in source.iter_sse():
            events.append((event.event, event.json()))
            if event.event == "job.finished":
                break
    assert [name for name, _ in events] == ["scene.succeeded"] * 2 + ["job.finished"]
    assert events[-1][1] == {"job_id": job_id, "states": {"succeeded": 2}}
    scene_ids = {data["scene_id"] for _, data in events[:2]}

    # read the job and its scenes, download a video and play it
    answer = client.get(f"/jobs/{job_id}/scenes", headers=_bearer(READ))
    scenes = answer.json()["scenes"]
    texts.append(answer.text)
    assert {s["id"] for s in scenes} == scene_ids
    assert all(s["state"] == "succeeded" and s["backend"] for s in scenes)
    assert all(s["attempts"] == [] for s in scenes)  # failed tries only: there were none
    summary = client.get(f"/jobs/{job_id}", headers=_bearer(READ)).json()
    assert summary["states"] == {"succeeded": 2} and summary["job_id"] == job_id
    video = client.get(f"/jobs/{job_id}/scenes/{scenes[0]['id']}/video", headers=_bearer(READ))
    assert video.status_code == 200 and video.headers["content-type"] == "video/mp4"
    (tmp_path / "scene.mp4").write_bytes(video.content)
    with av.open(str(tmp_path / "scene.mp4")) as container:
        assert container.streams.video and container.duration and container.duration > 0

    retry = {"scene_ids": [scenes[0]["id"]]}  # a succeeded scene, named: refused
    answer = client.post(f"/jobs/{job_id}/retry", json=retry, headers=_bearer(FULL))
    assert "only failed or cancelled" in _error(answer, 409, "JobControlError")["message"]

    for path in ("/backends", "/statistics", "/jobs"):
        answer = client.get(path, headers=_bearer(READ))
        assert answer.status_code == 200, answer.text
        texts.append(answer.text)
    backends = client.get("/backends", headers=_bearer(READ)).json()["backends"]
    enabled = {name for name, b in backends.items() if b["enabled"]}
    assert enabled == {"svd", "runway", "pika", "luma"}
    assert not backends["wan"]["enabled"]  # the sample's newer backends: listed, off
    assert all("circuit" in b and "max_tasks" in b for b in backends.values())

    # no token and no vendor key anywhere in what was answered or logged
    client.close()
    log = (stack.root / "api.log").read_text()
    assert f"/v1/jobs/{job_id}/events" in log  # the log is the API's
    secrets = [FULL, READ, *(key for key in DEFAULT_KEYS.values() if key)]
    for text in [*texts, log]:
        assert not any(secret in text for secret in secrets)


def test_submit_with_an_uploaded_first_frame(make_stack):
    stack = make_stack(_with_tokens).start()
    client = _serve(stack)
    generator = stack.generator()
    frame = (REPO / "examples" / "first_frame.png").read_bytes()
    job = {"scenes": [{"prompt": "the frame comes alive", "image": "frame.png"}]}
    files = [("images", ("frame.png", frame, "image/png"))]

    missing = {"scenes": [{"image": "other.png"}]}
    answer = client.post("/jobs/upload", data={"job": json.dumps(missing)}, files=files,
                         headers=_bearer(FULL))  # fmt: skip
    body = _error(answer, 422, "SceneValidationError")
    assert [(p["scene"], p["field"]) for p in body["problems"]] == [("scene 1", "image")]

    answer = client.post("/jobs/upload", data={"job": json.dumps(job)}, files=files,
                         headers=_bearer(FULL))  # fmt: skip
    assert answer.status_code == 201, answer.text
    job_id = answer.json()["job_id"]
    results = generator.wait(job_id, timeout=20)
    assert results[0]["success"], results
    (record,) = generator.records(job_id)
    image = Path(record.spec.image or "")
    assert image.is_relative_to(stack.output_dir.resolve() / "uploads")
    assert image.read_bytes() == frame
