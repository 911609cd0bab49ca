"""The result cache's steps: reuse stored videos at submit, store each new one, let identical
scenes of a job wait for one vendor job, and evict (the rules: :mod:`videogen.cache`).

- **At submit** (:func:`plan_job`, :func:`after_submit`), before anything can be routed: a
  scene whose key has a stored video is kept out of the backlog and moved straight to
  succeeded by ``Event.REUSE`` (so it is on the event stream like any other success), its
  file hard-linked (or copied) from ``outputs/.cache/<sha256>.mp4`` to its own path. It costs
  nothing; the money its original cost is counted as saved. Of identical scenes inside one
  job, the first is routed and the others wait as its *followers*, out of the backlog.
- **When a video is stored** (:func:`keep`, from the generation step): it goes into the
  content-addressed store and the index, and the scene's followers succeed with it.
- **In the sweep** (:mod:`videogen.followers`): followers their leader left waiting are
  settled, and videos unused past ``max_age_days``, or past ``max_bytes`` in all, are
  evicted, least recently used first.

A cache entry whose file is gone is a miss (and is forgotten), never an error.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

from .cache import Entry, Mark, blob_path, file_digest, key_of, plan
from .context import Context
from .models import Scene, SceneState
from .record import SceneRecord
from .states import Event

log = logging.getLogger("videogen")


def plan_job(
    ctx: Context, scenes: list[Scene], no_cache: bool
) -> tuple[list[Mark], dict[str, Entry]]:
    """Each scene's mark (hit, leader or follower) and the stored entries the hits reuse
    (the job's transaction counts its :func:`misses`)."""
    settings = ctx.vg.cache
    keys = [key_of(scene, settings, no_cache) for scene in scenes]
    entries = usable(ctx, {k for k in keys if k is not None})
    return plan(keys, set(entries)), entries


def misses(marks: list[Mark]) -> int:
    """Cache misses a job's marks count: its cached scenes that will go to a vendor."""
    return sum(1 for m in marks if m.key is not None and not m.held)


def after_submit(ctx: Context, ids: list[str], marks: list[Mark], entries: dict[str, Entry]) -> int:
    """Move every hit of a job just stored to succeeded; a hit whose file went meanwhile goes
    to the backlog after all. Returns how many were reused."""
    if not any(mark.hit for mark in marks):
        return 0
    back, reused = [], 0
    for record, mark in zip(ctx.store.scenes(ids), marks, strict=True):
        if not mark.hit or mark.key is None:
            continue
        if reuse(ctx, record, entries[mark.key]):
            reused += 1
        else:
            back.append((record.id, record.queue or "", record.rank or 0.0))
    ctx.store.enqueue(back)
    return reused


def usable(ctx: Context, keys: set[str]) -> dict[str, Entry]:
    """The stored entries of ``keys`` whose file is there; an entry whose file is gone is
    forgotten."""
    out = {}
    for key, entry in ctx.store.cache_entries(keys).items():
        if entry.path(ctx.settings.outputs).is_file():
            out[key] = entry
        else:
            log.warning("cache: the file of %s is gone; forgetting it", key[:12])
            forget(ctx, key)
    return out


def forget(ctx: Context, key: str) -> None:
    """Drop an entry, and its file when no other key points at it."""
    sha = ctx.store.cache_drop(key)
    if sha:
        blob_path(ctx.settings.outputs, sha).unlink(missing_ok=True)


def reuse(ctx: Context, record: SceneRecord, entry: Entry) -> bool:
    """Give a pending scene the entry's video (at its own path) and move it to succeeded;
    False when the file cannot be had (the scene is left as it was)."""
    dest = ctx.settings.outputs / record.job_id / f"{record.id}.mp4"
    try:
        place(entry.path(ctx.settings.outputs), dest)
    except OSError as error:
        log.warning("cache: cannot reuse %s for scene %s: %s", entry.key[:12], record.id, error)
        forget(ctx, entry.key)
        return False
    now = ctx.clock()
    result = entry.reused_result(dest)
    moved = ctx.store.apply(
        record.id, Event.REUSE, result=result, backend=entry.backend, finished_at=now
    )
    if moved is None:
        return True  # it moved on meanwhile (cancelled, or reused by another step)
    dest.with_suffix(".json").write_text(json.dumps(result, indent=2))
    use = {"scene": record.id, "job": record.job_id, "at": now, "saved_usd": entry.usd}
    ctx.store.cache_used(entry, use, now)
    log.info("scene %s: reused the video of scene %s (%s)", record.id, entry.scene_id, dest)
    return True


def place(source: Path, dest: Path) -> None:
    """Put ``source``'s bytes at ``dest``: a hard link (stored once), a copy where the file
    system refuses links; replaced atomically, so ``dest`` is never half written."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    temp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:8]}")
    try:
        os.link(source, temp)
    except OSError:
        if not source.is_file():
            raise
        shutil.copyfile(source, temp)
    os.replace(temp, dest)


def keep(
    ctx: Context,
    record: SceneRecord,
    result: dict[str, Any],
    usd: float,
    model: str,
) -> None:
    """A scene just succeeded with a new video: store it under the scene's key (unless the
    key has a usable one already) and give it to the scene's followers. Never raises for the
    cache's sake: a video that cannot be stored leaves the followers to the sweep."""
    if record.cache_key is None:
        return
    try:
        entry = _store(ctx, record, result, usd, model)
    except OSError as error:
        log.warning("cache: cannot store the video of scene %s: %s", record.id, error)
        entry = None
    release(ctx, record.id, entry)


