"""The generation step, one call at a time: success, a full backend, duplicates, the
crash-loop guard, ambiguous submits, resumes, and each kind of error."""

from __future__ import annotations

import json
import time

import pytest

from tests.helpers import png_bytes
from videogen import redis_keys as keys
from videogen.generation import LEASE_WAIT, MAX_DELIVERIES, Run
from videogen.models import SceneState, Submitting, VendorJob
from videogen.policy import Circuit, CircuitState
from videogen.sandbox.state import HttpFault
from videogen.states import Event
from videogen.submits import LOOKUP_TRIES

SCENE = {"prompt": "a lighthouse at dawn", "duration": 5}


def _routed(steps, backend="runway", scene=SCENE):
    """A scene routed to ``backend`` (its generate message taken, not run)."""
    (scene_id,) = steps.submit(scene)
    steps.sent.take()
    steps.store.update(scene_id, tried=[])
    assert steps.store.apply(scene_id, Event.ROUTE, backend=backend, tried=[backend])
    steps.store.mark_queued(backend, scene_id)
    for name in steps.store.backlog_classes():  # bound: out of the backlog, as binding does
        steps.store.r.zrem(keys.backlog(name), scene_id)
    steps.store.dispatch_started()  # as a dispatch step would have
    return scene_id


def test_generate_stores_a_checked_video_and_frees_everything(steps):
    scene_id = _routed(steps)
    steps.pipeline.generate("runway", scene_id)
    record = steps.record(scene_id)
    assert record.state is SceneState.SUCCEEDED, record.error
    assert record.result is not None and record.result["backend"] == "runway"
    video = record.result["video_path"]
    assert json.loads(open(video.replace(".mp4", ".json")).read())["vendor_job_id"]
    assert record.vendor_job is None and record.request is None and record.lease is None
    assert steps.store.loads(["runway"])["runway"] == (0, 0)  # slot back, not queued
    assert not steps.store.r.sismember(keys.LIVE, scene_id)
    stats = steps.store.stats("runway")
    assert (stats["submitted"], stats["succeeded"]) == (1, 1)
    assert len(steps.jobs("runway")) == 1
    # the vendor job's end gave the slot back; with nothing waiting, no router was asked
    assert steps.sent.take() == []
    assert steps.store.r.get(keys.DISPATCH) is None
    assert steps.pipeline.job_times().learned("runway") == 1
    # the move to succeeded was appended to the event stream in the same step
    [(_, event)] = steps.store.r.xrange(keys.EVENTS)
    assert event == {"scene": scene_id, "job": record.job_id, "state": "succeeded"}


def test_a_finishing_scene_hands_its_slot_to_the_next_waiting_one(make_steps):
    steps = make_steps(lambda vg: vg["backends"]["runway"].update(max_concurrent_tasks=1))
    for name in ("pika", "luma"):
        steps.store.set_circuit(name, Circuit(CircuitState.OPEN, 3, steps.clock.now))
    first, second = steps.submit(SCENE, {**SCENE, "prompt": "the keeper climbs"})
    assert steps.pipeline.dispatch_waiting() == [(first, "runway")]  # one slot: one waits
    steps.sent.take()
    steps.pipeline.generate("runway", first)
    assert steps.record(first).state is SceneState.SUCCEEDED
    # the slot went back when the vendor job ended, and a router was asked (once) to fill it
    assert steps.sent.take() == [("dispatch",)]
    assert steps.pipeline.dispatch_waiting() == [(second, "runway")]
    assert steps.record(second).state is SceneState.ROUTED


def test_a_hand_over_while_a_step_is_asked_for_already_sends_no_second_one(make_steps):
    steps = make_steps(lambda vg: vg["backends"]["runway"].update(max_concurrent_tasks=1))
    for name in ("pika", "luma"):
        steps.store.set_circuit(name, Circuit(CircuitState.OPEN, 3, steps.clock.now))
    first, second = steps.submit(SCENE, {**SCENE, "prompt": "the keeper climbs"})
    assert steps.pipeline.dispatch_waiting() == [(first, "runway")]
    steps.sent.take()
    assert steps.store.ask_dispatch()  # someone asked for a step, not started yet
    asked_at = steps.store.r.get(keys.DISPATCH)
    steps.pipeline.generate("runway", first)
    assert steps.record(first).state is SceneState.SUCCEEDED
    assert steps.sent.take() == []  # the release coalesced into the step asked for
    assert steps.store.r.get(keys.DISPATCH) == asked_at  # and kept when it was asked
    assert steps.pipeline.dispatch_waiting() == [(second, "runway")]


