"""Scenario 1, overhead: what videogen adds to a vendor job that takes no time at all.

Sandboxes finish every job at once (``run_seconds=0``, ``queue_seconds=0``) and are polled every
10 ms. videogen runs its router worker plus one Runway worker (4 slots, so 4 threads); the
baseline is a bare two-task Celery chain with the same pools (1 thread, then 4) on the same Redis.

- latency: scenes one at a time, each submitted when the last is stored; submit to stored file
  (the scene's ``finished_at``, set after the file and its metadata are written), minus the
  vendor job's own time in the sandbox;
- throughput: a batch submitted at once; scenes per second from submit to the last stored file;
- floor: the bare chain whose second task does the scene's vendor work with videogen's Runway
  client (``bench.vendor``: create, poll, download, check, metadata; no state, no routing),
  on a worker with the same threads as videogen's Runway worker: the throughput no Celery
  orchestrator of this vendor can pass on this machine, so what is left to videogen's own
  work shows as the ratio to it;
- Redis commands per scene: ``INFO commandstats`` (Lua scripts' inner calls included) over a
  batch of ``COUNTED`` scenes, after ``CONFIG RESETSTAT``, minus the benchmark's own commands
  (it waits with one ``SCARD``/``HLEN`` every half second); the idle workers' background
  commands (Celery's ``BRPOP`` loops) over the same time are included, as they are for the
  baseline.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import redis
from celery import Celery

from videogen.cli_processes import HANDOVER_THREADS
from videogen.queue import celery_app
from videogen.redis_keys import LIVE

from . import baseline_app as base
from .observe import jobs_by_prompt, vendor_jobs, vendor_seconds, wait_scene, wait_scenes
from .profiles import Profile
from .scenes import text_scenes
from .stack import Services, Workers, make_config, only, running, start_videogen
from .stats import median, percentile, ratio

SLOTS = 4
POLL = 0.01
WARMUP = 5
TIMEOUT = 300.0
TARGET_P50_MS = 20.0
TARGET_RATE_RATIO = 0.4
"""The scheduler issue's target (0.5 before it)."""
COUNTED = 200
"""Scenes (or chains) in the batch whose Redis commands are counted."""
TARGET_COMMANDS = 50.0


def run(svc: Services, profile: Profile) -> dict[str, Any]:
    runs = [_rep(svc, profile, rep) for rep in range(profile.reps)]
    keys = [k for k in runs[0] if isinstance(runs[0][k], float)]
    med = {key: median(r[key] for r in runs) for key in keys}
    summary = {
        **med,
        "p50_ratio": ratio(med["videogen_p50_ms"], med["baseline_p50_ms"]),
        "p99_ratio": ratio(med["videogen_p99_ms"], med["baseline_p99_ms"]),
        "rate_ratio": ratio(med["videogen_scenes_per_s"], med["baseline_scenes_per_s"]),
        "commands_ratio": ratio(med["videogen_commands"], med["baseline_commands"]),
        "floor_rate_ratio": ratio(med["floor_scenes_per_s"], med["baseline_scenes_per_s"]),
        "rate_of_floor": ratio(med["videogen_scenes_per_s"], med["floor_scenes_per_s"]),
    }
    targets = {
        "p50_overhead_under_20ms": summary["videogen_p50_ms"] < TARGET_P50_MS,
        "throughput_at_least_0.4_of_baseline": summary["rate_ratio"] >= TARGET_RATE_RATIO,
        "redis_commands_per_scene_at_most_50": summary["videogen_commands"] <= TARGET_COMMANDS,
    }
    params = {
        "batch": profile.overhead_batch,
        "sequential": profile.overhead_sequential,
        "slots": SLOTS,
        "poll_interval_s": POLL,
        "reps": profile.reps,
    }
    return {"params": params, "runs": runs, "summary": summary, "targets": targets}


