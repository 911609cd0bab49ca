"""The Celery application of the workers, and its thin task shells.

:func:`create_app` builds the app from a :class:`~videogen.config.Settings` value: its Redis,
the beat's schedule, the four tasks, and the signal handlers that publish what a worker uses
(:mod:`videogen.stackview`) when it is ready and withdraw it when it stops. Each task loads by
id, calls one pipeline step, and lets the step enqueue the next one.

``videogen worker`` builds the app from the config it loaded. ``celery -A workers.app ...``
(the beat and Flower that ``videogen beat`` and ``videogen flower`` run) gets
``workers.app.app``, built on first access from the config (``$VIDEOGEN_CONFIG``, else
``config/config.json``) and the environment: importing this module reads no config.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from functools import cache
from typing import Any

from celery import Celery
from celery.schedules import crontab
from celery.signals import after_setup_logger, worker_ready, worker_shutdown

from videogen import stackview
from videogen.config import Settings, VideoGenerationSettings
from videogen.constants import ROUTER_QUEUE, WORKER_ROLE_ENV
from videogen.errors import ConfigError
from videogen.loading import load_config
from videogen.logs import JsonFormatter
from videogen.pipeline import Pipeline
from videogen.queue import CeleryDispatcher, celery_app
from videogen.store import Store
from workers.reconnect import CONSUMER
from workers.redis_loss import survive_redis_loss

log = logging.getLogger("videogen")


def health_schedule(vg: VideoGenerationSettings) -> float | crontab:
    """The health beat's schedule: the crontab when one is configured, else the interval."""
    if not vg.health_check_crontab:
        return vg.health_check_interval
    minute, hour, day, month, weekday = vg.health_check_crontab.split()
    try:
        return crontab(minute, hour, weekday, day, month)
    except ValueError as error:
        raise ConfigError(f"health_check_crontab {vg.health_check_crontab!r}: {error}") from None


def beat_schedule(vg: VideoGenerationSettings) -> dict[str, dict[str, Any]]:
    """Health probes and the sweeper, both on the router queue."""
    return {
        "health-probes": {
            "task": "videogen.health",
            "schedule": health_schedule(vg),
            "options": {"queue": ROUTER_QUEUE, "expires": vg.health_check_interval},
        },
        "sweep": {
            "task": "videogen.sweep",
            "schedule": vg.sweep_interval,
            "options": {"queue": ROUTER_QUEUE, "expires": vg.sweep_interval},
        },
    }


def create_app(settings: Settings) -> Celery:
    """The Celery app on ``settings``' Redis, with the beat's schedule, the tasks, and the
    worker's publish/withdraw handlers; its tasks run a pipeline built from ``settings``."""
    survive_redis_loss()  # before any consumer connects
    app = celery_app(settings.redis)
    app.conf.worker_consumer = CONSUMER  # back within a second or two of Redis
    app.conf.beat_schedule = beat_schedule(settings.video_generation)
    pipeline = _PipelineOnce(settings, app)
    _register_tasks(app, pipeline)
    _connect_signals(app, settings, pipeline)
    return app


class _PipelineOnce:
    """One pipeline per worker process, built on first use (its backends' HTTP clients are
    thread-safe, and the worker's threads share it)."""

    def __init__(self, settings: Settings, app: Celery) -> None:
        self.settings = settings
        self.app = app
        self._pipeline: Pipeline | None = None
        self._lock = threading.Lock()

    def __call__(self) -> Pipeline:
        with self._lock:
            if self._pipeline is None:
                self._pipeline = self._build()
            return self._pipeline

    def _build(self) -> Pipeline:
        # Celery owns the worker's log handlers; videogen's records flow into them.
        logging.getLogger("videogen").setLevel(os.environ.get("VIDEOGEN_LOG_LEVEL", "INFO"))
        for noisy in ("httpx", "httpcore"):  # request lines are noise; keys are never in them
            logging.getLogger(noisy).setLevel(logging.WARNING)
        store = Store.from_url(self.settings.redis)
        return Pipeline(self.settings, store, CeleryDispatcher(self.app))


