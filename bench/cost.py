"""Scenario: what the ``cheapest`` strategy saves, and whether it keeps a deadline.

The capacity scenario's backends, slots, speeds and mix of scenes (:mod:`bench.capacity`;
a smaller batch), and a flat price per output second for each backend, set in the config
(``pricing: {"usd_per_second": ...}``) so that no figure hangs on videogen's default price
tables. The prices make the trade-off real: the cheap backends are the scarce ones (SVD,
2 slots and image scenes only; Pika, 3x slower), and Runway, with the most slots, is the
dearest, so putting every scene on its cheapest backend would take far longer than the
deadline.

The same batch runs twice, each on a fresh stack from one config (the sample config plus the
prices, the slots, and each backend's true job time as ``expected_seconds``):

- ``default``: submitted plainly, so the sample config's ``earliest_finish`` (makespan first);
- ``cheapest``: submitted with ``strategy="cheapest"`` and ``deadline=D``, per job, so the two
  runs differ in nothing but the submit call.

``D`` is 1.5x the batch's ideal makespan (:func:`bench.ideal.ideal_makespan`): feasible, while
every scene on its cheapest backend would miss it (both are checked before anything runs, and
recorded). Cost is read from the sandboxes' own records: for each vendor job that succeeded,
its backend's price times the output seconds the sandbox made (``duration_s``, the scene's 5 s
after the adapter snapped it: SVD makes 25 frames at 6 fps). The bound is the cheapest
fractional assignment that meets ``D`` (:func:`bench.ideal.cheapest_assignment`).

Job times are given, not learned, because this scenario measures the price and deadline
trade-off (capacity and slowdown measure learning): a deadline plan made from the default
120 s guess would measure the guess.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from videogen.api import VideoGenerator
from videogen.capabilities import Capabilities, can_take, plan
from videogen.models import Scene

from .capacity import POLL, SLOTS, SLOW, SLOWDOWN, backend_capabilities, reset_sandboxes
from .ideal import Assignment, cheapest_assignment, ideal_makespan
from .observe import vendor_jobs, wait_scenes
from .profiles import Profile
from .scenes import mixed_scenes
from .stack import Services, make_config, start_videogen
from .stats import median, ratio

PRICES = {"svd": 0.02, "pika": 0.04, "luma": 0.07, "runway": 0.10}
"""USD per output second (illustrative, not any vendor's list price): self-hosted SVD is the
cheapest, then Pika, Luma, and Runway, which has the most slots."""
DEADLINE_FACTOR = 1.5
"""The deadline, as a multiple of the ideal makespan: room to save, not room to idle."""
TARGET_RATIO = 1.10
TIMEOUT = 900.0
RUNS = ("default", "cheapest")


@dataclass(frozen=True)
class Design:
    """The deadline chosen for a batch, and what bounds the scenario's figures."""

    ideal_makespan: float
    deadline: float
    bound: Assignment | None
    """The cheapest assignment that meets the deadline (``None``: none does)."""
    cheapest_only: dict[str, str]
    """Each kind of scene's cheapest capable backend."""
    cheapest_only_makespan: float
    """The ideal makespan with every scene on its cheapest backend."""

    @property
    def feasible(self) -> bool:
        return self.bound is not None

    @property
    def cheapest_only_misses(self) -> bool:
        return self.cheapest_only_makespan > self.deadline


def run(svc: Services, profile: Profile) -> dict[str, Any]:
    seconds = job_seconds(profile)
    kinds = mixed_scenes("probe", profile.cost_scenes, svc.image_url, str(svc.image_file))
    counts = {kind: len(scenes) for kind, scenes in kinds.items()}
    output = output_seconds(backend_capabilities(svc), kinds)
    costs = scene_costs(output, PRICES)
    setup = design(counts, {kind: list(b) for kind, b in output.items()}, seconds, costs)
    check(setup)
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in RUNS}
    for rep in range(profile.reps):
        for name in RUNS:
            runs[name].append(_run_one(svc, profile, name, rep, setup.deadline))
    summary = _summary(runs, setup)
    cycle = {**seconds, **measured_cycle(runs)}
    measured = cheapest_assignment(
        setup.deadline, counts, {k: list(b) for k, b in output.items()}, SLOTS, cycle, costs
    )
    summary["bound_measured_cycle_usd"] = measured.cost if measured else math.nan
    summary["cheapest_vs_measured_bound"] = ratio(
        summary["cheapest_usd"], summary["bound_measured_cycle_usd"]
    )
    params = {
        "scenes": counts,
        "slots": SLOTS,
        "job_seconds": seconds,
        "usd_per_second": PRICES,
        "output_seconds": output,
        "usd_per_scene": costs,
        "deadline_factor": DEADLINE_FACTOR,
        "bound_scenes": setup.bound.scenes if setup.bound else None,
        "cheapest_only": setup.cheapest_only,
        "expected_seconds_given": True,
        "poll_interval_s": POLL,
        "reps": profile.reps,
        "bound_method": "fluid LP, min-cost flow by successive shortest paths (bench/ideal.py)",
        "measured_cycle_s": cycle,
        "measured_bound_method": "the same LP with each backend's measured cycle per job (a "
        "job's start to the next start on that backend after it ended, median over every run)",
    }
    return {"params": params, "runs": runs, "summary": summary, "targets": _targets(summary)}


