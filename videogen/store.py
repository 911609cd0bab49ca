"""The one Redis module: jobs, scenes, leases, queued counts, health, circuits, stats.

Every key starts with ``vg:``. State that several workers change at once is changed by Lua
scripts (atomic on the server, timed by the server's clock, so hosts' clocks never matter):

- ``vg:scene:{id}`` hash, moved between states only by :meth:`Store.transition`;
- ``vg:lease:{backend}`` sorted set (scene id → expiry ms) plus an owner hash: the global
  in-flight cap. A crashed worker's lease expires; the sweeper resumes its scene;
- ``vg:queued:{backend}`` sorted set of scenes routed there and not yet started.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterable
from dataclasses import asdict
from typing import Any

import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from .errors import StoreUnavailableError
from .models import SceneState
from .policy import Circuit, CircuitState

PREFIX = "vg:"
LIVE = f"{PREFIX}live"
"""Set of unfinished scene ids: added at submit, removed by the terminal transition."""
REDIS_RETRIES = 40
"""~70 s of reconnect attempts, capped at 2 s apart: longer than a Redis restart takes."""
STACK = f"{PREFIX}stack"
"""Hash of what the running stack's workers use (see :mod:`videogen.stackview`), by role."""
PROBED = f"{PREFIX}probed:"
"""List a client blocks on while the router probes for it (``videogen health``)."""
PROBED_TTL = 60
LATENCY_BUCKETS = (1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0)
"""Seconds from a scene's start on a backend to its stored file: sandbox jobs land in the
first buckets, real vendor jobs (30 s to minutes) in the middle ones."""

_TRANSITION = """
-- KEYS: scene hash, live set. ARGV: allowed states (comma list), new state, scene id, fields...
local state = redis.call('HGET', KEYS[1], 'state')
if not state then return 0 end
local ok = false
for allowed in string.gmatch(ARGV[1], '[^,]+') do
  if allowed == state then ok = true end
end
if not ok then return 0 end
redis.call('HSET', KEYS[1], 'state', ARGV[2], unpack(ARGV, 4))
if ARGV[2] == 'succeeded' or ARGV[2] == 'failed' or ARGV[2] == 'cancelled' then
  redis.call('SREM', KEYS[2], ARGV[3])
end
return 1
"""

_WITHDRAW = """
local v = redis.call('HGET', KEYS[1], ARGV[1])
if v and string.find(v, ARGV[2], 1, true) then return redis.call('HDEL', KEYS[1], ARGV[1]) end
return 0
"""

_LOCK_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""

_LOCK_DROP = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

_NOW_MS = "local t = redis.call('TIME'); local now = t[1] * 1000 + math.floor(t[2] / 1000)\n"

_ACQUIRE = (
    _NOW_MS
    + """
local cur = redis.call('ZSCORE', KEYS[1], ARGV[1])
if cur and tonumber(cur) > now then
  if redis.call('HGET', KEYS[2], ARGV[1]) == ARGV[2] then
    redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
    return 1
  end
  return 0
end
local live = redis.call('ZCOUNT', KEYS[1], '(' .. now, '+inf')
if live >= tonumber(ARGV[4]) then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
return 1
"""
)

_RENEW = (
    _NOW_MS
    + """
if redis.call('HGET', KEYS[2], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
return 1
"""
)

_RELEASE = """
if redis.call('HGET', KEYS[2], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
return 1
"""

_REAP = (
    _NOW_MS
    + """
local dead = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)
for _, member in ipairs(dead) do
  redis.call('ZREM', KEYS[1], member)
  redis.call('HDEL', KEYS[2], member)
end
return dead
"""
)

_LIVE = _NOW_MS + "return redis.call('ZCOUNT', KEYS[1], '(' .. now, '+inf')"


def _now() -> float:
    return time.time()


