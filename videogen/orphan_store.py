"""Orphans in Redis: vendor jobs their scenes left behind, kept until the vendor says how they
ended. A mixin of :class:`videogen.store.Store`; what is done with them is
:mod:`videogen.orphans`'."""

from __future__ import annotations

from typing import Any

from . import redis_keys as keys
from .models import Orphan
from .pricing import to_micro


class OrphanStore:
    r: Any

    def add_orphan(self, orphan: Orphan) -> None:
        pipe = self.r.pipeline(transaction=False)
        pipe.hset(keys.ORPHANS, orphan.key, orphan.model_dump_json())
        if orphan.cancelled:  # a person's cancel: only its vendor job's cancel is pending
            pipe.execute()
            return
        pipe.hincrby(keys.stats(orphan.job.backend), "orphans", 1)
        pipe.hincrbyfloat(keys.stats(orphan.job.backend), "orphan_usd", orphan.usd)
        pipe.execute()

    def orphans(self) -> list[Orphan]:
        return [Orphan.model_validate_json(v) for v in self.r.hvals(keys.ORPHANS)]

    def drop_orphan(self, orphan: Orphan, outcome: str) -> bool:
        """Forget it, counting how it ended (``orphans_<outcome>``); False when another
        sweeper already did."""
        if not self.r.hdel(keys.ORPHANS, orphan.key):
            return False
        if orphan.cancelled:
            return True
        self.r.hincrby(keys.stats(orphan.job.backend), f"orphans_{outcome}", 1)
        return True

    def refund(self, orphan: Orphan) -> None:
        """Take back what was settled for an orphan the vendor says it failed (not billed)."""
        micro = to_micro(orphan.usd)
        pipe = self.r.pipeline(transaction=False)
        for key in orphan.ledgers:
            pipe.hincrby(key, "settled", -micro)
            pipe.hincrby(key, "baseline", -to_micro(orphan.base))
        if orphan.ledgers:  # else nothing was settled for it (no reservation was made)
            pipe.hincrby(keys.scene(orphan.scene_id), "spent", -micro)
        if not orphan.cancelled:
            pipe.hincrbyfloat(keys.stats(orphan.job.backend), "orphan_usd", -orphan.usd)
        pipe.execute()