def test_a_bound_scene_that_finds_its_backend_full_goes_back_to_its_place(make_steps):
    steps = make_steps(lambda vg: vg["backends"]["runway"].update(max_concurrent_tasks=1))
    holder = _routed(steps)
    assert steps.store.start("runway", holder, "other-worker", 30, 1)[0] == "started"
    waiting = _routed(steps, scene={**SCENE, "prompt": "the keeper climbs"})
    rank = steps.record(waiting).rank
    steps.clock.advance(5)
    steps.pipeline.generate("runway", waiting)
    record = steps.record(waiting)
    assert record.state is SceneState.PENDING and record.rank == rank and record.tried == ()
    assert record.queue and waiting in steps.store.backlog_members(record.queue, 5)
    assert steps.sent.take() == [("dispatch",)]  # no self-requeue: the scheduler decides
    assert steps.store.loads(["runway"])["runway"] == (1, 0)  # its reservation given back
    assert steps.jobs("runway") == []


def test_a_resumed_scene_that_finds_its_backend_full_keeps_its_reservation(make_steps):
    steps = make_steps(lambda vg: vg["backends"]["runway"].update(max_concurrent_tasks=1))
    holder = _routed(steps)
    assert steps.store.start("runway", holder, "other-worker", 30, 1)[0] == "started"
    resumed = _routed(steps, scene={**SCENE, "prompt": "the keeper climbs"})
    steps.store.update(resumed, state=SceneState.RUNNING)
    steps.pipeline.generate("runway", resumed)
    assert steps.record(resumed).state is SceneState.RUNNING
    assert steps.sent.take() == [("generate", "runway", resumed, LEASE_WAIT)]
    assert steps.store.loads(["runway"])["runway"] == (1, 1)


def test_a_duplicate_generate_while_another_worker_runs_the_scene_does_nothing(steps):
    scene_id = _routed(steps)
    assert steps.store.start("runway", scene_id, "other-worker", 30, 3)[0] == "started"
    steps.pipeline.generate("runway", scene_id)
    record = steps.record(scene_id)
    assert record.state is SceneState.RUNNING and record.lease == "other-worker"
    assert steps.jobs("runway") == [] and steps.sent.take() == []


def test_a_stale_generate_for_another_backend_does_nothing(steps):
    scene_id = _routed(steps, backend="luma")
    steps.pipeline.generate("runway", scene_id)
    assert steps.record(scene_id).state is SceneState.ROUTED
    assert steps.jobs("runway") == [] and steps.jobs("luma") == []


def test_the_crash_loop_guard_moves_the_scene_on_without_a_vendor_job(steps):
    scene_id = _routed(steps)
    steps.store.update(scene_id, deliveries=MAX_DELIVERIES)
    steps.pipeline.generate("runway", scene_id)
    record = steps.record(scene_id)
    assert record.failures == 1 and record.tried[0] == "runway"
    assert record.error is not None and f"started {MAX_DELIVERIES} times" in record.error
    # Back in the backlog, and bound at once to the next backend by the step's dispatch.
    assert record.state is SceneState.ROUTED and record.backend in ("pika", "luma")
    assert steps.sent.take() == [("generate", record.backend, scene_id, 0.0)]
    assert steps.jobs("runway") == [] and steps.store.loads(["runway"])["runway"] == (0, 0)
    assert steps.store.attempts(scene_id)[0]["kind"] == "CrashLoopError"


def test_an_ambiguous_submit_is_never_sent_again(steps):
    scene_id = _routed(steps)
    steps.store.update(scene_id, submitting="runway")  # a worker died mid-create
    steps.pipeline.generate("runway", scene_id)
    record = steps.record(scene_id)
    assert record.state is SceneState.FAILED
    assert record.error is not None and "never paid for twice" in record.error
    assert steps.jobs("runway") == [] and steps.sent.take() == []
    assert steps.store.stats("runway")["failed"] == 1


def test_a_saved_vendor_job_is_resumed_not_created_again(steps):
    scene_id = _routed(steps)
    backend = steps.pipeline.backend("runway")
    record = steps.record(scene_id)
    job = backend.submit(backend.prepare(record.spec))
    steps.store.update(scene_id, vendor_job=job)
    steps.pipeline.generate("runway", scene_id)
    record = steps.record(scene_id)
    assert record.state is SceneState.SUCCEEDED
    assert record.result is not None and record.result["vendor_job_id"] == job.job_id
    assert len(steps.jobs("runway")) == 1


