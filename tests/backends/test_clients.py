"""Every client, each against its sandbox over loopback HTTP: the same contract for all.

Every test reads the sandbox's own records, so "one vendor job", "cancelled" and "refused
before any HTTP call" are what the vendor side saw, not what the client believes.
"""

from __future__ import annotations

import socket
import time
from pathlib import Path

import av
import pytest

from tests.helpers import wait_until
from videogen.backends import backend_class, luma, seedance
from videogen.backends.base import Lookup
from videogen.errors import (
    Action,
    AmbiguousSubmitError,
    BackendError,
    BackendUnavailableError,
    CapabilityError,
    ContentPolicyError,
    GenerationFailedError,
    InvalidOutputError,
    MalformedResponseError,
    RateLimitedError,
    RejectedInputError,
)
from videogen.models import JobState, Scene, Size, VendorJob

from .conftest import BACKENDS

ALL = pytest.mark.parametrize("backend_name", BACKENDS)
FINDERS = pytest.mark.parametrize("backend_name", ["svd", "luma", "seedance", "kling"])
"""The backends that can look up a job whose create answer was lost."""
CANCELLERS = tuple(n for n in BACKENDS if n not in ("veo", "kling", "minimax"))
"""The backends whose vendor can stop a job (Kling cannot, nor MiniMax's V1 API)."""


def _jobs(sandbox):
    return sandbox.state.records()["jobs"]


def _vendor_requests(sandbox):
    return [r for r in sandbox.state.records()["requests"] if "__sandbox__" not in r["path"]]


def _assert_playable(path: Path, duration: float) -> None:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = sum(1 for _ in container.decode(stream))
    assert frames > 0
    assert float(stream.duration * stream.time_base) == pytest.approx(duration, abs=0.35)


@ALL
def test_text_scene_makes_a_playable_file(backend_name, sandbox, make_backend, tmp_path):
    backend = make_backend()
    result = backend.generate_video(
        Scene(prompt=f"a red fox {backend_name}", seed=7), tmp_path / "a.mp4"
    )
    assert result.video.path == tmp_path / "a.mp4"
    assert result.video.frames > 0 and result.video.duration > 0
    _assert_playable(result.video.path, result.request.duration)
    jobs = _jobs(sandbox)
    assert len(jobs) == 1 and jobs[0]["state"] == "succeeded"
    assert f"a red fox {backend_name}" in jobs[0]["prompt"]
    assert not list(tmp_path.glob("*.part"))  # the download was atomic


@ALL
@pytest.mark.parametrize("source", ["file", "url"])
def test_image_scene(backend_name, sandbox, make_backend, images, tmp_path, source):
    backend = make_backend()
    scene = Scene(prompt="the fox turns its head", image=images[source])
    if backend_name in ("luma", "wan") and source == "file":
        with pytest.raises(CapabilityError, match="public https URL"):
            backend.generate_video(scene, tmp_path / "b.mp4")
        assert _vendor_requests(sandbox) == []  # refused before any HTTP call
        return
    result = backend.generate_video(scene, tmp_path / "b.mp4")
    assert result.request.mode == "image_to_video"
    _assert_playable(result.video.path, result.request.duration)
    assert len(_jobs(sandbox)) == 1


@ALL
def test_not_an_image_is_refused_before_the_vendor_is_paid(
    backend_name, sandbox, make_backend, images, tmp_path
):
    backend = make_backend()
    scene = Scene(prompt="x", image=images["bad_file"])
    with pytest.raises(Exception, match="not a PNG|public https URL"):
        backend.generate_video(scene, tmp_path / "c.mp4")
    assert _jobs(sandbox) == []


EXPECTED_SNAP = {
    # duration 7 s, 1080x1920 requested
    "runway": (7.0, Size(720, 1280)),
    "luma": (9.0, Size(1080, 1920)),
    "pika": (5.0, Size(1080, 1920)),
    "svd": (25 / 6, Size(576, 1024)),
    "veo": (8.0, Size(720, 1280)),  # 720p by default: Veo wants 8 s at 1080p
    "replicate": (8.0, Size(1080, 1920)),  # google/veo-3: 8 s only, 720p and 1080p
    "wan": (7.0, Size(1080, 1920)),
    # Shape first: 704x1248 is 0.3 % off 9:16, Seedance's 1080p 1088x1920 is 0.7 % off.
    "seedance": (7.0, Size(704, 1248)),
    "fal": (5.0, Size(1080, 1920)),  # Kling 2.5 turbo pro: 5 or 10 s, 9:16 at 1080p
    "kling": (5.0, Size(1080, 1920)),
    "minimax": (6.0, Size(1920, 1080)),  # V1 makes text scenes 16:9 only
}


