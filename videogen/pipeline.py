"""The pipeline's steps: submit, route, generate, health beat, sweep.

Celery tasks are thin shells around these (load by id, call a step, turn the decision into a
Celery call through :class:`Dispatcher`). The steps read and write state only through
:class:`~videogen.store.Store`, call vendors only through backends, and decide only through
the pure policies in :mod:`videogen.router` and :mod:`videogen.policy`.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from .backends import create_backend
from .backends.base import BaseVideoBackend
from .capabilities import Capabilities
from .config import Settings
from .constants import ROUTER_QUEUE
from .errors import (
    Action,
    AmbiguousSubmitError,
    BackendError,
    CapabilityError,
    RateLimitedError,
    VideoGenError,
)
from .models import GenerationRequest, JobStatus, Scene, SceneState, VendorJob
from .policy import CircuitPolicy, Next, RetryPolicy, after_error, is_open, on_failure, on_success
from .queue import backend_queue
from .router import BackendView, RouteDecision, choose, only_for_now
from .scenes import check_routable
from .store import Store, new_token

log = logging.getLogger("videogen")

LEASE_WAIT = 1.0
"""Seconds before a generate task that found its backend full looks again."""
MAX_DELIVERIES = 5
"""Times a scene's generate task may start on one backend before the scene is failed (a task
that keeps killing its worker must not loop forever)."""
ROUTE_RETRY = 2.0
"""Seconds before a scene that found every capable backend down looks again."""
HEALTH_TTL_FACTOR = 3
"""Health records live this many beat intervals: one missed beat does not make a backend
unknown."""


class Dispatcher(Protocol):
    """How steps enqueue the next step (Celery in production)."""

    def route(self, scene_id: str, countdown: float = 0.0) -> None: ...

    def generate(self, backend: str, scene_id: str, countdown: float = 0.0) -> None: ...


@dataclass
class Pipeline:
    settings: Settings
    store: Store
    dispatch: Dispatcher
    clock: Callable[[], float] = time.time
    _backends: dict[str, BaseVideoBackend] = field(default_factory=dict)

    # -- tuning, read from the config ------------------------------------------------------

    @property
    def lease_ttl(self) -> float:
        return self.settings.video_generation.lease_ttl

    @property
    def route_claim_timeout(self) -> float:
        return self.settings.video_generation.route_claim_timeout

    @property
    def retry_policy(self) -> RetryPolicy:
        vg = self.settings.video_generation
        return RetryPolicy(max_retries=vg.max_retries, base_delay=vg.retry_base_delay)

    @property
    def circuit_policy(self) -> CircuitPolicy:
        vg = self.settings.video_generation
        return CircuitPolicy(vg.circuit_failure_threshold, vg.circuit_cooldown)

    # -- backends --------------------------------------------------------------------------

    def backend(self, name: str) -> BaseVideoBackend:
        if name not in self._backends:
            self._backends[name] = create_backend(name, self.settings.backend(name))
        return self._backends[name]

    def enabled(self) -> list[str]:
        return self.settings.video_generation.enabled_backends()

    def capabilities(self) -> dict[str, Capabilities]:
        return {name: self.capabilities_of(name) for name in self.enabled()}

    def capabilities_of(self, name: str) -> Capabilities:
        return self.backend(name).get_capabilities()

    def close(self) -> None:
        for backend in self._backends.values():
            backend.close()

    # -- submit ----------------------------------------------------------------------------

    def submit(
        self, scenes: list[Scene], capabilities: dict[str, Capabilities] | None = None
    ) -> str:
        """Store a job and enqueue one route per scene; refuses the whole file first if any
        scene cannot be taken by any enabled backend (``capabilities``: the running stack's,
        as published; else this config's)."""
        check_routable(scenes, self.capabilities() if capabilities is None else capabilities)
        job_id = uuid.uuid4().hex[:12]
        specs = [s.model_dump(mode="json", exclude_none=True) for s in scenes]
        ids = self.store.create_job(job_id, specs)
        for scene_id in ids:
            self.dispatch.route(scene_id)
            log.info("scene %s submitted", scene_id)
        log.info("job %s submitted: %d scenes", job_id, len(ids))
        return job_id

    # -- route -----------------------------------------------------------------------------

    def views(self) -> list[BackendView]:
        """Every configured backend as the router sees it now."""
        now = self.clock()
        views = []
        for name, cfg in self.settings.video_generation.backends.items():
            enabled = cfg.enabled
            views.append(
                BackendView(
                    name=name,
                    priority=cfg.priority,
                    enabled=enabled,
                    healthy=enabled and self.is_healthy(name),
                    circuit_open=enabled
                    and is_open(self.store.circuit(name), now, self.circuit_policy),
                    capacity=cfg.max_concurrent_tasks,
                    in_flight=self.store.in_flight(name) if enabled else 0,
                    queued=self.store.queued(name) if enabled else 0,
                    caps=self.backend(name).get_capabilities(),
                )
            )
        return views

    def is_healthy(self, name: str) -> bool:
        """The fresh health record's verdict; with none yet, probe now rather than wait."""
        record = self.store.health(name)
        if record is None:
            record = self.probe(name)
        return bool(record["healthy"])

    def route(self, scene_id: str) -> str | None:
        """Pick a backend for a pending scene and enqueue its generate task there."""
        scene = self.store.scene(scene_id)
        if scene is None or scene["state"] != SceneState.PENDING:
            return None  # a duplicate message: routing already happened
        self.store.update_scene(scene_id, claimed_at=self.clock())
        if scene["failures"] >= self.settings.video_generation.max_attempts:
            last = scene.get("error") or "no reason recorded"
            self._fail(scene_id, [SceneState.PENDING], f"{last} (after {scene['failures']} tries)")
            return None
        tried = frozenset(scene["tried"])
        decision = choose(
            Scene.model_validate(scene["spec"]),
            self.views(),
            tried=tried,
            strategy=self.settings.video_generation.effective_strategy,
            turn=self.store.next_turn(),
        )
        if decision.backend is None:
            self._no_backend(scene, decision)
            return None
        self._send_to(
            scene_id, decision.backend, decision.reason, [*scene["tried"], decision.backend]
        )
        return decision.backend

    def _no_backend(self, scene: dict[str, Any], decision: RouteDecision) -> None:
        """Wait for a backend that is down for now (bounded); fail when none ever could."""
        reason = self._no_backend_reason(scene, decision.excluded)
        waited = self.clock() - float(scene["created_at"])
        limit = self.settings.video_generation.route_wait_limit
        if only_for_now(decision) and waited < limit:
            self.store.update_scene(scene["id"], claimed_at="", waiting=reason)
            self.dispatch.route(scene["id"], countdown=ROUTE_RETRY)
            log.info("scene %s waits for a backend: %s", scene["id"], reason)
            return
        if only_for_now(decision):
            reason = f"{reason}; gave up after waiting {waited:.0f} s"
        self._fail(scene["id"], [SceneState.PENDING], reason)

    def _no_backend_reason(self, scene: dict[str, Any], excluded: dict[str, str]) -> str:
        last = scene.get("error")
        why = "; ".join(f"{name}: {reason}" for name, reason in excluded.items())
        return f"{last} (no other backend: {why})" if last else f"no backend can take it: {why}"

    def _send_to(self, scene_id: str, backend: str, reason: str, tried: list[str]) -> None:
        moved = self.store.transition(
            scene_id,
            [SceneState.PENDING],
            SceneState.ROUTED,
            backend=backend,
            route_reason=reason,
            tried=tried,
            retries=0,
            deliveries=0,
        )
        if moved:
            self.store.mark_queued(backend, scene_id)
            self.dispatch.generate(backend, scene_id)
            log.info("scene %s routed to %s: %s", scene_id, backend, reason)

    # -- generate --------------------------------------------------------------------------

    def generate(self, backend_name: str, scene_id: str) -> None:
        """Run one scene on its backend: hold a slot for the whole vendor job."""
        scene = self.store.scene(scene_id)
        if not self._still_mine(scene, backend_name):
            return
        cap = self.settings.backend(backend_name).max_concurrent_tasks
        token = new_token()
        if not self.store.acquire_lease(backend_name, scene_id, token, self.lease_ttl, cap):
            self.store.update_scene(scene_id)  # still waiting, not lost: keep the sweeper off
            self.dispatch.generate(backend_name, scene_id, countdown=LEASE_WAIT)
            return
        try:
            self._generate_holding(backend_name, scene_id, token)
        finally:
            self.store.release_lease(backend_name, scene_id, token)

    def _still_mine(self, scene: dict[str, Any] | None, backend: str) -> bool:
        if scene is None or scene.get("backend") != backend:
            return False
        return scene["state"] in (SceneState.ROUTED, SceneState.RUNNING)

    def _generate_holding(self, backend_name: str, scene_id: str, token: str) -> None:
        deliveries = self.store.bump(scene_id, "deliveries")
        if deliveries > MAX_DELIVERIES:
            message = f"{backend_name}: the task was started {MAX_DELIVERIES} times without ending"
            self._handle_error(backend_name, scene_id, _Crashloop(backend_name, message))
            return
        started = self.store.transition(
            scene_id,
            [SceneState.ROUTED, SceneState.RUNNING],
            SceneState.RUNNING,
            started_at=self.clock(),
        )
        self.store.unmark_queued(backend_name, scene_id)
        if not started:
            return
        try:
            self._run(backend_name, scene_id, token)
        except (BackendError, CapabilityError) as error:
            self._handle_error(backend_name, scene_id, _as_backend_error(backend_name, error))
        except _LeaseLost:
            log.warning("scene %s: slot on %s taken over; leaving it", scene_id, backend_name)

    def _run(self, backend_name: str, scene_id: str, token: str) -> None:
        scene = self.store.scene(scene_id) or {}
        backend = self.backend(backend_name)
        request = backend.prepare(Scene.model_validate(scene["spec"]))
        job = self._vendor_job(backend, scene_id, scene, request)

        def heartbeat() -> None:
            if not self.store.renew_lease(backend_name, scene_id, token, self.lease_ttl):
                raise _LeaseLost()

        def on_change(status: JobStatus) -> None:
            log.info(
                "scene %s: %s job %s is %s (%s)",
                scene_id, backend_name, job.job_id, status.state.value, status.vendor_state,
            )  # fmt: skip

        try:
            status = backend.wait(
                job, timeout=backend.settings.timeout, heartbeat=heartbeat, on_change=on_change
            )
        except BackendError:
            backend.cancel_quietly(job)  # we give up on it: nobody must pay for it to run on
            raise
        heartbeat()
        self._finish(backend, scene_id, scene, request, job, status)

    def _vendor_job(
        self,
        backend: BaseVideoBackend,
        scene_id: str,
        scene: dict[str, Any],
        request: GenerationRequest,
    ) -> VendorJob:
        """The scene's vendor job: resumed when one was already created, else submitted once."""
        saved = scene.get("vendor_job")
        if saved and saved.get("backend") == backend.name:
            log.info("scene %s: resuming %s job %s", scene_id, backend.name, saved["job_id"])
            return VendorJob.model_validate(saved)
        if scene.get("submitting") == backend.name:
            # A worker died between sending the create request and storing its answer.
            raise AmbiguousSubmitError(
                backend.name, "a worker died while creating the vendor job: one may exist"
            )
        self.store.update_scene(scene_id, submitting=backend.name)
        try:
            job = backend.submit(request)
        except BackendError as error:
            if not isinstance(error, AmbiguousSubmitError):
                self.store.update_scene(scene_id, submitting="")  # an answer: no job was made
            raise
        self.store.update_scene(
            scene_id,
            vendor_job=job.model_dump(),
            submitting="",
            request=request.model_dump(mode="json"),
        )
        self.store.count(backend.name, submitted=1, cost_usd=request.estimated_cost_usd)
        log.info("scene %s: %s job %s created", scene_id, backend.name, job.job_id)
        return job

    def _finish(
        self,
        backend: BaseVideoBackend,
        scene_id: str,
        scene: dict[str, Any],
        request: GenerationRequest,
        job: VendorJob,
        status: JobStatus,
    ) -> None:
        dest = self.settings.outputs / scene["job_id"] / f"{scene_id}.mp4"
        video = backend.finish(job, status, dest)
        seconds = self.clock() - float(scene.get("started_at") or self.clock())
        result = {
            "video_path": str(dest),
            "backend": backend.name,
            "vendor_job_id": job.job_id,
            "source_url": status.output_url,
            "width": video.width,
            "height": video.height,
            "frames": video.frames,
            "duration": video.duration,
            "size_bytes": video.size_bytes,
            **request.effective(),
            "estimated_cost_usd": request.estimated_cost_usd,
            "seconds": round(seconds, 3),
        }
        dest.with_suffix(".json").write_text(json.dumps(result, indent=2))
        if self.store.transition(
            scene_id,
            [SceneState.RUNNING],
            SceneState.SUCCEEDED,
            result=result,
            finished_at=self.clock(),
        ):
            # The result holds what is worth keeping; working fields only cost memory now.
            self.store.drop_fields(scene_id, "request", "vendor_job", "submitting", "waiting")
            self.store.count(
                backend.name, succeeded=1, latency_ms_sum=int(seconds * 1000), latency_count=1
            )
            self.store.observe_latency(backend.name, seconds)
            self._circuit_success(backend.name)
            log.info("scene %s succeeded on %s: %s", scene_id, backend.name, dest)

    # -- errors ----------------------------------------------------------------------------

    def _handle_error(self, backend: str, scene_id: str, error: BackendError) -> None:
        scene = self.store.scene(scene_id) or {}
        self.store.add_attempt(
            scene_id,
            {
                "backend": backend,
                "error": str(error),
                "kind": type(error).__name__,
                "at": self.clock(),
            },
        )
        self.store.count(backend, errors=1)
        self.store.bump(scene_id, "failures")
        against_backend = error.action in (Action.FAILOVER, Action.RETRY_SAME)
        if against_backend and not isinstance(error, RateLimitedError):
            self._circuit_failure(backend)  # every failed request counts: react in seconds
        decision = after_error(
            error.action,
            str(error),
            retries_here=int(scene.get("retries", 0)),
            fallback_enabled=self.settings.video_generation.fallback_enabled,
            retry_after=error.retry_after,
            rate_limited=isinstance(error, RateLimitedError),
            backend_open=is_open(self.store.circuit(backend), self.clock(), self.circuit_policy),
            policy=self.retry_policy,
        )
        self._apply(backend, scene_id, decision.next, decision.reason, decision.delay, error)

    def _apply(
        self,
        backend: str,
        scene_id: str,
        next_step: Next,
        reason: str,
        delay: float,
        error: BackendError,
    ) -> None:
        live = [SceneState.ROUTED, SceneState.RUNNING]  # a crash-loop check fails before RUNNING
        if next_step is Next.RETRY:
            # A retry is a new attempt: the crash-loop counter starts again.
            moved = self.store.transition(
                scene_id, live, SceneState.ROUTED, error=reason, deliveries=0
            )
            if moved:
                self.store.bump(scene_id, "retries")
                self.store.count(backend, retries=1)
                self.store.mark_queued(backend, scene_id)
                self.dispatch.generate(backend, scene_id, countdown=delay)
                log.info("scene %s: retry on %s in %.1f s: %s", scene_id, backend, delay, reason)
        elif next_step is Next.REROUTE:
            extra: dict[str, Any] = {}
            if error.action is Action.RETRY_SAME:
                # Unavailable, not unfit: the open circuit keeps it away while it recovers,
                # and the scene may come back to it later (bounded by max_attempts).
                tried = (self.store.scene(scene_id) or {}).get("tried") or []
                extra["tried"] = [name for name in tried if name != backend]
            moved = self.store.transition(
                scene_id,
                live,
                SceneState.PENDING,
                **extra,
                error=reason,
                vendor_job="",
                submitting="",
                claimed_at="",
            )
            if moved:
                self.store.count(backend, failovers=1)
                self.dispatch.route(scene_id)
                log.info("scene %s: failing over from %s: %s", scene_id, backend, reason)
        else:
            self._fail(scene_id, live, reason)
            self.store.count(backend, failed=1)

    def _fail(self, scene_id: str, current: list[SceneState], reason: str) -> None:
        if self.store.transition(
            scene_id, current, SceneState.FAILED, error=reason, finished_at=self.clock()
        ):
            log.warning("scene %s failed: %s", scene_id, reason)

    def _circuit_failure(self, backend: str) -> None:
        circuit = on_failure(self.store.circuit(backend), self.clock(), self.circuit_policy)
        self.store.set_circuit(backend, circuit)

    def _circuit_success(self, backend: str) -> None:
        circuit = self.store.circuit(backend)
        if circuit.failures:
            self.store.set_circuit(backend, on_success(circuit))

    # -- health and sweeping ---------------------------------------------------------------

    def probe(self, name: str) -> dict[str, Any]:
        """Probe one backend now and store the result with a TTL.

        A probe without a key says nothing about the backend (only about this host's config):
        its report is returned but never written into the shared health or circuit state."""
        backend = self.backend(name)
        report = backend.health_check().model_dump()
        report["checked_at"] = self.clock()
        if backend.requires_key and not backend.settings.has_key:
            return report
        interval = self.settings.video_generation.health_check_interval
        self.store.set_health(name, report, ttl=interval * HEALTH_TTL_FACTOR)
        if report["healthy"]:
            self._circuit_success(name)
        else:
            self._circuit_failure(name)
        return report

    def probe_all(self) -> dict[str, dict[str, Any]]:
        return {name: self.probe(name) for name in self.enabled()}

    def sweep(self) -> dict[str, int]:
        """Resume scenes whose worker died (their slot's lease expired), and re-route scenes
        whose router died mid-task. Both steps are idempotent, so a duplicate is harmless."""
        resumed = 0
        for backend in self.settings.video_generation.backends:
            for scene_id in self.store.reap_leases(backend):
                scene = self.store.scene(scene_id)
                if (
                    scene
                    and scene["state"] == SceneState.RUNNING
                    and scene.get("backend") == backend
                ):
                    self.dispatch.generate(backend, scene_id)
                    resumed += 1
                    log.warning("scene %s: worker on %s lost; resuming", scene_id, backend)
        lost = self._sweep_lost_messages()
        return {"resumed": resumed, **lost}

    def _sweep_lost_messages(self) -> dict[str, int]:
        """Re-send steps whose message is gone: a router killed mid-task (its claim is stale),
        or a message lost with a worker or a Redis restart (stale, and its queue is empty).
        A duplicate is harmless: every step checks the scene's state first."""
        now = self.clock()
        stale = self.route_claim_timeout
        counts = {"rerouted": 0, "redispatched": 0}
        router_idle = self.store.queue_length(ROUTER_QUEUE) == 0
        for scene in self.store.scenes_in([SceneState.PENDING, SceneState.ROUTED]):
            pending = scene["state"] == SceneState.PENDING
            since = scene.get("claimed_at") if pending else None
            age = now - float(since or scene["updated_at"])
            if age <= stale:
                continue
            if pending and (scene.get("claimed_at") or router_idle):
                self.store.update_scene(scene["id"], claimed_at=now)
                self.dispatch.route(scene["id"])
                counts["rerouted"] += 1
            elif not pending and self._generate_lost(scene):
                self.store.update_scene(scene["id"])
                self.dispatch.generate(scene["backend"], scene["id"])
                counts["redispatched"] += 1
        return counts

    def _generate_lost(self, scene: dict[str, Any]) -> bool:
        backend = scene.get("backend") or ""
        return self.store.queue_length(backend_queue(backend)) == 0


class _LeaseLost(Exception):
    """Another worker took over this scene's slot (ours had expired)."""


class _Crashloop(BackendError):
    pass


def _as_backend_error(backend: str, error: VideoGenError) -> BackendError:
    if isinstance(error, BackendError):
        return error
    # A capability error at generate time (config changed since routing): try elsewhere.
    return _Unfit(backend, str(error))


class _Unfit(BackendError):
    pass


def result_summary(scene: dict[str, Any]) -> dict[str, Any]:
    """One scene's outcome in the original design's result shape."""
    result = scene.get("result") or {}
    spec = scene.get("spec") or {}
    return {
        "index": scene["index"],
        "scene_id": scene["id"] if "id" in scene else None,
        "task_id": scene.get("id"),
        "success": scene["state"] == SceneState.SUCCEEDED,
        "state": scene["state"],
        "video_path": result.get("video_path"),
        "backend_used": scene.get("backend"),
        "error": scene.get("error") if scene["state"] != SceneState.SUCCEEDED else None,
        "effective_duration": (result.get("effective") or {}).get("duration"),
        "effective_resolution": (result.get("effective") or {}).get("resolution"),
        "requested_duration": spec.get("duration"),
        "route_reason": scene.get("route_reason"),
    }
