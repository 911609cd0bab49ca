"""Scenario 3, failover: Runway goes down in the middle of a steady stream of scenes.

Two cases, each repeated: Runway's API is down for ``failover_outage_s`` (30 s, shorter than
the default ``unknown_grace`` of 180 s) and comes back; and Runway is down for good, with a
``failover_grace_s`` (10 s) grace, so that the jobs in flight fail over and are left as orphans
while the vendor goes on running them (their duplicates are the price of giving up; counted).

The sample config (``least_loaded``; project defaults for retries, backoff, circuit threshold
and cooldown, health interval 30 s), text-only scenes on Runway, Pika and Luma (3, 2 and 2
slots, jobs of ``d`` seconds, backend ``timeout`` 10 ``d``). Scenes are submitted one by one at a
steady rate so the router keeps deciding; a few seconds in, the Runway sandbox's ``outage`` knob
makes every vendor endpoint answer 503. No beat runs, so no health probe can help: whatever
stops the routing comes from the failed jobs themselves.

Measured (Unix times, all on this machine):

- first failure: the first request the Runway sandbox answered 503 (the first moment videogen
  could notice); also the first failed attempt videogen recorded;
- stop: the last "routed to runway" decision in the router's log, and the moment Runway's
  circuit opened (watched in Redis);
- in flight: scenes whose Runway job was running at the outage, and when the last of them was
  stored by another backend;
- duplicates, from the sandboxes' records, jobs per prompt.
"""

from __future__ import annotations

import re
import threading
import time
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

from videogen.store import Store

from .observe import jobs_by_prompt, vendor_jobs, wait_scenes, wall
from .profiles import Profile
from .scenes import text_scenes
from .stack import Services, VideogenStack, make_config, only, running, start_videogen
from .stats import median

DOWN = "runway"
BACKENDS = ("runway", "pika", "luma")
POLL = 0.05
TIMEOUT_FACTOR = 10
TARGET_STOP_S = 1.0
_ROUTED = re.compile(
    r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}): [^\]]*\] scene (\S+) routed to (\w+)"
)


def run(svc: Services, profile: Profile) -> dict[str, Any]:
    runs = [_rep(svc, profile, rep, profile.failover_outage_s, None) for rep in range(profile.reps)]
    for_good = [
        _rep(svc, profile, rep, None, profile.failover_grace_s) for rep in range(profile.reps)
    ]
    summary = {**_medians(runs), **{f"for_good_{k}": v for k, v in _medians(for_good).items()}}
    targets = {
        "stop_routing_under_1s": _under(summary["stop_routing_after_first_failure_s"]),
        "zero_duplicate_vendor_jobs": summary["duplicate_vendor_jobs"] == 0,
        "for_good_stop_routing_under_1s": _under(
            summary["for_good_stop_routing_after_first_failure_s"]
        ),
    }
    params = {
        "job_seconds": profile.failover_job_seconds,
        "timeout_s": profile.failover_job_seconds * TIMEOUT_FACTOR,
        "rate_per_s": profile.failover_rate,
        "stream_s": profile.failover_seconds,
        "outage_at_s": profile.failover_outage_at,
        "outage_s": profile.failover_outage_s,
        "unknown_grace_s": "default (180)",
        "for_good_unknown_grace_s": profile.failover_grace_s,
        "wait_limit_s": profile.failover_wait,
        "reps": profile.reps,
        "beat": "none (no health probes during the run); the sweep runs in the router",
    }
    return {
        "params": params,
        "runs": runs,
        "runs_for_good": for_good,
        "summary": summary,
        "targets": targets,
    }


def _medians(runs: list[dict[str, Any]]) -> dict[str, Any]:
    keys = [k for k, v in runs[0].items() if isinstance(v, int | float) or v is None]
    return {key: median(r[key] for r in runs if r[key] is not None) for key in keys}


def _under(value: float) -> bool:
    return value == value and value < TARGET_STOP_S