@ALL
def test_requests_are_snapped_and_both_kept(backend_name, sandbox, make_backend, tmp_path):
    backend = make_backend()
    scene = Scene(prompt="tall shot", duration=7, resolution="1080x1920")
    result = backend.generate_video(scene, tmp_path / "d.mp4")
    duration, size = EXPECTED_SNAP[backend_name]
    assert result.request.requested_duration == 7
    assert result.request.requested_size == Size(1080, 1920)
    assert result.request.duration == pytest.approx(duration, abs=0.01)
    assert result.request.size == size
    portrait = result.video.height > result.video.width
    assert portrait is (size.height > size.width)  # the vendor made the shape it was asked
    _assert_playable(result.video.path, result.request.duration)


@ALL
def test_every_vendor_state_is_seen_in_order(backend_name, sandbox, make_backend):
    sandbox.state.set_knobs(run_seconds=0.3, queue_seconds=0.15)
    backend = make_backend()
    job = backend.submit(backend.prepare(Scene(prompt="watch me")))
    seen: list[JobState] = []
    for _ in range(400):
        status = backend.poll(job)
        if not seen or seen[-1] is not status.state:
            seen.append(status.state)
        if status.state.terminal:
            break
        time.sleep(0.01)
    assert seen == EXPECTED_STATES.get(
        backend_name, [JobState.QUEUED, JobState.RUNNING, JobState.SUCCEEDED]
    )


EXPECTED_STATES = {
    # A Veo operation has only ``done``: no queue is shown, and not done is running.
    "veo": [JobState.RUNNING, JobState.SUCCEEDED],
}


@ALL
def test_vendor_side_failure_fails_over(backend_name, sandbox, make_backend, tmp_path):
    sandbox.state.set_knobs(fail_next_jobs=1)
    backend = make_backend()
    with pytest.raises(GenerationFailedError) as caught:
        backend.generate_video(Scene(prompt="doomed"), tmp_path / "e.mp4")
    assert caught.value.action is Action.FAILOVER
    assert caught.value.backend == backend_name
    assert not (tmp_path / "e.mp4").exists()
    assert [j["state"] for j in _jobs(sandbox)] == ["failed"]


@pytest.mark.parametrize(
    "backend_name",
    ["runway", "pika", "luma", "veo", "replicate", "wan", "seedance", "fal", "kling", "minimax"],
)
def test_content_policy_failure_is_the_scenes_fault(backend_name, sandbox, make_backend, tmp_path):
    sandbox.state.set_knobs(fail_prompts={"forbidden": "SAFETY.INPUT.TEXT"})
    backend = make_backend()
    with pytest.raises(ContentPolicyError) as caught:
        backend.generate_video(Scene(prompt="something forbidden"), tmp_path / "f.mp4")
    assert caught.value.action is Action.FAIL_SCENE


@ALL
def test_429_on_create_carries_retry_after(backend_name, sandbox, make_backend):
    sandbox.state.set_knobs(
        http_faults=[{"status": 429, "count": 1, "on": "create", "retry_after": 3}]
    )
    backend = make_backend()
    request = backend.prepare(Scene(prompt="busy"))
    with pytest.raises(RateLimitedError) as caught:
        backend.submit(request)
    assert caught.value.retry_after == 3.0
    assert caught.value.action is Action.RETRY_SAME
    assert _jobs(sandbox) == []
    assert backend.submit(request).job_id  # the next try goes through


@ALL
def test_5xx_on_create_is_transient(backend_name, sandbox, make_backend):
    sandbox.state.set_knobs(http_faults=[{"status": 503, "count": 1, "on": "create"}])
    backend = make_backend()
    with pytest.raises(BackendUnavailableError) as caught:
        backend.submit(backend.prepare(Scene(prompt="shedding load")))
    assert caught.value.status_code == 503 and caught.value.retryable
    assert _jobs(sandbox) == []


