"""Workers reconnect to the broker within a second or two of its return.

Celery's consumer reconnects through kombu's ``Connection.ensure_connection`` with kombu's
default pauses: after each round of the broker's URLs (every sentinel, on a Sentinel URL) it
sleeps 2 s, then 4 s, 6 s... up to 30 s, and Celery offers no setting for them. A worker
could so come back up to half a minute after Redis did (a restart, a failover), its queues
unserved the while: a batch stood still for seconds after a Sentinel failover had already
promoted the replica (``tests/pipeline/test_redis_ha.py``).

:class:`QuickReconnectConsumer` (``worker_consumer``, set by :func:`workers.app.create_app`)
hands kombu shorter pauses: 0.5 s, then up to 2 s. While Redis is away, that is one refused
connection (or one question per sentinel) every 2 s per worker: nothing.
"""

from __future__ import annotations

import functools
from typing import Any

from celery.worker.consumer import Consumer

RECONNECT_PAUSES = {"interval_start": 0.5, "interval_step": 0.5, "interval_max": 2.0}
"""Seconds between rounds of reconnection attempts: the first, the increase, the most."""


class QuickReconnectConsumer(Consumer):  # type: ignore[misc]  # Celery is untyped
    """Celery's consumer, reconnecting with :data:`RECONNECT_PAUSES`."""

    def ensure_connected(self, conn: Any) -> Any:
        # Celery calls conn.ensure_connection(errback, max_retries, callback=...) with no
        # pauses: this connection object's own method is given ours.
        conn.ensure_connection = functools.partial(conn.ensure_connection, **RECONNECT_PAUSES)
        return super().ensure_connected(conn)


CONSUMER = f"{__name__}:{QuickReconnectConsumer.__name__}"
"""The ``worker_consumer`` setting that selects it."""
