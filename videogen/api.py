"""The Python API of the original design: ``VideoGenerator(config)``.

``await generate_videos(scenes)`` enqueues the scenes on the pipeline (which must be running:
``videogen up``, or workers started separately), waits, and returns one result per scene.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .config import Settings, build_settings, load_config
from .constants import DEFAULT_REDIS_URL
from .models import Scene, SceneState
from .pipeline import Pipeline, result_summary
from .queue import CeleryDispatcher, celery_app
from .scenes import parse_scenes
from .store import Store


def resolve_settings(config: Mapping[str, Any] | Settings | str | Path | None) -> Settings:
    if isinstance(config, Settings):
        return config
    if isinstance(config, Mapping):
        return build_settings(config)
    return load_config(config)


def redis_url_for(settings: Settings) -> str:
    return os.environ.get("VIDEOGEN_REDIS_URL") or settings.redis_url or DEFAULT_REDIS_URL


class VideoGenerator:
    """Submit scenes to the running pipeline and read its state."""

    def __init__(
        self,
        config: Mapping[str, Any] | Settings | str | Path | None = None,
        *,
        redis_url: str | None = None,
    ) -> None:
        self.settings = resolve_settings(config)
        url = redis_url or redis_url_for(self.settings)
        self.store = Store.from_url(url)
        self.pipeline = Pipeline(self.settings, self.store, CeleryDispatcher(celery_app(url)))

    # -- generation ------------------------------------------------------------------------

    def submit(
        self, scenes: list[Scene] | list[dict[str, Any]], base_dir: Path | None = None
    ) -> str:
        """Validate every scene, then store and enqueue them; returns the job id."""
        parsed = parse_scenes(
            [s.model_dump(exclude_none=True) if isinstance(s, Scene) else s for s in scenes],
            base_dir=base_dir,
        )
        self.store.ping()
        return self.pipeline.submit(parsed)

    def job_status(self, job_id: str) -> list[dict[str, Any]]:
        """Every scene of a job, with its state, backend, tries and result."""
        scenes = self.store.scenes(self.store.job_scene_ids(job_id))
        for scene in scenes:
            scene["attempts"] = self.store.attempts(scene["id"])
        return scenes

    def results(self, job_id: str) -> list[dict[str, Any]]:
        return [result_summary(s) for s in self.job_status(job_id)]

    def wait(
        self, job_id: str, timeout: float | None = None, poll: float = 0.25
    ) -> list[dict[str, Any]]:
        """Block until every scene of the job is terminal (or ``timeout`` passes)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            scenes = self.store.scenes(self.store.job_scene_ids(job_id))
            if all(SceneState(s["state"]).terminal for s in scenes):
                return self.results(job_id)
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} not finished after {timeout} s")
            time.sleep(poll)

    async def generate_videos(
        self, scenes: list[dict[str, Any]] | list[Scene], timeout: float | None = None
    ) -> list[dict[str, Any]]:
        """Generate every scene and return one result per scene (index, success, video_path,
        backend_used, error, effective_duration, effective_resolution, task_id)."""
        job_id = await asyncio.to_thread(self.submit, scenes)
        return await asyncio.to_thread(self.wait, job_id, timeout)

    # -- health and statistics -------------------------------------------------------------

    async def health_check(self) -> dict[str, Any]:
        """Probe every enabled backend now (cheap endpoints only)."""
        reports = await asyncio.to_thread(self.pipeline.probe_all)
        healthy = sum(1 for r in reports.values() if r["healthy"])
        overall = "healthy" if healthy == len(reports) else "degraded" if healthy else "unhealthy"
        return {"overall_status": overall, "healthy_backends": healthy, "backends": reports}

    def get_backend_status(self) -> dict[str, dict[str, Any]]:
        """Per backend: healthy, enabled, current and max tasks, priority, capabilities."""
        status = {}
        for name, cfg in self.settings.video_generation.backends.items():
            health = self.store.health(name)
            caps = self.pipeline.backend(name).get_capabilities()
            status[name] = {
                "healthy": bool(health and health["healthy"]),
                "health_detail": health["detail"] if health else "not probed yet",
                "enabled": cfg.enabled,
                "current_tasks": self.store.in_flight(name),
                "queued_tasks": self.store.queued(name),
                "max_tasks": cfg.max_concurrent_tasks,
                "priority": cfg.priority,
                "circuit": self.store.circuit(name).state.value,
                "capabilities": caps.model_dump(mode="json"),
            }
        return status

    def get_statistics(self) -> dict[str, Any]:
        """Healthy backends, active tasks, and per backend success rate, latency, errors."""
        status = self.get_backend_status()
        backends = {name: _stats(self.store.stats(name), status[name]) for name in status}
        return {
            "healthy_backends": sum(1 for s in status.values() if s["healthy"] and s["enabled"]),
            "total_active_tasks": sum(s["current_tasks"] for s in status.values()),
            "total_queued_tasks": sum(s["queued_tasks"] for s in status.values()),
            "backends": backends,
        }


def _stats(raw: dict[str, float], status: dict[str, Any]) -> dict[str, Any]:
    succeeded = raw.get("succeeded", 0.0)
    failed = raw.get("failed", 0.0)
    finished = succeeded + failed
    errors = raw.get("errors", 0.0)
    submitted = raw.get("submitted", 0.0)
    latency_n = raw.get("latency_count", 0.0)
    return {
        "succeeded": int(succeeded),
        "failed": int(failed),
        "success_rate": round(succeeded / finished, 4) if finished else None,
        "average_latency_s": round(raw.get("latency_ms_sum", 0.0) / latency_n / 1000, 3)
        if latency_n
        else None,
        "errors": int(errors),
        "error_rate": round(errors / submitted, 4) if submitted else None,
        "retries": int(raw.get("retries", 0.0)),
        "failovers": int(raw.get("failovers", 0.0)),
        "vendor_jobs": int(submitted),
        "estimated_cost_usd": round(raw.get("cost_usd", 0.0), 4),
        "in_flight": status["current_tasks"],
        "queued": status["queued_tasks"],
    }
