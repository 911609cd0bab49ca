"""Scenario 5, scale: a backlog of 100,000 scenes.

1. Submit: with no worker running, the scenes are submitted in jobs of 500; submit rate, and
   Redis ``used_memory`` after minus before, per scene (scene records plus backlog entries).
   Baseline: the same number of bare Celery messages (``bench.hop``).
2. Dispatch as the backlog grows: after each tenth of the scenes is stored, one slot is freed
   and the dispatch step (:func:`videogen.routing.dispatch`, the router's step) is timed
   in-process, ``SAMPLE_DISPATCHES`` times, each binding exactly one scene; with the Redis
   commands each pass sends (``INFO commandstats``, Lua scripts' inner calls included). The
   first tenth (10,000 waiting) is compared with the last (100,000 waiting), and both with a
   backlog of ``SAMPLE_DISPATCHES`` scenes (the baseline).
3. Finished scenes: a smaller batch runs to completion on instant sandboxes; ``used_memory``
   after (workers stopped) minus before, per scene, and the scenes' own keys (``MEMORY USAGE``).
"""

from __future__ import annotations

import time
from typing import Any

import redis

from videogen import redis_keys as rkeys
from videogen import routing
from videogen.api import VideoGenerator
from videogen.queue import celery_app

from . import baseline_app as base
from .observe import wait_scenes
from .profiles import Profile
from .scenes import text_scenes
from .stack import Services, make_config, running, start_videogen
from .stats import median, ratio

CHUNK = 500
DECILES = 10
SAMPLE_DISPATCHES = 200
FILL = 64
"""Scenes beyond the samples submitted first: enough to fill every slot."""
TIMEOUT = 1800.0
TARGET_BYTES_PER_FINISHED = 2048
FLAT_LIMIT = 1.5
"""Last tenth of the backlog over the first: above this, dispatch time is not flat."""


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
        "dispatch_time_flat": summary["dispatch_last_over_first_decile"] < FLAT_LIMIT
        and summary["dispatch_last_over_small_backlog"] < FLAT_LIMIT,
        "dispatch_does_not_scan": summary["dispatch_commands_last_decile"]
        <= summary["dispatch_commands_small_backlog"] + 1,
    }
    params = {
        "scenes": profile.scale_scenes,
        "chunk": CHUNK,
        "finished_batch": profile.scale_finished,
        "dispatch_samples_per_tenth": SAMPLE_DISPATCHES,
        "flat_means": f"last tenth / first tenth < {FLAT_LIMIT}",
        "reps": profile.reps,
    }
    return {"params": params, "runs": runs, "summary": summary, "targets": targets}


def _rep(svc: Services, profile: Profile, rep: int) -> dict[str, Any]:
    svc.reset_sandboxes(run_seconds=0, queue_seconds=0, concurrency_limit=None)
    return {
        **_baseline_submit(svc, profile.scale_scenes),
        **_backlog(svc, profile, rep),
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
    _healthy(generator)
    samples = max(1, min(SAMPLE_DISPATCHES, profile.scale_scenes // (2 * DECILES)))
    # Fill every slot once; from then on each timed pass frees one slot and binds one scene.
    generator.submit(text_scenes(f"s{rep}b", samples + FILL))
    _free_all(generator)
    routing.dispatch(generator.pipeline)
    small = _dispatches(generator, samples)
    before = _used(stack.redis_url)
    seconds, tenths = [], []
    tenth = max(1, profile.scale_scenes // DECILES)
    for start in range(0, profile.scale_scenes, tenth):
        part, _ = _submit(generator, f"s{rep}", min(tenth, profile.scale_scenes - start), start)
        seconds += part
        tenths.append(_dispatches(generator, samples))
    pending = _used(stack.redis_url) - before
    stack.stop()
    ms = [t["ms"] for t in tenths]
    commands = [t["commands"] for t in tenths]
    return {
        "submit_scenes_per_s": profile.scale_scenes / sum(seconds),
        "submit_first_chunk_per_s": _chunk_rate(seconds, 0),
        "submit_last_chunk_per_s": _chunk_rate(seconds, -1),
        "bytes_per_pending_scene": pending / profile.scale_scenes,
        "dispatch_small_backlog_ms": small["ms"],
        "dispatch_first_decile_ms": ms[0],
        "dispatch_last_decile_ms": ms[-1],
        "dispatch_last_over_first_decile": ratio(ms[-1], ms[0]),
        "dispatch_last_over_small_backlog": ratio(ms[-1], small["ms"]),
        "dispatch_deciles_ms": ms,
        "dispatch_commands_small_backlog": small["commands"],
        "dispatch_commands_first_decile": commands[0],
        "dispatch_commands_last_decile": commands[-1],
        "dispatch_commands_deciles": commands,
        "waiting_at_deciles": [t["waiting"] for t in tenths],
    }


def _healthy(generator: VideoGenerator) -> None:
    """Fresh health records, so that no pass probes a backend (nothing runs a beat here)."""
    for name in generator.pipeline.enabled():
        generator.store.set_health(name, {"healthy": True, "detail": "bench"}, ttl=3600)


def _dispatches(generator: VideoGenerator, samples: int) -> dict[str, Any]:
    """Free one slot and time one dispatch pass, ``samples`` times (no backend worker runs:
    a bound scene keeps its slot reserved until the bench frees it)."""
    store, pipeline = generator.store, generator.pipeline
    times, commands = [], 0
    client = store.r
    _healthy(generator)
    for _ in range(samples):
        backend = _free_one(generator)
        before = _calls(client)
        began = time.perf_counter()
        bound = routing.dispatch(pipeline)
        times.append((time.perf_counter() - began) * 1000)
        commands += _calls(client) - before
        assert [b for _, b in bound] == [backend], bound  # exactly the freed slot, refilled
    return {
        "ms": median(times),
        "commands": commands / samples,
        "waiting": store.backlog_length(),
    }


def _calls(client: Any) -> int:
    """Commands Redis has run (Lua scripts' inner calls included), but for ``INFO``."""
    stats = client.info("commandstats")
    return sum(v["calls"] for k, v in stats.items() if k != "cmdstat_info")


def _free_one(generator: VideoGenerator) -> str:
    """Give back one slot reserved for a bound scene (as its start and end would)."""
    for backend in generator.pipeline.enabled():
        ids = generator.store.queued_ids(backend)
        if ids:
            generator.store.unmark_queued(backend, ids[:1])
            return backend
    raise AssertionError("no reserved slot to free")


def _free_all(generator: VideoGenerator) -> None:
    for backend in generator.pipeline.enabled():
        generator.store.unmark_queued(backend, generator.store.queued_ids(backend))


def _chunk_rate(seconds: list[float], index: int) -> float:
    return CHUNK / seconds[index]


def _submit(
    generator: VideoGenerator, tag: str, total: int, first: int = 0
) -> tuple[list[float], list[str]]:
    """Seconds per chunk, and the job ids."""
    seconds, job_ids = [], []
    for start in range(first, first + total, CHUNK):
        scenes = text_scenes(tag, min(CHUNK, first + total - start), start=start)
        began = time.perf_counter()
        job_ids.append(generator.submit(scenes))
        seconds.append(time.perf_counter() - began)
    return seconds, job_ids


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