def test_a_transient_error_is_retried_on_the_same_backend_after_a_backoff(steps):
    scene_id = _routed(steps)
    steps.sandboxes["runway"].state.set_knobs(
        http_faults=[HttpFault(on="create", status=503, count=1)]
    )
    steps.pipeline.generate("runway", scene_id)
    record = steps.record(scene_id)
    assert record.state is SceneState.ROUTED and (record.retries, record.failures) == (1, 1)
    assert record.submitting is None  # the 503 was an answer: no job was made
    [(kind, backend, sid, countdown)] = steps.sent.take()
    assert (kind, backend, sid) == ("generate", "runway", scene_id) and countdown > 0
    steps.pipeline.generate("runway", scene_id)
    assert steps.record(scene_id).state is SceneState.SUCCEEDED
    assert steps.store.stats("runway")["retries"] == 1


def test_a_failed_vendor_job_fails_over_to_the_router(steps):
    scene_id = _routed(steps)
    steps.pipeline.probe_all()  # fresh health, as the beat keeps it: no probe runs mid-step
    steps.sandboxes["runway"].state.set_knobs(fail_next_jobs=1)
    steps.pipeline.generate("runway", scene_id)
    record = steps.record(scene_id)
    assert record.state is SceneState.ROUTED and record.tried[0] == "runway"
    assert record.backend != "runway" and record.vendor_job is None and record.error
    assert ("generate", record.backend, scene_id, 0.0) in steps.sent.sent
    assert steps.store.stats("runway")["failovers"] == 1
    assert steps.store.circuit("runway").failures == 1
    steps.run_all()  # the next backend takes it and succeeds
    record = steps.record(scene_id)
    assert record.state is SceneState.SUCCEEDED and record.backend != "runway"


def test_an_unavailable_backend_is_forgotten_so_it_may_take_the_scene_again(make_steps):
    steps = make_steps(lambda vg: vg.update(max_retries=0))
    scene_id = _routed(steps)
    steps.sandboxes["runway"].state.set_knobs(outage=True)
    steps.pipeline.generate("runway", scene_id)
    record = steps.record(scene_id)
    assert record.error is not None and "(after 0 retries)" in record.error
    assert record.failures == 1 and record.tried in ((), (record.backend,))  # forgotten


def test_a_moderated_scene_fails_without_trying_elsewhere(steps):
    scene_id = _routed(steps, scene={**SCENE, "prompt": "forbidden thing"})
    steps.sandboxes["runway"].state.set_knobs(fail_prompts={"forbidden": "SAFETY.INPUT.TEXT"})
    steps.pipeline.generate("runway", scene_id)
    record = steps.record(scene_id)
    assert record.state is SceneState.FAILED
    assert steps.sent.take() == []  # not sent elsewhere (and nothing waits for its slot)
    assert steps.store.loads(["runway"])["runway"] == (0, 0)  # its slot is back
    assert steps.store.circuit("runway").failures == 0  # the scene's fault, not the backend's


def test_without_fallback_a_failed_job_fails_the_scene(make_steps):
    steps = make_steps(lambda vg: vg.update(fallback_enabled=False))
    scene_id = _routed(steps)
    steps.sandboxes["runway"].state.set_knobs(fail_next_jobs=1)
    steps.pipeline.generate("runway", scene_id)
    assert steps.record(scene_id).state is SceneState.FAILED
    assert steps.sent.take() == []  # not sent elsewhere (and nothing waits for its slot)
    assert steps.store.loads(["runway"])["runway"] == (0, 0)


def test_a_run_whose_slot_was_taken_over_stops_and_cannot_finish_the_scene(steps):
    scene_id = _routed(steps)
    outcome, record = steps.store.start("runway", scene_id, "first", 30, 3)
    assert outcome == "started" and record is not None
    run = Run(steps.pipeline, steps.pipeline.backend("runway"), record, "first", renewed=0.0)
    steps.store.r.zrem(keys.lease("runway"), scene_id)  # its lease expired and was reaped
    assert steps.store.start("runway", scene_id, "second", 30, 3)[0] == "started"
    try:
        run.heartbeat()
    except Exception as error:  # noqa: BLE001 - the type is the point
        assert type(error).__name__ == "LeaseLostError"
    else:
        raise AssertionError("the heartbeat did not notice the takeover")
    assert not run.apply(Event.SUCCEED, result={"video_path": "x"})
    run.release()  # never the new holder's slot
    assert steps.record(scene_id).lease == "second"
    assert steps.store.loads(["runway"])["runway"][0] == 1


