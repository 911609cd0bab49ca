"""The Celery application of the workers, and its thin task shells.

Each task loads by id, calls one pipeline step, and lets the step enqueue the next one.
Workers read their config once, like every command (``$VIDEOGEN_CONFIG``, else
``config/config.json``), and Redis from ``$VIDEOGEN_REDIS_URL`` (else the embedded default).
A worker started by ``videogen worker`` publishes what it uses (:mod:`videogen.stackview`)
when it is ready, and withdraws it when it stops.
"""

from __future__ import annotations

import logging
import os
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

log = logging.getLogger("videogen")


@cache
def settings() -> Settings:
    """The worker's config, read once per process."""
    return load_config()


def health_schedule(vg: VideoGenerationSettings) -> float | crontab:
    """The health beat's schedule: the crontab when one is configured, else the interval."""
    if not vg.health_check_crontab:
        return vg.health_check_interval
    minute, hour, day, month, weekday = vg.health_check_crontab.split()
    try:
        return crontab(minute, hour, weekday, day, month)
    except ValueError as error:
        raise ConfigError(f"health_check_crontab {vg.health_check_crontab!r}: {error}") from None


def create_app(config: Settings) -> Celery:
    """The Celery app on ``config``'s Redis, with the beat's schedule from its settings."""
    app = celery_app(config.redis)
    vg = config.video_generation
    app.conf.beat_schedule = {
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
    return app


app = create_app(settings())  # `celery -A workers.app` and `videogen worker` need it at import


@after_setup_logger.connect
def _json_logs(logger: logging.Logger, **_: object) -> None:
    """``VIDEOGEN_LOG_JSON=1``: every worker log line as one JSON object."""
    if os.environ.get("VIDEOGEN_LOG_JSON", "") not in ("", "0", "false"):
        for handler in logger.handlers:
            handler.setFormatter(JsonFormatter())


@cache
def pipeline() -> Pipeline:
    """One pipeline per worker process (its backends' HTTP clients are thread-safe)."""
    # Celery owns the worker's log handlers; videogen's records flow into them.
    logging.getLogger("videogen").setLevel(os.environ.get("VIDEOGEN_LOG_LEVEL", "INFO"))
    for noisy in ("httpx", "httpcore"):  # request lines are noise; keys are never in them
        logging.getLogger(noisy).setLevel(logging.WARNING)
    config = settings()
    return Pipeline(config, Store.from_url(config.redis), CeleryDispatcher(app))


@worker_ready.connect
def _publish(sender: Any = None, **_: object) -> None:
    role = os.environ.get(WORKER_ROLE_ENV)
    if role:
        p = pipeline()
        stackview.publish(p.store, p.settings, role, str(sender.hostname), p.capabilities_of)
        log.info("published what this %s worker uses", role)


@worker_shutdown.connect
def _withdraw(sender: Any = None, **_: object) -> None:
    role = os.environ.get(WORKER_ROLE_ENV)
    if not role or sender is None:
        return
    try:  # Redis may be gone already: never hold up a stop for this
        Store.from_url(settings().redis, patient=False).withdraw(
            stackview.role_key(role), str(sender.hostname)
        )
    except Exception:  # noqa: BLE001 - a stale record is overwritten by the next worker
        log.debug("could not withdraw the published view", exc_info=True)


@app.task(name="videogen.route")
def route(scene_id: str) -> None:
    pipeline().route(scene_id)


@app.task(name="videogen.generate")
def generate(backend: str, scene_id: str) -> None:
    pipeline().generate(backend, scene_id)


@app.task(name="videogen.health")
def health(request_id: str | None = None) -> None:
    """Probe every enabled backend (the beat's schedule, or a client asking for fresh results:
    it blocks on ``request_id`` until they are stored)."""
    pipeline().probe_all()
    if request_id:
        pipeline().store.probed(request_id)


@app.task(name="videogen.sweep")
def sweep() -> None:
    pipeline().sweep()
