"""The fal sandbox's own contract: Key auth, short URLs, 202/200, errors on the result (Pika's
endpoints), and the other models on the same queue, each with its own inputs."""

from __future__ import annotations

import time
import uuid

import httpx
import pytest

from tests.sandbox.drivers import FalDriver

T2V = "/fal-ai/pika/v2.2/text-to-video"
I2V = "/fal-ai/pika/v2.2/image-to-video"


def test_bearer_is_not_fal_auth(pika: FalDriver) -> None:
    pika.http.headers["Authorization"] = f"Bearer {pika.key}"
    refused = pika.create()
    assert refused.status_code == 401 and refused.json()["detail"]
    assert pika.state.records()["jobs"] == []


def test_submit_answers_with_urls_without_the_sub_path(pika: FalDriver) -> None:
    submitted = pika.create()
    assert submitted.status_code == 200
    body = submitted.json()
    base = f"{pika.server.root_url}/fal-ai/pika/requests/{body['request_id']}"
    assert body == {
        "request_id": body["request_id"],
        "response_url": base,
        "status_url": base + "/status",
        "cancel_url": base + "/cancel",
        "status": "IN_QUEUE",
        "queue_position": 0,
    }


def test_sub_path_urls_work_too(pika: FalDriver) -> None:
    request_id = pika.submit()
    long = f"/fal-ai/pika/v2.2/text-to-video/requests/{request_id}"
    assert pika.http.get(long + "/status").json()["status"] == "IN_QUEUE"
    assert pika.http.get(long).status_code == 400  # still in progress
    assert pika.http.put(long + "/cancel").json() == {"status": "CANCELLATION_REQUESTED"}


def test_status_is_202_until_completed_then_200(pika: FalDriver) -> None:
    pika.state.set_knobs(concurrency_limit=1, queue_seconds=0.1, run_seconds=0.2)
    pika.submit("first")
    request_id = pika.submit("second")
    seen: list[tuple[int, str]] = []
    for _ in range(1000):
        response = pika.poll(request_id)
        status = response.json()
        if not seen or seen[-1][1] != status["status"]:
            seen.append((response.status_code, status["status"]))
            if status["status"] == "IN_QUEUE":
                assert status["queue_position"] == 0
            if status["status"] == "IN_PROGRESS":
                assert [entry["level"] for entry in status["logs"]] == ["INFO", "INFO"]
        if status["status"] == "COMPLETED":
            break
        time.sleep(0.005)
    assert seen == [(202, "IN_QUEUE"), (202, "IN_PROGRESS"), (200, "COMPLETED")]
    assert status["metrics"]["inference_time"] == pytest.approx(0.3)
    assert status["response_url"].endswith(f"/fal-ai/pika/requests/{request_id}")


def test_queue_positions_count_the_requests_ahead(pika: FalDriver) -> None:
    pika.state.set_knobs(concurrency_limit=1, never_finish=True)
    ids = [pika.submit() for _ in range(3)]
    positions = [pika.http.get(f"/fal-ai/pika/requests/{i}/status").json() for i in ids]
    assert [p["queue_position"] for p in positions[1:]] == [0, 1]


def test_logs_only_when_asked(pika: FalDriver) -> None:
    pika.state.set_knobs(queue_seconds=0.0, never_finish=True)
    request_id = pika.submit()
    quiet = pika.http.get(f"/fal-ai/pika/requests/{request_id}/status").json()
    assert quiet == {"status": "IN_PROGRESS", "logs": None, "response_url": quiet["response_url"]}
    chatty = pika.http.get(f"/fal-ai/pika/requests/{request_id}/status", params={"logs": "true"})
    assert "Progress" in chatty.json()["logs"][-1]["message"]


def test_result_of_a_finished_request(pika: FalDriver) -> None:
    request_id = pika.submit()
    assert pika.result(request_id).json() == {"detail": "Request is still in progress"}
    pika.watch(request_id)
    video = pika.result(request_id).json()["video"]
    download = pika.download(request_id)
    assert video["content_type"] == "video/mp4" and video["file_name"] == "output.mp4"
    assert video["file_size"] == len(download.content) > 0


