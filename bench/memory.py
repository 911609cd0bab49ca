"""Scenario 4, memory: resident memory of one backend worker with every slot busy.

For each concurrency ``c``, a Runway worker (``max_concurrent_tasks = c``, hence ``c`` threads)
first generates a few instant scenes (so every code path, PyAV's included, is loaded), then
gets ``c`` scenes whose sandbox jobs run for ten minutes. Once the sandbox shows ``c`` jobs
running, the worker's RSS (psutil) is sampled. The baseline is a bare Celery worker with the
same pool and settings whose ``c`` threads each run a sleeping task.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import psutil

from videogen.queue import celery_app

from . import baseline_app as base
from .observe import wait_scenes
from .profiles import Profile
from .scenes import text_scenes
from .stack import Services, Workers, make_config, only, running, start_videogen
from .stats import median, ratio

BUSY_SECONDS = 600.0
"""Longer than any measurement: the slots stay busy until the worker is stopped."""
WARMUP = 3
SAMPLES = 5
SAMPLE_GAP = 0.2
TIMEOUT = 60.0
TARGET_MB_PER_SLOT = 15.0
MB = 1024 * 1024


def run(svc: Services, profile: Profile) -> dict[str, Any]:
    slots = profile.memory_slots
    runs = []
    for rep in range(profile.reps):
        runs.append(
            {
                "videogen_rss_mb": {c: _videogen(svc, c, f"m{rep}c{c}") for c in slots},
                "baseline_rss_mb": {c: _baseline(svc, c, f"m{rep}c{c}") for c in slots},
            }
        )
    summary = _summary(runs, slots)
    targets = {"under_15mb_per_extra_slot": summary["videogen_mb_per_slot"] < TARGET_MB_PER_SLOT}
    params = {"slots": list(slots), "samples": SAMPLES, "reps": profile.reps}
    return {"params": params, "runs": runs, "summary": summary, "targets": targets}


def _summary(runs: list[dict[str, Any]], slots: tuple[int, ...]) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for kind in ("videogen", "baseline"):
        rss = {c: median(r[f"{kind}_rss_mb"][c] for r in runs) for c in slots}
        summary[f"{kind}_rss_mb"] = rss
        summary[f"{kind}_mb_per_slot"] = (rss[slots[-1]] - rss[slots[0]]) / (slots[-1] - slots[0])
    summary["per_slot_ratio"] = ratio(
        summary["videogen_mb_per_slot"], summary["baseline_mb_per_slot"]
    )
    summary["rss_ratio_at_max"] = ratio(
        summary["videogen_rss_mb"][slots[-1]], summary["baseline_rss_mb"][slots[-1]]
    )
    return summary


def _videogen(svc: Services, slots: int, tag: str) -> float:
    svc.reset_sandboxes(run_seconds=0, queue_seconds=0, concurrency_limit=None)

    def change(vg: dict[str, Any]) -> None:
        only("runway")(vg)
        vg["backends"]["runway"]["max_concurrent_tasks"] = slots

    label = f"memory-{tag}-videogen"
    config = make_config(svc, svc.folder(label) / "output", 0.5, BUSY_SECONDS * 2, change)
    with running(start_videogen(svc, label, config)) as stack:
        generator = stack.generator()
        warm = generator.submit(text_scenes(f"{tag}w", WARMUP))
        wait_scenes(generator.store, generator.store.job_scene_ids(warm), TIMEOUT)
        svc.sandboxes["runway"].state.set_knobs(run_seconds=BUSY_SECONDS)
        generator.submit(text_scenes(f"{tag}b", slots))
        _until(lambda: svc.sandboxes["runway"].state.records()["active_now"] >= slots)
        return _rss_mb(stack.workers.pid("runway"))


def _baseline(svc: Services, slots: int, tag: str) -> float:
    root = svc.folder(f"memory-{tag}-baseline")
    url = svc.fresh_url()
    workers = Workers(root, url, {"BENCH_REDIS_URL": url, "BENCH_OUTPUT_DIR": str(root)})
    workers.spawn("store", base.worker_argv(base.STORE_QUEUE, slots, "store"))
    with running(workers):
        workers.wait_ready()
        app = celery_app(url)
        for number in range(WARMUP):
            app.send_task("bench.store", args=[number], queue=base.STORE_QUEUE)
        for _ in range(slots):
            app.send_task("bench.hold", args=[BUSY_SECONDS], queue=base.STORE_QUEUE)
        _until(lambda: _active(app) >= slots)
        return _rss_mb(workers.pid("store"))


def _active(app: Any) -> int:
    replies = app.control.inspect(timeout=0.5).active() or {}
    return sum(1 for tasks in replies.values() for t in tasks if t["name"] == "bench.hold")


def _until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("the slots never all became busy")
        time.sleep(0.1)
    time.sleep(1.0)  # let every thread reach its polling loop


def _rss_mb(pid: int) -> float:
    process = psutil.Process(pid)
    samples = []
    for _ in range(SAMPLES):
        samples.append(process.memory_info().rss / MB)
        time.sleep(SAMPLE_GAP)
    return median(samples)
