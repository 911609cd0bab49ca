"""The scheduler's Prometheus gauges, read by the collector from the real Redis as steps run:
the backlog's length, and each backend's learned job time and how many jobs it is drawn
from. (`tests/pipeline/test_operate.py` scrapes them over HTTP from a running stack.)"""

from __future__ import annotations

import pytest

from videogen.jobtimes import MIN_SECONDS
from videogen.metrics import PipelineCollector
from videogen.models import DEFAULT_DURATION

from .conftest import BACKENDS

SEED = 120.0
"""``expected_seconds`` of every backend in the sample config (the default)."""


def scrape(steps) -> dict[tuple[str, str | None], float]:
    collector = PipelineCollector(steps.pipeline.settings, steps.store, clock=steps.clock)
    return {
        (sample.name, sample.labels.get("backend")): sample.value
        for family in collector.collect()
        for sample in family.samples
    }


def test_the_backlog_and_the_learned_job_times_are_gauges(steps):
    before = scrape(steps)
    assert before[("videogen_backlog", None)] == 0
    assert before[("videogen_dispatch_lag_seconds", None)] == 0  # no step has run
    for name in BACKENDS:
        assert before[("videogen_learned_job_seconds", name)] == SEED  # nothing learned yet
        assert before[("videogen_job_time_samples", name)] == 0

    steps.submit(*[{"prompt": f"shot {i}", "duration": DEFAULT_DURATION} for i in range(3)])
    assert scrape(steps)[("videogen_backlog", None)] == 3

    steps.clock.advance(0.5)  # the dispatch step the submit asked for runs half a second later
    steps.run_all()
    after = scrape(steps)
    assert after[("videogen_backlog", None)] == 0
    assert after[("videogen_dispatch_lag_seconds", None)] == 0.5
    samples = {name: after[("videogen_job_time_samples", name)] for name in BACKENDS}
    assert sum(samples.values()) == 3
    for name, count in samples.items():
        learned = after[("videogen_learned_job_seconds", name)]
        # The step clock stands still once the scenes are bound: a learned job takes 0 s
        # (shown as the floor, a millisecond), far from the seed.
        assert learned == (MIN_SECONDS if count else SEED), (name, count, learned)


def test_spend_budget_use_and_savings_are_gauges(make_steps):
    steps = make_steps(lambda vg: vg.update(budgets={"daily_usd": 2.0}))
    steps.submit(*[{"prompt": f"shot {i}", "duration": DEFAULT_DURATION} for i in range(3)])
    steps.run_all()
    collector = PipelineCollector(steps.pipeline.settings, steps.store, clock=steps.clock)
    samples = {
        (s.name, s.labels.get("backend"), s.labels.get("period"), s.labels.get("kind")): s.value
        for family in collector.collect()
        for s in family.samples
    }
    settled = samples[("videogen_spend_usd", "all", "day", "settled")]
    per_backend = sum(samples[("videogen_spend_usd", b, "day", "settled")] for b in BACKENDS)
    assert settled > 0 and per_backend == pytest.approx(settled)
    assert samples[("videogen_spend_usd", "all", "day", "reserved")] == 0
    assert samples[("videogen_budget_used_ratio", "all", "day", None)] == round(settled / 2.0, 4)
    assert ("videogen_budget_used_ratio", "runway", "day", None) not in samples  # no budget
    assert samples[("videogen_saved_usd", "all", None, None)] >= 0
