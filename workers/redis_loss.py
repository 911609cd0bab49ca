"""Keep a worker alive when Redis goes away while it holds unacknowledged messages.

kombu 5.7's Redis channel, once its connection is lost and released, reaches Redis through a
new client built from that released connection, which raises ``AttributeError``
(``'NoneType' object has no attribute 'hostname'`` or ``'client'``); Celery takes it as
unrecoverable and the worker exits. It happens twice over when Redis restarts while a worker
has a thread waiting on its queue and others running tasks (any backend below its cap): when
the closing channel puts the unacknowledged messages back on their queues, and when a task
that was running finishes and acknowledges its message on that old channel. Seen in
``tests/pipeline/test_reliability.py``.

Skipping both is safe here. The messages stay in kombu's unacked set; the tasks running in
this worker finish their scenes (a scene's slot is a lease in Redis, not its message); a
message put back later by kombu's visibility timeout finds its scene finished and does
nothing; and a scene whose message is lost for good is sent again by the sweeper
(``route_claim_timeout``) or resumed from its lease. So the failure is logged, and the
consumer reconnects as it does after any other connection loss.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

from kombu.transport import redis as kombu_redis

log = logging.getLogger("videogen")

_MARK = "_videogen_survives_redis_loss"


def survive_redis_loss() -> None:
    """Patch kombu's Redis ``QoS`` once per process (idempotent): putting messages back and
    acknowledging or rejecting them on a channel whose connection is gone are skipped."""
    qos = kombu_redis.QoS
    for name in ("restore_unacked", "ack", "reject"):
        original: Any = getattr(qos, name)
        if not getattr(original, _MARK, False):
            setattr(qos, name, _tolerant(name, original))


def _tolerant(name: str, original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def call(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return original(self, *args, **kwargs)
        except AttributeError as error:  # the connection it needs was released
            log.warning(
                "Redis connection lost: %s skipped on a closed channel (%s); the message "
                "stays unacknowledged, for the sweeper and the visibility timeout",
                name,
                error,
            )
            if name == "restore_unacked":
                self._delivered.clear()
            return None

    setattr(call, _MARK, True)
    return call