@ALL
def test_5xx_and_429_while_polling_are_waited_out(backend_name, sandbox, make_backend, tmp_path):
    sandbox.state.set_knobs(
        http_faults=[
            {"status": 502, "count": 2, "on": "poll"},
            {"status": 429, "count": 1, "on": "poll", "retry_after": 0},
        ]
    )
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        time.sleep(min(seconds, 0.02))  # the backoff is checked, not endured

    backend = make_backend(sleep=sleep)
    result = backend.generate_video(Scene(prompt="patience"), tmp_path / "g.mp4")
    assert result.video.frames > 0
    assert sorted(waits)[-3:][0] >= 1.0  # three backoffs of at least the 1 s base
    statuses = [r["status"] for r in _vendor_requests(sandbox)]
    assert statuses.count(502) == 2 and sandbox.state.knobs.http_faults == []  # all served
    assert statuses.count(429) == (0 if backend_name == "minimax" else 1)  # MiniMax: a 200
    assert len(_jobs(sandbox)) == 1  # polling errors never cause a second job


@ALL
def test_outage_makes_health_unhealthy_and_submits_fail(backend_name, sandbox, make_backend):
    backend = make_backend()
    assert backend.health_check().healthy
    sandbox.state.set_knobs(outage=True)
    report = backend.health_check()
    assert not report.healthy and "503" in report.detail
    with pytest.raises(BackendUnavailableError):
        backend.submit(backend.prepare(Scene(prompt="anyone there?")))
    assert _jobs(sandbox) == []


@ALL
def test_backend_down_is_unavailable(backend_name, sandbox, make_backend):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    suffix = "/dream-machine/v1" if backend_name == "luma" else ""
    backend = make_backend(base_url=f"http://127.0.0.1:{port}{suffix}")
    report = backend.health_check()
    assert not report.healthy and "ConnectError" in report.detail
    with pytest.raises(BackendUnavailableError) as caught:
        backend.submit(backend.prepare(Scene(prompt="hello?")))
    assert caught.value.retryable


@ALL
def test_malformed_poll_answer(backend_name, sandbox, make_backend):
    backend = make_backend()
    job = backend.submit(backend.prepare(Scene(prompt="garbled")))
    sandbox.state.set_knobs(malformed_next=1, malformed_on="poll")
    with pytest.raises(MalformedResponseError):
        backend.poll(job)


@ALL
def test_malformed_create_answer_is_ambiguous(backend_name, sandbox, make_backend):
    sandbox.state.set_knobs(malformed_next=1, malformed_on="create")
    backend = make_backend()
    with pytest.raises(AmbiguousSubmitError) as caught:
        backend.submit(backend.prepare(Scene(prompt="did it start?")))
    assert caught.value.action is Action.RESOLVE
    assert len(_jobs(sandbox)) == 1  # it did: never resubmit blindly


@ALL
def test_lost_create_answer_is_ambiguous(backend_name, sandbox, make_backend):
    sandbox.state.set_knobs(create_delay=1.5)
    backend = make_backend(request_timeout=0.4)
    with pytest.raises(AmbiguousSubmitError):
        backend.submit(backend.prepare(Scene(prompt="slow answer")))
    assert len(_jobs(sandbox)) == 1


@FINDERS
@pytest.mark.parametrize("finished", [True, False])
def test_a_lost_create_answer_is_found(backend_name, sandbox, make_backend, finished):
    sandbox.state.set_knobs(create_delay=1.5, never_finish=not finished)
    backend = make_backend(request_timeout=0.4)
    request = backend.prepare(Scene(prompt="slow answer, then found"))
    key, sent_at = backend.new_key(), time.time()
    with pytest.raises(AmbiguousSubmitError):
        backend.submit(request, key=key)
    [made] = _jobs(sandbox)
    if finished:  # SVD: found in the history; else in the queue
        wait_until(lambda: _jobs(sandbox)[0]["state"] == "succeeded", 5, "the job's end")
    job = backend.find_submitted(request, key, sent_at)
    assert job is not None and job.job_id == made["id"]
    assert len(_jobs(sandbox)) == 1  # looking never creates
    assert backend.poll(job).state is (JobState.SUCCEEDED if finished else JobState.RUNNING)


@FINDERS
def test_a_create_that_never_arrived_is_not_found(backend_name, sandbox, make_backend):
    backend = make_backend()
    backend.submit(backend.prepare(Scene(prompt="another scene's job")))  # not ours
    request = backend.prepare(Scene(prompt="never sent"))
    assert backend.find_submitted(request, backend.new_key(), time.time()) is None
    assert len(_jobs(sandbox)) == 1