class Store:
    """Typed access to videogen's state in one Redis database."""

    def __init__(self, client: redis.Redis) -> None:
        # redis-py types every reply as bytes | str; with decode_responses they are str.
        self.r: Any = client
        self._transition = client.register_script(_TRANSITION)
        self._acquire = client.register_script(_ACQUIRE)
        self._renew = client.register_script(_RENEW)
        self._release = client.register_script(_RELEASE)
        self._reap = client.register_script(_REAP)
        self._live = client.register_script(_LIVE)
        self._withdraw = client.register_script(_WITHDRAW)
        self._lock_renew = client.register_script(_LOCK_RENEW)
        self._lock_drop = client.register_script(_LOCK_DROP)

    @classmethod
    def from_url(cls, url: str, *, patient: bool = True) -> Store:
        """A store whose every command rides out a Redis restart (about a minute of retries):
        the steps are idempotent, and giving up mid-step could lose a vendor job id.
        ``patient=False``: one quick try, for what must never hold up a stop."""
        retries = REDIS_RETRIES if patient else 0
        retry = Retry(ExponentialBackoff(cap=2.0, base=0.05), retries)
        client = redis.Redis.from_url(
            url,
            decode_responses=True,
            retry=retry,
            retry_on_error=[redis.ConnectionError, redis.TimeoutError],
            socket_connect_timeout=2,
            health_check_interval=10,
        )
        return cls(client)

    def ping(self) -> None:
        try:
            self.r.ping()
        except redis.RedisError as error:
            raise StoreUnavailableError(f"cannot reach Redis: {type(error).__name__}") from None

    # -- jobs and scenes -------------------------------------------------------------------

    def create_job(self, job_id: str, scenes: list[dict[str, Any]]) -> list[str]:
        """Store a job and its scenes in one transaction; returns the scene ids."""
        now = _now()
        ids = [f"{job_id}-{i:03d}" for i in range(len(scenes))]
        pipe = self.r.pipeline(transaction=True)
        pipe.hset(
            f"{PREFIX}job:{job_id}", mapping={"id": job_id, "created_at": now, "scenes": len(ids)}
        )
        pipe.zadd(f"{PREFIX}jobs", {job_id: now})
        for index, (scene_id, spec) in enumerate(zip(ids, scenes, strict=True)):
            fields = _scene_fields(scene_id, job_id, index, spec, now)
            pipe.hset(f"{PREFIX}scene:{scene_id}", mapping=fields)
        pipe.rpush(f"{PREFIX}job:{job_id}:scenes", *ids)
        pipe.sadd(LIVE, *ids)
        pipe.execute()
        return ids

    def job(self, job_id: str) -> dict[str, Any] | None:
        data = self.r.hgetall(f"{PREFIX}job:{job_id}")
        return dict(data) if data else None

    def job_scene_ids(self, job_id: str) -> list[str]:
        return list(self.r.lrange(f"{PREFIX}job:{job_id}:scenes", 0, -1))

    def recent_jobs(self, limit: int = 20) -> list[str]:
        return list(self.r.zrevrange(f"{PREFIX}jobs", 0, limit - 1))

    def scene(self, scene_id: str) -> dict[str, Any] | None:
        data = self.r.hgetall(f"{PREFIX}scene:{scene_id}")
        return _decode_scene(data) if data else None

    def scenes(self, scene_ids: Iterable[str]) -> list[dict[str, Any]]:
        pipe = self.r.pipeline(transaction=False)
        for scene_id in scene_ids:
            pipe.hgetall(f"{PREFIX}scene:{scene_id}")
        return [_decode_scene(data) for data in pipe.execute() if data]

    def transition(
        self, scene_id: str, allowed: Iterable[SceneState], to: SceneState, **fields: Any
    ) -> bool:
        """Move a scene to ``to`` only if it is now in one of ``allowed`` (atomic)."""
        allowed_csv = ",".join(s.value for s in allowed)
        args: list[str | int | float] = [allowed_csv, to.value, scene_id]
        fields.setdefault("updated_at", _now())
        for key, value in fields.items():
            args += [key, _encode(value)]
        keys = [f"{PREFIX}scene:{scene_id}", LIVE]
        return bool(self._transition(keys=keys, args=args))

    def update_scene(self, scene_id: str, **fields: Any) -> None:
        fields.setdefault("updated_at", _now())
        mapping = {key: _encode(value) for key, value in fields.items()}
        self.r.hset(f"{PREFIX}scene:{scene_id}", mapping=mapping)

    def drop_fields(self, scene_id: str, *names: str) -> None:
        self.r.hdel(f"{PREFIX}scene:{scene_id}", *names)

    def bump(self, scene_id: str, counter: str, by: int = 1) -> int:
        return int(self.r.hincrby(f"{PREFIX}scene:{scene_id}", counter, by))

    def add_attempt(self, scene_id: str, attempt: dict[str, Any]) -> None:
        """Append to the scene's history of tries (backend, error, time)."""
        self.r.rpush(f"{PREFIX}scene:{scene_id}:attempts", json.dumps(attempt))

    def attempts(self, scene_id: str) -> list[dict[str, Any]]:
        return [json.loads(a) for a in self.r.lrange(f"{PREFIX}scene:{scene_id}:attempts", 0, -1)]

    def scenes_in(self, states: Iterable[SceneState], limit: int = 1000) -> list[dict[str, Any]]:
        """Unfinished scenes in ``states``, from the live index (for the sweeper): finished
        scenes are never read, however many jobs there are."""
        wanted = {s.value for s in states}
        ids = list(self.r.srandmember(LIVE, limit)) if limit else []
        return [s for s in self.scenes(ids) if s["state"] in wanted]

    # -- leases (global in-flight cap) -----------------------------------------------------

    def acquire_lease(self, backend: str, scene_id: str, token: str, ttl: float, cap: int) -> bool:
        keys = [f"{PREFIX}lease:{backend}", f"{PREFIX}lease:{backend}:owner"]
        return bool(self._acquire(keys=keys, args=[scene_id, token, int(ttl * 1000), cap]))

    def renew_lease(self, backend: str, scene_id: str, token: str, ttl: float) -> bool:
        keys = [f"{PREFIX}lease:{backend}", f"{PREFIX}lease:{backend}:owner"]
        return bool(self._renew(keys=keys, args=[scene_id, token, int(ttl * 1000)]))

    def release_lease(self, backend: str, scene_id: str, token: str) -> bool:
        keys = [f"{PREFIX}lease:{backend}", f"{PREFIX}lease:{backend}:owner"]
        return bool(self._release(keys=keys, args=[scene_id, token]))

    def reap_leases(self, backend: str) -> list[str]:
        """Remove expired leases (their workers died) and return their scene ids."""
        keys = [f"{PREFIX}lease:{backend}", f"{PREFIX}lease:{backend}:owner"]
        return list(self._reap(keys=keys))

    def in_flight(self, backend: str) -> int:
        return int(self._live(keys=[f"{PREFIX}lease:{backend}"]))

    # -- queued work -----------------------------------------------------------------------

    def mark_queued(self, backend: str, scene_id: str) -> None:
        self.r.zadd(f"{PREFIX}queued:{backend}", {scene_id: _now()})

    def unmark_queued(self, backend: str, scene_id: str) -> None:
        self.r.zrem(f"{PREFIX}queued:{backend}", scene_id)

    def queue_length(self, queue: str) -> int:
        """Messages waiting in a Celery queue (kombu keeps each queue as a Redis list; those
        reserved by workers are not counted)."""
        return int(self.r.llen(queue))

    def queued(self, backend: str) -> int:
        return int(self.r.zcard(f"{PREFIX}queued:{backend}"))

    def next_turn(self) -> int:
        """The round-robin counter, shared by every router process."""
        return int(self.r.incr(f"{PREFIX}rr"))

    # -- health, circuits, stats -----------------------------------------------------------

    def set_health(self, backend: str, report: dict[str, Any], ttl: float) -> None:
        self.r.set(f"{PREFIX}health:{backend}", json.dumps(report), ex=max(1, int(ttl)))

    def health(self, backend: str) -> dict[str, Any] | None:
        raw = self.r.get(f"{PREFIX}health:{backend}")
        return json.loads(raw) if raw else None

    def circuit(self, backend: str) -> Circuit:
        raw = self.r.get(f"{PREFIX}circuit:{backend}")
        if not raw:
            return Circuit()
        data = json.loads(raw)
        return Circuit(CircuitState(data["state"]), data["failures"], data["opened_at"])

    def set_circuit(self, backend: str, circuit: Circuit) -> None:
        self.r.set(f"{PREFIX}circuit:{backend}", json.dumps(asdict(circuit)))

    def count(self, backend: str, **increments: float) -> None:
        pipe = self.r.pipeline(transaction=False)
        for name, value in increments.items():
            if isinstance(value, int):
                pipe.hincrby(f"{PREFIX}stats:{backend}", name, value)
            else:
                pipe.hincrbyfloat(f"{PREFIX}stats:{backend}", name, value)
        pipe.execute()

    def observe_latency(self, backend: str, seconds: float) -> None:
        """Count one generation's latency into the histogram's bucket (cumulated on read)."""
        bucket = next((b for b in LATENCY_BUCKETS if seconds <= b), float("inf"))
        self.r.hincrby(f"{PREFIX}latency:{backend}", repr(bucket), 1)

    def latency_histogram(self, backend: str) -> list[tuple[str, int]]:
        """``(upper bound, cumulative count)`` for every bucket, ``+Inf`` last."""
        raw = {float(k): int(v) for k, v in self.r.hgetall(f"{PREFIX}latency:{backend}").items()}
        total, rows = 0, []
        for bound in (*LATENCY_BUCKETS, float("inf")):
            total += raw.get(bound, 0)
            rows.append(("+Inf" if bound == float("inf") else repr(bound), total))
        return rows

    def stats(self, backend: str) -> dict[str, float]:
        return {k: float(v) for k, v in self.r.hgetall(f"{PREFIX}stats:{backend}").items()}

    # -- beat guard ------------------------------------------------------------------------

    def hold_lock(self, name: str, token: str, ttl: float) -> bool:
        """Take or keep a named lock (only one ``celery beat`` may run); renewing checks the
        owner and extends in one script, so a lock that expired and was taken is never
        extended for its new owner."""
        key = f"{PREFIX}lock:{name}"
        if self.r.set(key, token, nx=True, px=int(ttl * 1000)):
            return True
        return bool(self._lock_renew(keys=[key], args=[token, int(ttl * 1000)]))

    def drop_lock(self, name: str, token: str) -> None:
        self._lock_drop(keys=[f"{PREFIX}lock:{name}"], args=[token])

    # -- what the running stack uses (videogen.stackview) ----------------------------------

    def publish(self, role: str, view: str) -> None:
        self.r.hset(STACK, role, view)

    def withdraw(self, role: str, node: str) -> None:
        """Remove a role's record, but only while it is still the one ``node`` published."""
        self._withdraw(keys=[STACK], args=[role, json.dumps(node)])

    def published(self) -> dict[str, str]:
        return dict(self.r.hgetall(STACK))

    def probed(self, request_id: str) -> None:
        """Tell the client waiting on ``request_id`` that fresh probe results are stored."""
        key = PROBED + request_id
        self.r.pipeline().rpush(key, "1").expire(key, PROBED_TTL).execute()

    def wait_probed(self, request_id: str, timeout: float) -> bool:
        return self.r.blpop([PROBED + request_id], timeout=timeout) is not None


