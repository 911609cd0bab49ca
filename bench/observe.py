"""Reading what happened: scene records in Redis, vendor jobs in the sandboxes' records."""

from __future__ import annotations

import time
from collections import defaultdict
from typing import Any

from videogen import redis_keys as keys
from videogen.models import SceneState
from videogen.sandbox import SandboxServer
from videogen.store import Store

SCENE_POLL = 0.002
"""Seconds between looks at one scene (latency comes from its stored times, not from this)."""
JOB_POLL = 0.2


def wait_scene(store: Store, scene_id: str, timeout: float) -> dict[str, Any]:
    """Block until one scene is terminal; returns its record."""
    key = keys.scene(scene_id)
    deadline = time.monotonic() + timeout
    while store.r.hget(key, "state") not in _TERMINAL:
        if time.monotonic() > deadline:
            raise TimeoutError(f"scene {scene_id} not finished after {timeout} s")
        time.sleep(SCENE_POLL)
    scene = store.scene(scene_id)
    assert scene is not None
    return scene.as_dict()


_TERMINAL = {s.value for s in SceneState if s.terminal}


def wait_scenes(store: Store, scene_ids: list[str], timeout: float) -> list[dict[str, Any]]:
    """Block until every scene is terminal; returns their records."""
    deadline = time.monotonic() + timeout
    pending = list(scene_ids)
    while pending:
        states = _states(store, pending)
        pending = [
            sid for sid, state in zip(pending, states, strict=True) if state not in _TERMINAL
        ]
        if pending and time.monotonic() > deadline:
            raise TimeoutError(f"{len(pending)} scenes not finished after {timeout} s")
        if pending:
            time.sleep(JOB_POLL)
    return [scene.as_dict() for scene in store.scenes(scene_ids)]


def _states(store: Store, scene_ids: list[str]) -> list[str | None]:
    pipe = store.r.pipeline(transaction=False)
    for scene_id in scene_ids:
        pipe.hget(keys.scene(scene_id), "state")
    return list(pipe.execute())


def job_scene_ids(store: Store, job_ids: list[str]) -> list[str]:
    return [sid for job_id in job_ids for sid in store.job_scene_ids(job_id)]


def wall(server: SandboxServer, clock_time: float | None) -> float | None:
    """A sandbox clock time as Unix time (scene records use Unix time)."""
    return None if clock_time is None else server.state.wall_time(clock_time).timestamp()


def vendor_jobs(sandboxes: dict[str, SandboxServer]) -> list[dict[str, Any]]:
    """Every vendor job of every sandbox, with its backend and Unix times."""
    jobs = []
    for name, server in sandboxes.items():
        for job in server.state.records()["jobs"]:
            job = dict(job, backend=name)
            for key in ("created_at", "started_at", "finished_at"):
                job[key] = wall(server, job[key])
            jobs.append(job)
    return jobs


def jobs_by_prompt(jobs: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for job in jobs:
        grouped[job["prompt"]].append(job)
    return grouped


def vendor_seconds(job: dict[str, Any]) -> float:
    """The sandbox's own time for a job: created to finished (its queue and run time)."""
    if job["finished_at"] is None:
        return 0.0
    return float(job["finished_at"] - job["created_at"])