def _register_tasks(app: Celery, pipeline: Callable[[], Pipeline]) -> None:
    # shared=False: a shared task would be added to every app finalized later, and the first
    # app's task (and its pipeline) would win the name there.
    @app.task(name="videogen.dispatch", shared=False)
    def dispatch() -> None:
        pipeline().dispatch_waiting()

    @app.task(name="videogen.generate", shared=False)
    def generate(backend: str, scene_id: str) -> None:
        pipeline().generate(backend, scene_id)

    @app.task(name="videogen.health", shared=False)
    def health(request_id: str | None = None) -> None:
        """Probe every enabled backend (the beat's schedule, or a client asking for fresh
        results: it blocks on ``request_id`` until they are stored)."""
        pipeline().probe_all()
        if request_id:
            pipeline().store.probed(request_id)

    @app.task(name="videogen.sweep", shared=False)
    def sweep() -> None:
        pipeline().sweep()


def _connect_signals(app: Celery, settings: Settings, pipeline: Callable[[], Pipeline]) -> None:
    """Publish what this worker uses once it is ready, withdraw it when it stops (workers
    started by ``videogen worker``, which sets their role)."""

    def publish(sender: Any = None, **_: object) -> None:
        role = os.environ.get(WORKER_ROLE_ENV)
        if role and getattr(sender, "app", None) is app:
            p = pipeline()
            stackview.publish(p.store, p.settings, role, str(sender.hostname), p.capabilities_of)
            log.info("published what this %s worker uses", role)
            p.ask_dispatch()  # a new worker: its backends' free slots can take work

    def withdraw(sender: Any = None, **_: object) -> None:
        role = os.environ.get(WORKER_ROLE_ENV)
        if not role or getattr(sender, "app", None) is not app:
            return
        try:  # Redis may be gone already: never hold up a stop for this
            store = Store.from_url(settings.redis, patient=False)
            for key in stackview.role_keys(settings, role):
                store.withdraw(key, str(sender.hostname))
        except Exception:  # noqa: BLE001 - a stale record is overwritten by the next worker
            log.debug("could not withdraw the published view", exc_info=True)

    # weak=False: these closures have no other reference to keep them alive.
    worker_ready.connect(publish, weak=False)
    worker_shutdown.connect(withdraw, weak=False)
    _relay_webhooks(app, settings)


def _relay_webhooks(app: Celery, settings: Settings) -> None:
    """A router worker runs a webhook relay in a thread of its own, beside its one routing
    thread (:mod:`videogen.webhook_relay` says why not a task), from ready to shutdown."""
    stops: list[Callable[[], None]] = []

    def start(sender: Any = None, **_: object) -> None:
        if os.environ.get(WORKER_ROLE_ENV) == ROUTER_QUEUE and getattr(sender, "app", None) is app:
            from videogen.webhook_relay import start_relay

            stops.append(start_relay(settings))
            log.info("webhook relay started")

    def stop(sender: Any = None, **_: object) -> None:
        if getattr(sender, "app", None) is app:
            while stops:
                stops.pop()()

    worker_ready.connect(start, weak=False)
    worker_shutdown.connect(stop, weak=False)


@after_setup_logger.connect
def _json_logs(logger: logging.Logger, **_: object) -> None:
    """``VIDEOGEN_LOG_JSON=1``: every worker log line as one JSON object."""
    if os.environ.get("VIDEOGEN_LOG_JSON", "") not in ("", "0", "false"):
        for handler in logger.handlers:
            handler.setFormatter(JsonFormatter())


@cache
def _app_from_config() -> Celery:
    return create_app(load_config())


def __getattr__(name: str) -> Any:
    """``workers.app.app`` for ``celery -A workers.app``: built on first access (PEP 562)."""
    if name == "app":
        return _app_from_config()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