def test_an_unreadable_create_answer_keeps_the_submit_ambiguous_and_fails(steps):
    scene_id = _routed(steps)
    steps.sandboxes["runway"].state.set_knobs(malformed_next=1, malformed_on="create")
    steps.pipeline.generate("runway", scene_id)
    record = steps.record(scene_id)
    assert record.state is SceneState.FAILED and record.submitting is not None
    assert record.submitting.backend == "runway" and record.submitting.key
    assert record.error is not None and "never paid for twice" in record.error
    assert len(steps.jobs("runway")) == 1  # the job the lost answer named: never a second


def test_a_job_that_outlives_its_timeout_is_cancelled_and_fails_over(make_steps):
    steps = make_steps(lambda vg: vg["backends"]["runway"].update(timeout=0.3))
    scene_id = _routed(steps)
    steps.sandboxes["runway"].state.set_knobs(never_finish=True)
    steps.pipeline.generate("runway", scene_id)
    record = steps.record(scene_id)
    assert record.state is SceneState.ROUTED and record.backend != "runway"
    assert ("generate", record.backend, scene_id, 0.0) in steps.sent.take()
    [job] = steps.jobs("runway")
    assert job["cancelled"]  # nobody pays for it to run on


def test_a_429_is_waited_out_on_the_same_backend_without_opening_its_circuit(steps):
    scene_id = _routed(steps)
    steps.sandboxes["runway"].state.set_knobs(
        http_faults=[HttpFault(on="create", status=429, count=1, retry_after=3)]
    )
    steps.pipeline.generate("runway", scene_id)
    [(kind, backend, _, countdown)] = steps.sent.take()
    assert (kind, backend) == ("generate", "runway") and countdown >= 3  # Retry-After: a floor
    assert steps.store.circuit("runway").failures == 0
    assert steps.store.attempts(scene_id)[0]["kind"] == "RateLimitedError"


def test_a_backend_that_can_no_longer_take_the_scene_sends_it_elsewhere(steps):
    long_prompt = {**SCENE, "prompt": "a lighthouse " * 100}  # beyond runway's 1,000 chars
    scene_id = _routed(steps, scene=long_prompt)
    steps.pipeline.generate("runway", scene_id)
    record = steps.record(scene_id)
    assert record.state is SceneState.ROUTED and record.backend in ("pika", "luma")
    assert steps.jobs("runway") == []
    assert steps.store.attempts(scene_id)[0]["kind"] == "UnfitBackendError"


def test_a_long_job_renews_its_lease_and_a_stale_message_is_ignored(steps):
    scene_id = _routed(steps)
    outcome, record = steps.store.start("runway", scene_id, "mine", 0.5, 3)
    assert outcome == "started" and record is not None
    run = Run(steps.pipeline, steps.pipeline.backend("runway"), record, "mine", renewed=0.0)
    before = steps.store.r.zscore(keys.lease("runway"), scene_id)
    run.heartbeat()  # lease_ttl is 30 s in these tests: renewed for 30 s from now
    assert steps.store.r.zscore(keys.lease("runway"), scene_id) > before + 20_000
    run.release()
    assert steps.store.loads(["runway"])["runway"][0] == 0
    assert steps.store.apply(scene_id, Event.FAIL, error="stopped") is SceneState.FAILED
    steps.pipeline.generate("runway", scene_id)  # a late message for a finished scene
    assert steps.jobs("runway") == [] and steps.sent.take() == []


# -- lost create answers: found where the vendor lets us look --------------------------------


def _svd_scene(tmp_path):
    image = tmp_path / "frame.png"
    image.write_bytes(png_bytes(64, 36))
    return {"image": str(image), "duration": 2}


def _lost_answers(vg, backend):
    """The create's answer never comes in time: the sandbox holds it past request_timeout."""
    vg["backends"][backend]["request_timeout"] = 0.3


