"""The benchmark's smoke run (``python -m bench --smoke``): the real stack, tiny sizes.

Figures are not asserted (CI machines are noisy); that the run completes and reports every
scenario, with its baseline and targets, and draws every chart, is.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SUMMARY_KEYS = {
    "overhead": {
        "videogen_p50_ms",
        "videogen_p99_ms",
        "videogen_scenes_per_s",
        "baseline_p50_ms",
        "baseline_scenes_per_s",
        "p50_ratio",
        "rate_ratio",
        "floor_scenes_per_s",
        "floor_rate_ratio",
        "rate_of_floor",
    },
    "capacity": {
        "ideal_s",
        "videogen_makespan_s",
        "videogen_vs_ideal",
        "priority_makespan_s",
        "round_robin_makespan_s",
        "static_priority_makespan_s",
        "videogen_vs_priority",
        "videogen_vs_round_robin",
        "videogen_vs_static_priority",
    },
    "slowdown": {
        "makespan_s",
        "ideal_s",
        "vs_ideal",
        "slowed_jobs_after_change",
        "slowed_share_before",
        "slowed_share_after",
    },
    "cost": {
        "deadline_s",
        "ideal_makespan_s",
        "bound_usd",
        "deadline_feasible",
        "cheapest_only_makespan_s",
        "cheapest_only_misses_deadline",
        "default_usd",
        "cheapest_usd",
        "default_makespan_s",
        "cheapest_makespan_s",
        "cheapest_late_scenes",
        "cheapest_failed_scenes",
        "cheapest_vs_bound",
        "bound_measured_cycle_usd",
        "cheapest_vs_measured_bound",
        "saved_usd",
        "cheapest_vs_default",
    },
    "failover": {
        "stop_routing_after_first_failure_s",
        "circuit_open_after_first_failure_s",
        "in_flight_at_outage",
        "in_flight_done_after_outage_s",
        "duplicate_vendor_jobs",
        "same_backend_duplicates",
        "orphans",
        "for_good_stop_routing_after_first_failure_s",
        "for_good_duplicate_vendor_jobs",
        "for_good_orphans",
        "for_good_double_paid_counted",
    },
    "memory": {
        "videogen_rss_mb",
        "baseline_rss_mb",
        "videogen_mb_per_slot",
        "baseline_mb_per_slot",
        "per_slot_ratio",
    },
    "scale": {
        "submit_scenes_per_s",
        "baseline_messages_per_s",
        "submit_rate_ratio",
        "bytes_per_pending_scene",
        "bytes_per_finished_scene",
        "dispatch_small_backlog_ms",
        "dispatch_first_decile_ms",
        "dispatch_last_decile_ms",
        "dispatch_last_over_first_decile",
        "dispatch_last_over_small_backlog",
        "dispatch_commands_small_backlog",
        "dispatch_commands_last_decile",
    },
    "web": {
        "baseline_scenes_per_s",
        "web_scenes_per_s",
        "throughput_ratio",
        "web_client_errors",
        "web_missing_events",
        "web_events_received",
        "web_rss_mb",
    },
}


@pytest.mark.timeout(600)
def test_smoke_run_writes_every_scenario_and_chart(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--smoke", "--out", str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=540,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    [results_file] = tmp_path.glob("*.json")
    results = json.loads(results_file.read_text())
    assert results["meta"]["profile"] == "smoke"
    for scenario, keys in SUMMARY_KEYS.items():
        section = results[scenario]
        assert {"params", "runs", "summary", "targets"} <= section.keys(), scenario
        assert keys <= section["summary"].keys(), (scenario, keys - section["summary"].keys())
        assert section["targets"] and section["runs"], scenario
        chart = tmp_path / f"{results_file.stem}-{scenario}.png"
        assert chart.read_bytes().startswith(b"\x89PNG"), chart
