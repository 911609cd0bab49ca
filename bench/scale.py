"""Scenario 5, scale: a 10,000-scene backlog.

1. Submit: with no worker running, the scenes are submitted in jobs of 500; submit rate, and
   Redis ``used_memory`` after minus before, per scene (scene records plus the queued Celery
   messages). Baseline: the same number of bare Celery messages (``bench.hop``).
2. Routing as the backlog grows: the router worker alone (no backend worker, so every routed
   scene stays queued at its backend) drains the backlog; each decision's time is its scene's
   ``updated_at`` (set at the ROUTED transition) minus ``claimed_at`` (set when the route
   starts), in tenths of the run. Then, the router stopped, ``Pipeline.route`` is timed
   in-process for a few more scenes with the whole backlog queued, against the same timing on
   an empty database (the baseline).
3. Finished scenes: a smaller batch runs to completion on instant sandboxes; ``used_memory``
   after (workers stopped) minus before, per scene, and the scenes' own keys (``MEMORY USAGE``).
"""

from __future__ import annotations

import time
from typing import Any

import redis

from videogen import redis_keys as rkeys
from videogen.api import VideoGenerator
from videogen.models import SceneState
from videogen.queue import celery_app

from . import baseline_app as base
from .observe import job_scene_ids, wait_scenes
from .profiles import Profile
from .scenes import text_scenes
from .stack import Services, make_config, running, start_videogen
from .stats import binned, median, percentile, ratio

CHUNK = 500
DECILES = 10
SAMPLE_ROUTES = 200
TIMEOUT = 1800.0
TARGET_BYTES_PER_FINISHED = 2048
FLAT_LIMIT = 1.5
"""Last tenth of the backlog over the first: above this, routing time is not flat."""


def run(svc: Services, profile: Profile) -> dict[str, Any]:
    runs = [_rep(svc, profile, rep) for rep in range(profile.reps)]
    keys = [k for k, v in runs[0].items() if isinstance(v, int | float)]
    summary: dict[str, Any] = {key: median(r[key] for r in runs) for key in keys}
    summary["submit_rate_ratio"] = ratio(
        summary["submit_scenes_per_s"], summary["baseline_messages_per_s"]
    )
    summary["bytes_per_pending_ratio"] = ratio(
        summary["bytes_per_pending_scene"], summary["baseline_bytes_per_message"]
    )
    targets = {
        "under_2kb_per_finished_scene": summary["bytes_per_finished_scene"]
        < TARGET_BYTES_PER_FINISHED,
        "routing_time_flat": summary["route_last_over_first_decile"] < FLAT_LIMIT
        and summary["route_in_process_ratio"] < FLAT_LIMIT,
    }
    params = {
        "scenes": profile.scale_scenes,
        "chunk": CHUNK,
        "finished_batch": profile.scale_finished,
        "in_process_samples": SAMPLE_ROUTES,
        "flat_means": f"last tenth / first tenth < {FLAT_LIMIT}",
        "reps": profile.reps,
    }
    return {"params": params, "runs": runs, "summary": summary, "targets": targets}


def _rep(svc: Services, profile: Profile, rep: int) -> dict[str, Any]:
    svc.reset_sandboxes(run_seconds=0, queue_seconds=0, concurrency_limit=None)
    empty = _route_in_process(svc, f"s{rep}e", backlog=0)
    backlog = _backlog(svc, profile, rep)
    return {
        **_baseline_submit(svc, profile.scale_scenes),
        **backlog,
        "route_in_process_empty_ms": empty,
        "route_in_process_ratio": ratio(backlog["route_in_process_backlog_ms"], empty),
        **_finished(svc, profile, rep),
    }


def _config(svc: Services, label: str) -> dict[str, Any]:
    return make_config(svc, svc.folder(label) / "output", 0.01, 60, lambda vg: None)


def _used(url: str) -> int:
    client = redis.Redis.from_url(url)
    try:
        return int(client.info("memory")["used_memory"])
    finally:
        client.close()


# -- submit and route -----------------------------------------------------------------------


def _backlog(svc: Services, profile: Profile, rep: int) -> dict[str, Any]:
    label = f"scale-{rep}-backlog"
    stack = start_videogen(svc, label, _config(svc, label), backends=[], router=False)
    generator = stack.generator()
    before = _used(stack.redis_url)
    seconds, job_ids = _submit(generator, f"s{rep}", profile.scale_scenes)
    pending = _used(stack.redis_url) - before
    stack.workers.spawn("router", ["-m", "videogen", "worker", "router"])
    with running(stack):
        stack.workers.wait_ready()
        routed = _wait_routed(generator, job_ids)
    times = _decision_ms(routed)
    tenths = binned(times, DECILES)
    result = {
        "submit_scenes_per_s": profile.scale_scenes / sum(seconds),
        "submit_first_chunk_per_s": _chunk_rate(profile.scale_scenes, seconds, 0),
        "submit_last_chunk_per_s": _chunk_rate(profile.scale_scenes, seconds, -1),
        "bytes_per_pending_scene": pending / profile.scale_scenes,
        "route_p50_ms": percentile(times, 50),
        "route_p99_ms": percentile(times, 99),
        "route_first_decile_ms": tenths[0],
        "route_last_decile_ms": tenths[-1],
        "route_last_over_first_decile": ratio(tenths[-1], tenths[0]),
        "router_decisions_per_s": len(routed) / _span(routed),
        "route_deciles_ms": tenths,
    }
    result["route_in_process_backlog_ms"] = _route_in_process(
        svc, f"s{rep}x", backlog=profile.scale_scenes, generator=generator
    )
    return result


