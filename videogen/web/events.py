"""A job's scene events as server-sent events, read from the ``vg:events`` Redis stream.

The transition script appends every move of a scene to a terminal state to the stream
(:data:`videogen.redis_keys.EVENTS`), so nothing is missed between polls: the stream is read
with a blocking XREAD from where the client left off (its ``Last-Event-ID``), else from the
entry before the job's state was first looked at. Each event's id is the stream entry's, so a
client that reconnects resumes where it was. Once every scene of the job is terminal, a
``job.finished`` event ends the stream.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

from .. import redis_keys as keys
from ..api import VideoGenerator

BLOCK_MS = 1000
"""How long one XREAD waits: also how soon a closed connection is noticed."""
BATCH = 100


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


def read_after(generator: VideoGenerator, after: str) -> list[tuple[str, dict[str, str]]]:
    """Entries after ``after``, waiting up to :data:`BLOCK_MS` for one."""
    found = generator.store.r.xread({keys.EVENTS: after}, count=BATCH, block=BLOCK_MS)
    return [(str(i), dict(f)) for _, entries in found or [] for i, f in entries]


async def job_events(
    generator: VideoGenerator,
    job_id: str,
    last_event_id: str | None,
    disconnected: Callable[[], Any],
) -> AsyncIterator[dict[str, Any]]:
    """The job's scene events from ``last_event_id`` (else from now), then ``job.finished``."""
    cursor = last_event_id if last_event_id else await asyncio.to_thread(latest_id, generator)
    while not await asyncio.to_thread(all_finished, generator, job_id):
        if await disconnected():
            return
        for entry_id, fields in await asyncio.to_thread(read_after, generator, cursor):
            cursor = entry_id
            if fields.get("job") == job_id:
                yield scene_event(entry_id, fields)
    # the scenes' last moves may be after the cursor still: send them before the end
    for entry_id, fields in await asyncio.to_thread(_rest, generator, cursor):
        cursor = entry_id
        if fields.get("job") == job_id:
            yield scene_event(entry_id, fields)
    yield await asyncio.to_thread(finished_event, generator, job_id, cursor)


def _rest(generator: VideoGenerator, after: str) -> list[tuple[str, dict[str, str]]]:
    found = generator.store.r.xrange(keys.EVENTS, min=f"({after}", max="+")
    return [(str(i), dict(f)) for i, f in found]
