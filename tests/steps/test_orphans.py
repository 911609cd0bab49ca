"""A vendor that stops answering: the job is unknown, not failed, while the grace lasts; after
it the scene fails over and the job is an orphan the sweep cancels, uses or refunds. And a
job's timeout counts from its creation, across resumes."""

from __future__ import annotations

import threading
import time

import pytest

from videogen.models import JobState, SceneState
from videogen.orphans import Outcome, decide, sweep_orphans
from videogen.policy import Circuit, CircuitState
from videogen.pricing import to_micro

from .test_generate import SCENE, _routed

OTHERS = ("svd", "pika", "luma")


def _on_runway(steps) -> str:
    """A scene bound to Runway by the dispatch step (so its price is reserved), the other
    backends free to take it afterwards."""
    for name in OTHERS:
        steps.store.set_circuit(name, Circuit(CircuitState.OPEN, 3, steps.clock.now))
    (scene_id,) = steps.submit(SCENE)
    assert steps.pipeline.dispatch_waiting() == [(scene_id, "runway")]
    for name in OTHERS:
        steps.store.set_circuit(name, Circuit())
    steps.sent.take()
    return scene_id


def _grace(seconds: float, **runway: object):
    def change(vg):
        vg["backends"]["runway"].update(unknown_grace=seconds, **runway)

    return change


def _later(seconds: float, action) -> threading.Timer:
    timer = threading.Timer(seconds, action)
    timer.start()
    return timer


def _orphaned(make_steps, run_seconds: float, **knobs: object):
    """A scene bound to Runway whose vendor goes quiet as soon as its job exists (for
    good), with a 0.3-s grace: after the generate step it waits elsewhere and its Runway
    job (``run_seconds`` long) is an orphan."""
    steps = make_steps(_grace(0.3))
    runway = steps.sandboxes["runway"].state
    runway.set_knobs(run_seconds=run_seconds, **knobs)
    scene_id = _on_runway(steps)
    threading.Thread(target=lambda: _quiet_once_created(runway, 60), daemon=True).start()
    steps.pipeline.generate("runway", scene_id)
    return steps, runway, scene_id


@pytest.mark.parametrize(
    ("job", "scene", "outcome"),
    [
        (JobState.SUCCEEDED, SceneState.PENDING, Outcome.USED),
        (JobState.SUCCEEDED, SceneState.RUNNING, Outcome.USED),
        (JobState.SUCCEEDED, SceneState.SUCCEEDED, Outcome.DOUBLE_PAID),
        (JobState.SUCCEEDED, SceneState.FAILED, Outcome.WASTED),
        (JobState.SUCCEEDED, None, Outcome.WASTED),
        (JobState.FAILED, SceneState.RUNNING, Outcome.FAILED),
        (JobState.CANCELLED, SceneState.SUCCEEDED, Outcome.CANCELLED),
        (JobState.RUNNING, SceneState.RUNNING, Outcome.CANCELLING),
        (JobState.QUEUED, SceneState.SUCCEEDED, Outcome.CANCELLING),
    ],
)
def test_what_is_done_with_an_orphan(job, scene, outcome):
    assert decide(job, scene) is outcome


def test_an_outage_shorter_than_the_grace_keeps_the_job_and_its_slot(make_steps):
    steps = make_steps(_grace(30))
    steps.sandboxes["runway"].state.set_knobs(run_seconds=0.6)
    scene_id = _routed(steps)
    runway = steps.sandboxes["runway"].state
    # the vendor goes quiet as soon as the job exists, and comes back 1.5 s later
    seen: list[int] = []

    def quiet() -> None:
        _quiet_once_created(
            runway, 1.5, lambda: seen.append(steps.store.circuit("runway").failures)
        )

    threading.Thread(target=quiet, daemon=True).start()
    steps.pipeline.generate("runway", scene_id)
    record = steps.record(scene_id)
    assert record.state is SceneState.SUCCEEDED, record.error
    assert record.unknown_since is None
    assert len(steps.jobs("runway")) == 1 and steps.store.orphans() == []
    assert seen and seen[0] >= 2  # its polls counted: no new scene went to it meanwhile


def _quiet_once_created(state, seconds: float, before_back=lambda: None) -> None:
    deadline = time.monotonic() + 10
    while not state.records()["jobs"] and time.monotonic() < deadline:
        time.sleep(0.005)
    state.set_knobs(outage=True)
    time.sleep(seconds)
    before_back()
    state.set_knobs(outage=False)


