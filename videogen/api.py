"""The Python API of the original design: ``VideoGenerator(config)``.

``await generate_videos(scenes)`` enqueues the scenes on the pipeline (which must be running:
``videogen up``, or workers started separately), waits, and returns one result per scene.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from . import costs, forecast, jobcontrol, spend, stackview
from .classes import ScClass
from .config import Settings, job_options
from .errors import VideoGenError
from .loading import build_settings, load_config
from .models import DEFAULT_DURATION, Scene, SceneState, Size
from .pipeline import Pipeline
from .queue import CeleryDispatcher, celery_app
from .record import SceneRecord
from .scenes import parse_scenes
from .scheduler import check_priority
from .stackview import PublishedBackend, PublishedStack
from .store import Store, new_token

PROBE_WAIT = 20.0
"""Seconds ``health_check`` waits for the running stack's router to probe every backend;
it answers between routing decisions, so a long backlog can delay it."""


def resolve_settings(config: Mapping[str, Any] | Settings | str | Path | None) -> Settings:
    if isinstance(config, Settings):
        return config
    if isinstance(config, Mapping):
        return build_settings(config)
    return load_config(config)


class VideoGenerator:
    """Submit scenes to the running pipeline and read its state."""

    def __init__(
        self,
        config: Mapping[str, Any] | Settings | str | Path | None = None,
        *,
        redis_url: str | None = None,
    ) -> None:
        self.settings = resolve_settings(config)
        url = redis_url or self.settings.redis
        self.store = Store.from_url(url)
        self.dispatcher = CeleryDispatcher(celery_app(url))
        self.pipeline = Pipeline(self.settings, self.store, self.dispatcher)

    # -- the running stack -----------------------------------------------------------------

    def stack(self) -> PublishedStack | None:
        """What the running stack uses, as its workers published it; ``None`` when no router
        has published (nothing running, or a version without publishing)."""
        return stackview.merge(self.store.published())

    def config_differences(self) -> list[str]:
        """Where this client's config says otherwise than the running stack (which wins)."""
        stack = self.stack()
        return [] if stack is None else stackview.differences(self.settings, stack)

    # -- generation ------------------------------------------------------------------------

    def submit(
        self,
        scenes: list[Scene] | list[dict[str, Any]],
        base_dir: Path | None = None,
        priority: int = 0,
        *,
        strategy: str | None = None,
        deadline: float | None = None,
        max_cost_usd: float | None = None,
        max_cost_per_second: float | None = None,
        webhook: str | None = None,
        webhook_secret: str | None = None,
        cache: bool = True,
    ) -> str:
        """Validate every scene, then store them in the backlog; returns the job id.
        ``priority`` (-100..100, default 0): higher goes first; jobs of one priority share
        the backends scene by scene. ``strategy`` overrides the config's for this job;
        ``deadline``: seconds from now by which its scenes should be done (``cheapest``
        spends more only to meet it); ``max_cost_usd``: the job's budget;
        ``max_cost_per_second``: backends dearer than this per output second are skipped;
        ``webhook``: a URL that gets this job's events, signed with ``webhook_secret`` (else
        the config's ``webhook_delivery.job_secret``; README, Webhooks).
        ``cache=False``: generate every scene anew (no stored video reused, no duplicate
        waiting for another)."""
        check_priority(priority)
        options = job_options(
            strategy=strategy,
            deadline=deadline,
            max_cost_usd=max_cost_usd,
            max_cost_per_second=max_cost_per_second,
            webhook=webhook,
            webhook_secret=webhook_secret,
            no_cache=None if cache else True,
        )
        parsed = parse_scenes(
            [s.model_dump(exclude_none=True) if isinstance(s, Scene) else s for s in scenes],
            base_dir=base_dir,
        )
        stack = self.store.checked(self.stack)  # the one read also tells that Redis answers
        caps = stack.capabilities() if stack else None
        return self.pipeline.submit(parsed, caps, priority, options)

    def cancel(
        self, job_id: str, scene_ids: list[str] | None = None, *, reason: str = ""
    ) -> dict[str, Any]:
        """Cancel a job's live scenes (all, or those named by id or index): waiting ones
        leave the backlog, running ones get the vendor's cancel and give their slot back,
        finished ones stay. Returns what was cancelled, what was left, and the vendor jobs
        being cancelled."""
        return jobcontrol.cancel(self.pipeline, job_id, scene_ids, reason).as_dict()

    def retry(self, job_id: str, scene_ids: list[str] | None = None) -> dict[str, Any]:
        """Send a job's failed or cancelled scenes (all, or those named) back to the
        backlog, every backend open to them again; succeeded scenes are untouched."""
        return jobcontrol.retry(self.pipeline, job_id, scene_ids).as_dict()

    def records(self, job_id: str) -> list[SceneRecord]:
        """Every scene of a job as stored, in order."""
        return self.store.scenes(self.store.job_scene_ids(job_id))

    def job_status(self, job_id: str) -> list[dict[str, Any]]:
        """Every scene of a job, with its state, backend, tries and result, and while it is
        not finished its place in the backlog and its expected start and finish."""
        records = self.records(job_id)
        return [
            {**record.as_dict(), **eta.as_dict(), "attempts": self.store.attempts(record.id)}
            for record, eta in zip(records, forecast.etas(self.pipeline, records), strict=True)
        ]

    def job_forecast(self, job_id: str, records: list[SceneRecord] | None = None) -> dict[str, Any]:
        """A job's progress and expected completion: counts by state, the backlog's length,
        and each scene's state, backend, error, place and expected start and finish (Unix
        times). ``records``: the job's, when the caller has read them already."""
        records = self.records(job_id) if records is None else records
        etas = forecast.etas(self.pipeline, records)
        job = self.store.job(job_id) or {}
        return {
            "job_id": job_id,
            "priority": int(job.get("priority", 0)),
            "submitted_at": float(job["created_at"]) if job else None,
            "states": dict(Counter(r.state.value for r in records)),
            "expected_completion": forecast.completion(etas),
            "backlog": self.store.backlog_length(),
            "cost": self.job_cost(job_id, records),
            "scenes": [
                {
                    "id": r.id,
                    "state": r.state.value,
                    "backend": r.backend,
                    "error": r.error,
                    **e.as_dict(),
                }
                for r, e in zip(records, etas, strict=True)
            ],
        }

    def results(self, job_id: str) -> list[dict[str, Any]]:
        """One result per scene, in the original design's shape."""
        return [result_summary(record) for record in self.records(job_id)]

    def wait(
        self, job_id: str, timeout: float | None = None, poll: float = 0.25
    ) -> list[dict[str, Any]]:
        """Block until every scene of the job is terminal (or ``timeout`` passes)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            records = self.records(job_id)
            if all(record.finished for record in records):
                return [result_summary(record) for record in records]
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} not finished after {timeout} s")
            time.sleep(poll)

    def film(
        self,
        job_id: str,
        dest: str | Path,
        crossfade: float = 0.0,
        skip_failed: bool = False,
        size: Size | tuple[int, int] | str | None = None,
        fps: float | None = None,
    ) -> dict[str, Any]:
        """Stitch the job's scenes, in order, into one H.264 MP4 at ``dest``: every part
        scaled to fit ``size`` (default: the most common scene size, the largest on a tie) and
        padded with black, never stretched, at ``fps`` (default: the most common rate), each
        blended into the next over ``crossfade`` seconds (at most half the shortest part).
        Audio is dropped. The film is checked (one frame size; its length is the parts' less
        the crossfades) before it is renamed into place.

        Returns what was made: path, duration, frames, width, height, fps, parts, skipped.

        Raises:
            UnknownJobError: no such job.
            MissingScenesError: a scene did not succeed (without ``skip_failed``; with it, the
                film is made of the others and they are listed under ``skipped``), or none did.
            FilmError: a bad option, an unreadable part, or a film that failed its check.
        """
        from .stitch import make_film  # PyAV and numpy: only this command needs them here

        return make_film(
            job_id,
            self.records(job_id),
            Path(dest),
            crossfade=crossfade,
            skip_failed=skip_failed,
            size=size,
            fps=fps,
        )

    async def generate_videos(
        self,
        scenes: list[dict[str, Any]] | list[Scene],
        timeout: float | None = None,
        priority: int = 0,
    ) -> list[dict[str, Any]]:
        """Generate every scene and return one result per scene (index, success, video_path,
        backend_used, error, effective_duration, effective_resolution, task_id)."""
        job_id = await asyncio.to_thread(self.submit, scenes, None, priority)
        return await asyncio.to_thread(self.wait, job_id, timeout)

    # -- health and statistics -------------------------------------------------------------

    async def health_check(self, timeout: float = PROBE_WAIT) -> dict[str, Any]:
        """Have the running stack probe every enabled backend now (cheap endpoints only, with
        the stack's own endpoints and keys) and report what it found. Without an answer
        within ``timeout`` seconds, report the latest stored results (``fresh`` is false)."""
        fresh = await asyncio.to_thread(self.request_probe, timeout)
        status = self.get_backend_status()
        enabled = [s for s in status.values() if s["enabled"]]
        healthy = sum(1 for s in enabled if s["healthy"])
        overall = "healthy" if healthy == len(enabled) else "degraded" if healthy else "unhealthy"
        return {
            "overall_status": overall,
            "healthy_backends": healthy,
            "fresh": fresh,
            "backends": status,
        }

    def request_probe(self, timeout: float = PROBE_WAIT) -> bool:
        """Ask the stack's router to probe now; True once it has stored fresh results."""
        request_id = new_token()
        self.dispatcher.probe(request_id, expires=timeout)
        return self.store.wait_probed(request_id, timeout)

    def get_backend_status(self) -> dict[str, dict[str, Any]]:
        """Per backend, as the running stack uses it (this config's view when none runs):
        healthy, enabled, current and max tasks, priority, circuit, endpoint, capabilities."""
        stack = self.stack()
        entries = stack.backends if stack else self._own_entries()
        return {name: self._status(name, entry) for name, entry in entries.items()}

    def _own_entries(self) -> dict[str, PublishedBackend]:
        entries = {}
        for name in self.settings.video_generation.backends:
            try:
                caps = self.pipeline.capabilities_of(name)
                entries[name] = stackview.backend_entry(self.settings, name, caps)
            except VideoGenError as error:
                entries[name] = stackview.backend_entry(self.settings, name, None, str(error))
        return entries

    def _status(self, name: str, entry: PublishedBackend) -> dict[str, Any]:
        health = self.store.health(name)
        caps = entry.capabilities
        return {
            "healthy": bool(health and health["healthy"]),
            "health_detail": _health_detail(health, entry.enabled),
            "checked_at": health.get("checked_at") if health else None,
            "enabled": entry.enabled,
            "current_tasks": self.store.in_flight(name),
            "queued_tasks": self.store.queued(name),
            "max_tasks": entry.max_concurrent_tasks,
            "priority": entry.priority,
            "circuit": self.store.circuit(name).state.value,
            "base_url": entry.base_url,
            "has_key": entry.has_key,
            "capabilities": caps.model_dump(mode="json") if caps else None,
            "capability_error": entry.capability_error,
        }

    def get_statistics(self) -> dict[str, Any]:
        """Healthy backends, active tasks, and per backend success rate, latency, errors."""
        status = self.get_backend_status()
        backends = {name: _stats(self.store.stats(name), status[name]) for name in status}
        times = self.pipeline.job_times()
        for name, row in backends.items():
            row["learned_job_seconds"] = round(times.seconds(name, DEFAULT_DURATION), 3)
            row["job_time_samples"] = times.learned(name)
        return {
            "healthy_backends": sum(1 for s in status.values() if s["healthy"] and s["enabled"]),
            "total_active_tasks": sum(s["current_tasks"] for s in status.values()),
            "total_queued_tasks": sum(s["queued_tasks"] for s in status.values()),
            "backlog": self.store.backlog_length(),
            "backends": backends,
            "spend": self.spend(),
            "webhooks": self.store.webhook_stats(),
            "cache": self.cache_statistics(),
        }

    def cache_statistics(self) -> dict[str, Any]:
        """The result cache: hits (scenes given a stored or a duplicate's video), misses
        (cached scenes that went to a vendor), videos and bytes stored, and USD saved (what
        the reused videos cost when they were made)."""
        counters = self.store.cache_counters()
        return {
            "enabled": self.settings.video_generation.cache.enabled,
            "hits": counters["hits"],
            "misses": counters["misses"],
            "entries": counters["entries"],
            "bytes_stored": counters["bytes"],
            "saved_usd": round(counters["saved_micro"] / 1e6, 6),
        }

    def webhook_deliveries(self, limit: int = 20, dead: bool = False) -> list[dict[str, Any]]:
        """The latest webhook deliveries, newest first (only the dead ones with ``dead``):
        event, destination (without its query string), state, attempts, latest error."""
        found = self.store.dead_deliveries(limit) if dead else self.store.recent_deliveries(limit)
        return [d.summary() for d in found]

    def spend(self) -> dict[str, Any]:
        """Money (USD): reserved, settled, held for ambiguous submits and saved against the
        default strategy, for everything and each backend, over all time, today and this
        month (UTC), with the budgets and how much of each is used."""
        names = list(self.settings.video_generation.backends)
        now = time.time()
        books = self.store.ledgers(spend.scopes_to_read(names, now))
        return spend.report(books, self.settings.video_generation, names, now)

    def job_cost(self, job_id: str, records: list[SceneRecord] | None = None) -> dict[str, Any]:
        """A job's money: its ledger (reserved, settled, held, saved), its budget, and the
        estimate of the whole job (settled and reserved, plus the cheapest price of each
        scene still waiting)."""
        records = self.records(job_id) if records is None else records
        book = self.store.ledgers([spend.job_scope(job_id)])[spend.job_scope(job_id)]
        job = self.store.job(job_id) or {}
        price = costs.prices(
            self.settings.video_generation, self.pipeline.capabilities(), self.pipeline.job_times()
        )
        waiting = 0.0
        for record in records:
            if record.state is SceneState.PENDING and record.queue:
                cls = ScClass.parse(record.queue)
                waiting += min((price(b, cls) for b in cls.backends), default=0.0)
        estimated = book["settled"] + book["reserved"] + waiting
        budget = float(job["max_cost_usd"]) if "max_cost_usd" in job else None
        return {**book, "estimated": round(estimated, 6), "budget_usd": budget}


def _health_detail(health: dict[str, Any] | None, enabled: bool) -> str:
    """The latest probe's word, or why there is none (a disabled backend is never probed)."""
    if health:
        return str(health["detail"])
    return "not probed yet" if enabled else "not probed (disabled)"


def result_summary(record: SceneRecord) -> dict[str, Any]:
    """One scene's outcome in the original design's result shape."""
    result = record.result or {}
    succeeded = record.state is SceneState.SUCCEEDED
    return {
        "index": record.index,
        "scene_id": record.id,
        "task_id": record.id,
        "success": succeeded,
        "state": record.state.value,
        "video_path": result.get("video_path"),
        "backend_used": record.backend,
        "error": None if succeeded else record.error,
        "effective_duration": (result.get("effective") or {}).get("duration"),
        "effective_resolution": (result.get("effective") or {}).get("resolution"),
        "requested_duration": record.spec.duration,
        "route_reason": record.route_reason,
        "cached": bool(result.get("cached")),
    }


ORPHAN_COUNTS = (
    "orphans",
    "orphans_cancelled",
    "orphans_used",
    "orphans_double_paid",
    "orphans_failed",
    "orphans_wasted",
)
"""Vendor jobs left when their vendor stopped answering, and how they ended
(:mod:`videogen.orphans`)."""


def _stats(raw: dict[str, float], status: dict[str, Any]) -> dict[str, Any]:
    succeeded = raw.get("succeeded", 0.0)
    failed = raw.get("failed", 0.0)
    finished = succeeded + failed
    errors = raw.get("errors", 0.0)
    submitted = raw.get("submitted", 0.0)
    latency_n = succeeded
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
        **{name: int(raw.get(name, 0.0)) for name in ORPHAN_COUNTS},
        "orphan_usd": round(raw.get("orphan_usd", 0.0), 4),
        "double_paid": int(raw.get("orphans_double_paid", 0.0) + raw.get("double_paid", 0.0)),
        "in_flight": status["current_tasks"],
        "queued": status["queued_tasks"],
    }