def new_token() -> str:
    return uuid.uuid4().hex


_JSON_FIELDS = ("spec", "tried", "vendor_job", "request", "result", "planned_job")


def _scene_fields(
    scene_id: str, job_id: str, index: int, spec: dict[str, Any], now: float
) -> dict[str, Any]:
    return {
        "id": scene_id,
        "job_id": job_id,
        "index": index,
        "spec": json.dumps(spec),
        "state": SceneState.PENDING.value,
        "tried": "[]",
        "retries": 0,
        "deliveries": 0,
        "created_at": now,
        "updated_at": now,
    }


def _encode(value: Any) -> str | int | float:
    if isinstance(value, str | int | float):
        return value
    return json.dumps(value)


def _decode_scene(data: dict[str, str]) -> dict[str, Any]:
    scene: dict[str, Any] = dict(data)
    for key in _JSON_FIELDS:
        if scene.get(key):
            scene[key] = json.loads(scene[key])
    for key in ("index", "retries", "deliveries", "failures"):
        scene[key] = int(scene.get(key) or 0)
    for key in ("created_at", "updated_at", "started_at", "finished_at", "claimed_at"):
        if scene.get(key):
            scene[key] = float(scene[key])
    return scene


def check_reachable(url: str, timeout: float = 3.0) -> None:
    """Fail fast, naming the URL (never its password), when no Redis answers at ``url``.

    Clients call this before anything else: the store's own retries ride out a Redis restart
    for a minute, which is right for workers and far too long for a person at a prompt.
    """
    client = redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)
    try:
        client.ping()
    except redis.RedisError as error:
        why = str(error).rstrip(".") or type(error).__name__
        raise StoreUnavailableError(f"cannot reach Redis at {safe_url(url)}: {why}") from None
    finally:
        client.close()


def safe_url(url: str) -> str:
    """``url`` with any password replaced by ``***``."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}{port}"))