def test_past_the_grace_the_scene_fails_over_and_the_job_is_an_orphan_then_cancelled(make_steps):
    steps = make_steps(_grace(0.5))
    runway = steps.sandboxes["runway"].state
    runway.set_knobs(never_finish=True)
    scene_id = _on_runway(steps)
    threading.Thread(target=lambda: _quiet_once_created(runway, 60), daemon=True).start()
    steps.pipeline.generate("runway", scene_id)
    record = steps.record(scene_id)
    assert record.state is SceneState.ROUTED and record.backend != "runway"  # elsewhere now
    assert "no answer from the vendor" in (record.error or "")
    [orphan] = steps.store.orphans()
    assert orphan.scene_id == scene_id and orphan.usd > 0
    assert record.spent == to_micro(orphan.usd)  # settled: it may be billed
    assert steps.store.stats("runway")["orphans"] == 1
    # the sweep asks while the vendor is still quiet: it stays an orphan
    assert sweep_orphans(steps.pipeline) == {}
    runway.set_knobs(outage=False)
    assert sweep_orphans(steps.pipeline) == {"orphans_cancelled": 1}
    [job] = steps.jobs("runway")
    assert job["cancelled"] and steps.store.orphans() == []
    assert steps.record(scene_id).spent == to_micro(orphan.usd)  # a cancel may be billed
    assert steps.store.stats("runway")["orphans_cancelled"] == 1


def test_an_orphan_that_finishes_first_is_the_scenes_video_and_frees_its_new_slot(make_steps):
    steps, runway, scene_id = _orphaned(make_steps, 1.0)
    record = steps.record(scene_id)
    assert record.state is SceneState.ROUTED  # bound to the next backend, not started yet
    newer = record.backend
    assert newer is not None and steps.store.loads([newer])[newer] == (0, 1)
    [orphan] = steps.store.orphans()
    runway.set_knobs(outage=False)
    steps.clock.advance(1)
    time.sleep(1.2)  # the orphan's run ends on the sandbox
    assert sweep_orphans(steps.pipeline) == {"orphans_used": 1}
    record = steps.record(scene_id)
    assert record.state is SceneState.SUCCEEDED and record.result is not None
    assert record.result["vendor_job_id"] == orphan.job.job_id and record.result["orphan"]
    assert record.result["video_path"].endswith(".orphan.mp4")
    assert steps.store.loads([newer])[newer] == (0, 0)  # its reservation went back
    steps.pipeline.generate(newer, scene_id)  # the bound message arrives: it does nothing
    assert steps.jobs(newer) == []
    assert steps.store.stats("runway")["orphans_used"] == 1


def test_a_running_newer_job_loses_to_the_orphan_and_is_cancelled(make_steps):
    steps = make_steps(_grace(0.3))
    runway = steps.sandboxes["runway"].state
    runway.set_knobs(run_seconds=1.0)
    for name in ("svd", "pika", "luma"):
        steps.sandboxes[name].state.set_knobs(never_finish=True)
    scene_id = _on_runway(steps)
    threading.Thread(target=lambda: _quiet_once_created(runway, 60), daemon=True).start()
    steps.pipeline.generate("runway", scene_id)
    newer = steps.record(scene_id).backend
    assert newer is not None and newer != "runway"
    runway.set_knobs(outage=False)
    worker = threading.Thread(target=steps.pipeline.generate, args=(newer, scene_id))
    worker.start()
    deadline = time.monotonic() + 10
    while not steps.jobs(newer) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert steps.record(scene_id).state is SceneState.RUNNING
    time.sleep(1.2)  # the orphan ends first
    assert sweep_orphans(steps.pipeline) == {"orphans_used": 1}
    worker.join(timeout=10)
    assert not worker.is_alive()  # its heartbeat found the slot gone and it stopped
    [newer_job] = steps.jobs(newer)
    assert newer_job["cancelled"]  # first result wins; the other is cancelled
    record = steps.record(scene_id)
    assert record.state is SceneState.SUCCEEDED and record.result is not None
    assert record.result["backend"] == "runway"
    assert steps.store.loads([newer])[newer] == (0, 0)


def test_an_orphan_that_succeeds_after_its_scene_counts_as_paid_twice(make_steps):
    steps, runway, scene_id = _orphaned(make_steps, 0.8)
    newer = steps.record(scene_id).backend
    assert newer is not None
    steps.pipeline.generate(newer, scene_id)
    assert steps.record(scene_id).state is SceneState.SUCCEEDED
    runway.set_knobs(outage=False)
    time.sleep(1.0)
    assert sweep_orphans(steps.pipeline) == {"orphans_double_paid": 1}
    assert steps.record(scene_id).result["backend"] == newer  # type: ignore[index]
    assert steps.store.stats("runway")["orphans_double_paid"] == 1


