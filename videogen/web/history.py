"""The last hour of each backend, for the dashboard's small charts (pure, but :func:`take`).

Every :data:`SLOT_SECONDS` one web process (whichever takes the slot first; any number may
run) stores a sample of every backend in Redis: in flight, its cap, queued, health, and the
running totals of succeeded, failed, latency and spend. A chart is drawn from consecutive
samples: in flight as it was, and per slot the scenes finished, their mean latency and the
money settled. Samples outlive the web process, so a restarted dashboard still shows the hour.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

SLOT_SECONDS = 15.0
KEEP = int(3600 / SLOT_SECONDS)
"""An hour of slots."""


def sample(statistics: dict[str, Any], now: float) -> dict[str, Any]:
    """One sample of every backend from :meth:`VideoGenerator.get_statistics`."""
    spend = statistics.get("spend", {}).get("backends", {})
    return {
        "t": round(now, 3),
        "backends": {
            name: {
                "in_flight": row["in_flight"],
                "queued": row["queued"],
                "succeeded": row["succeeded"],
                "failed": row["failed"],
                "latency_sum": (row["average_latency_s"] or 0.0) * row["succeeded"],
                "settled": _settled(spend.get(name)),
            }
            for name, row in statistics["backends"].items()
        },
    }


def _settled(book: Any) -> float:
    if not isinstance(book, dict):
        return 0.0
    total = book.get("total", book)
    return float(total.get("settled", 0.0)) if isinstance(total, dict) else 0.0


@dataclass(frozen=True)
class Series:
    """One chart: its title, unit, and (time, value) points, oldest first."""

    title: str
    unit: str
    points: list[tuple[float, float]]

    @property
    def latest(self) -> float | None:
        return self.points[-1][1] if self.points else None


def series(samples: list[dict[str, Any]], backend: str) -> list[Series]:
    """The backend's charts over ``samples`` (oldest first): in flight, scenes finished per
    minute, mean latency of the scenes that succeeded in each slot."""
    rows = [(s["t"], s["backends"][backend]) for s in samples if backend in s["backends"]]
    in_flight = [(t, float(r["in_flight"])) for t, r in rows]
    finished, latency = [], []
    for (t0, a), (t1, b) in zip(rows, rows[1:], strict=False):
        span = max(t1 - t0, 1e-6)
        done = (b["succeeded"] - a["succeeded"]) + (b["failed"] - a["failed"])
        finished.append((t1, max(0.0, done) * 60 / span))
        ok = b["succeeded"] - a["succeeded"]
        latency.append((t1, (b["latency_sum"] - a["latency_sum"]) / ok if ok > 0 else 0.0))
    return [
        Series("in flight", "jobs", in_flight),
        Series("finished", "per min", finished),
        Series("latency", "s", latency),
    ]


def polyline(points: list[tuple[float, float]], width: int, height: int, span: float) -> str:
    """SVG ``points`` for a line over at most the last ``span`` seconds (the samples' own span
    when shorter, at least a minute), newest at the right edge; values scaled to the tallest
    point (flat at the bottom when all are zero)."""
    if not points:
        return ""
    end = points[-1][0]
    span = max(min(span, end - points[0][0]), 60.0)
    top = max(v for _, v in points) or 1.0
    coords = []
    for t, v in points:
        x = width * (1 - min(max(end - t, 0.0), span) / span)
        y = height - (height - 2) * v / top - 1
        coords.append(f"{x:.1f},{y:.1f}")
    return " ".join(coords)


def take(generator: Any, now: float | None = None) -> bool:
    """Store a sample for the current slot unless another process did (True if this one
    did)."""
    now = time.time() if now is None else now
    slot = int(now // SLOT_SECONDS)
    data = json.dumps(sample(generator.get_statistics(), now), separators=(",", ":"))
    stored: bool = generator.store.add_sample(slot, data, KEEP, SLOT_SECONDS)
    return stored


def recent(generator: Any, now: float | None = None) -> list[dict[str, Any]]:
    """The samples of the last hour, oldest first."""
    now = time.time() if now is None else now
    found = [json.loads(raw) for raw in generator.store.samples()]
    return [s for s in found if now - s["t"] <= KEEP * SLOT_SECONDS]


class Sampler:
    """A thread that calls :func:`take` every slot while the web process runs."""

    def __init__(self, generator: Any) -> None:
        self.generator = generator
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="vg-samples", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        # Each slot is sampled just after it starts; the first at the next slot boundary.
        while not self._stop.wait(SLOT_SECONDS - time.time() % SLOT_SECONDS + 0.05):
            try:
                take(self.generator)
            except Exception as error:  # noqa: BLE001 - a missed sample is only a gap
                log.warning("dashboard sample skipped: %s", type(error).__name__)
