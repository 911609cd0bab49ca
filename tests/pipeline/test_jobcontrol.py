"""Cancel and retry on the real stack: the CLI against running workers and sandboxes."""

from __future__ import annotations

import json
import time
from pathlib import Path

from tests.helpers import wait_until

from .conftest import jobs_of
from .test_cli import clean_env, videogen


def _runway_only(vg):
    for name in ("svd", "pika", "luma"):
        vg["backends"][name]["enabled"] = False
    vg["backends"]["runway"]["max_concurrent_tasks"] = 2


def _stuck(sandbox) -> list[dict]:
    return [j for j in jobs_of(sandbox) if j["state"] in ("running", "queued")]


def test_cancel_a_job_with_scenes_waiting_running_and_finished(make_stack, sandboxes):
    stack = make_stack(_runway_only).start()
    runway = sandboxes["runway"].state
    generator = stack.generator()
    job_id = generator.submit([{"prompt": f"take {i}", "duration": 5} for i in range(8)])
    wait_until(lambda: any(r.state.value == "succeeded" for r in generator.records(job_id)), 30)
    runway.set_knobs(never_finish=True)  # jobs created from now on run until cancelled
    wait_until(lambda: len(_stuck(sandboxes["runway"])) == 2, 30, stack.logs)
    time.sleep(0.6)  # a job made before the knob ends (0.35 s) and the next one never does
    wait_until(lambda: len(_stuck(sandboxes["runway"])) == 2, 30, stack.logs)
    before = {r.id: r for r in generator.records(job_id)}
    finished = [r for r in before.values() if r.state.value == "succeeded"]
    assert finished and any(r.state.value == "pending" for r in before.values())
    running = {j["id"] for j in _stuck(sandboxes["runway"])}

    env = clean_env(VIDEOGEN_REDIS_URL=stack.redis_url)
    out = videogen("--config", str(stack.config_path), "cancel", job_id, "--json", env=env)
    assert out.returncode == 0, out.stdout + out.stderr
    report = json.loads(out.stdout)
    assert set(report["vendor_jobs"]) == running and len(running) == 2
    assert sorted(report["untouched"]) == sorted(r.id for r in finished)

    # the vendor records a cancel for each running job, soon (a sweep is asked for at once)
    wait_until(lambda: all(j["cancelled"] for j in jobs_of(sandboxes["runway"])
                           if j["id"] in running), 10, stack.logs)  # fmt: skip
    wait_until(lambda: generator.store.in_flight("runway") == 0, 10, stack.logs)  # slots back
    made = len(jobs_of(sandboxes["runway"]))
    time.sleep(2)
    assert len(jobs_of(sandboxes["runway"])) == made  # no new vendor job for the job
    after = generator.records(job_id)
    assert {r.state.value for r in after if r.id not in report["untouched"]} == {"cancelled"}
    for record in finished:
        assert Path(record.result["video_path"]).exists()  # type: ignore[index]
    results = generator.wait(job_id, timeout=10)  # the job is over
    assert sum(r["success"] for r in results) == len(finished)


def test_retry_after_a_vendor_failure_runs_only_the_failed_scenes(make_stack, sandboxes):
    stack = make_stack(_runway_only).start()
    sandboxes["runway"].state.set_knobs(fail_prompts={"unlucky": "SAFETY.INPUT.TEXT"})
    generator = stack.generator()
    scenes = [{"prompt": "steady shot"}, {"prompt": "unlucky shot"}, {"prompt": "wide shot"}]
    job_id = generator.submit(scenes)
    results = generator.wait(job_id, timeout=60)
    assert [r["success"] for r in results] == [True, False, True], results
    assert len(jobs_of(sandboxes["runway"])) == 3

    sandboxes["runway"].state.set_knobs(fail_prompts={})
    report = generator.retry(job_id)
    assert report["done"] == [results[1]["scene_id"]]
    results = generator.wait(job_id, timeout=60)
    assert all(r["success"] for r in results), results
    prompts = [j["prompt"] for j in jobs_of(sandboxes["runway"])]
    assert len(prompts) == 4 and prompts.count("unlucky shot") == 2  # only it ran again
    assert len(generator.store.attempts(results[1]["scene_id"])) == 1  # its history is kept
