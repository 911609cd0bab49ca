"""The result cache's index in Redis: entries by key, their reuses, the eviction order, the
counters, and the scenes waiting for an identical one. A mixin of
:class:`videogen.store.Store`; the rules are :mod:`videogen.cache`'s, the steps
:mod:`videogen.reuse`'s."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from . import lua
from . import redis_keys as keys
from .cache import Entry, Stored
from .pricing import to_micro

MAX_USES_KEPT = 1000
"""Reuses remembered per entry (the newest): metadata, not a ledger; the counters are exact."""


class CacheStore:
    r: Any

    def _register_cache(self) -> None:
        self._cache_put = self.r.register_script(lua.CACHE_PUT)
        self._cache_drop = self.r.register_script(lua.CACHE_DROP)

    def cache_entries(self, cache_keys: Iterable[str]) -> dict[str, Entry]:
        """The stored entries of ``cache_keys`` (those with none are left out)."""
        names = list(cache_keys)
        raw = self.r.mget([keys.cache_entry(k) for k in names]) if names else []
        return {k: Entry.model_validate_json(v) for k, v in zip(names, raw, strict=True) if v}

    def cache_put(self, entry: Entry) -> bool:
        """Store an entry; False when its key already has one (that one stays)."""
        return bool(
            self._cache_put(
                keys=[
                    keys.cache_entry(entry.key),
                    keys.CACHE_LRU,
                    keys.CACHE_REFS,
                    keys.CACHE_STATS,
                ],
                args=[
                    entry.model_dump_json(),
                    entry.key,
                    entry.created_at,
                    entry.sha256,
                    entry.size_bytes,
                ],
            )  # fmt: skip
        )

    def cache_drop(self, key: str) -> str | None:
        """Forget an entry; returns its file's content hash when no key points at it any
        more (the caller deletes the file)."""
        sha = self._cache_drop(
            keys=[keys.cache_entry(key), keys.CACHE_LRU, keys.CACHE_REFS, keys.CACHE_STATS,
                  keys.cache_uses(key)],
            args=[key],
        )  # fmt: skip
        return sha or None

    def cache_used(self, entry: Entry, use: dict[str, Any], now: float) -> None:
        """Count a reuse (a hit, and the money it saved), remember it, and move the entry to
        the back of the eviction order."""
        pipe = self.r.pipeline(transaction=False)
        pipe.rpush(keys.cache_uses(entry.key), json.dumps(use))
        pipe.ltrim(keys.cache_uses(entry.key), -MAX_USES_KEPT, -1)
        pipe.zadd(keys.CACHE_LRU, {entry.key: now}, xx=True)
        pipe.hincrby(keys.CACHE_STATS, "hits", 1)
        pipe.hincrby(keys.CACHE_STATS, "saved_micro", to_micro(entry.usd))
        pipe.execute()

    def cache_uses(self, key: str) -> list[dict[str, Any]]:
        return [json.loads(u) for u in self.r.lrange(keys.cache_uses(key), 0, -1)]

    @staticmethod
    def count_cache_misses(client: Any, count: int) -> None:
        """Count ``count`` cache misses, on ``client`` (a job's transaction counts its own)."""
        client.hincrby(keys.CACHE_STATS, "misses", count)

    def cache_counters(self) -> dict[str, int]:
        """``hits``, ``misses``, ``bytes`` (stored), ``saved_micro``, ``entries``."""
        raw = self.r.hgetall(keys.CACHE_STATS)
        out = {name: int(raw.get(name, 0)) for name in ("hits", "misses", "bytes", "saved_micro")}
        out["entries"] = int(self.r.zcard(keys.CACHE_LRU))
        return out

    def cache_oldest(self, count: int) -> list[Stored]:
        """The ``count`` least recently used entries, oldest first."""
        pairs = self.r.zrange(keys.CACHE_LRU, 0, count - 1, withscores=True)
        found = self.cache_entries(k for k, _ in pairs)
        return [
            Stored(k, float(score), found[k].size_bytes if k in found else 0) for k, score in pairs
        ]

    # -- scenes waiting for an identical one -----------------------------------------------

    def add_followers(self, leader: str, scene_ids: list[str]) -> None:
        if scene_ids:
            self.r.rpush(keys.followers(leader), *scene_ids)

    def followers(self, leader: str) -> list[str]:
        return list(self.r.lrange(keys.followers(leader), 0, -1))

    def drop_followers(self, leader: str) -> None:
        self.r.delete(keys.followers(leader))