def _succeeded_with_one_job(steps, backend, scene_id):
    record = steps.record(scene_id)
    assert record.state is SceneState.SUCCEEDED, record.error
    [job] = [j for j in steps.jobs(backend) if not j["deleted"]]
    assert record.result is not None and record.result["vendor_job_id"] == job["id"]
    assert steps.store.stats(backend)["submitted"] == 1  # counted once
    return job


def test_a_lost_svd_create_answer_is_found_by_its_prompt_id_and_resumed(make_steps, tmp_path):
    steps = make_steps(lambda vg: _lost_answers(vg, "svd"))
    scene_id = _routed(steps, "svd", _svd_scene(tmp_path))
    steps.sandboxes["svd"].state.set_knobs(create_delay=1.0)
    started = steps.clock.now
    steps.pipeline.generate("svd", scene_id)
    _succeeded_with_one_job(steps, "svd", scene_id)
    assert len(steps.jobs("svd")) == 1  # never sent twice
    assert steps.clock.now >= started + 0.3  # looked only once the answer could not come
    assert steps.pipeline.job_times().learned("svd") == 1  # this run sent it: timed


def test_a_lost_luma_create_answer_is_found_in_the_list_and_resumed(make_steps):
    steps = make_steps(lambda vg: _lost_answers(vg, "luma"))
    steps.clock.now = time.time()  # Luma stamps generations with the real time
    scene_id = _routed(steps, "luma")
    steps.sandboxes["luma"].state.set_knobs(create_delay=1.0)
    steps.pipeline.generate("luma", scene_id)
    _succeeded_with_one_job(steps, "luma", scene_id)
    assert len(steps.jobs("luma")) == 1
    assert steps.sandboxes["luma"].state.requests_matching("GET", "/generations")  # it looked


def test_a_worker_that_died_mid_create_on_svd_leaves_a_job_that_is_found(steps, tmp_path):
    scene_id = _routed(steps, "svd", _svd_scene(tmp_path))
    backend = steps.pipeline.backend("svd")
    key = backend.new_key()
    sent_at = steps.clock.now - 60  # the dead worker's send, long past
    steps.store.update(scene_id, submitting=Submitting(backend="svd", key=key, sent_at=sent_at))
    backend.submit(backend.prepare(steps.record(scene_id).spec), key=key)  # it did arrive
    steps.pipeline.generate("svd", scene_id)
    job = _succeeded_with_one_job(steps, "svd", scene_id)
    assert job["id"] == key
    assert steps.pipeline.job_times().learned("svd") == 0  # not timed by this run


def test_a_worker_that_died_before_its_create_arrived_sends_it_with_the_same_id(steps, tmp_path):
    scene_id = _routed(steps, "svd", _svd_scene(tmp_path))
    key = steps.pipeline.backend("svd").new_key()
    sent = Submitting(backend="svd", key=key, sent_at=steps.clock.now - 60)
    steps.store.update(scene_id, submitting=sent)
    steps.pipeline.generate("svd", scene_id)
    assert _succeeded_with_one_job(steps, "svd", scene_id)["id"] == key


def _lost_luma_create_deleted(make_steps, answer_again: bool):
    """A Luma scene whose create answer is lost and whose generation is deleted (in Luma's
    dashboard) while the pipeline waits to look it up; ``answer_again``: the resubmit's
    answer arrives. Runs the generate step; returns the steps and the scene."""
    steps = make_steps(lambda vg: _lost_answers(vg, "luma"))
    steps.clock.now = time.time()
    scene_id = _routed(steps, "luma")
    luma = steps.sandboxes["luma"].state
    luma.set_knobs(create_delay=1.0)

    def meanwhile(seconds):
        for job in luma.jobs():
            luma.delete_job(job.id)
        if answer_again:
            luma.set_knobs(create_delay=0.0)
        steps.clock.advance(seconds)

    steps.pipeline.sleep = meanwhile
    steps.pipeline.generate("luma", scene_id)
    return steps, scene_id


def test_a_lost_luma_create_that_luma_does_not_show_is_sent_once_more(make_steps):
    steps, scene_id = _lost_luma_create_deleted(make_steps, answer_again=True)
    job = _succeeded_with_one_job(steps, "luma", scene_id)
    assert [j["deleted"] for j in steps.jobs("luma")] == [True, False]
    assert steps.jobs("luma")[1]["id"] == job["id"]


