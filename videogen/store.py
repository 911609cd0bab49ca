"""The one Redis module of the pipeline: jobs, scene records, transitions, leases, queues.

Key names come from :mod:`videogen.redis_keys`, scripts from :mod:`videogen.lua`. State that
several workers change at once is changed only by those scripts:

- a scene's hash moves between states only by :meth:`Store.apply` (the state machine's table,
  :mod:`videogen.states`, applied atomically) and :meth:`Store.start`;
- ``vg:lease:{backend}`` (scene id -> expiry, server ms) is the global in-flight cap; the
  holder's token is the scene's ``lease`` field. A crashed worker's lease expires and the
  sweeper resumes its scene;
- ``vg:queued:{backend}``: scenes routed there and not yet started.

Health, circuits, counters and the published stack are in :mod:`videogen.shared_state`;
webhook deliveries in :mod:`videogen.webhook_store`.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal, NamedTuple, TypeVar

import redis

from . import lua
from . import redis_keys as keys
from .backlog import DISPATCH_FLAG_MS, Backlog
from .cache import Mark
from .cache_store import CacheStore
from .classes import ScClass
from .config import JobOptions
from .errors import StoreUnavailableError
from .ledgers import Ledgers
from .models import Scene, SceneState
from .orphan_store import OrphanStore
from .pricing import to_micro
from .record import SceneRecord, decode, encode, initial_fields, new_record, replace
from .redis_conn import connect
from .replication import DURABLE_FIELDS, REPLICA_WAIT_SECONDS, Replication
from .scheduler import rank
from .shared_state import SharedState, count_in
from .spend import Settle
from .states import Event
from .webhook_store import WebhookStore

Started = Literal["started", "gone", "busy", "full"]
T = TypeVar("T")


class Released(NamedTuple):
    freed: bool
    """The token held the slot, and it is free now."""
    waiting: bool
    """Scenes wait in the backlog (a dispatch step would have work)."""
    asked: bool = False
    """Scenes wait, and this asked for a dispatch step (the caller sends it)."""


class Store(SharedState, Backlog, Ledgers, OrphanStore, WebhookStore, CacheStore):
    """Typed access to videogen's state in one Redis database.

    ``clock`` stamps records (``created_at``, ``updated_at``); leases use the server's.
    ``replica_wait``: seconds a durable write waits for a replica (:mod:`videogen.replication`).
    """

    def __init__(
        self,
        client: redis.Redis,
        clock: Callable[[], float] = time.time,
        *,
        replica_wait: float = REPLICA_WAIT_SECONDS,
    ) -> None:
        # redis-py types every reply as bytes | str; with decode_responses they are str.
        self.r: Any = client
        self.clock = clock
        self.replication = Replication(client, replica_wait)
        self._apply = client.register_script(lua.APPLY)
        self._start = client.register_script(lua.START)
        self._renew = client.register_script(lua.RENEW)
        self._release = client.register_script(lua.RELEASE)
        self._reap = client.register_script(lua.REAP)
        self._register_shared()
        self._register_backlog()
        self._register_webhooks()
        self._register_cache()

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        patient: bool = True,
        clock: Callable[[], float] = time.time,
        replica_wait: float = REPLICA_WAIT_SECONDS,
    ) -> Store:
        """A store on ``url``, any form of :mod:`videogen.redis_url` (see
        :func:`videogen.redis_conn.connect` for ``patient``)."""
        return cls(connect(url, patient=patient), clock, replica_wait=replica_wait)

    def ping(self) -> None:
        self.checked(self.r.ping)

    @staticmethod
    def checked(read: Callable[[], T]) -> T:
        """``read()``; a Redis that cannot be reached raises :class:`StoreUnavailableError`."""
        try:
            return read()
        except redis.RedisError as error:
            raise StoreUnavailableError(f"cannot reach Redis: {type(error).__name__}") from None

    # -- jobs and scenes -------------------------------------------------------------------

    def create_job(
        self,
        job_id: str,
        scenes: list[Scene],
        classes: list[ScClass],
        priority: int = 0,
        options: JobOptions | None = None,
        policy: str = "",
        marks: list[Mark] | None = None,
        *,
        misses: int = 0,
        ask: bool = False,
    ) -> tuple[list[str], bool]:
        """Store a job and its scenes, each waiting in its backlog class, in one transaction;
        returns the scene ids, and whether this asked for a dispatch step (``ask``: the
        caller then sends one; see :meth:`ask_dispatch`). ``options`` are kept on the job
        (its budget where the dispatch script reads it), ``policy`` on each scene (to class
        it again after a fail-over). ``marks`` (:func:`videogen.cache.plan`): a cache hit, or
        a scene that follows an identical one, is stored pending but kept out of the backlog
        (nothing can route it); a follower is listed under the scene it waits for, in the
        same transaction, and ``misses`` are counted there."""
        now = self.clock()
        marks = marks or [Mark()] * len(scenes)
        first_round, seq = self.next_job_rounds()
        ids = [f"{job_id}-{i:03d}" for i in range(len(scenes))]
        pipe = self.r.pipeline(transaction=True)
        job: dict[str, Any] = {"id": job_id, "created_at": now, "scenes": len(ids)}
        job["priority"] = priority
        options = options or JobOptions()
        opts = options.model_dump(mode="json", exclude_none=True, exclude={"webhook_secret"})
        job.update({k: int(v) if isinstance(v, bool) else v for k, v in opts.items()})
        if options.webhook_secret is not None:  # in Redis only: never in a message
            job["webhook_secret"] = options.webhook_secret.get_secret_value()
        if "max_cost_usd" in opts:
            job["max_cost_micro"] = to_micro(opts["max_cost_usd"])
        pipe.hset(keys.job(job_id), mapping=job)
        pipe.zadd(keys.JOBS, {job_id: now})
        pipe.sadd(keys.BACKLOG, *{c.name for c in classes})
        for index, (scene_id, spec, c, mark) in enumerate(
            zip(ids, scenes, classes, marks, strict=True)
        ):
            score = rank(priority, first_round + index, seq)
            record = new_record(
                scene_id, job_id, index, spec, now, queue=c.name, rank=score, policy=policy or None
            )
            leader = None if mark.leader is None else ids[mark.leader]
            record = replace(record, cache_key=mark.key, follows=leader)
            pipe.hset(keys.scene(scene_id), mapping=initial_fields(record))
            if leader is not None:
                pipe.rpush(keys.followers(leader), scene_id)
            if not mark.held:
                pipe.zadd(keys.backlog(c.name), {scene_id: score})
        pipe.rpush(keys.job_scenes(job_id), *ids)
        pipe.sadd(keys.LIVE, *ids)
        if misses:
            self.count_cache_misses(pipe, misses)
        if ask:
            self.ask_in(pipe)
        done = pipe.execute()
        return ids, bool(ask and done[-1])

    def job(self, job_id: str) -> dict[str, Any] | None:
        data = self.r.hgetall(keys.job(job_id))
        return dict(data) if data else None

    def job_scene_ids(self, job_id: str) -> list[str]:
        return list(self.r.lrange(keys.job_scenes(job_id), 0, -1))

    def recent_jobs(self, limit: int = 20) -> list[str]:
        return list(self.r.zrevrange(keys.JOBS, 0, limit - 1))

    def add_sample(self, slot: int, sample: str, keep: int, slot_seconds: float) -> bool:
        """Store ``sample`` as slot ``slot``'s, unless another process already did; the list
        keeps the newest ``keep``."""
        if not self.r.set(keys.sample_slot(slot), "1", nx=True, ex=max(1, int(slot_seconds * 2))):
            return False
        pipe = self.r.pipeline(transaction=True)
        pipe.lpush(keys.SAMPLES, sample)
        pipe.ltrim(keys.SAMPLES, 0, keep - 1)
        pipe.execute()
        return True

    def samples(self) -> list[str]:
        """The stored samples, oldest first."""
        return list(reversed(self.r.lrange(keys.SAMPLES, 0, -1)))

    def scene(self, scene_id: str) -> SceneRecord | None:
        data = self.r.hgetall(keys.scene(scene_id))
        return decode(data) if data else None

    def scenes(self, scene_ids: Iterable[str]) -> list[SceneRecord]:
        pipe = self.r.pipeline(transaction=False)
        for scene_id in scene_ids:
            pipe.hgetall(keys.scene(scene_id))
        return [decode(data) for data in pipe.execute() if data]

    def live_scenes(self, states: Iterable[SceneState], limit: int = 1000) -> list[SceneRecord]:
        """Unfinished scenes in ``states``, from the live index (for the sweeper): finished
        scenes are never read, however many jobs there are."""
        wanted = set(states)
        ids = list(self.r.srandmember(keys.LIVE, limit)) if limit else []
        return [s for s in self.scenes(ids) if s.state in wanted]

    # -- moving scenes ---------------------------------------------------------------------

    def apply(
        self,
        scene_id: str,
        event: Event,
        *,
        on: str = "",
        token: str = "",
        drop: Iterable[str] = (),
        backlog: tuple[ScClass, float] | None = None,
        settle: tuple[Settle, float] | None = None,
        **changes: Any,
    ) -> SceneState | None:
        """Move a scene by ``event`` if the state machine allows it from its state now, and
        write ``changes`` with it (atomic); returns the new state, ``None`` if refused.

        ``on``: only while the scene is on that backend. ``token``: only while that lease
        token holds its slot; a move that leaves running then gives the slot back.
        ``drop``: fields removed with the move (working fields a finished scene no longer
        needs). ``backlog``: ``(class, rank)`` a move back to pending waits in, entered in
        the same step. ``settle``: ``(what, usd)``, how the try's reservation ends, in the
        same step (:mod:`videogen.spend`)."""
        if token:
            if not on:
                raise ValueError("a lease guard needs the backend it is on")
            changes["lease"] = None
        changes.setdefault("updated_at", self.clock())
        score: Any = ""
        queue_key = keys.LIVE
        if backlog is not None:
            cls, score = backlog
            changes.update(queue=cls.name, rank=score)
            queue_key = keys.backlog(cls.name)
            self.r.sadd(keys.BACKLOG, cls.name)
        sets = encode(changes)
        what, usd = settle if settle is not None else ("", 0.0)
        args: list[Any] = [event.value, scene_id, on, token, score, what, to_micro(usd), len(sets)]
        for name, value in sets.items():
            args += [name, value]
        args += list(drop)
        lease_key = keys.lease(on) if on else keys.LIVE
        moved = self._apply(keys=[keys.scene(scene_id), keys.LIVE, lease_key, queue_key], args=args)
        return SceneState(moved) if moved else None

    def update(self, scene_id: str, **changes: Any) -> None:
        """Write record fields without a state change (``None`` unsets one).

        Setting a :data:`~videogen.replication.DURABLE_FIELDS` field (the vendor job id, the
        marker of a create request about to leave) waits for a replica's acknowledgement
        where the master has one: a failover must not forget a vendor job."""
        self.update_counting(scene_id, "", {}, **changes)

    def update_counting(
        self, scene_id: str, backend: str, increments: Mapping[str, float], **changes: Any
    ) -> None:
        """:meth:`update`, and :meth:`count` ``increments`` on ``backend`` in the same round
        trip (a vendor job adopted: the scene's record and the backend's counters)."""
        changes.setdefault("updated_at", self.clock())
        durable = [name for name in DURABLE_FIELDS if changes.get(name) is not None]
        also = (lambda pipe: count_in(pipe, backend, increments)) if increments else None
        what = f"scene {scene_id}'s {' and '.join(durable)}"
        self.replication.hset(
            keys.scene(scene_id), encode(changes), what, also, durable=bool(durable)
        )

    def add_attempt(self, scene_id: str, attempt: dict[str, Any]) -> None:
        """Append to the scene's history of tries (backend, error, time)."""
        self.r.rpush(keys.attempts(scene_id), json.dumps(attempt))

    def attempts(self, scene_id: str) -> list[dict[str, Any]]:
        return [json.loads(a) for a in self.r.lrange(keys.attempts(scene_id), 0, -1)]

    # -- slots (the global in-flight cap) --------------------------------------------------

    def start(
        self, backend: str, scene_id: str, token: str, ttl: float, cap: int
    ) -> tuple[Started, SceneRecord | None]:
        """Take a slot on ``backend`` for the scene and mark it running (atomic).

        Returns the outcome and the record as it was before: ``started`` (counting this
        delivery), ``gone`` (no longer on this backend: a stale message), ``busy`` (another
        worker holds its live slot), ``full`` (no free slot)."""
        now = self.clock()
        outcome, flat = self._start(
            keys=[keys.scene(scene_id), keys.lease(backend), keys.queued(backend)],
            args=[scene_id, backend, token, int(ttl * 1000), cap, now],
        )
        data = dict(zip(flat[::2], flat[1::2], strict=True))
        if not data:
            return outcome, None
        record = decode(data)
        if outcome == "started":
            record = replace(
                record,
                state=SceneState.RUNNING,
                lease=token,
                deliveries=record.deliveries + 1,
                started_at=now,
                updated_at=now,
            )
        return outcome, record

    def renew_lease(self, backend: str, scene_id: str, token: str, ttl: float) -> bool:
        keys_ = [keys.scene(scene_id), keys.lease(backend)]
        return bool(self._renew(keys=keys_, args=[scene_id, token, int(ttl * 1000)]))

    def release_lease(
        self, backend: str, scene_id: str, token: str, *, ask: bool = False
    ) -> Released:
        """Give the scene's slot back if ``token`` holds it; says whether scenes wait, and
        (``ask``) asks for a dispatch step in the same step when they do, as
        :meth:`ask_dispatch` would."""
        keys_ = [keys.scene(scene_id), keys.lease(backend), keys.BACKLOG, keys.DISPATCH]
        asked = f"{self.clock():.4f}" if ask else ""
        args: list[Any] = [scene_id, token, keys.backlog(""), asked, DISPATCH_FLAG_MS]
        found = int(self._release(keys=keys_, args=args))
        return Released(freed=found > 0, waiting=found >= 2, asked=found == 3)

    def reap_leases(self, backend: str) -> list[str]:
        """Remove expired leases (their workers died) and return their scene ids; each keeps
        its slot reserved (queued) until its resumed task starts."""
        return list(
            self._reap(keys=[keys.lease(backend), keys.queued(backend)], args=[self.clock()])
        )

    def loads(self, backends: Iterable[str]) -> dict[str, tuple[int, int]]:
        """``(in flight, queued)`` of each backend, in one round trip. Leases are counted
        live by this host's clock: a view for routing and people; the cap itself is held
        by :meth:`start`, on the server's clock."""
        names = list(backends)
        now_ms = int(time.time() * 1000)
        pipe = self.r.pipeline(transaction=False)
        for name in names:
            pipe.zcount(keys.lease(name), f"({now_ms}", "+inf")
            pipe.zcard(keys.queued(name))
        flat = pipe.execute() if names else []
        return {n: (int(flat[2 * i]), int(flat[2 * i + 1])) for i, n in enumerate(names)}

    def any_live(self, scene_ids: list[str]) -> bool:
        """Whether any of the scenes is not finished (one ``SMISMEMBER`` on the live set)."""
        return bool(scene_ids) and any(self.r.smismember(keys.LIVE, scene_ids))

    def leased(self, scenes: list[tuple[str, str]]) -> list[bool]:
        """For each ``(backend, scene id)``: whether the scene has a slot entry there (live or
        expired but not yet reaped)."""
        pipe = self.r.pipeline(transaction=False)
        for backend, scene_id in scenes:
            pipe.zscore(keys.lease(backend), scene_id)
        return [score is not None for score in pipe.execute()] if scenes else []

    def in_flight(self, backend: str) -> int:
        return self.loads([backend])[backend][0]

    def queued(self, backend: str) -> int:
        return int(self.r.zcard(keys.queued(backend)))

    def mark_queued(self, backend: str, scene_id: str) -> None:
        """Reserve a slot on ``backend`` for a scene sent there and not yet started."""
        self.r.zadd(keys.queued(backend), {scene_id: self.clock()})

    def unmark_queued(self, backend: str, scene_ids: list[str]) -> None:
        if scene_ids:
            self.r.zrem(keys.queued(backend), *scene_ids)

    def queued_ids(self, backend: str) -> list[str]:
        return list(self.r.zrange(keys.queued(backend), 0, -1))

    def queue_length(self, queue: str) -> int:
        """Messages waiting in a Celery queue (kombu keeps each queue as a Redis list; those
        reserved by workers are not counted)."""
        return int(self.r.llen(queue))

    def next_turn(self) -> int:
        """The round-robin counter, shared by every router process."""
        return int(self.r.incr(keys.ROUND_ROBIN))


def new_token() -> str:
    return uuid.uuid4().hex
