"""How big each scenario is: the full run, and the smoke run CI does."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Profile:
    name: str
    reps: int
    """Repetitions of every scenario (and of its baseline); medians are reported."""
    overhead_batch: int
    """Scenes submitted at once for throughput."""
    overhead_sequential: int
    """Scenes submitted one after another (each after the last finished) for latency."""
    capacity_scenes: int
    capacity_job_seconds: float
    """A fast backend's job time; the slow one takes three times as long."""
    cost_scenes: int
    """Scenes in the cost scenario's batch (run twice: default strategy, then ``cheapest``)."""
    cost_job_seconds: float
    """As ``capacity_job_seconds``, longer so that per-job overhead weighs less against the
    deadline."""
    failover_rate: float
    """Scenes submitted per second (a steady stream keeps the router deciding)."""
    failover_seconds: float
    """How long the stream lasts."""
    failover_outage_at: float
    """Seconds into the stream when Runway goes down."""
    failover_job_seconds: float
    failover_outage_s: float
    """How long Runway stays down in the main case (shorter than its default grace)."""
    failover_grace_s: float
    """Runway's ``unknown_grace`` in the case where it stays down for good."""
    failover_wait: float
    """Seconds to wait for the last scenes after the stream (stranded ones may take minutes)."""
    memory_slots: tuple[int, ...]
    scale_scenes: int
    scale_finished: int
    """Scenes of the smaller batch that runs to completion (memory per finished scene)."""
    web_seconds: float = 60.0
    """How long the web scenario's clients submit."""
    web_submitters: int = 20
    web_sse_clients: int = 50


FULL = Profile(
    name="full",
    reps=3,
    overhead_batch=500,
    overhead_sequential=100,
    capacity_scenes=400,
    capacity_job_seconds=0.6,
    cost_scenes=200,
    cost_job_seconds=1.0,
    failover_rate=4.0,
    failover_seconds=16.0,
    failover_outage_at=5.0,
    failover_job_seconds=1.0,
    failover_outage_s=30.0,
    failover_grace_s=10.0,
    failover_wait=420.0,
    memory_slots=(1, 8, 32),
    scale_scenes=100_000,
    scale_finished=500,
)

SMOKE = Profile(
    name="smoke",
    reps=1,
    overhead_batch=4,
    overhead_sequential=2,
    capacity_scenes=5,
    capacity_job_seconds=0.1,
    cost_scenes=6,
    cost_job_seconds=0.1,
    failover_rate=5.0,
    failover_seconds=2.0,
    failover_outage_at=0.8,
    failover_job_seconds=0.3,
    failover_outage_s=1.5,
    failover_grace_s=0.5,
    failover_wait=8.0,
    memory_slots=(1, 2),
    scale_scenes=20,
    scale_finished=4,
    web_seconds=6.0,
    web_submitters=3,
    web_sse_clients=5,
)