@pytest.mark.parametrize("backend_name", ["svd"])
def test_comfyui_refuses_a_second_prompt_with_the_same_id(backend_name, sandbox, make_backend):
    backend = make_backend()
    request = backend.prepare(Scene(prompt="sent twice"))
    key = backend.new_key()
    assert backend.submit(request, key=key).job_id == key
    with pytest.raises(RejectedInputError) as caught:
        backend.submit(request, key=key)  # the resubmit after a lost answer cannot pay twice
    assert caught.value.status_code == 409
    assert [j["id"] for j in _jobs(sandbox)] == [key]


@pytest.mark.parametrize("backend_name", ["luma"])
def test_two_identical_luma_generations_in_the_window_cannot_be_told_apart(
    backend_name, sandbox, make_backend
):
    backend = make_backend()
    request = backend.prepare(Scene(prompt="twins"))
    sent_at = time.time()
    first, second = backend.submit(request), backend.submit(request)
    with pytest.raises(AmbiguousSubmitError, match="2 generations match") as caught:
        backend.find_submitted(request, backend.new_key(), sent_at)
    assert first.job_id in str(caught.value) and second.job_id in str(caught.value)


@pytest.mark.parametrize("backend_name", ["luma"])
def test_a_luma_lookup_matches_the_request_and_the_time(backend_name, sandbox, make_backend):
    backend = make_backend()
    request = backend.prepare(Scene(prompt="the same words", duration=5))
    job = backend.submit(request)
    longer = backend.prepare(Scene(prompt="the same words", duration=9))
    assert backend.find_submitted(longer, "k", time.time()) is None  # another request
    later = time.time() + backend.settings.request_timeout + 2 * luma.CLOCK_SKEW
    assert backend.find_submitted(request, "k", later) is None  # made before that send
    assert backend.find_submitted(request, "k", time.time()) == job


@pytest.mark.parametrize("backend_name", ["luma"])
def test_a_luma_lookup_pages_back_to_the_window_and_no_further(
    backend_name, sandbox, make_backend, monkeypatch
):
    monkeypatch.setattr(luma, "LIST_LIMIT", 2)  # small pages, so a few jobs make several
    backend = make_backend()
    request = backend.prepare(Scene(prompt="on page two"))
    sent_at = time.time()
    job = backend.submit(request)
    for n in range(3):  # newer generations put ours on the second page
        backend.submit(backend.prepare(Scene(prompt=f"newer {n}")))
    assert backend.find_submitted(request, "k", sent_at) == job
    pages = [r["query"] for r in _vendor_requests(sandbox) if r["method"] == "GET"]
    assert pages == [{"limit": "2", "offset": "0"}, {"limit": "2", "offset": "2"}]
    monkeypatch.setattr(luma, "LIST_PAGES", 1)  # ours is beyond the pages it may read
    with pytest.raises(AmbiguousSubmitError, match="more than 2 generations"):
        backend.find_submitted(request, "k", sent_at)


@pytest.mark.parametrize(
    "backend_name", ["runway", "pika", "veo", "replicate", "wan", "fal", "minimax"]
)
def test_backends_without_a_lookup_say_so_and_ask_nothing(backend_name, sandbox, make_backend):
    backend = make_backend()
    assert backend.lookup is Lookup.NONE
    with pytest.raises(AmbiguousSubmitError, match="no way to look up"):
        backend.find_submitted(backend.prepare(Scene(prompt="lost")), "k", time.time())
    assert _vendor_requests(sandbox) == []


def test_the_lookup_each_backend_declares():
    declared = {name: backend_class(name).lookup for name in BACKENDS}
    assert declared == {
        "svd": Lookup.CLIENT_ID, "luma": Lookup.LIST, "runway": Lookup.NONE, "pika": Lookup.NONE,
        "veo": Lookup.NONE, "replicate": Lookup.NONE,
        "wan": Lookup.NONE, "seedance": Lookup.LIST, "fal": Lookup.NONE,
        "kling": Lookup.CLIENT_ID, "minimax": Lookup.NONE,
    }  # fmt: skip


@ALL
@pytest.mark.parametrize("fake", ["html", "empty"])
def test_fake_video_is_a_failure(backend_name, sandbox, make_backend, tmp_path, fake):
    sandbox.state.set_knobs(fake_video=fake)
    backend = make_backend()
    with pytest.raises(InvalidOutputError):
        backend.generate_video(Scene(prompt="looks fine"), tmp_path / "h.mp4")
    assert list(tmp_path.iterdir()) == []  # nothing half-written is left behind


