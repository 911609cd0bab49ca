"""The Celery edge on the producer side: the app factory and the :class:`Dispatcher`.

Messages carry ids only (a scene id, a backend name): never a scene, never a key. Outcomes
live on the scene records, so no message asks for a Celery result (``ignore_result``: the
client does not even subscribe to one).
"""

from __future__ import annotations

from celery import Celery

from .constants import ROUTER_QUEUE, backend_queue

DISPATCH_EXPIRES = 60.0
"""A dispatch step not started within this many seconds is dropped: later events and the
sweep ask for newer ones."""


def celery_app(redis_url: str) -> Celery:
    """A Celery app with videogen's settings (``celeryconfig.py``) on ``redis_url``."""
    app = Celery("videogen")
    app.config_from_object("celeryconfig")
    app.conf.broker_url = redis_url
    app.conf.result_backend = redis_url
    return app


class CeleryDispatcher:
    """Enqueues pipeline steps as Celery tasks on their queues."""

    def __init__(self, app: Celery) -> None:
        self.app = app

    def dispatch(self) -> None:
        self.app.send_task(
            "videogen.dispatch", queue=ROUTER_QUEUE, ignore_result=True, expires=DISPATCH_EXPIRES
        )

    def probe(self, request_id: str, expires: float) -> None:
        """Ask the router to probe every backend now and signal ``request_id`` when done;
        the request expires unanswered rather than probe long after nobody waits."""
        self.app.send_task(
            "videogen.health", args=[request_id], queue=ROUTER_QUEUE, expires=expires
        )

    def sweep(self) -> None:
        """A sweep now (the beat's runs every ``sweep_interval``): a cancel's vendor jobs."""
        self.app.send_task(
            "videogen.sweep", queue=ROUTER_QUEUE, ignore_result=True, expires=DISPATCH_EXPIRES
        )

    def generate(self, backend: str, scene_id: str, countdown: float = 0.0) -> None:
        self.app.send_task(
            "videogen.generate",
            args=[backend, scene_id],
            queue=backend_queue(backend),
            countdown=countdown or None,
            ignore_result=True,
        )