def _rep(svc: Services, profile: Profile, rep: int) -> dict[str, Any]:
    svc.reset_sandboxes(run_seconds=0, queue_seconds=0, concurrency_limit=None)
    videogen = _videogen(svc, profile, rep)
    baseline = _baseline(svc, profile, rep)
    floor = _floor(svc, profile, rep)
    return {
        **_prefixed("videogen", videogen),
        **_prefixed("baseline", baseline),
        **_prefixed("floor", floor),
    }


def _prefixed(prefix: str, result: dict[str, Any]) -> dict[str, Any]:
    return {f"{prefix}_{key}": value for key, value in result.items()}


# -- videogen ------------------------------------------------------------------------------


def _videogen(svc: Services, profile: Profile, rep: int) -> dict[str, Any]:
    label = f"overhead-{rep}-videogen"
    out = svc.folder(label) / "output"

    def change(vg: dict[str, Any]) -> None:
        only("runway")(vg)
        vg["backends"]["runway"]["max_concurrent_tasks"] = SLOTS

    config = make_config(svc, out, POLL, 60, change)
    with running(start_videogen(svc, label, config)) as stack:
        generator = stack.generator()
        _videogen_batch(generator, text_scenes(f"o{rep}w", WARMUP))
        latencies = [
            _videogen_one(svc, generator, f"o{rep}s{i}") for i in range(profile.overhead_sequential)
        ]
        rate = _videogen_batch(generator, text_scenes(f"o{rep}b", profile.overhead_batch))
        commands = _videogen_commands(generator, text_scenes(f"o{rep}c", COUNTED))
    return {**_summary(latencies, rate), **commands}


def _videogen_one(svc: Services, generator: Any, tag: str) -> float:
    """Seconds of overhead for one scene submitted alone."""
    scene = text_scenes(tag, 1)[0]
    started = time.time()
    job_id = generator.submit([scene])
    record = wait_scene(generator.store, f"{job_id}-000", TIMEOUT)
    jobs = jobs_by_prompt(vendor_jobs(svc.sandboxes))[scene["prompt"]]
    return float(record["finished_at"]) - started - sum(vendor_seconds(j) for j in jobs)


def _videogen_batch(generator: Any, scenes: list[dict[str, Any]]) -> float:
    """Scenes per second for a batch submitted at once."""
    started = time.time()
    job_id = generator.submit(scenes)
    records = wait_scenes(generator.store, generator.store.job_scene_ids(job_id), TIMEOUT)
    failed = [r["id"] for r in records if r["state"] != "succeeded"]
    if failed:
        raise RuntimeError(f"overhead: scenes failed: {failed[:5]}")
    return len(records) / (max(float(r["finished_at"]) for r in records) - started)


def _videogen_commands(generator: Any, scenes: list[dict[str, Any]]) -> dict[str, Any]:
    """Redis commands per scene over a batch (see the module's docstring)."""
    client = generator.store.r
    counter = CommandCount(client)
    generator.submit(scenes)
    polls = _wait_until(lambda: client.scard(LIVE) == 0, "counted batch")
    return counter.per_item(len(scenes), own={"scard": polls})


def _wait_until(done: Callable[[], bool], what: str) -> int:
    """Poll ``done`` (one Redis command) every half second; returns how many times it ran."""
    deadline = time.monotonic() + TIMEOUT
    polls = 1
    while not done():
        if time.monotonic() > deadline:
            raise TimeoutError(f"overhead: {what} did not finish")
        time.sleep(0.5)
        polls += 1
    return polls


class CommandCount:
    """Counts every command the Redis server ran from now on (all clients, Lua inner calls
    included), by command name."""

    def __init__(self, client: Any) -> None:
        self.client = client
        client.config_resetstat()

    def per_item(self, items: int, own: dict[str, int]) -> dict[str, Any]:
        stats = self.client.info("commandstats")
        calls = {name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in stats.items()}
        calls["info"] = calls.get("info", 1) - 1
        for name, count in own.items():
            calls[name] = calls.get(name, 0) - count
        calls = {name: n for name, n in calls.items() if n > 0}
        by_command = {name: round(n / items, 2) for name, n in sorted(calls.items())}
        return {"commands": sum(calls.values()) / items, "commands_by_name": by_command}


# -- baseline ------------------------------------------------------------------------------