def _chunk_rate(total: int, seconds: list[float], index: int) -> float:
    sizes = [min(CHUNK, total - start) for start in range(0, total, CHUNK)]
    return sizes[index] / seconds[index]


def _submit(generator: VideoGenerator, tag: str, total: int) -> tuple[list[float], list[str]]:
    """Seconds per chunk, and the job ids."""
    seconds, job_ids = [], []
    for start in range(0, total, CHUNK):
        scenes = text_scenes(tag, min(CHUNK, total - start), start=start)
        began = time.perf_counter()
        job_ids.append(generator.submit(scenes))
        seconds.append(time.perf_counter() - began)
    return seconds, job_ids


def _wait_routed(generator: VideoGenerator, job_ids: list[str]) -> list[dict[str, Any]]:
    store = generator.store
    ids = job_scene_ids(store, job_ids)
    deadline = time.monotonic() + TIMEOUT
    while True:
        scenes = store.scenes(ids)
        if all(s.state is not SceneState.PENDING for s in scenes):
            return [s.as_dict() for s in scenes]
        if time.monotonic() > deadline:
            raise TimeoutError("the router did not drain the backlog")
        time.sleep(1.0)


def _decision_ms(scenes: list[dict[str, Any]]) -> list[float]:
    """Each routing decision's time, in the order the router made them."""
    ordered = sorted(scenes, key=lambda s: s["claimed_at"])
    return [(s["updated_at"] - s["claimed_at"]) * 1000 for s in ordered]


def _span(scenes: list[dict[str, Any]]) -> float:
    return float(max(s["updated_at"] for s in scenes) - min(s["claimed_at"] for s in scenes))


def _route_in_process(
    svc: Services, tag: str, backlog: int, generator: VideoGenerator | None = None
) -> float:
    """Median ms of ``Pipeline.route`` for fresh scenes, timed here, with no router running."""
    if generator is None:
        generator = VideoGenerator(_config(svc, f"scale-{tag}"), redis_url=svc.fresh_url())
    job_id = generator.submit(text_scenes(tag, SAMPLE_ROUTES, start=backlog))
    times = []
    for scene_id in generator.store.job_scene_ids(job_id):
        began = time.perf_counter()
        generator.pipeline.route(scene_id)
        times.append((time.perf_counter() - began) * 1000)
    return median(times[10:])  # the first few open connections and probe the backends


# -- baseline and finished scenes -----------------------------------------------------------


def _baseline_submit(svc: Services, count: int) -> dict[str, float]:
    url = svc.fresh_url()
    app = celery_app(url)
    app.send_task("bench.hop", args=[-1], queue=base.HOP_QUEUE)  # connect and declare first
    before = _used(url)
    began = time.perf_counter()
    for number in range(count):
        app.send_task("bench.hop", args=[number], queue=base.HOP_QUEUE)
    seconds = time.perf_counter() - began
    return {
        "baseline_messages_per_s": count / seconds,
        "baseline_bytes_per_message": (_used(url) - before) / count,
    }


def _finished(svc: Services, profile: Profile, rep: int) -> dict[str, float]:
    label = f"scale-{rep}-finished"
    stack = start_videogen(svc, label, _config(svc, label))
    generator = stack.generator()
    with running(stack):
        before = _used(stack.redis_url)
        job_id = generator.submit(text_scenes(f"s{rep}f", profile.scale_finished))
        wait_scenes(generator.store, generator.store.job_scene_ids(job_id), TIMEOUT)
        time.sleep(1.0)  # the last acks and stats land; same connections as before
        after = _used(stack.redis_url)
    return {
        "bytes_per_finished_scene": (after - before) / profile.scale_finished,
        "scene_key_bytes_per_finished_scene": _key_bytes(generator, job_id)
        / profile.scale_finished,
    }


def _key_bytes(generator: VideoGenerator, job_id: str) -> int:
    """``MEMORY USAGE`` of every key the job's scenes own (records and attempt lists)."""
    client = generator.store.r
    ids = generator.store.job_scene_ids(job_id)
    owned = [k for sid in ids for k in (rkeys.scene(sid), rkeys.attempts(sid))]
    owned += [rkeys.job(job_id), rkeys.job_scenes(job_id)]
    return sum(client.memory_usage(key) or 0 for key in owned)