def test_an_orphan_the_vendor_failed_is_refunded(make_steps):
    steps, runway, scene_id = _orphaned(make_steps, 0.5, fail_next_jobs=1)
    before = 0.0  # a fresh Redis: nothing settled before this scene
    [orphan] = steps.store.orphans()
    settled = steps.store.ledgers(["backend:runway"])["backend:runway"]["settled"]
    assert settled == pytest.approx(before + orphan.usd)
    runway.set_knobs(outage=False)
    time.sleep(0.7)
    assert sweep_orphans(steps.pipeline) == {"orphans_failed": 1}
    after = steps.store.ledgers(["backend:runway"])["backend:runway"]["settled"]
    assert after == pytest.approx(before) and steps.record(scene_id).spent == 0


def test_a_resumed_job_keeps_the_deadline_it_was_created_with(make_steps):
    steps = make_steps(lambda vg: vg["backends"]["runway"].update(timeout=30))
    scene_id = _on_runway(steps)
    steps.sandboxes["runway"].state.set_knobs(never_finish=True)
    backend = steps.pipeline.backend("runway")
    job = backend.submit(backend.prepare(steps.record(scene_id).spec))
    # created 29.5 s ago by a worker that died: 0.5 s of its 30 s are left, not 30 more
    job = job.model_copy(update={"created_at": steps.clock.now - 29.5})
    steps.store.update(scene_id, vendor_job=job)
    started = time.monotonic()
    steps.pipeline.generate("runway", scene_id)
    assert time.monotonic() - started < 5
    record = steps.record(scene_id)
    assert record.state is SceneState.ROUTED and record.backend != "runway"
    assert "no result within 30 s" in (record.error or "")
    # the abandoned job was cancelled (the vendor answers), not left as an orphan
    assert steps.jobs("runway")[0]["cancelled"] and steps.store.orphans() == []


def test_a_silent_vendor_is_asked_about_one_orphan_per_sweep(make_steps):
    steps = make_steps(_grace(0.3))
    runway = steps.sandboxes["runway"].state
    runway.set_knobs(never_finish=True)
    first, second = _on_runway(steps), _on_runway(steps)
    threading.Thread(target=lambda: _quiet_once_created(runway, 60), daemon=True).start()
    steps.pipeline.generate("runway", first)
    steps.store.set_circuit("runway", Circuit())  # the second scene may still start there
    runway.set_knobs(outage=False)
    threading.Thread(target=lambda: _quiet_once_created_again(runway), daemon=True).start()
    steps.pipeline.generate("runway", second)
    assert len(steps.store.orphans()) == 2
    before = len(runway.records()["requests"])
    assert sweep_orphans(steps.pipeline) == {}
    asked = runway.records()["requests"][before:]
    assert len(asked) == 1 and asked[0]["status"] == 503  # one question, not one per orphan
    runway.set_knobs(outage=False)
    assert sweep_orphans(steps.pipeline) == {"orphans_cancelled": 2}


def _quiet_once_created_again(state) -> None:
    deadline = time.monotonic() + 10
    while len(state.records()["jobs"]) < 2 and time.monotonic() < deadline:
        time.sleep(0.005)
    state.set_knobs(outage=True)


def test_a_resumed_unknown_job_keeps_the_grace_it_had_used(make_steps):
    steps = make_steps(_grace(100.5))
    runway = steps.sandboxes["runway"].state
    runway.set_knobs(never_finish=True)
    scene_id = _on_runway(steps)
    backend = steps.pipeline.backend("runway")
    job = backend.submit(backend.prepare(steps.record(scene_id).spec))
    # a worker died 100 s into the vendor's silence: 0.5 s of the grace are left, not 100.5
    job = job.model_copy(update={"created_at": steps.clock.now - 100})
    steps.store.update(scene_id, vendor_job=job, unknown_since=steps.clock.now - 100)
    runway.set_knobs(outage=True)
    started = time.monotonic()
    steps.pipeline.generate("runway", scene_id)
    assert time.monotonic() - started < 5
    record = steps.record(scene_id)
    assert record.backend != "runway" and "no answer from the vendor" in (record.error or "")
    assert [o.job.job_id for o in steps.store.orphans()] == [job.job_id]
