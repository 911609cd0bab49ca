"""The result cache's sweep: followers (scenes waiting for an identical scene of their job)
whose leader ended without settling them, and eviction.

A follower's leader that failed or was cancelled gave it nothing: the followers are routed
themselves, the first leading the rest (its tries are its own: the leader's failure may have
been its backends', not the scene's; a content-policy refusal fails each in turn, unbilled).
A leader that succeeded while nobody released its followers (its worker died between the
success and the release, or could not store the video, or the video was an orphan's) gives
them its video, stored now if need be; only a leader whose file is gone leaves them to be
routed.
"""

from __future__ import annotations

import logging
from collections import defaultdict

from . import routing
from .cache import evictions
from .context import Context
from .models import SceneState
from .record import SceneRecord
from .reuse import forget, remember, serve, usable

log = logging.getLogger("videogen")

FOLLOW_GRACE = 5.0
"""Seconds after its leader succeeded before the sweep gives up on the leader's video for a
follower (the leader's worker stores the video just after the success: a sweep in between
must not route the follower and pay for it twice)."""
EVICT_BATCH = 500
"""Least recently used entries one sweep looks at for eviction."""


def sweep_cache(ctx: Context) -> dict[str, int]:
    """Settle followers whose leader ended without settling them, and evict; returns the
    counts that are not zero (``followers_reused``, ``followers_routed``, ``evicted``)."""
    waiting = [r for r in ctx.store.live_scenes([SceneState.PENDING]) if r.follows]
    groups: dict[str, list[SceneRecord]] = defaultdict(list)
    for record in sorted(waiting, key=lambda r: r.index):
        groups[record.follows or ""].append(record)
    leaders = {r.id: r for r in ctx.store.scenes(groups)}
    counts = {"followers_reused": 0, "followers_routed": 0}
    for leader_id, group in groups.items():
        reused, routed = _sweep_group(ctx, leaders.get(leader_id), group)
        counts["followers_reused"] += reused
        counts["followers_routed"] += routed
    counts["evicted"] = evict(ctx)
    return {name: n for name, n in counts.items() if n}


def _sweep_group(
    ctx: Context, leader: SceneRecord | None, group: list[SceneRecord]
) -> tuple[int, int]:
    """``(reused, routed)`` for the followers of one leader."""
    if leader is not None and not leader.finished:
        return 0, 0
    if leader is None or leader.state is not SceneState.SUCCEEDED:
        return 0, route(ctx, group)
    key = group[0].cache_key or ""
    entry = usable(ctx, {key}).get(key)
    if entry is None and ctx.clock() - (leader.finished_at or 0.0) < FOLLOW_GRACE:
        return 0, 0  # its worker may be storing the video right now
    if entry is None:
        entry = remember(ctx, leader)  # its worker could not store it, or an orphan's video
    served = serve(ctx, group, entry)
    left = group[len(served) :]
    return len(served), route(ctx, left) if left else 0


def route(ctx: Context, group: list[SceneRecord]) -> int:
    """Followers whose leader gave them nothing: the first is routed, the others follow it.
    In an order a crash cannot spoil: the others point at the new leader before it leaves
    them (a sweep then finds the rest waiting on a live scene, or the new leader still
    waiting on the old one, and does the same again). Returns how many were routed."""
    first, rest = group[0], group[1:]
    ctx.store.add_followers(first.id, [r.id for r in rest])
    for record in rest:
        ctx.store.update(record.id, follows=first.id)
    cls = routing.class_for(ctx, first, first.tried)
    if cls is None:
        routing.fail(ctx, first.id, "no backend left that can take it")
        return 0
    ctx.store.update(first.id, follows=None, queue=cls.name)
    ctx.store.enqueue([(first.id, cls.name, first.rank or 0.0)])
    ctx.ask_dispatch()
    log.info("scene %s: the scene it waited for gave no video; routed", first.id)
    return 1


def evict(ctx: Context) -> int:
    """Evict what ``video_generation.cache`` says is too old or too much."""
    total = ctx.store.cache_counters()["bytes"]
    oldest = ctx.store.cache_oldest(EVICT_BATCH)
    keys = evictions(oldest, total, ctx.clock(), ctx.vg.cache)
    for key in keys:
        forget(ctx, key)
    if keys:
        log.info("cache: evicted %d videos", len(keys))
    return len(keys)