def remember(ctx: Context, leader: SceneRecord) -> Entry | None:
    """A succeeded scene's video, stored now if it was not (its worker could not, or it came
    from an orphan); ``None`` when its file cannot be had."""
    if leader.cache_key is None or not leader.result:
        return None
    try:
        return _store(ctx, leader, leader.result, leader.spent / 1e6, "")
    except (OSError, KeyError) as error:
        log.warning("cache: cannot store the video of scene %s: %s", leader.id, error)
        return None


def _store(
    ctx: Context, record: SceneRecord, result: dict[str, Any], usd: float, model: str
) -> Entry:
    key = record.cache_key or ""
    found = usable(ctx, {key}).get(key)
    if found is not None:
        return found  # an identical scene of another job stored its video first
    dest = Path(result["video_path"])
    sha = file_digest(dest)
    blob = blob_path(ctx.settings.outputs, sha)
    if not blob.is_file():
        place(dest, blob)
    entry = Entry(
        key=key,
        sha256=sha,
        size_bytes=blob.stat().st_size,
        backend=result["backend"],
        model=model,
        vendor_job_id=str(result.get("vendor_job_id", "")),
        scene_id=record.id,
        job_id=record.job_id,
        created_at=ctx.clock(),
        usd=max(usd, 0.0),
        result={k: v for k, v in result.items() if k not in ("video_path", "seconds")},
    )
    if not ctx.store.cache_put(entry):
        return ctx.store.cache_entries([key]).get(key, entry)
    return entry


def release(ctx: Context, leader: str, entry: Entry | None) -> None:
    """The leader succeeded: its followers succeed with ``entry``'s video. Those it cannot
    serve (no usable entry) keep waiting, for the sweep to route
    (:func:`videogen.followers.sweep_cache`)."""
    followers = ctx.store.followers(leader)
    if not followers:
        return  # the usual case: one read (a follower listed after it is the sweep's)
    waiting = [
        r
        for r in ctx.store.scenes(followers)
        if r.state is SceneState.PENDING and r.follows == leader
    ]
    serve(ctx, waiting, entry)
    ctx.store.drop_followers(leader)


def serve(ctx: Context, waiting: list[SceneRecord], entry: Entry | None) -> list[SceneRecord]:
    """Reuse ``entry`` for each follower, in order, until one cannot be served; returns
    those served."""
    served = []
    for record in waiting:
        if entry is None or not reuse(ctx, record, entry):
            break
        served.append(record)
    return served


def reuse_waiting(ctx: Context, record: SceneRecord) -> bool:
    """A pending scene of its own (not a follower) found missing from the backlog (a crash
    between its submit and its reuse): its stored video, if there is one, rather than a
    vendor job. True when it was given one."""
    key = record.cache_key
    if key is None or record.follows is not None:
        return False
    entry = usable(ctx, {key}).get(key)
    return entry is not None and reuse(ctx, record, entry)