def test_content_policy_failure_is_a_422_on_the_result(pika: FalDriver) -> None:
    pika.state.set_knobs(fail_prompts={"forbidden": "content_policy_violation"})
    request_id = pika.submit("something forbidden")
    assert pika.watch(request_id)[-1] == "failed"
    result = pika.result(request_id)
    assert result.status_code == 422 and result.headers["x-fal-retryable"] == "false"
    [issue] = result.json()["detail"]
    assert issue["loc"] == ["body", "prompt"] and issue["type"] == "content_policy_violation"
    status = pika.poll(request_id).json()
    assert status["status"] == "COMPLETED" and status["error_type"] == "content_policy_violation"


def test_internal_failure_is_a_retryable_500(pika: FalDriver) -> None:
    pika.state.set_knobs(fail_next_jobs=1, failure_message="CUDA out of memory")
    request_id = pika.submit()
    pika.watch(request_id)
    result = pika.result(request_id)
    assert result.status_code == 500
    assert result.headers["x-fal-error-type"] == "runner_server_error"
    assert result.headers["x-fal-retryable"] == "true"
    assert result.json() == {"detail": "CUDA out of memory", "error_type": "runner_server_error"}


def test_cancel(pika: FalDriver) -> None:
    pika.state.set_knobs(never_finish=True)
    request_id = pika.submit()
    cancelled = pika.http.put(f"/fal-ai/pika/requests/{request_id}/cancel")
    assert (cancelled.status_code, cancelled.json()) == (202, {"status": "CANCELLATION_REQUESTED"})
    assert pika.result(request_id).json() == {
        "detail": "Request was cancelled",
        "error_type": "client_cancelled",
    }
    again = pika.http.put(f"/fal-ai/pika/requests/{request_id}/cancel")
    assert (again.status_code, again.json()) == (400, {"status": "ALREADY_COMPLETED"})
    unknown = pika.http.put(f"/fal-ai/pika/requests/{uuid.uuid4()}/cancel")
    assert unknown.status_code == 404


def test_health_probe_is_a_status_call_on_an_unknown_id(pika: FalDriver) -> None:
    assert pika.health().status_code == 404
    pika.http.headers["Authorization"] = "Key not:the-key"
    assert pika.health().status_code == 401
    assert [r["op"] for r in pika.state.records()["requests"]] == ["health", "health"]


@pytest.mark.parametrize(
    ("path", "body", "field", "kind"),
    [
        (T2V, {"duration": 5}, "prompt", "missing"),
        (T2V, {"prompt": "  "}, "prompt", "string_type"),
        (T2V, {"prompt": "x", "duration": 7}, "duration", "enum"),
        (T2V, {"prompt": "x", "duration": True}, "duration", "enum"),
        (T2V, {"prompt": "x", "aspect_ratio": "21:9"}, "aspect_ratio", "enum"),
        (T2V, {"prompt": "x", "resolution": "4k"}, "resolution", "enum"),
        (T2V, {"prompt": "x", "seed": "42"}, "seed", "int_type"),
        (I2V, {"prompt": "x"}, "image_url", "missing"),
        (I2V, {"prompt": "x", "image_url": "http://example.com/a.png"}, "image_url", "value_error"),
    ],
)
def test_bad_input_is_a_422_at_submit(pika: FalDriver, path, body, field, kind) -> None:
    refused = pika.http.post(path, json=body)
    assert refused.status_code == 422
    assert {"loc": ["body", field], "type": kind}.items() <= refused.json()["detail"][0].items()
    assert pika.state.records()["jobs"] == []


@pytest.mark.parametrize(
    ("path", "body", "size"),
    [
        (T2V, {"prompt": "x", "duration": "10", "resolution": "1080p"}, (10.0, 1920, 1080)),
        (T2V, {"prompt": "x", "aspect_ratio": "9:16"}, (5.0, 720, 1280)),
        (T2V, {"prompt": "x", "aspect_ratio": "4:5", "seed": None}, (5.0, 720, 900)),
        (I2V, {"prompt": "x", "image_url": "https://example.com/a.png"}, (5.0, 1280, 720)),
        (
            I2V,
            {"prompt": "x", "image_url": "http://127.0.0.1:9/a.png", "duration": 10},
            (10.0, 1280, 720),
        ),
    ],
)
def test_good_input(pika: FalDriver, path, body, size) -> None:
    assert pika.http.post(path, json=body).status_code == 200
    [job] = pika.state.records()["jobs"]
    assert (job["duration_s"], job["width"], job["height"]) == size
    assert job["kind"] == path.lstrip("/")


