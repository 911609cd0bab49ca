"""Cancel and retry, one step at a time on the real Redis and sandboxes."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from videogen import jobcontrol
from videogen.errors import JobControlError, UnknownJobError
from videogen.models import SceneState
from videogen.orphans import sweep_orphans
from videogen.policy import Circuit, CircuitState

OTHERS = ("svd", "pika", "luma")


def _runway_only(steps) -> None:
    for name in OTHERS:
        steps.store.set_circuit(name, Circuit(CircuitState.OPEN, 3, steps.clock.now))


def _wait(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def test_cancel_stops_waiting_bound_and_running_scenes_and_keeps_finished_ones(make_steps):
    steps = make_steps(lambda vg: vg["backends"]["runway"].update(max_concurrent_tasks=3))
    _runway_only(steps)
    runway = steps.sandboxes["runway"].state
    done, running, bound, waiting = steps.submit(
        *({"prompt": f"shot {i}", "duration": 5} for i in range(4))
    )
    job_id = steps.record(done).job_id
    # done: generated; running: its vendor job runs (never ends); bound: sent, not started;
    # waiting: in the backlog (runway full)
    bound_now = steps.pipeline.dispatch_waiting()
    assert bound_now == [(done, "runway"), (running, "runway"), (bound, "runway")]
    steps.sent.take()
    steps.pipeline.generate("runway", done)
    runway.set_knobs(never_finish=True)
    worker = threading.Thread(target=steps.pipeline.generate, args=("runway", running))
    worker.start()
    _wait(lambda: len(steps.jobs("runway")) == 2)
    assert steps.record(waiting).state is SceneState.PENDING
    video = Path(steps.record(done).result["video_path"])  # type: ignore[index]

    report = jobcontrol.cancel(steps.pipeline, job_id, reason="the edit changed")
    assert sorted(report.done) == sorted([running, bound, waiting])
    assert report.untouched == [done]
    [vendor_job] = report.vendor_jobs
    assert ("sweep",) in steps.sent.sent and ("dispatch",) in steps.sent.sent
    for scene_id in (running, bound, waiting):
        record = steps.record(scene_id)
        assert record.state is SceneState.CANCELLED and record.error == "the edit changed"
    assert steps.store.loads(["runway"])["runway"] == (0, 0)  # every slot back at once
    assert steps.pipeline.dispatch_waiting() == []  # the waiting one left the backlog

    assert sweep_orphans(steps.pipeline) == {"user_cancels": 1}  # not counted as an orphan
    running_job = next(j for j in steps.jobs("runway") if j["id"] == vendor_job)
    assert running_job["cancelled"]
    worker.join(timeout=10)
    assert not worker.is_alive()  # the run saw its job cancelled and stopped
    assert steps.store.orphans() == []
    assert len(steps.jobs("runway")) == 2  # nothing new started for the job
    assert steps.record(done).state is SceneState.SUCCEEDED and video.exists()
    book = steps.store.ledgers([f"job:{job_id}"])[f"job:{job_id}"]
    assert book["reserved"] == 0  # spend stopped: the bound scene's reservation released
    assert steps.record(running).spent > 0  # the running job may be billed for what it did


def test_a_scene_is_named_by_id_or_index_and_unknown_ones_are_errors(steps):
    first, second = steps.submit({"prompt": "a"}, {"prompt": "b"})
    job_id = steps.record(first).job_id
    report = jobcontrol.cancel(steps.pipeline, job_id, ["1"])
    assert report.done == [second] and steps.record(first).state is SceneState.PENDING
    with pytest.raises(JobControlError, match="has no scene '7'"):
        jobcontrol.cancel(steps.pipeline, job_id, ["7"])
    with pytest.raises(UnknownJobError, match="no job 'nope'"):
        jobcontrol.retry(steps.pipeline, "nope")


def test_retry_sends_only_failed_and_cancelled_scenes_back_with_their_history(make_steps):
    steps = make_steps()
    _runway_only(steps)
    # moderated: the scene fails at once, without trying elsewhere
    steps.sandboxes["runway"].state.set_knobs(fail_prompts={"doomed": "SAFETY.INPUT.TEXT"})
    good, doomed, dropped = steps.submit(
        {"prompt": "fine"}, {"prompt": "doomed shot"}, {"prompt": "dropped"}
    )
    job_id = steps.record(good).job_id
    jobcontrol.cancel(steps.pipeline, job_id, [dropped])
    steps.sent.take()
    steps.pipeline.dispatch_waiting()
    steps.run_all()
    assert steps.record(good).state is SceneState.SUCCEEDED
    assert steps.record(doomed).state is SceneState.FAILED
    tries = len(steps.store.attempts(doomed))
    assert tries >= 1

    with pytest.raises(JobControlError, match=f"{good} is succeeded"):
        jobcontrol.retry(steps.pipeline, job_id, [good])
    steps.sandboxes["runway"].state.set_knobs(fail_prompts={})
    report = jobcontrol.retry(steps.pipeline, job_id)
    assert sorted(report.done) == sorted([doomed, dropped]) and report.untouched == [good]
    record = steps.record(doomed)
    assert record.state is SceneState.PENDING and record.tried == () and record.error is None
    assert record.resubmits == 1  # its next end is a new round (new webhook event ids)
    assert steps.store.any_live([good, doomed]) and not steps.store.any_live([good])
    assert len(steps.store.attempts(doomed)) == tries  # its history is kept
    runway_jobs = len(steps.jobs("runway"))
    steps.pipeline.dispatch_waiting()
    steps.run_all()
    assert {steps.record(s).state for s in (good, doomed, dropped)} == {SceneState.SUCCEEDED}
    assert len(steps.jobs("runway")) == runway_jobs + 2  # only the two ran again
