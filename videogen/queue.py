"""The Celery edge on the producer side: the app factory and the :class:`Dispatcher`.

Messages carry ids only (a scene id, a backend name): never a scene, never a key. Outcomes
live on the scene records, so no message asks for a Celery result (``ignore_result``: the
client does not even subscribe to one).
"""

from __future__ import annotations

from celery import Celery

from .constants import ROUTER_QUEUE, SENTINEL_TIMEOUT, backend_queue
from .redis_url import SentinelURL, check_redis_url, is_sentinel, parse_sentinel_url

DISPATCH_EXPIRES = 60.0
"""A dispatch step not started within this many seconds is dropped: later events and the
sweep ask for newer ones."""


def celery_app(redis_url: str) -> Celery:
    """A Celery app with videogen's settings (``celeryconfig.py``) on ``redis_url``, any
    form of :mod:`videogen.redis_url`."""
    app = Celery("videogen")
    app.config_from_object("celeryconfig")
    if is_sentinel(redis_url):
        on_sentinels(app, parse_sentinel_url(redis_url))
    else:
        app.conf.broker_url = app.conf.result_backend = check_redis_url(redis_url)
    return app


def on_sentinels(app: Celery, where: SentinelURL) -> None:
    """Broker and result backend on the master the sentinels name: kombu's ``sentinel://``
    transport and Celery's ``sentinel://`` backend, each told the master's name in its
    transport options (beside ``celeryconfig``'s visibility timeout). Both ask the sentinels
    again on every reconnect, so a worker follows a failover to the promoted replica."""
    urls = where.kombu_urls()
    sentinel_options = {
        "master_name": where.master_name,
        # The sentinels' own connections: bounded (Celery's backend gives them no timeout
        # otherwise) and without the master's password (kombu would send it to them).
        "sentinel_kwargs": {
            "socket_connect_timeout": SENTINEL_TIMEOUT,
            "socket_timeout": SENTINEL_TIMEOUT,
        },
    }
    app.conf.broker_url = app.conf.result_backend = urls
    app.conf.broker_transport_options = {
        **app.conf.broker_transport_options,
        **sentinel_options,
    }
    app.conf.result_backend_transport_options = {
        **app.conf.result_backend_transport_options,
        **sentinel_options,
    }


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