def _rep(
    svc: Services, profile: Profile, rep: int, outage_s: float | None, grace: float | None
) -> dict[str, Any]:
    """One run: Runway down for ``outage_s`` seconds (``None``: for good), with its
    ``unknown_grace`` set to ``grace`` (``None``: the default)."""
    seconds = profile.failover_job_seconds
    svc.reset_sandboxes(run_seconds=seconds, queue_seconds=0)
    case = "for-good-" if outage_s is None else ""
    label, tag = f"failover-{case}{rep}", f"f{rep}{case[:1]}"

    def change(vg: dict[str, Any]) -> None:
        only(*BACKENDS)(vg)
        if grace is not None:
            vg["backends"][DOWN]["unknown_grace"] = grace

    config = make_config(svc, svc.folder(label) / "output", POLL, seconds * TIMEOUT_FACTOR, change)
    with running(start_videogen(svc, label, config)) as stack:
        store = stack.generator().store
        watcher = _CircuitWatch(store)
        watcher.start()
        try:
            outage, scene_ids = _stream(svc, stack, profile, tag, outage_s)
            records = _settle(stack, scene_ids, profile.failover_wait)
        finally:
            watcher.stop()
        attempts = {sid: store.attempts(sid) for sid in scene_ids}
        stats = stack.generator().get_statistics()["backends"][DOWN]
        open_orphans = len(store.orphans())
    svc.sandboxes[DOWN].state.set_knobs(outage=False)
    routes = _routes(svc.folder(label) / "router.log")
    result = _measure(svc, outage, records, attempts, routes, watcher.opened_at)
    result.update(
        orphans=stats["orphans"],
        orphans_unresolved=open_orphans,
        double_paid_counted=stats["double_paid"],
    )
    return result


def _stream(
    svc: Services, stack: VideogenStack, profile: Profile, tag: str, outage_s: float | None
) -> tuple[float, list[str]]:
    """Submit scenes one by one at a steady rate; take Runway down on the way (and bring it
    back ``outage_s`` later, unless ``None``)."""
    generator = stack.generator()
    count = int(profile.failover_rate * profile.failover_seconds)
    started = time.monotonic()
    outage = 0.0
    scene_ids = []
    for i, scene in enumerate(text_scenes(tag, count)):
        due = started + i / profile.failover_rate
        time.sleep(max(0.0, due - time.monotonic()))
        if not outage and time.monotonic() - started >= profile.failover_outage_at:
            svc.sandboxes[DOWN].state.set_knobs(outage=True)
            outage = time.time()
            if outage_s is not None:
                back = threading.Timer(
                    outage_s, svc.sandboxes[DOWN].state.set_knobs, kwargs={"outage": False}
                )
                back.daemon = True
                back.start()
        scene_ids.append(f"{generator.submit([scene])}-000")
    return outage, scene_ids


def _settle(stack: VideogenStack, scene_ids: list[str], limit: float) -> list[dict[str, Any]]:
    store = stack.generator().store
    try:
        return wait_scenes(store, scene_ids, limit)
    except TimeoutError:
        return [scene.as_dict() for scene in store.scenes(scene_ids)]


class _CircuitWatch:
    """Notes when Runway's circuit first opens (it may close again after the cooldown)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.opened_at: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _watch(self) -> None:
        while self.opened_at is None and not self._stop.wait(0.02):
            circuit = self.store.circuit(DOWN)
            if circuit.state.value == "open":
                self.opened_at = circuit.opened_at


def _routes(log: Path) -> list[tuple[float, str, str]]:
    """(Unix time, scene, backend) of every routing decision in the router's log."""
    decisions = []
    for line in log.read_text(errors="replace").splitlines():
        match = _ROUTED.match(line)
        if match:
            when = datetime.strptime(match[1], "%Y-%m-%d %H:%M:%S,%f").timestamp()
            decisions.append((when, match[2], match[3]))
    return decisions


