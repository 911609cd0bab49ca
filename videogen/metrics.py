"""Prometheus metrics read from the shared Redis state at every scrape.

Flower has no queue-length metric and forgets on restart; these numbers come from the same
Redis every worker writes, so any number of workers report one truth. Served by
``videogen metrics``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from . import spend
from .config import Settings
from .models import DEFAULT_DURATION
from .policy import CircuitPolicy, is_open
from .store import Store

_COUNTERS = {
    "succeeded": "Scenes that finished with a stored, validated video",
    "failed": "Scenes that failed on this backend (terminal)",
    "retries": "Transient errors retried on this backend",
    "failovers": "Scenes re-routed away from this backend",
    "errors": "Errors of any kind on this backend",
    "submitted": "Vendor jobs created",
    "orphans": "Vendor jobs left when the vendor stopped answering past the grace",
    "orphans_cancelled": "Orphans cancelled once the vendor answered",
    "orphans_used": "Orphans that finished first: their video became the scene's",
    "orphans_double_paid": "Orphans that succeeded after their scene had a video (paid twice)",
    "orphans_failed": "Orphans the vendor failed (their spend refunded)",
}


class PipelineCollector(Collector):
    """One scrape = a handful of Redis reads per backend, and a few for the backlog."""

    def __init__(
        self, settings: Settings, store: Store, clock: Callable[[], float] = time.time
    ) -> None:
        self.settings = settings
        self.store = store
        self.clock = clock
        vg = settings.video_generation
        self.circuit_policy = CircuitPolicy(vg.circuit_failure_threshold, vg.circuit_cooldown)

    def collect(self) -> Iterator[Metric]:
        names = list(self.settings.video_generation.backends)
        yield from self._gauges(names)
        yield from self._scheduler(names)
        yield from self._counters(names)
        yield self._latency(names)
        yield from self._money(names)

    def _money(self, names: list[str]) -> Iterator[Metric]:
        """Spend per ledger and period, each budget's used fraction (alert at the config's
        ``budget_alert_fraction`` and at 1), and the money saved."""
        now = self.clock()
        vg = self.settings.video_generation
        books = self.store.ledgers(spend.scopes_to_read(names, now))
        report = spend.report(books, vg, names, now)
        money = GaugeMetricFamily(
            "videogen_spend_usd",
            "Spend (USD): reserved (estimates of bound scenes), settled (billed), held "
            "(ambiguous submits), per backend (or all) and period (total, UTC day, UTC month)",
            labels=["backend", "period", "kind"],
        )
        used = GaugeMetricFamily(
            "videogen_budget_used_ratio",
            "Reserved plus settled over the budget, per budget set (alert at "
            f"{vg.budget_alert_fraction:g} and at 1)",
            labels=["backend", "period"],
        )
        saved = GaugeMetricFamily(
            "videogen_saved_usd",
            "Settled scenes' expected cost under the default strategy, less what they cost",
            labels=["backend"],
        )
        tables: dict[str, Any] = {"all": report["all"], **report["backends"]}
        for backend, rows in tables.items():
            for period, row in rows.items():
                for kind in ("reserved", "settled", "held"):
                    money.add_metric([backend, period, kind], row.get(kind, 0.0))
                if "used_fraction" in row:
                    used.add_metric([backend, period], row["used_fraction"])
            saved.add_metric([backend], rows["total"].get("saved", 0.0))
        yield from (money, used, saved)

    def _gauges(self, names: list[str]) -> Iterator[Metric]:
        in_flight = GaugeMetricFamily(
            "videogen_in_flight", "Vendor jobs running now", labels=["backend"]
        )
        capacity = GaugeMetricFamily(
            "videogen_capacity", "max_concurrent_tasks of the backend", labels=["backend"]
        )
        queued = GaugeMetricFamily(
            "videogen_queued", "Scenes routed here, not started", labels=["backend"]
        )
        healthy = GaugeMetricFamily(
            "videogen_healthy",
            "1 if the last health probe passed (0 if none is fresh)",
            labels=["backend"],
        )
        circuit = GaugeMetricFamily(
            "videogen_circuit_open", "1 while the circuit keeps work away", labels=["backend"]
        )
        for name in names:
            cfg = self.settings.backend(name)
            health = self.store.health(name)
            in_flight.add_metric([name], self.store.in_flight(name))
            capacity.add_metric([name], cfg.max_concurrent_tasks)
            queued.add_metric([name], self.store.queued(name))
            healthy.add_metric([name], 1.0 if health and health["healthy"] else 0.0)
            opened = is_open(self.store.circuit(name), self.clock(), self.circuit_policy)
            circuit.add_metric([name], 1.0 if opened else 0.0)
        yield from (in_flight, capacity, queued, healthy, circuit)

    def _scheduler(self, names: list[str]) -> Iterator[Metric]:
        """The backlog, and what the scheduler's plans and forecasts assume of each backend."""
        yield GaugeMetricFamily(
            "videogen_backlog",
            "Scenes waiting in the shared backlog for a backend slot",
            value=self.store.backlog_length(),
        )
        learned = GaugeMetricFamily(
            "videogen_learned_job_seconds",
            f"Learned job time of a {DEFAULT_DURATION:g} s scene, from the scene bound to a "
            "slot to the slot given back (the backend's expected_seconds until it has "
            "finished jobs)",
            labels=["backend"],
        )
        samples = GaugeMetricFamily(
            "videogen_job_time_samples",
            "Finished jobs the learned job time is drawn from",
            labels=["backend"],
        )
        times = self.store.job_times(names, self.settings.video_generation.expected_seconds())
        for name in names:
            learned.add_metric([name], times.seconds(name, DEFAULT_DURATION))
            samples.add_metric([name], times.learned(name))
        lag = GaugeMetricFamily(
            "videogen_dispatch_lag_seconds",
            "Median seconds from a dispatch step being asked for (a slot given back, a scene "
            "submitted) to its binding scenes, over the latest steps",
            value=times.lag,
        )
        yield from (learned, samples, lag)

    def _counters(self, names: list[str]) -> Iterator[Metric]:
        families = {
            key: CounterMetricFamily(f"videogen_{key}", text, labels=["backend"])
            for key, text in _COUNTERS.items()
        }
        cost = CounterMetricFamily(
            "videogen_cost_usd", "Estimated vendor cost of created jobs", labels=["backend"]
        )
        for name in names:
            stats = self.store.stats(name)
            for key, family in families.items():
                family.add_metric([name], stats.get(key, 0.0))
            cost.add_metric([name], stats.get("cost_usd", 0.0))
        yield from families.values()
        yield cost

    def _latency(self, names: list[str]) -> Metric:
        family = HistogramMetricFamily(
            "videogen_generation_seconds",
            "Seconds from a scene's start on a backend to its stored file",
            labels=["backend"],
        )
        for name in names:
            buckets = self.store.latency_histogram(name)
            total = self.store.stats(name).get("latency_ms_sum", 0.0) / 1000
            family.add_metric([name], buckets, sum_value=total)
        return family