def measured_cycle(runs: Mapping[str, list[dict[str, Any]]]) -> dict[str, float]:
    """Each backend's measured seconds per job on a slot, overhead included: from a job's
    start to the first start on that backend after it ended (the slot it freed taken again),
    median over every run. The bare bound credits the backends with the sandbox's job time
    alone; this one with what they did here."""
    cycles: dict[str, list[float]] = {}
    for reps in runs.values():
        for run in reps:
            starts: dict[str, list[float]] = {}
            for backend, start, _ in run["timeline"]:
                starts.setdefault(backend, []).append(start)
            for backend, start, end in run["timeline"]:
                after = [s for s in starts[backend] if s >= end - 1e-6]
                if after:
                    cycles.setdefault(backend, []).append(min(after) - start)
    return {backend: median(values) for backend, values in cycles.items()}


def job_seconds(profile: Profile) -> dict[str, float]:
    fast = profile.cost_job_seconds
    return {name: fast * (SLOWDOWN if name == SLOW else 1.0) for name in SLOTS}


def output_seconds(
    caps: Mapping[str, Capabilities], kinds: Mapping[str, list[dict[str, Any]]]
) -> dict[str, dict[str, float]]:
    """For each kind of scene, the output seconds each backend that can take it would make:
    what it is billed for. videogen's own capability check and snapping decide both."""
    out: dict[str, dict[str, float]] = {}
    for kind, scenes in kinds.items():
        scene = Scene.model_validate(scenes[0])
        out[kind] = {
            b: plan(b, caps[b], scene).duration
            for b in SLOTS
            if can_take(b, caps[b], scene) is None
        }
    return out


def scene_costs(
    output: Mapping[str, Mapping[str, float]], prices: Mapping[str, float]
) -> dict[str, dict[str, float]]:
    """USD for one scene of each kind on each capable backend."""
    return {kind: {b: prices[b] * s for b, s in by.items()} for kind, by in output.items()}


def design(
    counts: Mapping[str, int],
    capable: Mapping[str, list[str]],
    seconds: Mapping[str, float],
    costs: Mapping[str, Mapping[str, float]],
) -> Design:
    """The deadline (``DEADLINE_FACTOR`` x the ideal makespan), the cheapest assignment that
    meets it, and how long the batch would take all on its cheapest backends."""
    ideal = ideal_makespan(counts, capable, SLOTS, seconds)
    deadline = DEADLINE_FACTOR * ideal
    bound = cheapest_assignment(deadline, counts, capable, SLOTS, seconds, costs)
    cheapest = {kind: min(capable[kind], key=lambda b: costs[kind][b]) for kind in counts}
    only = {kind: [b] for kind, b in cheapest.items()}
    slowest = ideal_makespan(counts, only, SLOTS, seconds)
    return Design(ideal, deadline, bound, cheapest, slowest)


def check(setup: Design) -> None:
    """Refuse a design that poses no trade-off: it would measure nothing, for minutes."""
    if not setup.feasible:
        raise ValueError(f"no assignment meets the deadline of {setup.deadline:.2f} s")
    if not setup.cheapest_only_misses:
        raise ValueError(
            f"every scene on its cheapest backend ({setup.cheapest_only_makespan:.2f} s) meets "
            f"the deadline of {setup.deadline:.2f} s: the prices pose no trade-off"
        )


def vendor_cost(jobs: list[dict[str, Any]], prices: Mapping[str, float]) -> float:
    """USD for the vendor jobs that succeeded: price per second x the output seconds made."""
    return sum(
        prices[j["backend"]] * float(j["duration_s"]) for j in jobs if j["state"] == "succeeded"
    )


def late_scenes(records: list[dict[str, Any]], started: float, deadline: float) -> int:
    """Scenes that succeeded more than ``deadline`` seconds after ``started``: the moment
    before the submit call, as its caller sees it (a little stricter than from when videogen
    stored the job)."""
    return sum(
        1
        for r in records
        if r["state"] == "succeeded" and float(r["finished_at"]) - started > deadline
    )