def _measure(
    svc: Services,
    outage: float,
    records: list[dict[str, Any]],
    attempts: dict[str, list[dict[str, Any]]],
    routes: list[tuple[float, str, str]],
    circuit_opened: float | None,
) -> dict[str, Any]:
    jobs = vendor_jobs(svc.sandboxes)
    first_503 = _first_refusal(svc, outage)
    failed_at = [a["at"] for tries in attempts.values() for a in tries if a["backend"] == DOWN]
    to_down = [when for when, _, backend in routes if backend == DOWN]
    last_route = max(to_down, default=None)
    stranded = _stranded(jobs, outage)
    result: dict[str, Any] = {
        "outage_to_first_503_s": _since(first_503, outage),
        "first_503_to_first_recorded_failure_s": _since(min(failed_at, default=None), first_503),
        "stop_routing_after_first_failure_s": max(0.0, _since(last_route, first_503) or 0.0),
        "circuit_open_after_first_failure_s": _since(circuit_opened, first_503),
        "routed_to_down_after_outage": sum(1 for when in to_down if when >= outage),
        "in_flight_at_outage": len(stranded),
        "in_flight_done_after_outage_s": _last_done(records, stranded, outage),
        "all_touched_done_after_outage_s": _last_done(records, _touched(attempts), outage),
        "unfinished_scenes": sum(1 for r in records if r["state"] not in _DONE),
        "failed_scenes": sum(1 for r in records if r["state"] == "failed"),
        **_duplicates(jobs),
    }
    result["timeline"] = _timeline(routes, outage)
    return result


_DONE = ("succeeded", "failed", "cancelled")


def _since(when: float | None, start: float | None) -> float | None:
    return None if when is None or start is None else when - start


def _first_refusal(svc: Services, outage: float) -> float | None:
    server = svc.sandboxes[DOWN]
    times = [
        wall(server, r["time"]) for r in server.state.records()["requests"] if r["status"] == 503
    ]
    return min((t for t in times if t is not None and t >= outage - 1), default=None)


def _stranded(jobs: list[dict[str, Any]], outage: float) -> set[str]:
    """Prompts whose Runway job was created before the outage and had not finished by then."""
    return {
        j["prompt"]
        for j in jobs
        if j["backend"] == DOWN
        and j["created_at"] < outage
        and (j["finished_at"] is None or j["finished_at"] > outage)
    }


def _touched(attempts: dict[str, list[dict[str, Any]]]) -> set[str]:
    return {sid for sid, tries in attempts.items() if any(a["backend"] == DOWN for a in tries)}


def _last_done(records: list[dict[str, Any]], wanted: set[str], outage: float) -> float | None:
    """Seconds from the outage until the last of ``wanted`` (prompts or scene ids) was stored."""
    chosen = [r for r in records if r["id"] in wanted or r["spec"].get("prompt") in wanted]
    if not chosen:
        return None
    if any(r["state"] != "succeeded" for r in chosen):
        return None  # some never finished within the wait limit
    return max(float(r["finished_at"]) for r in chosen) - outage


def _duplicates(jobs: list[dict[str, Any]]) -> dict[str, int]:
    """Vendor jobs beyond one per scene, by kind, from the sandboxes' records."""
    grouped = jobs_by_prompt(jobs)
    same = Counter((j["prompt"], j["backend"]) for j in jobs)
    finished = {p: sum(1 for j in js if j["state"] == "succeeded") for p, js in grouped.items()}
    return {
        "vendor_jobs": len(jobs),
        "duplicate_vendor_jobs": sum(len(js) - 1 for js in grouped.values()),
        "same_backend_duplicates": sum(n - 1 for n in same.values()),
        "scenes_finished_by_two_vendors": sum(1 for n in finished.values() if n > 1),
    }


def _timeline(routes: list[tuple[float, str, str]], outage: float) -> list[list[Any]]:
    return [[when - outage, backend] for when, _, backend in routes]
