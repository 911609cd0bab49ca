"""A vendor API that dies mid-job, on the real stack: unknown is not failed (no scene paid twice
for an outage shorter than the grace), orphans after a longer one, and deadlines that count
from the vendor job's creation across a worker's death."""

from __future__ import annotations

import time
from collections import Counter

from tests.helpers import wait_until

from .conftest import jobs_of
from .test_cli import clean_env, videogen


def _config(grace: float, **runway):
    def change(vg):
        vg["load_balancing"] = False
        vg["strategy"] = "priority"  # runway first: it has the jobs the outage strands
        vg["backends"]["runway"].update(
            unknown_grace=grace, max_concurrent_tasks=3, timeout=60, **runway
        )
        vg["backends"]["svd"]["enabled"] = False
        vg["backends"]["luma"]["enabled"] = False

    return change


def _running(sandbox, count: int) -> bool:
    return sum(1 for j in jobs_of(sandbox) if j["state"] in ("running", "queued")) >= count


def _per_prompt(sandboxes) -> Counter:
    return Counter(j["prompt"] for s in sandboxes.values() for j in jobs_of(s))


def test_an_outage_shorter_than_the_grace_pays_for_nothing_twice(make_stack, sandboxes):
    stack = make_stack(_config(grace=60)).start()
    sandboxes["runway"].state.set_knobs(run_seconds=3)
    generator = stack.generator()
    scenes = [{"prompt": f"quiet vendor {i}", "duration": 5} for i in range(3)]
    job_id = generator.submit(scenes)
    wait_until(lambda: _running(sandboxes["runway"], 3), 30, stack.logs)
    sandboxes["runway"].state.set_knobs(outage=True)  # every endpoint 503, the jobs run on
    time.sleep(20)
    sandboxes["runway"].state.set_knobs(outage=False)
    results = generator.wait(job_id, timeout=60)
    assert all(r["success"] for r in results), (results, stack.logs())
    tries = [generator.store.attempts(r["scene_id"]) for r in results]
    assert {r["backend_used"] for r in results} == {"runway"}, tries  # waited out
    assert max(_per_prompt(sandboxes).values()) == 1  # 0 duplicate vendor jobs
    assert jobs_of(sandboxes["pika"]) == []
    assert generator.store.orphans() == []


def test_past_the_grace_scenes_finish_elsewhere_and_every_orphan_is_settled(make_stack, sandboxes):
    # Runway goes quiet for 10 s with a 2-s grace: the scenes fail over to Pika. Two of the
    # abandoned jobs (6 s) end on the vendor meanwhile: paid twice. The third (60 s) is still
    # running when Runway answers again, and is cancelled.
    stack = make_stack(_config(grace=2)).start()
    runway, pika = sandboxes["runway"].state, sandboxes["pika"].state
    runway.set_knobs(run_seconds=60, fail_prompts={})
    pika.set_knobs(run_seconds=1)
    generator = stack.generator()
    scenes = [{"prompt": f"long outage {i}", "duration": 5} for i in range(3)]
    first = generator.submit(scenes[:1])
    wait_until(lambda: _running(sandboxes["runway"], 1), 30, stack.logs)
    runway.set_knobs(run_seconds=6)
    rest = generator.submit(scenes[1:])
    wait_until(lambda: _running(sandboxes["runway"], 3), 30, stack.logs)
    runway.set_knobs(outage=True)
    quiet_at = time.monotonic()
    results = generator.wait(first, timeout=60) + generator.wait(rest, timeout=60)
    assert all(r["success"] for r in results), (results, stack.logs())
    assert {r["backend_used"] for r in results} == {"pika"}
    assert len(generator.store.orphans()) == 3
    time.sleep(max(0.0, quiet_at + 10 - time.monotonic()))
    runway.set_knobs(outage=False)
    wait_until(lambda: generator.store.orphans() == [], 30, stack.logs)
    stats = generator.get_statistics()["backends"]["runway"]
    ended = {k: stats[k] for k in ("orphans_cancelled", "orphans_used", "orphans_double_paid")}
    assert stats["orphans"] == 3 and sum(ended.values()) == 3, stats
    assert ended == {"orphans_cancelled": 1, "orphans_used": 0, "orphans_double_paid": 2}, stats
    assert stats["double_paid"] == 2  # reported
    [long_job] = [j for j in jobs_of(sandboxes["runway"]) if j["prompt"] == "long outage 0"]
    assert long_job["cancelled"]  # nothing is left running on the vendor
    assert not any(j["state"] in ("running", "queued") for j in jobs_of(sandboxes["runway"]))
    env = clean_env(VIDEOGEN_REDIS_URL=stack.redis_url)
    text = videogen("--config", str(stack.config_path), "stats", env=env).stdout
    assert "orphans 3 ($" in text and "cancelled 1" in text and "paid twice 2" in text, text
    print(f"double-paid scenes after a 10-s outage with a 2-s grace: {ended}")


