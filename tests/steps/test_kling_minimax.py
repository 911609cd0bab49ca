"""Kling and MiniMax in the pipeline's steps: Kling's lost create found by our own id, its 429
told apart by code, its units settled, a job it cannot stop left to run as an orphan; a
MiniMax V1 scene through its three steps."""

from __future__ import annotations

import time

from videogen.models import SceneState
from videogen.orphans import sweep_orphans
from videogen.pricing import to_micro
from videogen.sandbox.state import HttpFault

from .conftest import backend_entry
from .test_generate import SCENE, _routed


def _with(step_sandboxes, name: str, alone: bool = False, **values: object):
    """The config with backend ``name`` (on its sandbox) besides Runway, for a failover, or
    ``alone``."""

    def change(vg):
        entry = {**backend_entry(step_sandboxes, name), "max_concurrent_tasks": 2, **values}
        others = {} if alone else {"runway": vg["backends"]["runway"]}
        vg["backends"] = {name: entry, **others}

    return change


def _dispatched(steps, name: str) -> str:
    """A scene bound to ``name`` by the dispatch step, so its price is reserved."""
    (scene_id,) = steps.submit(SCENE)
    assert steps.pipeline.dispatch_waiting() == [(scene_id, name)]
    steps.sent.take()
    return scene_id


def test_a_lost_kling_create_answer_is_found_by_its_external_task_id(make_steps, step_sandboxes):
    steps = make_steps(_with(step_sandboxes, "kling", request_timeout=0.3))
    kling = steps.sandboxes["kling"].state
    scene_id = _routed(steps, "kling")
    kling.set_knobs(create_delay=1.0)
    steps.pipeline.generate("kling", scene_id)
    record = steps.record(scene_id)
    assert record.state is SceneState.SUCCEEDED, record.error
    [job] = steps.jobs("kling")  # never sent twice
    assert record.result is not None and record.result["vendor_job_id"] == job["id"]
    [lookup] = kling.requests_matching("GET", "/v1/videos/text2video")[:1]
    assert lookup["query"] == {"external_task_id": job["params"]["external_task_id"]}
    assert steps.store.stats("kling")["submitted"] == 1


def test_a_kling_429_for_an_unpaid_bill_fails_over_and_one_for_the_rate_waits(
    make_steps, step_sandboxes
):
    steps = make_steps(_with(step_sandboxes, "kling"))
    kling = steps.sandboxes["kling"].state
    broke = _routed(steps, "kling")
    kling.set_knobs(http_faults=[HttpFault(on="create", status=429, code="1102")])
    steps.pipeline.generate("kling", broke)
    record = steps.record(broke)
    assert record.state is SceneState.ROUTED and record.backend == "runway"  # failed over
    assert steps.store.attempts(broke)[0]["kind"] == "AuthError"
    busy = _routed(steps, "kling", {**SCENE, "prompt": "a second lighthouse"})
    steps.sent.take()
    kling.set_knobs(http_faults=[HttpFault(on="create", status=429, code="1303")])
    steps.pipeline.generate("kling", busy)
    [(kind, backend, _, countdown)] = steps.sent.take()
    assert (kind, backend) == ("generate", "kling") and countdown > 0  # the same backend
    assert steps.store.attempts(busy)[0]["kind"] == "RateLimitedError"
    assert steps.jobs("kling") == []


def test_a_kling_scene_is_settled_at_the_units_kling_charged(make_steps, step_sandboxes):
    steps = make_steps(_with(step_sandboxes, "kling", alone=True, usd_per_unit=0.2))
    scene_id = _dispatched(steps, "kling")
    assert steps.record(scene_id).reserved["usd"] == to_micro(0.21)  # the list price
    steps.pipeline.generate("kling", scene_id)
    record = steps.record(scene_id)
    assert record.state is SceneState.SUCCEEDED, record.error
    assert record.spent == to_micro(0.3)  # Kling's 1.5 units at $0.20


def test_a_kling_job_given_up_on_runs_on_as_an_orphan_whose_video_is_used(
    make_steps, step_sandboxes
):
    steps = make_steps(_with(step_sandboxes, "kling", timeout=0.3))
    kling = steps.sandboxes["kling"].state
    kling.set_knobs(run_seconds=1.0)
    steps.sandboxes["runway"].state.set_knobs(never_finish=True)
    scene_id = _routed(steps, "kling")
    steps.pipeline.generate("kling", scene_id)
    record = steps.record(scene_id)
    assert record.state is SceneState.ROUTED and record.backend == "runway"  # timed out
    [orphan] = steps.store.orphans()
    [job] = steps.jobs("kling")
    assert orphan.job.job_id == job["id"] and not job["cancelled"]  # no cancel was asked
    assert not kling.requests_matching("DELETE")
    asked = len(kling.requests_matching("GET", job["id"]))
    assert sweep_orphans(steps.pipeline) == {}  # still running: asked again next sweep
    assert len(kling.requests_matching("GET", job["id"])) == asked + 1
    assert steps.store.orphans() == [orphan]
    time.sleep(1.1)  # the job ends at Kling
    assert sweep_orphans(steps.pipeline) == {"orphans_used": 1}
    record = steps.record(scene_id)
    assert record.state is SceneState.SUCCEEDED and record.result is not None
    assert record.result["vendor_job_id"] == job["id"] and record.result["orphan"]


def test_a_minimax_v1_scene_goes_through_task_file_and_download(make_steps, step_sandboxes):
    steps = make_steps(_with(step_sandboxes, "minimax", alone=True))
    minimax = steps.sandboxes["minimax"].state
    scene_id = _dispatched(steps, "minimax")
    steps.pipeline.generate("minimax", scene_id)
    record = steps.record(scene_id)
    assert record.state is SceneState.SUCCEEDED, record.error
    assert record.result is not None and record.result["effective"]["duration"] == 6.0
    assert minimax.requests_matching("GET", "/v1/files/retrieve")
    assert record.spent == to_micro(0.3)  # 6 s at 768P, $0.05 a second
