"""A job's scene events as server-sent events, read from the ``vg:events`` Redis stream.

The transition script appends every move of a scene to a terminal state to the stream
(:data:`videogen.redis_keys.EVENTS`), so nothing is missed between reads. One reader per
process (:class:`EventHub`, a thread doing blocking XREADs) fans the entries out to the
streams that follow each job, so a hundred open streams cost one Redis connection and one
thread, not one each. A stream starts from the client's ``Last-Event-ID`` (else from the newest
entry when it opened), first catching up with XRANGE, then taking the hub's live entries; an
entry it has already sent is skipped by id. Each event's id is the stream entry's, so a client
that reconnects resumes where it was. Once every scene of the job is terminal, a
``job.finished`` event ends the stream.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import redis

from .. import redis_keys as keys
from ..api import VideoGenerator

log = logging.getLogger(__name__)

BLOCK_MS = 1000
"""How long one XREAD waits: also how soon the hub notices it is asked to stop."""
BATCH = 500
RECHECK_SECONDS = 2.0
"""A stream with no event for this long checks whether its job finished and whether its
client is still there."""

Entry = tuple[str, dict[str, str]]


def entry_key(entry_id: str) -> tuple[int, int]:
    """A stream id as a comparable pair (``"1700000000000-3"`` → ``(1700000000000, 3)``)."""
    millis, _, seq = entry_id.partition("-")
    return int(millis), int(seq or 0)


def scene_event(entry_id: str, fields: dict[str, str]) -> dict[str, Any]:
    """One stream entry as an SSE event: ``scene.<state>``, with the entry's id."""
    data = {"job_id": fields.get("job"), "scene_id": fields.get("scene"), "state": fields["state"]}
    return {"id": entry_id, "event": f"scene.{fields['state']}", "data": json.dumps(data)}


def finished_event(generator: VideoGenerator, job_id: str, last_id: str) -> dict[str, Any]:
    states = [r.state.value for r in generator.records(job_id)]
    data = {"job_id": job_id, "states": {s: states.count(s) for s in sorted(set(states))}}
    return {"id": last_id, "event": "job.finished", "data": json.dumps(data)}


def all_finished(generator: VideoGenerator, job_id: str) -> bool:
    return all(record.finished for record in generator.records(job_id))


def latest_id(generator: VideoGenerator) -> str:
    """The newest entry's id (``0-0`` for an empty stream): events after it are new."""
    newest = generator.store.r.xrevrange(keys.EVENTS, count=1)
    return str(newest[0][0]) if newest else "0-0"


def read_after(generator: VideoGenerator, after: str) -> list[Entry]:
    """Entries after ``after``, waiting up to :data:`BLOCK_MS` for one."""
    found = generator.store.r.xread({keys.EVENTS: after}, count=BATCH, block=BLOCK_MS)
    return [(str(i), dict(f)) for _, entries in found or [] for i, f in entries]


def entries_since(generator: VideoGenerator, after: str) -> list[Entry]:
    """Every entry after ``after`` up to now (no wait)."""
    found = generator.store.r.xrange(keys.EVENTS, min=f"({after}", max="+")
    return [(str(i), dict(f)) for i, f in found]


@dataclass(eq=False)
class Subscription:
    """One open stream's inbox: the hub puts the job's entries here, from its thread."""

    job_id: str
    loop: asyncio.AbstractEventLoop
    inbox: asyncio.Queue[Entry] = field(default_factory=asyncio.Queue)

    def deliver(self, entry: Entry) -> None:
        self.loop.call_soon_threadsafe(self.inbox.put_nowait, entry)


class EventHub:
    """The process's one reader of ``vg:events``: started by the first subscription, stopped
    with the app."""

    def __init__(self, generator: VideoGenerator) -> None:
        self.generator = generator
        self._followers: dict[str, set[Subscription]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def subscribe(self, job_id: str) -> Subscription:
        subscription = Subscription(job_id, asyncio.get_running_loop())
        with self._lock:
            self._followers.setdefault(job_id, set()).add(subscription)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="vg-events", daemon=True)
                self._thread.start()
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        with self._lock:
            followers = self._followers.get(subscription.job_id, set())
            followers.discard(subscription)
            if not followers:
                self._followers.pop(subscription.job_id, None)

    @property
    def open_streams(self) -> int:
        with self._lock:
            return sum(len(s) for s in self._followers.values())

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=BLOCK_MS / 1000 + 2)

    def _run(self) -> None:
        cursor = None
        while not self._stop.is_set():
            try:
                cursor = cursor or latest_id(self.generator)
                for entry in read_after(self.generator, cursor):
                    cursor = entry[0]
                    self._fan_out(entry)
            except redis.RedisError as error:  # Redis away: the streams wait, then catch up
                log.warning("event hub: %s; reading again in 1 s", type(error).__name__)
                self._stop.wait(1.0)

    def _fan_out(self, entry: Entry) -> None:
        with self._lock:
            followers = list(self._followers.get(entry[1].get("job", ""), ()))
        for subscription in followers:
            subscription.deliver(entry)


async def job_events(
    hub: EventHub,
    job_id: str,
    last_event_id: str | None,
    disconnected: Callable[[], Any],
) -> AsyncIterator[dict[str, Any]]:
    """The job's scene events from ``last_event_id`` (else from now), then ``job.finished``."""
    generator = hub.generator
    subscription = hub.subscribe(job_id)  # before the catch-up: nothing falls in between
    try:
        cursor = last_event_id or str(await asyncio.to_thread(latest_id, generator))
        for entry in await asyncio.to_thread(entries_since, generator, cursor):
            if entry[1].get("job") == job_id:
                yield scene_event(*entry)
            cursor = entry[0]
        while not await asyncio.to_thread(all_finished, generator, job_id):
            try:
                entry = await asyncio.wait_for(subscription.inbox.get(), RECHECK_SECONDS)
            except TimeoutError:
                if await disconnected():
                    return
                continue
            if entry_key(entry[0]) > entry_key(cursor):
                cursor = entry[0]
                yield scene_event(*entry)
        # the scenes' last moves may not have reached the inbox yet: send them before the end
        for entry in await asyncio.to_thread(entries_since, generator, cursor):
            if entry[1].get("job") == job_id:
                yield scene_event(*entry)
            cursor = entry[0]
        yield await asyncio.to_thread(finished_event, generator, job_id, cursor)
    finally:
        hub.unsubscribe(subscription)