@ALL
def test_download_size_cap(backend_name, sandbox, make_backend, tmp_path):
    backend = make_backend(max_download_bytes=1000)
    with pytest.raises(InvalidOutputError, match="cap"):
        backend.generate_video(Scene(prompt="too big"), tmp_path / "i.mp4")
    assert list(tmp_path.iterdir()) == []


NO_CANCEL = ("veo",)
"""Backends whose vendor has no cancel: a job left behind runs on (and is billed)."""
CANCELS = pytest.mark.parametrize("backend_name", CANCELLERS)
QUEUED_ONLY_CANCEL = ("wan", "seedance")
"""Vendors that cancel only a job still queued (DashScope PENDING, Ark queued)."""


def _cancellable(sandbox, backend_name: str) -> None:
    """Jobs that never finish, and that stay queued where only queued jobs can be cancelled."""
    queued = {"queue_seconds": 60} if backend_name in QUEUED_ONLY_CANCEL else {}
    sandbox.state.set_knobs(never_finish=True, **queued)


@CANCELS
def test_cancel(backend_name, sandbox, make_backend):
    _cancellable(sandbox, backend_name)
    backend = make_backend()
    job = backend.submit(backend.prepare(Scene(prompt="stop me")))
    backend.cancel(job)
    status = backend.poll(job)
    assert status.state is JobState.CANCELLED or (
        backend_name == "pika" and status.state is JobState.FAILED
    )
    assert [j["cancelled"] for j in _jobs(sandbox)] == [True]
    backend.cancel(job)  # cancelling twice is harmless


@pytest.mark.parametrize("backend_name", ["kling", "minimax"])
def test_a_job_the_vendor_cannot_stop_is_left_to_run(backend_name, sandbox, make_backend):
    sandbox.state.set_knobs(run_seconds=0.3)
    backend = make_backend()
    job = backend.submit(backend.prepare(Scene(prompt="unstoppable")))
    before = len(_vendor_requests(sandbox))
    assert not backend.cancellable(job)
    assert backend.cancel_quietly(job) is False  # not taken, so the pipeline keeps an orphan
    assert len(_vendor_requests(sandbox)) == before  # and nothing was asked
    with pytest.raises(RejectedInputError, match="runs to its end"):
        backend.cancel(job)
    assert backend.wait(job, timeout=5).state is JobState.SUCCEEDED


@CANCELS
def test_timeout_cancels_the_vendor_job(backend_name, sandbox, make_backend, tmp_path):
    _cancellable(sandbox, backend_name)
    backend = make_backend(timeout=0.6)
    with pytest.raises(GenerationFailedError, match="no result within"):
        backend.generate_video(Scene(prompt="forever"), tmp_path / "j.mp4")
    assert [j["cancelled"] for j in _jobs(sandbox)] == [backend_name in CANCELLERS]


@pytest.mark.parametrize("backend_name", NO_CANCEL)
def test_a_vendor_without_cancel_says_so_and_its_job_runs_on(
    backend_name, sandbox, make_backend, tmp_path
):
    sandbox.state.set_knobs(never_finish=True)
    backend = make_backend(timeout=0.6)
    job = backend.submit(backend.prepare(Scene(prompt="stop me")))
    with pytest.raises(BackendError, match="cannot cancel"):
        backend.cancel(job)
    assert not backend.cancellable(job)  # the orphan sweep asks about it until it ends
    assert backend.cancel_quietly(job) is False  # the pipeline keeps it as an orphan
    assert backend.poll(job).state is JobState.RUNNING
    with pytest.raises(GenerationFailedError, match="no result within"):
        backend.generate_video(Scene(prompt="forever"), tmp_path / "j.mp4")
    assert [(j["cancelled"], j["state"]) for j in _jobs(sandbox)] == [(False, "running")] * 2


@ALL
def test_health_probe_is_cheap_and_checks_the_key(backend_name, sandbox, make_backend):
    report = make_backend().health_check()
    assert report.healthy, report.detail
    assert _jobs(sandbox) == []  # a probe never starts a paid generation
    if backend_name == "svd":
        return  # ComfyUI has no auth by default
    wrong = "wrong-" + "k" * 20 + (":" + "s" * 24 if backend_name == "kling" else "")
    bad = make_backend(api_key=wrong).health_check()
    refusal = "code 1004" if backend_name == "minimax" else "401"  # MiniMax: a 200 saying 1004
    assert not bad.healthy and refusal in bad.detail
    assert wrong not in bad.detail
    assert all(not r["auth_ok"] for r in _vendor_requests(sandbox)[-1:])