def test_a_second_lost_answer_that_is_not_found_either_fails_with_the_reason(make_steps):
    steps, scene_id = _lost_luma_create_deleted(make_steps, answer_again=False)
    record = steps.record(scene_id)
    assert record.state is SceneState.FAILED
    assert record.error is not None and "already sent 2 times" in record.error
    assert len(steps.jobs("luma")) == 2  # one resubmit, never a third create


def test_an_svd_id_the_vendor_calls_taken_but_does_not_show_fails_with_the_reason(steps, tmp_path):
    scene_id = _routed(steps, "svd", _svd_scene(tmp_path))
    backend = steps.pipeline.backend("svd")
    key = backend.new_key()
    request = backend.prepare(steps.record(scene_id).spec)
    steps.sandboxes["svd"].state.set_knobs(never_finish=True, concurrency_limit=1)
    backend.submit(request, key=backend.new_key())  # another prompt runs first
    backend.submit(request, key=key)  # ours waits in the queue
    backend.cancel(VendorJob(backend="svd", job_id=key))  # deleted from the queue by hand
    sent = Submitting(backend="svd", key=key, sent_at=steps.clock.now - 60)
    steps.store.update(scene_id, submitting=sent)
    steps.pipeline.generate("svd", scene_id)
    record = steps.record(scene_id)
    assert record.state is SceneState.FAILED
    assert record.error is not None and "exists" in record.error and "never paid" in record.error
    assert len(steps.jobs("svd")) == 2  # the refused resubmit made nothing


@pytest.mark.parametrize(("faults", "found"), [(2, True), (LOOKUP_TRIES, False)])
def test_a_lookup_that_fails_transiently_is_tried_again_then_gives_up(
    make_steps, tmp_path, faults, found
):
    steps = make_steps(lambda vg: _lost_answers(vg, "svd"))
    scene_id = _routed(steps, "svd", _svd_scene(tmp_path))
    svd = steps.sandboxes["svd"].state
    svd.set_knobs(create_delay=1.0, http_faults=[HttpFault(on="poll", status=503, count=faults)])
    steps.pipeline.generate("svd", scene_id)
    record = steps.record(scene_id)
    if found:
        _succeeded_with_one_job(steps, "svd", scene_id)
    else:
        assert record.state is SceneState.FAILED and len(steps.jobs("svd")) == 1
        assert record.error is not None and f"failed {LOOKUP_TRIES} times" in record.error


@pytest.mark.parametrize("backend", ["runway", "svd"])
def test_a_record_from_before_keys_were_stored_fails_as_before(steps, tmp_path, backend):
    scene = _svd_scene(tmp_path) if backend == "svd" else SCENE
    scene_id = _routed(steps, backend, scene)
    steps.store.update(scene_id, submitting=backend)  # the plain name older records hold
    assert steps.record(scene_id).submitting == Submitting(backend=backend)
    steps.pipeline.generate(backend, scene_id)
    record = steps.record(scene_id)
    assert record.state is SceneState.FAILED
    assert record.error is not None and "never paid for twice" in record.error
    assert steps.jobs(backend) == []


class _RoundTrips:
    """Counts the requests every Redis connection of this process sends (a pipeline's whole
    batch is one)."""

    def __init__(self, monkeypatch):
        import redis.connection

        self.count = 0
        send = redis.connection.AbstractConnection.send_packed_command

        def counted(conn, command, check_health=True):
            self.count += 1
            return send(conn, command, check_health)

        monkeypatch.setattr(redis.connection.AbstractConnection, "send_packed_command", counted)


def test_a_scene_on_its_backend_costs_at_most_ten_redis_round_trips(steps, monkeypatch):
    """The generate step's trips, in order: the slot and the move to running (one script);
    the create about to leave (written ahead); the vendor job adopted, with its counters; the
    slot given back at the vendor job's end (asking for a step when scenes wait); the job
    time learned; the move to succeeded; the cache entry read, then stored; the followers
    read; the success counted, with the circuit closed. Each is a wait on Redis while the
    worker thread holds the scene: ``bench/README.md`` measures what they cost. (The
    process's first scene also loads the scripts and asks whether Redis has replicas.)"""
    first = _routed(steps)
    scene_id = _routed(steps, scene={**SCENE, "prompt": "the keeper climbs"})
    steps.pipeline.generate("runway", first)
    trips = _RoundTrips(monkeypatch)
    steps.pipeline.generate("runway", scene_id)
    count = trips.count
    assert steps.record(scene_id).state is SceneState.SUCCEEDED
    assert count <= 10, count
