"""Writes that must outlive a failover: each waits for a replica to acknowledge it.

Redis replicates asynchronously: a master that dies takes with it the writes its replicas
had not received yet, and Sentinel promotes a replica without them. Most of the pipeline's
writes can be lost that way at little cost (a step is redone, a message is sent again). Two
cannot: the marker that a create request is about to leave (``submitting``), and the vendor
job id its answer brings (``vendor_job``). Lost, the scene would be sent to the vendor a
second time and paid twice, or its paid job forgotten. So those writes are followed, on the
same connection, by ``WAIT 1 <ms>``: it returns once a replica holds everything written
before it (the marker, and the slot the worker took for the scene).

``WAIT`` is issued only while the master has a replica connected (``INFO replication``, asked
at most every few seconds): a lone Redis (the embedded one) never waits, nor does a master
whose replicas are gone (just after a failover). A replica that does not answer in time is
logged and the pipeline goes on: ``WAIT`` narrows the window in which a write can be lost, it
does not make replication synchronous, and it must never hold up the pipeline for long.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

import redis

log = logging.getLogger("videogen")

DURABLE_FIELDS = ("submitting", "vendor_job")
"""Scene fields whose setting waits for a replica (see the module docstring)."""
REPLICA_WAIT_SECONDS = 1.0
"""A replica on the master's network acknowledges within a millisecond or two; one that
takes a second is in trouble, and the scene must not wait on it any longer (the write stands
on the master either way)."""
REPLICA_RECHECK_SECONDS = 5.0
"""How long the master's count of connected replicas is trusted: a replica that joins (or
leaves) is noticed within this, at one INFO per process per period."""


class Replication:
    """Whether the master has replicas, and writes that wait for one of them."""

    def __init__(
        self,
        client: redis.Redis,
        wait_seconds: float = REPLICA_WAIT_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.r: Any = client
        self.wait_seconds = wait_seconds
        self.clock = clock
        self._replicas = 0
        self._checked: float | None = None

    def replicas(self) -> int:
        """Replicas connected to the master, as it said at most ``REPLICA_RECHECK_SECONDS``
        ago."""
        now = self.clock()
        if self._checked is None or now - self._checked >= REPLICA_RECHECK_SECONDS:
            self._replicas = self._ask()
            self._checked = now
        return self._replicas

    def _ask(self) -> int:
        try:
            info = self.r.info("replication")
        except redis.ResponseError:  # INFO refused (some managed Redis): nothing to wait for
            return 0
        return int(info.get("connected_slaves", 0))

    def hset(
        self,
        key: str,
        mapping: Mapping[str, Any],
        what: str,
        also: Callable[[Any], None] | None = None,
        *,
        durable: bool = True,
    ) -> int | None:
        """``HSET key mapping``, then, when the master has a replica, ``WAIT`` for one on the
        same connection. Returns how many replicas acknowledged (``None``: none to wait
        for); when none did in time, logs a warning naming ``what`` was written. ``also``
        adds more commands to the same trip, after the ``HSET`` (the ``WAIT`` covers them);
        ``durable=False`` waits for nobody."""
        waits = durable and self.replicas() > 0
        pipe = self.r.pipeline(transaction=False)  # one connection: WAIT covers the trip
        pipe.hset(key, mapping=mapping)
        if also is not None:
            also(pipe)
        if waits:
            pipe.wait(1, int(self.wait_seconds * 1000))
        done = pipe.execute()
        if not waits:
            return None
        acked = int(done[-1])
        if not acked:
            self._checked = None  # a failover (a master with no replica yet): ask again now
            log.warning(
                "no Redis replica acknowledged %s within %.1f s (%d connected now): the "
                "write is on the master only until replication catches up, and a failover "
                "before then would lose it",
                what, self.wait_seconds, self.replicas(),
            )  # fmt: skip
        return acked
