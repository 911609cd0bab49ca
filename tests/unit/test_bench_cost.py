"""The cost scenario's plain parts (bench/cost.py): its design poses a real trade-off in both
profiles, and cost and lateness are read from records as documented."""

from __future__ import annotations

import pytest

from bench.cost import PRICES, check, design, job_seconds, late_scenes, scene_costs, vendor_cost
from bench.profiles import FULL, SMOKE
from bench.scenes import mixed_scenes

SVD_CLIP = 25 / 6
"""SVD makes 25 frames at 6 fps for a 5 s scene; every other backend makes 5 s."""
OUTPUT = {
    "text": {"runway": 5.0, "pika": 5.0, "luma": 5.0},
    "image_url": {"svd": SVD_CLIP, "runway": 5.0, "pika": 5.0, "luma": 5.0},
    "image_file": {"svd": SVD_CLIP, "runway": 5.0, "pika": 5.0},
}
"""Who can take which kind (capacity's table: no text on SVD, no local file on Luma)."""


@pytest.mark.parametrize("profile", [FULL, SMOKE], ids=lambda p: p.name)
def test_the_deadline_is_feasible_and_cheapest_only_misses_it(profile):
    kinds = mixed_scenes("t", profile.cost_scenes, "http://127.0.0.1/f.png", "/tmp/f.png")
    counts = {kind: len(scenes) for kind, scenes in kinds.items()}
    capable = {kind: list(by) for kind, by in OUTPUT.items()}
    setup = design(counts, capable, job_seconds(profile), scene_costs(OUTPUT, PRICES))
    check(setup)  # raises when there is no trade-off
    assert setup.feasible and setup.cheapest_only_misses
    assert setup.deadline == pytest.approx(1.5 * setup.ideal_makespan)
    assert setup.bound is not None
    cheapest_everywhere = sum(
        n * min(scene_costs(OUTPUT, PRICES)[kind].values()) for kind, n in counts.items()
    )
    assert setup.bound.cost > cheapest_everywhere


def test_a_design_without_a_trade_off_is_refused():
    counts = {"text": 2}
    capable = {"text": ["runway", "pika", "luma"]}
    seconds = {"svd": 1.0, "runway": 1.0, "pika": 1.0, "luma": 1.0}
    costs = {"text": {"runway": 0.5, "pika": 0.2, "luma": 0.35}}
    with pytest.raises(ValueError, match="no trade-off"):
        check(design(counts, capable, seconds, costs))  # pika's 2 slots take both at once


def _job(backend: str, state: str, seconds: float) -> dict[str, object]:
    return {"backend": backend, "state": state, "duration_s": seconds}


@pytest.mark.parametrize(
    ("jobs", "expected"),
    [
        ([], 0.0),
        ([_job("runway", "succeeded", 5)], 5 * PRICES["runway"]),
        ([_job("svd", "succeeded", SVD_CLIP)], SVD_CLIP * PRICES["svd"]),
        ([_job("pika", "failed", 5), _job("luma", "cancelled", 5)], 0.0),
        ([_job("pika", "succeeded", 5), _job("pika", "running", 5)], 5 * PRICES["pika"]),
        ([_job("luma", "succeeded", 9), _job("luma", "succeeded", 5)], 14 * PRICES["luma"]),
    ],
)
def test_vendor_cost_counts_the_output_seconds_of_jobs_that_succeeded(jobs, expected):
    assert vendor_cost(jobs, PRICES) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("finished", "state", "late"),
    [
        (9.9, "succeeded", 0),
        (10.0, "succeeded", 0),  # on the deadline is in time
        (10.1, "succeeded", 1),
        (10.1, "failed", 0),  # failed scenes are counted apart
    ],
)
def test_late_scenes_are_those_stored_after_submit_plus_deadline(finished, state, late):
    records = [{"state": state, "finished_at": 1000.0 + finished}]
    assert late_scenes(records, 1000.0, 10.0) == late
