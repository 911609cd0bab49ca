"""The Celery application of the workers, and its thin task shells.

Each task loads by id, calls one pipeline step, and lets the step enqueue the next one.
Workers read their config like every command (``$VIDEOGEN_CONFIG``, else
``config/config.json``) and Redis from ``$VIDEOGEN_REDIS_URL`` (else the embedded default).
"""

from __future__ import annotations

import logging
import os
from functools import cache

from celery import Celery
from celery.schedules import crontab
from celery.signals import after_setup_logger

from videogen.config import VideoGenerationSettings, load_config
from videogen.constants import DEFAULT_REDIS_URL, ROUTER_QUEUE
from videogen.errors import ConfigError
from videogen.logs import JsonFormatter
from videogen.pipeline import Pipeline
from videogen.queue import CeleryDispatcher, celery_app
from videogen.store import Store


def redis_url() -> str:
    return os.environ.get("VIDEOGEN_REDIS_URL") or load_config().redis_url or DEFAULT_REDIS_URL


def health_schedule(vg: VideoGenerationSettings) -> float | crontab:
    """The health beat's schedule: the crontab when one is configured, else the interval."""
    if not vg.health_check_crontab:
        return vg.health_check_interval
    minute, hour, day, month, weekday = vg.health_check_crontab.split()
    try:
        return crontab(minute, hour, weekday, day, month)
    except ValueError as error:
        raise ConfigError(f"health_check_crontab {vg.health_check_crontab!r}: {error}") from None


def create_app() -> Celery:
    app = celery_app(redis_url())
    vg = load_config().video_generation
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


app = create_app()


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
    return Pipeline(load_config(), Store.from_url(redis_url()), CeleryDispatcher(app))


@app.task(name="videogen.route")
def route(scene_id: str) -> None:
    pipeline().route(scene_id)


@app.task(name="videogen.generate")
def generate(backend: str, scene_id: str) -> None:
    pipeline().generate(backend, scene_id)


@app.task(name="videogen.health")
def health() -> None:
    pipeline().probe_all()


@app.task(name="videogen.sweep")
def sweep() -> None:
    pipeline().sweep()
