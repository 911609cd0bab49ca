"""Scenario: a backend slows down for good halfway through the batch, and the scheduler,
which only learns job times from finished jobs, moves work away from it.

The capacity scenario's batch, slots and speeds (:mod:`bench.capacity`), the sample config
(no job time is given to the scheduler). Once half the scenes are stored, Runway's sandbox
jobs take four times as long. Makespan is compared with the ideal lower bound for exactly
that: the fluid bound of :mod:`bench.ideal` with Runway's speed changing at the moment it
changed in this run.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from videogen.models import SceneState

from .capacity import POLL, SLOTS, capable_backends, job_seconds, reset_sandboxes
from .ideal import Change, ideal_makespan
from .observe import vendor_jobs, wait_scenes
from .profiles import Profile
from .scenes import mixed_scenes
from .stack import Services, make_config, start_videogen
from .stats import median, ratio

SLOWED = "runway"
FACTOR = 4.0
TIMEOUT = 900.0
TARGET_RATIO = 1.25


def run(svc: Services, profile: Profile) -> dict[str, Any]:
    seconds = job_seconds(profile)
    kinds = mixed_scenes("probe", profile.capacity_scenes, svc.image_url, str(svc.image_file))
    counts = {kind: len(scenes) for kind, scenes in kinds.items()}
    capable = capable_backends(svc, kinds)
    runs = [_run_one(svc, profile, rep, counts, capable) for rep in range(profile.reps)]
    makespan = median(r["makespan_s"] for r in runs)
    ideal = median(r["ideal_s"] for r in runs)
    summary = {
        "makespan_s": makespan,
        "ideal_s": ideal,
        "vs_ideal": median(r["vs_ideal"] for r in runs),
        "slowed_jobs_after_change": median(r["slowed_jobs_after_change"] for r in runs),
        "slowed_share_before": median(r["slowed_share_before"] for r in runs),
        "slowed_share_after": median(r["slowed_share_after"] for r in runs),
    }
    params = {
        "scenes": counts,
        "slots": SLOTS,
        "job_seconds": seconds,
        "slowed": SLOWED,
        "factor": FACTOR,
        "change_when": "half the scenes stored",
        "reps": profile.reps,
    }
    targets = {"within_1.25_of_ideal": summary["vs_ideal"] <= TARGET_RATIO}
    return {"params": params, "runs": runs, "summary": summary, "targets": targets}


def _run_one(
    svc: Services,
    profile: Profile,
    rep: int,
    counts: dict[str, int],
    capable: dict[str, list[str]],
) -> dict[str, Any]:
    seconds = job_seconds(profile)
    reset_sandboxes(svc, seconds)
    kinds = mixed_scenes(f"s{rep}", profile.capacity_scenes, svc.image_url, str(svc.image_file))
    everything = [s for scenes in kinds.values() for s in scenes]

    def configure(vg: dict[str, Any]) -> None:
        for backend, slots in SLOTS.items():
            vg["backends"][backend]["max_concurrent_tasks"] = slots

    label = f"slowdown-{rep}"
    stack = start_videogen(
        svc, label, make_config(svc, svc.folder(label) / "output", POLL, 120, configure)
    )
    try:
        store = stack.generator().store
        started = time.time()
        job_id = stack.generator().submit(everything)
        ids = store.job_scene_ids(job_id)
        changed: list[float] = []
        watcher = threading.Thread(
            target=_slow_down_at_half, args=(svc, store, ids, seconds, changed), daemon=True
        )
        watcher.start()
        records = wait_scenes(store, ids, TIMEOUT)
        watcher.join(timeout=5)
    finally:
        stack.stop()
    at = changed[0] - started
    after = {SLOWED: seconds[SLOWED] * FACTOR}
    ideal = ideal_makespan(counts, capable, SLOTS, seconds, Change(at, after))
    return _measure(svc, records, started, at, ideal)


def _slow_down_at_half(svc: Services, store: Any, ids: list[str], seconds: dict[str, float],
                       changed: list[float]) -> None:  # fmt: skip
    """Watch the batch; when half the scenes are stored, slow the backend down."""
    half = len(ids) // 2
    while True:
        states = [r.state for r in store.scenes(ids)]
        if sum(s is SceneState.SUCCEEDED for s in states) >= half:
            break
        time.sleep(0.05)
    svc.sandboxes[SLOWED].state.set_knobs(run_seconds=seconds[SLOWED] * FACTOR)
    changed.append(time.time())


def _measure(
    svc: Services, records: list[dict[str, Any]], started: float, at: float, ideal: float
) -> dict[str, Any]:
    makespan = max(float(r["finished_at"]) for r in records) - started
    jobs = vendor_jobs(svc.sandboxes)
    timeline = [
        [j["backend"], j["started_at"] - started, j["finished_at"] - started]
        for j in jobs
        if j["started_at"] and j["finished_at"]
    ]
    before = [t for t in timeline if at - 5 <= t[1] < at]
    after = [t for t in timeline if at + 5 <= t[1] < at + 15]
    return {
        "makespan_s": makespan,
        "change_at_s": at,
        "ideal_s": ideal,
        "vs_ideal": ratio(makespan, ideal),
        "failed": sum(1 for r in records if r["state"] != "succeeded"),
        "slowed_jobs_after_change": sum(1 for t in timeline if t[0] == SLOWED and t[1] >= at),
        "slowed_share_before": _share(before),
        "slowed_share_after": _share(after),
        "timeline": timeline,
    }


def _share(spans: list[list[Any]]) -> float:
    """The slowed backend's share of the jobs started in a window."""
    return sum(1 for t in spans if t[0] == SLOWED) / len(spans) if spans else 0.0