@pytest.mark.parametrize("backend_name", QUEUED_ONLY_CANCEL)
def test_a_running_job_cannot_be_cancelled_and_says_so(backend_name, sandbox, make_backend):
    sandbox.state.set_knobs(never_finish=True, queue_seconds=0.02)
    backend = make_backend()
    job = backend.submit(backend.prepare(Scene(prompt="past the point of no return")))
    wait_until(lambda: backend.poll(job).state is JobState.RUNNING, 3, "the job to run")
    with pytest.raises(RejectedInputError) as caught:
        backend.cancel(job)
    assert caught.value.status_code == 400
    assert not backend.cancel_quietly(job)  # the sweeper learns it is still running
    assert backend.poll(job).state is JobState.RUNNING
    assert [j["cancelled"] for j in _jobs(sandbox)] == [False]


@pytest.mark.parametrize("backend_name", ["wan"])
def test_a_task_dashscope_does_not_know_fails_over(backend_name, sandbox, make_backend, tmp_path):
    backend = make_backend()
    job = VendorJob(backend="wan", job_id="made-in-another-region")
    status = backend.poll(job)
    assert (status.state, status.vendor_state) == (JobState.FAILED, "UNKNOWN")
    with pytest.raises(GenerationFailedError, match="does not know") as caught:
        backend.finish(job, status, tmp_path / "k.mp4")
    assert caught.value.action is Action.FAILOVER
    [request] = _vendor_requests(sandbox)
    assert request["status"] == 200  # a 200, not a 404


@pytest.mark.parametrize("backend_name", ["wan"])
def test_every_create_carries_the_async_header(backend_name, sandbox, make_backend):
    backend = make_backend()
    backend.submit(backend.prepare(Scene(prompt="async please", duration=3, seed=5)))
    [create] = [r for r in _vendor_requests(sandbox) if r["op"] == "create"]
    assert create["status"] == 200  # the sandbox refuses a create without it (403)
    assert create["body"]["parameters"] == {
        "resolution": "720P", "ratio": "16:9", "duration": 3, "seed": 5,
        "prompt_extend": False, "watermark": False,
    }  # fmt: skip


@pytest.mark.parametrize("backend_name", ["seedance"])
def test_a_seedance_scene_with_its_own_seed_cannot_be_looked_up(
    backend_name, sandbox, make_backend
):
    backend = make_backend()
    request = backend.prepare(Scene(prompt="seeded", seed=42))
    backend.submit(request, key=backend.new_key())
    with pytest.raises(AmbiguousSubmitError, match="own seed"):
        backend.find_submitted(request, backend.new_key(), time.time())
    assert [r["op"] for r in _vendor_requests(sandbox)] == ["create"]  # nothing asked


@pytest.mark.parametrize("backend_name", ["seedance"])
def test_a_seedance_create_sends_a_content_list(backend_name, sandbox, make_backend, images):
    backend = make_backend()
    key = backend.new_key()
    backend.submit(backend.prepare(Scene(prompt="a crane", image=images["file"])), key=key)
    [create] = [r for r in _vendor_requests(sandbox) if r["op"] == "create"]
    text, image = create["body"]["content"]
    assert text == {"type": "text", "text": "a crane"}
    assert image["role"] == "first_frame"
    assert image["image_url"]["url"].startswith("data:image/png;base64,")
    assert create["body"]["seed"] == seedance.seed_for(key)
    assert (create["body"]["resolution"], create["body"]["duration"]) == ("720p", 5)


BILLED = {
    "wan": 0.50,  # DashScope's usage.duration, 5 s at 720P's $0.10
    "seedance": 0.123552,  # Ark's completion_tokens, 1248 x 704 x 24 x 5 / 1024, at $1.20 / M
}


@pytest.mark.parametrize("backend_name", list(BILLED))
def test_the_vendors_own_figure_settles_the_cost(backend_name, sandbox, make_backend):
    backend = make_backend()
    request = backend.prepare(Scene(prompt="what did it cost", duration=5))
    status = backend.wait(backend.submit(request), timeout=10)
    assert status.state is JobState.SUCCEEDED and status.usage
    assert backend.billed_usd(status) == pytest.approx(BILLED[backend_name])
    assert request.estimated_cost_usd == pytest.approx(BILLED[backend_name], abs=0.001)
    negotiated = make_backend(pricing={"usd_per_second": 0.01})
    assert negotiated.billed_usd(status) is None  # a configured price wins over the list
