"""The vendor-neutral core on a fake clock: exact scheduling, counters, knobs, faults, records."""

from __future__ import annotations

import threading

import pytest
from pydantic import ValidationError

from videogen.sandbox import HttpFault, Knobs, SandboxState
from videogen.sandbox.state import JobSpec, Phase


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def state(clock: Clock) -> SandboxState:
    return SandboxState("runway", api_key="key_secret", clock=clock)


def spec(prompt: str = "a fox", duration: float = 5.0) -> JobSpec:
    return JobSpec("gen4.5", prompt, {"promptText": prompt}, duration, 1280, 720)


def test_waiting_jobs_start_exactly_when_a_slot_frees(state: SandboxState, clock: Clock) -> None:
    state.set_knobs(concurrency_limit=1, queue_seconds=0.0, run_seconds=1.0)
    first = state.create_job(spec("one"))
    clock.now += 0.1
    second = state.create_job(spec("two"))
    clock.now += 0.1
    third = state.create_job(spec("three"))
    clock.now += 10  # nobody looked for ten seconds: the schedule is still exact
    state.advance()
    assert [job.started_at for job in (first, second, third)] == [100.0, 101.0, 102.0]
    assert [job.finished_at for job in (first, second, third)] == [101.0, 102.0, 103.0]
    records = state.records()
    assert (records["peak_active"], records["peak_running"], records["active_now"]) == (3, 1, 0)


def test_without_a_limit_every_job_runs_at_once(state: SandboxState, clock: Clock) -> None:
    for _ in range(5):
        state.create_job(spec())
    assert state.records()["peak_running"] == 5
    assert state.records()["running_now"] == 5


@pytest.mark.parametrize(
    ("elapsed", "phase", "progress"),
    [
        (0.0, Phase.QUEUED, 0.0),
        (0.49, Phase.QUEUED, 0.0),
        (0.5, Phase.RUNNING, 0.0),
        (1.0, Phase.RUNNING, 0.5),
        (1.49, Phase.RUNNING, 0.99),
        (1.5, Phase.SUCCEEDED, 1.0),
    ],
)
def test_phases_and_progress(state: SandboxState, clock: Clock, elapsed, phase, progress) -> None:
    state.set_knobs(queue_seconds=0.5, run_seconds=1.0)
    job = state.create_job(spec())
    clock.now += elapsed
    with state.locked() as now:
        assert job.phase(now) is phase
        assert job.progress(now) == pytest.approx(progress, abs=0.01)


def test_a_job_over_the_limit_is_waiting(state: SandboxState, clock: Clock) -> None:
    state.set_knobs(concurrency_limit=1)
    state.create_job(spec())
    second, third = state.create_job(spec()), state.create_job(spec())
    assert second.phase(clock.now) is Phase.WAITING
    assert (state.waiting_position(second), state.waiting_position(third)) == (0, 1)


def test_cancel_frees_the_slot_at_once(state: SandboxState, clock: Clock) -> None:
    state.set_knobs(concurrency_limit=1, never_finish=True)
    running, waiting = state.create_job(spec()), state.create_job(spec())
    clock.now += 5
    state.cancel_job(running.id)
    assert running.phase(clock.now) is Phase.CANCELLED and running.cancelled
    assert waiting.started_at == 105.0
    assert state.cancel_job(running.id) is running  # cancelling twice changes nothing
    assert running.finished_at == 105.0


def test_delete_hides_the_job(state: SandboxState) -> None:
    job = state.create_job(spec())
    state.delete_job(job.id)
    assert state.get_job(job.id) is None
    assert state.get_job(job.id, include_deleted=True) is job
    [record] = state.records()["jobs"]
    assert record["deleted"] and record["cancelled"]


def test_raising_the_limit_starts_waiting_jobs(state: SandboxState, clock: Clock) -> None:
    state.set_knobs(concurrency_limit=1, never_finish=True)
    jobs = [state.create_job(spec()) for _ in range(3)]
    clock.now += 1
    state.set_knobs(concurrency_limit=3)
    assert [job.started_at for job in jobs] == [100.0, 101.0, 101.0]
    assert state.records()["peak_running"] == 3


def test_jobs_ending_together_do_not_inflate_the_peak(state: SandboxState, clock: Clock) -> None:
    state.set_knobs(concurrency_limit=2, queue_seconds=0.0, run_seconds=1.0)
    for _ in range(4):
        state.create_job(spec())
    clock.now += 5
    assert state.records()["peak_running"] == 2


def test_never_finish(state: SandboxState, clock: Clock) -> None:
    state.set_knobs(never_finish=True)
    job = state.create_job(spec())
    clock.now += 1e6
    assert state.get_job(job.id) is not None and job.phase(clock.now) is Phase.RUNNING