def _run_one(
    svc: Services, profile: Profile, name: str, rep: int, deadline: float
) -> dict[str, Any]:
    seconds = job_seconds(profile)
    reset_sandboxes(svc, seconds)
    kinds = mixed_scenes(f"k{rep}{name}", profile.cost_scenes, svc.image_url, str(svc.image_file))
    everything = [s for scenes in kinds.values() for s in scenes]
    label = f"cost-{rep}-{name}"
    config = make_config(svc, svc.folder(label) / "output", POLL, 120, _configure(seconds))
    stack = start_videogen(svc, label, config)
    try:
        generator = stack.generator()
        started = time.time()
        job_id = _submit(generator, name, everything, deadline)
        records = wait_scenes(generator.store, generator.store.job_scene_ids(job_id), TIMEOUT)
    finally:
        stack.stop()
    return _measure(svc, records, started, deadline)


def _configure(seconds: Mapping[str, float]) -> Callable[[dict[str, Any]], None]:
    """Slots, true job times and flat prices on every backend (the sample config's strategy)."""

    def configure(vg: dict[str, Any]) -> None:
        for backend, entry in vg["backends"].items():
            entry["max_concurrent_tasks"] = SLOTS[backend]
            entry["expected_seconds"] = seconds[backend]
            entry["pricing"] = {"usd_per_second": PRICES[backend]}

    return configure


def _submit(
    generator: VideoGenerator, name: str, scenes: list[dict[str, Any]], deadline: float
) -> str:
    """The default run submits plainly; the cost-aware one names its strategy and deadline
    on the job, so both runs share one stack config."""
    if name == "cheapest":
        return generator.submit(scenes, strategy="cheapest", deadline=deadline)
    return generator.submit(scenes)


def _measure(
    svc: Services, records: list[dict[str, Any]], started: float, deadline: float
) -> dict[str, Any]:
    jobs = vendor_jobs(svc.sandboxes)
    succeeded = [r for r in records if r["state"] == "succeeded"]
    finished = [float(r["finished_at"]) - started for r in records if r.get("finished_at")]
    return {
        "cost_usd": vendor_cost(jobs, PRICES),
        "cost_per_backend_usd": {
            b: vendor_cost([j for j in jobs if j["backend"] == b], PRICES) for b in SLOTS
        },
        "makespan_s": max(finished, default=math.nan),
        "late_scenes": late_scenes(records, started, deadline),
        "failed_scenes": len(records) - len(succeeded),
        "scenes_per_backend": {
            b: sum(1 for r in succeeded if r.get("backend") == b) for b in SLOTS
        },
        "vendor_jobs": len(jobs),
        "vendor_jobs_not_succeeded": dict(
            Counter(j["state"] for j in jobs if j["state"] != "succeeded")
        ),
        "timeline": [
            [j["backend"], j["started_at"] - started, j["finished_at"] - started]
            for j in jobs
            if j["started_at"] and j["finished_at"]
        ],
    }


def _summary(runs: dict[str, list[dict[str, Any]]], setup: Design) -> dict[str, Any]:
    bound = setup.bound.cost if setup.bound else math.nan
    summary: dict[str, Any] = {
        "deadline_s": setup.deadline,
        "ideal_makespan_s": setup.ideal_makespan,
        "bound_usd": bound,
        "deadline_feasible": setup.feasible,
        "cheapest_only_makespan_s": setup.cheapest_only_makespan,
        "cheapest_only_misses_deadline": setup.cheapest_only_misses,
    }
    for name, reps in runs.items():
        summary[f"{name}_usd"] = median(r["cost_usd"] for r in reps)
        summary[f"{name}_makespan_s"] = median(r["makespan_s"] for r in reps)
        # The most in any run, not the median: the promise is about every scene of every run.
        summary[f"{name}_late_scenes"] = max(r["late_scenes"] for r in reps)
        summary[f"{name}_failed_scenes"] = max(r["failed_scenes"] for r in reps)
    summary["cheapest_vs_bound"] = ratio(summary["cheapest_usd"], bound)
    summary["default_vs_bound"] = ratio(summary["default_usd"], bound)
    summary["saved_usd"] = summary["default_usd"] - summary["cheapest_usd"]
    summary["cheapest_vs_default"] = ratio(summary["cheapest_usd"], summary["default_usd"])
    return summary


def _targets(summary: dict[str, Any]) -> dict[str, bool]:
    on_time = summary["cheapest_late_scenes"] == 0 and summary["cheapest_failed_scenes"] == 0
    return {
        "cheapest_within_1.10_of_bound": summary["cheapest_vs_bound"] <= TARGET_RATIO,
        "cheapest_every_scene_within_deadline": on_time,
        "cheapest_cheaper_than_default": summary["saved_usd"] > 0,
    }
