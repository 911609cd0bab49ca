"""Scenario 2, capacity use: a mixed batch over four backends of different sizes and speeds.

Slots are the sample config's (SVD 2, Runway 3, Pika 2, Luma 2), and each sandbox's own
``concurrency_limit`` equals them. Jobs take ``d`` seconds, Pika's ``3d``. Half the scenes are
text-only (SVD cannot take them), 30 % animate an image served over loopback HTTP (every
backend can), 20 % animate a local file (Luma cannot: it wants a URL).

Strategies, each run on a fresh stack:

- ``videogen``: the sample config as shipped (``load_balancing: true``, i.e. the
  ``earliest_finish`` scheduler), with no job time given: it learns them from finished jobs;
- ``priority``: the same with ``strategy: priority`` (spill-over to the next backend only
  when the better ones are full);
- ``round_robin``: the same with ``strategy: round_robin``;
- ``static_priority``: the original design's behaviour, everything on the best-priority backend
  that can take it and no spill-over. Emulated with two stacks on two Redis databases running
  at once: one with only SVD enabled takes the image scenes, one with only Runway enabled
  takes the text-only ones (what priorities 1 and 2 pick).

Makespan runs from the submit to the last stored file, and is compared with the ideal lower
bound of :mod:`bench.ideal` for the same scenes, slots and job times.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from videogen.api import VideoGenerator
from videogen.capabilities import Capabilities, can_take
from videogen.models import Scene

from .ideal import ideal_makespan
from .observe import vendor_jobs, wait_scenes
from .profiles import Profile
from .scenes import mixed_scenes
from .stack import Services, VideogenStack, make_config, only, start_videogen
from .stats import median, ratio

SLOTS = {"svd": 2, "runway": 3, "pika": 2, "luma": 2}
SLOW = "pika"
SLOWDOWN = 3.0
POLL = 0.05
TIMEOUT = 900.0
TARGET_RATIO = 1.15
STRATEGIES = ("videogen", "priority", "round_robin", "static_priority")


def run(svc: Services, profile: Profile) -> dict[str, Any]:
    seconds = job_seconds(profile)
    kinds = mixed_scenes("probe", profile.capacity_scenes, svc.image_url, str(svc.image_file))
    counts = {kind: len(scenes) for kind, scenes in kinds.items()}
    capable = capable_backends(svc, kinds)
    ideal = ideal_makespan(counts, capable, SLOTS, seconds)
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in STRATEGIES}
    for rep in range(profile.reps):
        for name in STRATEGIES:
            runs[name].append(_run_one(svc, profile, name, rep, ideal))
    summary = _summary(runs, ideal)
    params = {
        "scenes": counts,
        "slots": SLOTS,
        "job_seconds": seconds,
        "capable": capable,
        "poll_interval_s": POLL,
        "reps": profile.reps,
        "ideal_method": "fluid LP lower bound, solved as max-flow + bisection (bench/ideal.py)",
    }
    return {"params": params, "runs": runs, "summary": summary, "targets": _targets(summary)}


def job_seconds(profile: Profile) -> dict[str, float]:
    fast = profile.capacity_job_seconds
    return {name: fast * (SLOWDOWN if name == SLOW else 1.0) for name in SLOTS}


def backend_capabilities(svc: Services) -> dict[str, Capabilities]:
    """What each backend of the sample config declares (videogen's own, read once)."""
    config = make_config(svc, svc.root, POLL, 60, lambda vg: None)
    return VideoGenerator(config, redis_url=svc.fresh_url()).pipeline.capabilities()


def capable_backends(svc: Services, kinds: dict[str, list[dict[str, Any]]]) -> dict[str, list[str]]:
    """Which backends can take each kind of scene, by videogen's own capability check."""
    caps = backend_capabilities(svc)
    return {
        kind: [b for b in SLOTS if can_take(b, caps[b], Scene.model_validate(scenes[0])) is None]
        for kind, scenes in kinds.items()
    }


def _summary(runs: dict[str, list[dict[str, Any]]], ideal: float) -> dict[str, Any]:
    summary: dict[str, Any] = {"ideal_s": ideal}
    for name, reps in runs.items():
        makespan = median(r["makespan_s"] for r in reps)
        summary[f"{name}_makespan_s"] = makespan
        summary[f"{name}_vs_ideal"] = ratio(makespan, ideal)
    for name in ("priority", "round_robin", "static_priority"):
        summary[f"videogen_vs_{name}"] = ratio(
            summary["videogen_makespan_s"], summary[f"{name}_makespan_s"]
        )
    return summary


def _targets(summary: dict[str, Any]) -> dict[str, bool]:
    return {
        "videogen_within_1.15_of_ideal": summary["videogen_vs_ideal"] <= TARGET_RATIO,
        "videogen_faster_than_static_priority": summary["videogen_vs_static_priority"] < 1,
        "videogen_faster_than_round_robin": summary["videogen_vs_round_robin"] < 1,
    }


def reset_sandboxes(svc: Services, seconds: dict[str, float]) -> None:
    """Fresh sandboxes whose jobs take ``seconds`` each, none queued, with the vendor-side
    limit equal to the slots (the setup of every scenario built on this one)."""
    svc.reset_sandboxes()
    for backend, server in svc.sandboxes.items():
        server.state.set_knobs(
            run_seconds=seconds[backend], queue_seconds=0, concurrency_limit=SLOTS[backend]
        )


def _run_one(svc: Services, profile: Profile, name: str, rep: int, ideal: float) -> dict[str, Any]:
    seconds = job_seconds(profile)
    reset_sandboxes(svc, seconds)
    kinds = mixed_scenes(
        f"c{rep}{name}", profile.capacity_scenes, svc.image_url, str(svc.image_file)
    )
    plans = _plans(name, kinds)
    stacks = [
        _stack(svc, f"capacity-{rep}-{name}-{i}", change) for i, (change, _) in enumerate(plans)
    ]
    try:
        started = time.time()
        jobs = [
            (stack, stack.generator().submit(scenes))
            for stack, (_, scenes) in zip(stacks, plans, strict=True)
        ]
        records = [r for stack, job_id in jobs for r in _wait(stack, job_id)]
    finally:
        for stack in stacks:
            stack.stop()
    return _measure(svc, records, started, ideal)


def _plans(
    name: str, kinds: dict[str, list[dict[str, Any]]]
) -> list[tuple[Callable[[dict[str, Any]], None], list[dict[str, Any]]]]:
    """(config change, scenes) for each stack a strategy needs."""
    everything = [s for scenes in kinds.values() for s in scenes]
    if name == "static_priority":
        return [
            (only("svd"), kinds["image_url"] + kinds["image_file"]),
            (only("runway"), kinds["text"]),
        ]
    if name in ("round_robin", "priority"):
        return [(_strategy(name), everything)]
    return [(lambda vg: None, everything)]


def _strategy(strategy: str) -> Callable[[dict[str, Any]], None]:
    def change(vg: dict[str, Any]) -> None:
        vg["strategy"] = strategy

    return change


def _stack(svc: Services, label: str, change: Callable[[dict[str, Any]], None]) -> VideogenStack:
    def configure(vg: dict[str, Any]) -> None:
        for backend, slots in SLOTS.items():
            vg["backends"][backend]["max_concurrent_tasks"] = slots
        change(vg)

    config = make_config(svc, svc.folder(label) / "output", POLL, 120, configure)
    return start_videogen(svc, label, config)


def _wait(stack: VideogenStack, job_id: str) -> list[dict[str, Any]]:
    store = stack.generator().store
    return wait_scenes(store, store.job_scene_ids(job_id), TIMEOUT)


def _measure(
    svc: Services, records: list[dict[str, Any]], started: float, ideal: float
) -> dict[str, Any]:
    failed = [r["id"] for r in records if r["state"] != "succeeded"]
    makespan = max(float(r["finished_at"]) for r in records) - started
    jobs = vendor_jobs(svc.sandboxes)
    per_backend = {b: sum(1 for j in jobs if j["backend"] == b) for b in SLOTS}
    busy = {b: sum(_busy(j) for j in jobs if j["backend"] == b) for b in SLOTS}
    return {
        "makespan_s": makespan,
        "vs_ideal": ratio(makespan, ideal),
        "failed": len(failed),
        "scenes_per_backend": per_backend,
        "slot_utilisation": {b: busy[b] / (SLOTS[b] * makespan) for b in SLOTS},
        "timeline": [
            [j["backend"], j["started_at"] - started, j["finished_at"] - started]
            for j in jobs
            if j["started_at"] and j["finished_at"]
        ],
    }


def _busy(job: dict[str, Any]) -> float:
    if job["started_at"] is None or job["finished_at"] is None:
        return 0.0
    return float(job["finished_at"] - job["started_at"])