def _baseline(svc: Services, profile: Profile, rep: int) -> dict[str, Any]:
    root = svc.folder(f"overhead-{rep}-baseline")
    url = svc.fresh_url()
    env = {"BENCH_REDIS_URL": url, "BENCH_OUTPUT_DIR": str(root)}
    workers = Workers(root, url, env)
    workers.spawn("hop", base.worker_argv(base.HOP_QUEUE, 1, "hop"))
    workers.spawn("store", base.worker_argv(base.STORE_QUEUE, SLOTS, "store"))
    with running(workers):
        workers.wait_ready()
        app = celery_app(url)
        chain = _Chain(app)
        chain.batch(WARMUP)
        latencies = [chain.one() for _ in range(profile.overhead_sequential)]
        rate = chain.batch(profile.overhead_batch)
        commands = chain.counted(COUNTED)
    return {**_summary(latencies, rate), **commands}


def _floor(svc: Services, profile: Profile, rep: int) -> dict[str, Any]:
    """The floor's throughput: the chain whose second task does the vendor work."""
    root = svc.folder(f"overhead-{rep}-floor")
    config = make_config(svc, root / "output", POLL, 60, only("runway"))
    config_path = root / "config.json"
    config_path.write_text(json.dumps(config))
    url = svc.fresh_url()
    env = {
        "BENCH_REDIS_URL": url,
        "BENCH_OUTPUT_DIR": str(root),
        "BENCH_HOP_TO": "bench.vendor",
        "BENCH_VENDOR_CONFIG": str(config_path),
    }
    workers = Workers(root, url, env)
    workers.spawn("hop", base.worker_argv(base.HOP_QUEUE, 1, "hop"))
    workers.spawn("vendor", base.worker_argv(base.STORE_QUEUE, SLOTS + HANDOVER_THREADS, "vendor"))
    with running(workers):
        workers.wait_ready()
        chain = _Chain(celery_app(url))
        chain.batch(WARMUP)
        return {"scenes_per_s": chain.batch(profile.overhead_batch)}


class _Chain:
    """Sends baseline chains and reads their finishing times."""

    def __init__(self, app: Celery) -> None:
        self.app = app
        self.client = redis.Redis.from_url(app.conf.broker_url)
        self.number = 0

    def send(self) -> int:
        self.number += 1
        self.app.send_task("bench.hop", args=[self.number], queue=base.HOP_QUEUE)
        return self.number

    def done(self, number: int) -> float | None:
        value = self.client.hget(base.DONE_KEY, str(number))
        return float(value) if value is not None else None

    def counted(self, count: int) -> dict[str, Any]:
        """Redis commands per chain over a batch (the videogen batch's method)."""
        counter = CommandCount(self.client)
        for _ in range(count):
            self.send()
        polls = _wait_until(
            lambda: self.client.hlen(base.DONE_KEY) >= self.number, "baseline counted batch"
        )
        return counter.per_item(count, own={"hlen": polls})

    def one(self) -> float:
        started = time.time()
        number = self.send()
        deadline = time.monotonic() + TIMEOUT
        while (finished := self.done(number)) is None:
            if time.monotonic() > deadline:
                raise TimeoutError("baseline chain did not finish")
            time.sleep(0.002)
        return finished - started

    def batch(self, count: int) -> float:
        started = time.time()
        numbers = [self.send() for _ in range(count)]
        deadline = time.monotonic() + TIMEOUT
        while True:
            finished = self.client.hmget(base.DONE_KEY, [str(n) for n in numbers])
            if all(value is not None for value in finished):
                return count / (max(float(v) for v in finished if v is not None) - started)
            if time.monotonic() > deadline:
                raise TimeoutError("baseline batch did not finish")
            time.sleep(0.05)


def _summary(latencies: list[float], rate: float) -> dict[str, Any]:
    millis = [s * 1000 for s in latencies]
    return {
        "p50_ms": percentile(millis, 50),
        "p99_ms": percentile(millis, 99),
        "scenes_per_s": rate,
        "latencies_ms": millis,
    }
