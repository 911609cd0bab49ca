"""What every vendor sandbox must do, checked over real loopback HTTP against each of them.

Each test runs once per vendor API (``driver`` is parametrized), with the vendor's own wire format;
statuses are the ones the vendor means (MiniMax says most errors inside a 200: ``status_of``).
"""

from __future__ import annotations

import io
import json
import time
from typing import Any

import av
import httpx
import pytest

from tests.sandbox.drivers import Driver


def _wait_for(driver: Driver, job_id: str, wanted: str, timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while driver.status(job_id) != wanted:
        assert time.monotonic() < deadline, f"never reached {wanted}"
        time.sleep(0.01)


def _vendor_requests(driver: Driver) -> list[dict[str, Any]]:
    requests: list[dict[str, Any]] = driver.state.records()["requests"]
    return requests


def test_a_job_goes_through_every_state_in_order(driver: Driver) -> None:
    driver.state.set_knobs(queue_seconds=0.1, run_seconds=0.2)
    job_id = driver.submit()
    assert driver.watch(job_id) == driver.states
    [job] = driver.state.records()["jobs"]
    assert job["id"] == job_id and job["state"] == "succeeded"
    assert job["finished_at"] - job["started_at"] == pytest.approx(0.3)


def test_the_output_is_a_real_video_of_the_requested_length(driver: Driver) -> None:
    job_id = driver.submit()
    driver.watch(job_id)
    response = driver.download(job_id)
    assert response.status_code == 200
    assert response.headers["content-type"] == "video/mp4"
    with av.open(io.BytesIO(response.content), mode="r") as container:
        stream = container.streams.video[0]
        frames = len(list(container.decode(stream)))
        seconds = (container.duration or 0) / 1_000_000
        assert seconds == pytest.approx(driver.expected_duration, abs=0.15)
    assert frames == round(driver.expected_duration * 8)  # the default 8 fps
    assert stream.codec_context.name == "h264" and stream.width <= 320


def test_a_failed_job_says_so(driver: Driver) -> None:
    driver.state.set_knobs(fail_next_jobs=1)
    doomed, fine = driver.submit("first"), driver.submit("second")
    assert driver.watch(doomed)[-1] == "failed"
    assert driver.watch(fine)[-1] == "succeeded"
    assert [job["state"] for job in driver.state.records()["jobs"]] == ["failed", "succeeded"]


def test_jobs_over_the_concurrency_limit_wait_their_turn(queueing_driver: Driver) -> None:
    driver = queueing_driver
    driver.state.set_knobs(concurrency_limit=2, queue_seconds=0.0, run_seconds=0.2)
    ids = [driver.submit(f"scene {n}") for n in range(4)]
    waiting = driver.waiting_word
    assert [driver.status(job_id) for job_id in ids] == ["running", "running", waiting, waiting]
    for job_id in ids:
        assert driver.watch(job_id)[-1] == "succeeded"
    records = driver.state.records()
    assert records["peak_active"] == 4 and records["peak_running"] == 2
    assert records["active_now"] == 0
    starts = sorted(job["started_at"] for job in records["jobs"])
    ends = sorted(job["finished_at"] for job in records["jobs"])
    assert starts[2:] == pytest.approx(ends[:2])  # a freed slot is taken at once, FIFO


def test_cancel_ends_a_running_job_and_frees_its_slot(cancelling_driver: Driver) -> None:
    """Where only queued jobs can be cancelled, a queued job that holds the slot."""
    driver = cancelling_driver
    queued = {"queue_seconds": 60} if driver.cancels == "queued" else {}
    driver.state.set_knobs(never_finish=True, concurrency_limit=1, **queued)
    first, second = driver.submit("stop me"), driver.submit("next in line")
    _wait_for(driver, first, str(driver.cancels))
    driver.cancel(first)
    assert driver.status(first) == "cancelled"
    _wait_for(driver, second, driver.cancels)
    jobs = {job["id"]: job for job in driver.state.records()["jobs"]}
    assert jobs[first]["cancelled"] and jobs[first]["state"] == "cancelled"
    assert jobs[second]["started_at"] == pytest.approx(jobs[first]["finished_at"])


def test_a_vendor_without_a_cancel_runs_the_job_on(stubborn_driver: Driver) -> None:
    """Veo, Kling, MiniMax's V1 API: the driver's cancel checks the vendor's refusal (or that
    there is no such request); the job keeps running, holding its slot."""
    driver = stubborn_driver
    driver.state.set_knobs(never_finish=True, concurrency_limit=1)
    job = driver.submit("cannot be stopped")
    _wait_for(driver, job, "running")
    driver.cancel(job)
    assert driver.status(job) == "running"
    [record] = driver.state.records()["jobs"]
    assert not record["cancelled"] and driver.state.records()["running_now"] == 1


def test_429_carries_retry_after_in_whole_seconds(driver: Driver) -> None:
    driver.state.set_knobs(
        http_faults=[{"status": 429, "count": 2, "on": "create", "retry_after": 1.5}]
    )
    for _ in range(2):
        refused = driver.create()
        assert driver.status_of(refused) == 429
        assert refused.headers["retry-after"] == "2"
        assert driver.error_text(refused)
    assert driver.create().is_success
    assert len(driver.state.records()["jobs"]) == 1  # refused creates made no job
    assert driver.state.knobs.http_faults == []


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_5xx_faults_use_the_vendor_error_shape(driver: Driver, status: int) -> None:
    job_id = driver.submit()
    driver.state.set_knobs(http_faults=[{"status": status, "count": 1, "on": "poll"}])
    failed = driver.poll(job_id)
    assert failed.status_code == status and "retry-after" not in failed.headers
    assert driver.error_text(failed)
    assert driver.poll(job_id).status_code in (200, 202)


def test_faults_only_hit_their_kind_of_request(driver: Driver) -> None:
    driver.state.set_knobs(http_faults=[{"status": 503, "count": 1, "on": "download"}])
    job_id = driver.submit()
    driver.watch(job_id)  # polls are not downloads
    if driver.inline_output:  # the video came with the poll: no download request to fault
        assert driver.download(job_id).status_code == 200
        assert len(driver.state.knobs.http_faults) == 1
        return
    assert driver.download(job_id).status_code == 503
    assert driver.download(job_id).status_code == 200


def test_faults_are_consumed_in_order(driver: Driver) -> None:
    faults = [
        {"status": 502, "count": 1, "on": "any"},
        {"status": 429, "count": 1, "on": "health"},
    ]
    driver.state.set_knobs(http_faults=faults)
    assert driver.health().status_code == 502
    assert driver.status_of(driver.health()) == 429
    assert driver.health().status_code == driver.health_status


def test_health_fault(driver: Driver) -> None:
    driver.state.set_knobs(http_faults=[{"status": 503, "on": "health"}])
    assert driver.health().status_code == 503
    assert driver.health().status_code == driver.health_status
    assert driver.state.records()["jobs"] == []  # a probe never starts a job


def test_outage_answers_503_everywhere_but_the_control_endpoints(driver: Driver) -> None:
    job_id = driver.submit()
    driver.state.set_knobs(outage=True)
    assert driver.create().status_code == 503
    assert driver.poll(job_id).status_code == 503
    assert driver.health().status_code == 503
    root = driver.server.root_url
    assert httpx.get(root + "/__sandbox__/health").json()["status"] == "ok"
    httpx.post(root + "/__sandbox__/knobs", json={"outage": False})
    assert driver.health().status_code == driver.health_status
    assert len(driver.state.records()["jobs"]) == 1


def test_malformed_answers_are_cut_off_json_with_200(driver: Driver) -> None:
    job_id = driver.submit()
    driver.state.set_knobs(malformed_next=1, malformed_on="poll")
    garbled = driver.poll(job_id)
    assert garbled.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(garbled.content)
    assert isinstance(driver.poll(job_id).json(), dict)  # only the next one was cut


def test_a_malformed_create_still_created_the_job(driver: Driver) -> None:
    driver.state.set_knobs(malformed_next=1, malformed_on="create")
    garbled = driver.create("did it start?")
    with pytest.raises(json.JSONDecodeError):
        json.loads(garbled.content)
    assert len(driver.state.jobs_with_prompt("did it start?")) == 1


@pytest.mark.parametrize(("fake", "content_type"), [("html", "text/html"), ("empty", "video/mp4")])
def test_fake_videos(driver: Driver, fake: str, content_type: str) -> None:
    driver.state.set_knobs(fake_video=fake)
    job_id = driver.submit()
    driver.watch(job_id)
    response = driver.download(job_id)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith(content_type)
    assert (b"<html" in response.content) if fake == "html" else response.content == b""


def test_create_delay_answers_late_but_the_job_exists(driver: Driver) -> None:
    driver.state.set_knobs(create_delay=0.6)
    driver.http.timeout = httpx.Timeout(0.2)
    with pytest.raises(httpx.ReadTimeout):
        driver.create("slow answer")
    assert len(driver.state.jobs_with_prompt("slow answer")) == 1  # an ambiguous submit
    deadline = time.monotonic() + 2
    while not _vendor_requests(driver):  # the late answer is recorded once it is sent
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert _vendor_requests(driver)[0]["status"] in (200, 201)


def test_records_keep_bodies_and_cut_data_uris(driver: Driver) -> None:
    driver.submit("a heron at dawn")
    [request] = [r for r in _vendor_requests(driver) if r["op"] == "create"]
    assert request["method"] == "POST" and request["status"] in (200, 201)
    assert "a heron at dawn" in json.dumps(request["body"])
    [job] = driver.state.jobs_with_prompt("heron")
    assert job["params"] and job["created_at"] <= job["started_at"]


def test_requests_without_the_right_key_are_refused(keyed_driver: Driver) -> None:
    header = keyed_driver.auth_header
    wrong = keyed_driver.headers("k" * 24)[header]
    for authorization in (None, wrong):
        if authorization is None:
            del keyed_driver.http.headers[header]
        else:
            keyed_driver.http.headers[header] = authorization
        refused = keyed_driver.create()
        assert keyed_driver.status_of(refused) == 401 and keyed_driver.error_text(refused)
        assert keyed_driver.status_of(keyed_driver.health()) == 401
    records = keyed_driver.state.records()
    assert records["jobs"] == []
    assert [r["auth_ok"] for r in records["requests"]] == [False] * 4


def test_records_never_contain_a_key(keyed_driver: Driver) -> None:
    keyed_driver.watch(keyed_driver.submit())
    header = keyed_driver.auth_header
    keyed_driver.http.headers[header] = keyed_driver.headers("wrong-key-0123456789")[header]
    assert keyed_driver.status_of(keyed_driver.create()) == 401
    dumped = httpx.get(keyed_driver.server.root_url + "/__sandbox__/records").text
    assert keyed_driver.key is not None and keyed_driver.key not in dumped
    assert "wrong-key-0123456789" not in dumped
    assert "authorization" not in dumped.lower()
    assert json.loads(dumped)["requests"][0]["auth_ok"] is True
