"""The Celery application, configured from ``celeryconfig.py``.

Tasks stay thin shells (load by id, call the library, turn the decision into a Celery call);
the pipeline's tasks (route, generate, health beats) build on this app.
"""

from __future__ import annotations

from celery import Celery

from videogen.constants import BACKEND_QUEUE_PREFIX, ROUTER_QUEUE


def create_app() -> Celery:
    """A Celery app with videogen's settings; built in a function, not at import of the core."""
    app = Celery("videogen")
    app.config_from_object("celeryconfig")
    return app


def backend_queue(name: str) -> str:
    """The queue a backend's workers consume."""
    return f"{BACKEND_QUEUE_PREFIX}{name}"


app = create_app()

__all__ = ["ROUTER_QUEUE", "app", "backend_queue", "create_app"]
