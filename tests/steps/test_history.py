"""The dashboard's samples in a real Redis: one per slot whichever web process takes it, the
newest hour kept, read back oldest first."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from videogen.store import Store
from videogen.web import history


@dataclass
class _Source:
    """What :func:`history.take` reads: the statistics (fixed here) and the real store."""

    store: Store
    succeeded: int = 0

    def get_statistics(self) -> dict[str, Any]:
        row = {"in_flight": 1, "queued": 0, "succeeded": self.succeeded, "failed": 0,
               "average_latency_s": 2.0}  # fmt: skip
        return {"backends": {"runway": row}, "spend": {"backends": {}}}


def test_one_sample_per_slot_across_processes_oldest_first(steps):
    first, second = _Source(steps.store), _Source(steps.store)
    slot = history.SLOT_SECONDS
    assert history.take(first, now=1000 * slot)
    assert not history.take(second, now=1000 * slot + 1)  # another process had this slot
    second.succeeded = 6
    assert history.take(second, now=1001 * slot)
    found = history.recent(first, now=1001 * slot)
    assert [s["t"] for s in found] == [1000 * slot, 1001 * slot]
    assert [s["backends"]["runway"]["succeeded"] for s in found] == [0, 6]
    finished = history.series(found, "runway")[1]
    assert finished.points == [(1001 * slot, 6 * 60 / slot)]


def test_only_the_last_hour_is_kept(steps):
    source = _Source(steps.store)
    start = 5000
    for i in range(history.KEEP + 5):
        assert history.take(source, now=(start + i) * history.SLOT_SECONDS)
    now = (start + history.KEEP + 4) * history.SLOT_SECONDS
    assert len(steps.store.samples()) == history.KEEP
    assert len(history.recent(source, now=now)) == history.KEEP
    assert history.recent(source, now=now + 2 * 3600) == []