def test_an_orphan_that_finishes_first_is_used_and_the_newer_job_cancelled(make_stack, sandboxes):
    stack = make_stack(_config(grace=1.5)).start()
    runway, pika = sandboxes["runway"].state, sandboxes["pika"].state
    runway.set_knobs(run_seconds=4)
    pika.set_knobs(never_finish=True)  # the newer jobs would never end
    generator = stack.generator()
    job_id = generator.submit([{"prompt": "first result wins", "duration": 5}])
    wait_until(lambda: _running(sandboxes["runway"], 1), 30, stack.logs)
    runway.set_knobs(outage=True)
    wait_until(lambda: jobs_of(sandboxes["pika"]), 30, stack.logs)  # failed over
    time.sleep(4)  # the orphan ends on the vendor meanwhile
    runway.set_knobs(outage=False)
    [result] = generator.wait(job_id, timeout=30)
    assert result["success"] and result["backend_used"] == "runway", (result, stack.logs())
    assert result["video_path"].endswith(".orphan.mp4")
    # the newer try was cancelled by us: not counted as the scene's failure on Pika
    assert [a["backend"] for a in generator.store.attempts(result["scene_id"])] == ["runway"]
    [newer] = jobs_of(sandboxes["pika"])
    assert newer["cancelled"]
    stats = generator.get_statistics()["backends"]["runway"]
    assert stats["orphans_used"] == 1
    wait_until(lambda: generator.store.in_flight("pika") == 0, 10, stack.logs)


def test_a_resumed_job_keeps_its_first_deadline(make_stack, sandboxes):
    def runway_only(vg):
        for name in ("svd", "pika", "luma"):
            vg["backends"][name]["enabled"] = False
        vg["backends"]["runway"]["timeout"] = 8

    stack = make_stack(runway_only).start()
    sandboxes["runway"].state.set_knobs(never_finish=True)
    generator = stack.generator()
    job_id = generator.submit([{"prompt": "a deadline that survives"}])
    (scene_id,) = generator.store.job_scene_ids(job_id)

    def journalled() -> bool:
        record = generator.store.scene(scene_id)
        return bool(record and record.vendor_job)

    wait_until(journalled, 30, stack.logs)
    created = time.time()  # within a poll of the vendor job's creation
    time.sleep(5)  # late in its 8 s
    stack.kill("runway-0")  # SIGKILL: the lease expires (3 s), the sweeper resumes it
    stack.spawn("runway-1", "worker", "runway")
    [result] = generator.wait(job_id, timeout=60)
    assert not result["success"]
    [job] = jobs_of(sandboxes["runway"])
    attempts = generator.store.attempts(scene_id)
    assert "no result within 8 s" in attempts[-1]["error"], attempts
    # from the vendor job's creation to giving up: its 8 s (the resume came after them),
    # not 5 s + the lease's expiry + a fresh 8 s (~17 s)
    took = attempts[-1]["at"] - created
    assert 7.5 <= took < 12.5, took
    assert job["cancelled"]
