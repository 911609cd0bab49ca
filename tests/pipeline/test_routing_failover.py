"""Routing, spill-over, failover, the global cap and crash recovery, on the real stack."""

from __future__ import annotations

from collections import Counter

import pytest

from tests.helpers import wait_until

from .conftest import jobs_of

TEXT = [{"prompt": f"text scene {i}", "duration": 5} for i in range(12)]


ORIGINAL = ("svd", "runway", "pika", "luma")
"""The sample's enabled backends; a later one shows up below only if it got a vendor job."""


def per_backend(sandboxes) -> dict[str, int]:
    counts = {name: len(jobs_of(s)) for name, s in sandboxes.items()}
    return {name: n for name, n in counts.items() if n or name in ORIGINAL}


def set_strategy(strategy):
    def change(vg):
        vg["load_balancing"] = False
        vg["strategy"] = strategy

    return change


def slow(sandboxes, seconds):
    for server in sandboxes.values():
        server.state.set_knobs(run_seconds=seconds)


def run(stack, scenes, timeout=90):
    generator = stack.generator()
    job_id = generator.submit(scenes)
    results = generator.wait(job_id, timeout=timeout)
    return generator, job_id, results


def test_priority_order_then_spill_over_at_capacity(make_stack, sandboxes):
    stack = make_stack(set_strategy("priority")).start()
    slow(sandboxes, 1.5)
    _, _, results = run(stack, TEXT[:7])
    assert all(r["success"] for r in results), results
    # runway (priority 2, 3 slots) fills first, then pika (3, 2 slots), then luma (4);
    # svd (priority 1) takes no text-only scene.
    assert per_backend(sandboxes) == {"svd": 0, "runway": 3, "pika": 2, "luma": 2}


def test_priority_uses_the_first_backend_while_it_has_room(make_stack, sandboxes):
    stack = make_stack(set_strategy("priority")).start()
    _, _, results = run(stack, TEXT[:2])
    assert [r["backend_used"] for r in results] == ["runway", "runway"]
    reason = results[0]["route_reason"]
    assert "priority 2" in reason and "could go to luma, pika, runway" in reason  # no svd


def test_image_scenes_go_to_svd_first(make_stack, sandboxes, tmp_path):
    from tests.helpers import png_bytes

    frame = tmp_path / "frame.png"
    frame.write_bytes(png_bytes())
    stack = make_stack(set_strategy("priority")).start()
    _, _, results = run(stack, [{"prompt": "move", "image": str(frame)}])
    assert results[0]["backend_used"] == "svd" and results[0]["success"]


@pytest.mark.parametrize(
    ("fault", "runway_jobs"),
    [
        ({"fail_next_jobs": 100}, 2),  # the vendor fails every job
        ({"http_faults": [{"status": 503, "count": 100, "on": "create"}]}, 0),  # 5xx storm
        ({"outage": True}, 0),  # the whole backend is down
    ],
)
def test_failover_finishes_scenes_elsewhere(make_stack, sandboxes, fault, runway_jobs):
    stack = make_stack(set_strategy("priority"))
    sandboxes_knobs = dict(fault)
    stack.start()
    sandboxes["runway"].state.set_knobs(**sandboxes_knobs)
    generator, job_id, results = run(stack, TEXT[:2])
    assert all(r["success"] for r in results), results
    assert {r["backend_used"] for r in results} <= {"pika", "luma"}
    assert len(jobs_of(sandboxes["runway"])) == runway_jobs
    for scene in generator.job_status(job_id):
        if "runway" in scene["tried"]:
            assert scene["attempts"] and scene["attempts"][0]["backend"] == "runway"
            assert scene["tried"][0] == "runway"


def test_round_robin_spreads_work(make_stack, sandboxes):
    stack = make_stack(set_strategy("round_robin")).start()
    _, _, results = run(stack, TEXT[:6])
    assert all(r["success"] for r in results)
    assert per_backend(sandboxes) == {"svd": 0, "runway": 2, "pika": 2, "luma": 2}


def test_least_loaded_spreads_by_free_capacity(make_stack, sandboxes):
    stack = make_stack(set_strategy("least_loaded")).start()
    slow(sandboxes, 1.5)
    _, _, results = run(stack, TEXT[:7])
    assert all(r["success"] for r in results)
    assert per_backend(sandboxes) == {"svd": 0, "runway": 3, "pika": 2, "luma": 2}


def test_without_fallback_scenes_fail_with_the_vendors_reason(make_stack, sandboxes):
    def no_fallback(vg):
        set_strategy("priority")(vg)
        vg["fallback_enabled"] = False

    stack = make_stack(no_fallback).start()
    sandboxes["runway"].state.set_knobs(fail_next_jobs=100, failure_message="GPU melted")
    _, _, results = run(stack, TEXT[:2])
    assert [r["success"] for r in results] == [False, False]
    assert all("GPU melted" in r["error"] and r["backend_used"] == "runway" for r in results)
    assert per_backend(sandboxes)["pika"] == 0


def test_global_cap_holds_across_worker_processes(make_stack, sandboxes):
    def runway_only(vg):
        for name in ("svd", "pika", "luma"):
            vg["backends"][name]["enabled"] = False
        vg["backends"]["runway"]["max_concurrent_tasks"] = 2

    stack = make_stack(runway_only)
    # Two worker processes, each with 2 threads (more threads than the cap): only the
    # leases in Redis keep the vendor at 2.
    stack.write_config()
    stack.spawn("router", "worker", "router")
    stack.spawn("runway-a", "worker", "runway")
    stack.spawn("runway-b", "worker", "runway")
    stack.wait_ready(3)
    slow(sandboxes, 0.6)
    _, _, results = run(stack, TEXT[:8], timeout=120)
    assert all(r["success"] for r in results)
    records = sandboxes["runway"].state.records()
    assert len(records["jobs"]) == 8
    assert records["peak_active"] == 2
    assert stack.generator().store.in_flight("runway") == 0  # every slot came back


def test_sigkilled_worker_scene_completes_with_one_vendor_job(make_stack, sandboxes):
    def runway_only(vg):
        for name in ("svd", "pika", "luma"):
            vg["backends"][name]["enabled"] = False

    stack = make_stack(runway_only).start()
    sandboxes["runway"].state.set_knobs(run_seconds=4)
    generator = stack.generator()
    job_id = generator.submit([{"prompt": "survive the crash"}])
    (scene_id,) = generator.store.job_scene_ids(job_id)

    def journalled() -> bool:  # the vendor job runs and its id is in Redis
        record = generator.store.scene(scene_id)
        return bool(jobs_of(sandboxes["runway"])) and bool(record and record.vendor_job)

    # Killed between the vendor's answer and the journal, the scene is rightly failed as
    # ambiguous (never paid twice); this test is about the journalled case.
    wait_until(journalled, 30, stack.logs)
    stack.kill("runway-0")  # SIGKILL mid-job: no cleanup, the slot's lease just expires
    stack.spawn("runway-1", "worker", "runway")
    results = generator.wait(job_id, timeout=60)
    assert results[0]["success"], (results, stack.logs())
    assert len(sandboxes["runway"].state.jobs_with_prompt("survive the crash")) == 1
    assert Counter(j["state"] for j in jobs_of(sandboxes["runway"])) == {"succeeded": 1}