def test_other_apps_are_not_found(pika: FalDriver) -> None:
    assert pika.http.post("/fal-ai/pika/v9/teleport", json={"prompt": "x"}).status_code == 404
    assert pika.http.post("/fal-ai/flux/dev", json={"prompt": "x"}).status_code == 404
    assert httpx.get(pika.server.root_url + "/fal-ai/pika/requests/x/status").status_code == 401


# -- other models on the same queue ------------------------------------------------------------
KLING = "/fal-ai/kling-video/v2.5-turbo/pro"
KLING3 = "/fal-ai/kling-video/v3/pro"
HAILUO = "/fal-ai/minimax/hailuo-02/standard"
VEO = "/fal-ai/veo3.1/fast"
WAN = "/wan/v2.6"
SEEDANCE = "/fal-ai/bytedance/seedance/v1.5/pro"
IMAGE = "https://example.com/a.png"


@pytest.mark.parametrize(
    ("path", "body", "size"),
    [
        (KLING + "/text-to-video", {"duration": "10", "aspect_ratio": "9:16"}, (10.0, 1080, 1920)),
        (KLING + "/image-to-video", {"image_url": IMAGE}, (5.0, 1920, 1080)),
        (
            KLING3 + "/image-to-video",
            {"start_image_url": IMAGE, "duration": "3"},
            (3.0, 1920, 1080),
        ),
        (HAILUO + "/text-to-video", {"duration": "6"}, (6.0, 1365, 768)),
        (HAILUO + "/image-to-video", {"image_url": IMAGE, "resolution": "512P"}, (6.0, 910, 512)),
        (VEO, {"duration": "4s", "resolution": "1080p", "aspect_ratio": "9:16"}, (4.0, 1080, 1920)),
        (VEO + "/image-to-video", {"image_url": IMAGE, "aspect_ratio": "auto"}, (8.0, 1280, 720)),
        (WAN + "/text-to-video", {"duration": "15", "resolution": "720p"}, (15.0, 1280, 720)),
        (
            SEEDANCE + "/text-to-video",
            {"aspect_ratio": "21:9", "duration": "12"},
            (12.0, 1680, 720),
        ),
    ],
)
def test_other_models_take_their_own_inputs(fal: FalDriver, path, body, size) -> None:
    created = fal.http.post(path, json={"prompt": "x", **body})
    assert created.status_code == 200, created.text
    [job] = fal.state.records()["jobs"]
    assert (job["duration_s"], job["width"], job["height"]) == size
    assert job["kind"] == path.lstrip("/")
    app = "/".join(path.split("/")[1:3])  # the URLs keep only <owner>/<app>
    assert created.json()["status_url"].endswith(f"/{app}/requests/{job['id']}/status")


@pytest.mark.parametrize(
    ("path", "body", "field", "kind"),
    [
        (KLING + "/text-to-video", {"duration": 5}, "duration", "enum"),  # a string enum
        (KLING + "/image-to-video", {"start_image_url": IMAGE}, "image_url", "missing"),
        (KLING3 + "/image-to-video", {"image_url": IMAGE}, "start_image_url", "missing"),
        (KLING3 + "/text-to-video", {"duration": "16"}, "duration", "enum"),
        (HAILUO + "/text-to-video", {"resolution": "1080p"}, "resolution", "enum"),
        (VEO, {"duration": "8"}, "duration", "enum"),
        (VEO, {"aspect_ratio": "1:1"}, "aspect_ratio", "enum"),
        (WAN + "/image-to-video", {"duration": "5"}, "image_url", "missing"),
    ],
)
def test_other_models_refuse_what_is_not_theirs(fal: FalDriver, path, body, field, kind) -> None:
    refused = fal.http.post(path, json={"prompt": "x", **body})
    assert refused.status_code == 422
    assert {"loc": ["body", field], "type": kind}.items() <= refused.json()["detail"][0].items()
    assert fal.state.records()["jobs"] == []


def test_a_request_is_only_found_under_its_own_app(fal: FalDriver) -> None:
    request_id = fal.submit()
    fal.watch(request_id)
    assert fal.http.get(f"/wan/v2.6/requests/{request_id}/status").status_code == 404
    assert fal.http.get(f"/fal-ai/pika/requests/{request_id}").status_code == 404
    assert fal.http.get(f"{KLING}/text-to-video/requests/{request_id}").status_code == 200