def test_failures_are_planned_at_creation(state: SandboxState, clock: Clock) -> None:
    state.set_knobs(
        fail_next_jobs=1,
        failure_code="INTERNAL.BAD_OUTPUT.CODE02",
        fail_prompts={"forbidden": "SAFETY.INPUT.TEXT"},
    )
    policy = state.create_job(spec("something forbidden"))
    counted = state.create_job(spec("plain"))
    fine = state.create_job(spec("plain again"))
    clock.now += 10
    state.advance()
    assert (policy.end_phase, policy.failure_code) == (Phase.FAILED, "SAFETY.INPUT.TEXT")
    assert (counted.end_phase, counted.failure_code) == (Phase.FAILED, "INTERNAL.BAD_OUTPUT.CODE02")
    assert fine.phase(clock.now) is Phase.SUCCEEDED
    assert state.knobs.fail_next_jobs == 0  # the prompt rule did not use up the counter


def test_a_client_chosen_id_must_be_new(state: SandboxState) -> None:
    state.create_job(spec(), job_id="6b1f0000-0000-4000-8000-000000000000")
    with pytest.raises(ValueError, match="already exists"):
        state.create_job(spec(), job_id="6b1f0000-0000-4000-8000-000000000000")


def test_faults_are_used_up_in_order(state: SandboxState) -> None:
    state.set_knobs(
        http_faults=[
            HttpFault(status=503, count=2, on="poll"),
            HttpFault(status=429, on="any", retry_after=2),
        ]
    )
    assert state.take_fault("create") == HttpFault(status=429, on="any", retry_after=2)
    assert state.take_fault("create") is None
    assert [state.take_fault("poll") for _ in range(2)] == [
        HttpFault(status=503, count=2, on="poll"),
        HttpFault(status=503, count=1, on="poll"),
    ]
    assert state.take_fault("poll") is None and state.knobs.http_faults == []


def test_malformed_answers_are_counted(state: SandboxState) -> None:
    state.set_knobs(malformed_next=2, malformed_on="create")
    assert not state.take_malformed("poll")
    assert state.take_malformed("create") and state.take_malformed("create")
    assert not state.take_malformed("create")


def test_knobs_validate_and_update_partially(state: SandboxState) -> None:
    state.set_knobs(run_seconds=2.0)
    state.set_knobs(http_faults=[{"status": 500, "on": "result"}])
    assert state.knobs.run_seconds == 2.0 and state.knobs.http_faults[0].on == "result"
    with pytest.raises(ValidationError):
        state.set_knobs(run_seconds=-1)
    with pytest.raises(ValidationError):
        state.set_knobs(no_such_knob=True)
    with pytest.raises(ValidationError):
        state.set_knobs(http_faults=[{"status": 500, "on": "sometimes"}])
    assert state.knobs.run_seconds == 2.0


def test_reset_forgets_everything(clock: Clock) -> None:
    state = SandboxState("svd", default_knobs=Knobs(concurrency_limit=1), clock=clock)
    state.set_knobs(concurrency_limit=5, outage=True)
    state.create_job(spec())
    state.store_input("frame.png", b"\x89PNG")
    state.record_request(
        at=1, method="GET", path="/x", query={}, auth_ok=None, body=None, status=200, op="poll"
    )
    state.reset()
    records = state.records()
    assert records["jobs"] == [] and records["requests"] == [] and records["peak_active"] == 0
    assert state.knobs == Knobs(concurrency_limit=1)
    assert state.input_bytes("frame.png") is None


def test_records_cut_images_but_keep_prompts(state: SandboxState) -> None:
    image = "data:image/png;base64," + "A" * 5000
    prompt = "a long and careful description of a scene " * 10
    state.record_request(
        at=1.0,
        method="POST",
        path="/v1/image_to_video",
        query={},
        auth_ok=True,
        body={"promptImage": image, "promptText": prompt, "nested": [{"raw": "QUJD" * 100}]},
        status=200,
        op="create",
    )
    body = state.records()["requests"][0]["body"]
    assert body["promptImage"] == image[:100] + "..."
    assert body["nested"][0]["raw"].endswith("...") and len(body["nested"][0]["raw"]) == 103
    assert body["promptText"] == prompt


def test_record_helpers(state: SandboxState) -> None:
    state.create_job(spec("scene-1 a fox"))
    state.create_job(spec("scene-2 a hare"))
    state.create_job(spec("scene-1 a fox, again"))
    assert len(state.jobs_with_prompt("scene-1")) == 2
    for path in ("/v1/tasks/1", "/v1/organization"):
        state.record_request(
            at=1, method="GET", path=path, query={}, auth_ok=True, body=None, status=200, op="poll"
        )
    assert [r["path"] for r in state.requests_matching("GET", "/tasks")] == ["/v1/tasks/1"]
    assert [r["path"] for r in state.requests_matching(path_contains="organization")] == [
        "/v1/organization"
    ]


def test_wall_time_follows_the_injected_clock(state: SandboxState, clock: Clock) -> None:
    start = state.wall_time(clock.now)
    assert (state.wall_time(clock.now + 90) - start).total_seconds() == pytest.approx(90)


def test_many_threads_creating_jobs(state: SandboxState) -> None:
    state.set_knobs(concurrency_limit=3, never_finish=True)

    def create() -> None:
        for _ in range(25):
            state.create_job(spec())

    threads = [threading.Thread(target=create) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    records = state.records()
    assert len(records["jobs"]) == 200
    assert (records["peak_active"], records["peak_running"], records["running_now"]) == (200, 3, 3)
