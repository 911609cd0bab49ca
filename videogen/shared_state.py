"""Per-backend state every process shares: health reports, circuits, counters, latency, plus
the beat's lock, the running stack's published view and probe requests.

A mixin of :class:`videogen.store.Store` (same client, same key names from
:mod:`videogen.redis_keys`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

from . import lua
from . import redis_keys as keys
from .policy import Circuit, CircuitState

PROBED_TTL = 60
LATENCY_BUCKETS = (1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0)
"""Seconds from a scene's start on a backend to its stored file: sandbox jobs land in the
first buckets, real vendor jobs (30 s to minutes) in the middle ones."""


class SharedState:
    """Health, circuits and counters of backends; the beat lock; the published stack."""

    r: Any

    def _register_shared(self) -> None:
        self._withdraw = self.r.register_script(lua.WITHDRAW)
        self._lock_renew = self.r.register_script(lua.LOCK_RENEW)
        self._lock_drop = self.r.register_script(lua.LOCK_DROP)

    # -- health and circuits ---------------------------------------------------------------

    def set_health(self, backend: str, report: dict[str, Any], ttl: float) -> None:
        """Store a probe's report; it expires after ``ttl`` (then the backend is unknown)."""
        self.r.set(keys.health(backend), json.dumps(report), ex=max(1, int(ttl)))

    def health(self, backend: str) -> dict[str, Any] | None:
        raw = self.r.get(keys.health(backend))
        return json.loads(raw) if raw else None

    def circuit(self, backend: str) -> Circuit:
        return parse_circuit(self.r.get(keys.circuit(backend)))

    def set_circuit(self, backend: str, circuit: Circuit) -> None:
        self.r.set(keys.circuit(backend), json.dumps(asdict(circuit)))

    def close_circuit(self, backend: str) -> None:
        """A success: the backend's circuit is closed, with no failures counted."""
        self.r.delete(keys.circuit(backend))

    # -- counters --------------------------------------------------------------------------

    def count(self, backend: str, **increments: float) -> None:
        pipe = self.r.pipeline(transaction=False)
        count_in(pipe, backend, increments)
        pipe.execute()

    def count_success(self, backend: str, seconds: float) -> None:
        """One scene succeeded after ``seconds``: its latency's sum and histogram bucket (the
        histogram's total is the count of successes), and, in the same trip, the backend's
        circuit closed (:meth:`close_circuit`)."""
        bucket = next((b for b in LATENCY_BUCKETS if seconds <= b), float("inf"))
        pipe = self.r.pipeline(transaction=False)
        pipe.hincrby(keys.stats(backend), "latency_ms_sum", int(seconds * 1000))
        pipe.hincrby(keys.latency(backend), repr(bucket), 1)
        pipe.delete(keys.circuit(backend))
        pipe.execute()

    def latency_histogram(self, backend: str) -> list[tuple[str, int]]:
        """``(upper bound, cumulative count)`` for every bucket, ``+Inf`` last."""
        raw = {float(k): int(v) for k, v in self.r.hgetall(keys.latency(backend)).items()}
        total, rows = 0, []
        for bound in (*LATENCY_BUCKETS, float("inf")):
            total += raw.get(bound, 0)
            rows.append(("+Inf" if bound == float("inf") else repr(bound), total))
        return rows

    def stats(self, backend: str) -> dict[str, float]:
        """The backend's counters, with ``succeeded`` from the latency histogram."""
        pipe = self.r.pipeline(transaction=False)
        pipe.hgetall(keys.stats(backend))
        pipe.hvals(keys.latency(backend))
        counters, buckets = pipe.execute()
        stats = {k: float(v) for k, v in counters.items()}
        stats["succeeded"] = float(sum(int(n) for n in buckets))
        return stats

    # -- beat guard ------------------------------------------------------------------------

    def hold_lock(self, name: str, token: str, ttl: float) -> bool:
        """Take or keep a named lock (only one ``celery beat`` may run); renewing checks the
        owner and extends in one script, so a lock that expired and was taken is never
        extended for its new owner."""
        key = keys.lock(name)
        if self.r.set(key, token, nx=True, px=int(ttl * 1000)):
            return True
        return bool(self._lock_renew(keys=[key], args=[token, int(ttl * 1000)]))

    def drop_lock(self, name: str, token: str) -> bool:
        """Release the lock if ``token`` still holds it (never another owner's)."""
        return bool(self._lock_drop(keys=[keys.lock(name)], args=[token]))

    # -- what the running stack uses (videogen.stackview) ----------------------------------

    def publish(self, role: str, view: str) -> None:
        self.r.hset(keys.STACK, role, view)

    def withdraw(self, role: str, node: str) -> None:
        """Remove a role's record, but only while it is still the one ``node`` published."""
        self._withdraw(keys=[keys.STACK], args=[role, json.dumps(node)])

    def published(self) -> dict[str, str]:
        return dict(self.r.hgetall(keys.STACK))

    def probed(self, request_id: str) -> None:
        """Tell the client waiting on ``request_id`` that fresh probe results are stored."""
        key = keys.probed(request_id)
        self.r.pipeline().rpush(key, "1").expire(key, PROBED_TTL).execute()

    def wait_probed(self, request_id: str, timeout: float) -> bool:
        return self.r.blpop([keys.probed(request_id)], timeout=timeout) is not None


def parse_circuit(raw: str | None) -> Circuit:
    if not raw:
        return Circuit()
    data = json.loads(raw)
    return Circuit(CircuitState(data["state"]), data["failures"], data["opened_at"])


def count_in(pipe: Any, backend: str, increments: Mapping[str, float]) -> None:
    """Add :meth:`SharedState.count`'s commands to ``pipe``."""
    for name, value in increments.items():
        if isinstance(value, int):
            pipe.hincrby(keys.stats(backend), name, value)
        elif value:
            pipe.hincrbyfloat(keys.stats(backend), name, value)
