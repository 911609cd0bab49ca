"""One PNG per scenario, drawn from the results (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 - the backend must be chosen first
from matplotlib.axes import Axes  # noqa: E402

from .overhead import TARGET_RATE_RATIO  # noqa: E402

COLOURS = {"videogen": "tab:blue", "baseline": "tab:gray"}
BACKEND_COLOURS = {
    "svd": "tab:purple",
    "runway": "tab:red",
    "pika": "tab:orange",
    "luma": "tab:green",
}


def draw_all(results: dict[str, Any], folder: Path, stem: str) -> list[Path]:
    """Draw every scenario present in ``results``; returns the files written."""
    written = []
    for name, draw in DRAWERS.items():
        if name in results:
            path = folder / f"{stem}-{name}.png"
            figure, axes = plt.subplots(1, 2, figsize=(12, 4.5))
            draw(results[name], axes)
            figure.tight_layout()
            figure.savefig(path, dpi=100)
            plt.close(figure)
            written.append(path)
    return written


def _overhead(result: dict[str, Any], axes: Any) -> None:
    last = result["runs"][-1]
    left, right = axes
    for kind in ("videogen", "baseline"):
        values = sorted(last[f"{kind}_latencies_ms"])
        fractions = [(i + 1) / len(values) for i in range(len(values))]
        left.step(values, fractions, where="post", label=kind, color=COLOURS[kind])
    left.axvline(20, color="tab:red", linestyle="--", label="target p50 (20 ms)")
    _labels(left, "Latency, one scene at a time (last run)", "ms, submit to stored", "fraction")
    summary = result["summary"]
    names = ["videogen", "bare Celery chain"]
    rates = [summary["videogen_scenes_per_s"], summary["baseline_scenes_per_s"]]
    colours = [COLOURS["videogen"], "tab:gray"]
    if "floor_scenes_per_s" in summary:  # results from before 2026-12-05 have no floor
        names.append("floor (vendor work only)")
        rates.append(summary["floor_scenes_per_s"])
        colours.append("tab:olive")
    right.bar(names, rates, color=colours)
    target = TARGET_RATE_RATIO * rates[1]
    right.axhline(
        target, color="tab:red", linestyle="--", label=f"target: {TARGET_RATE_RATIO:g}× the chain"
    )
    _labels(right, "Throughput, batch (median of runs)", "", "scenes per second")


def _capacity(result: dict[str, Any], axes: Any) -> None:
    left, right = axes
    summary = result["summary"]
    names = [
        n
        for n in ("videogen", "priority", "round_robin", "static_priority")
        if f"{n}_makespan_s" in summary
    ]
    left.bar(names, [summary[f"{n}_makespan_s"] for n in names], color="tab:blue")
    left.axhline(summary["ideal_s"], color="black", label="ideal lower bound")
    left.axhline(summary["ideal_s"] * 1.15, color="tab:red", linestyle="--", label="target (1.15)")
    _labels(left, "Makespan (median of runs)", "", "seconds")
    timeline = result["runs"]["videogen"][-1]["timeline"]
    for backend, colour in BACKEND_COLOURS.items():
        spans = [(start, end) for name, start, end in timeline if name == backend]
        times, busy = _busy_steps(spans)
        right.step(times, busy, where="post", label=backend, color=colour)
    _labels(right, "videogen: busy vendor slots (last run)", "seconds", "jobs running")


def _slowdown(result: dict[str, Any], axes: Any) -> None:
    left, right = axes
    last = result["runs"][-1]
    at = last["change_at_s"]
    for lane, (backend, colour) in enumerate(BACKEND_COLOURS.items()):
        starts = [start for name, start, _ in last["timeline"] if name == backend]
        left.scatter(starts, [lane] * len(starts), s=6, color=colour, label=backend)
    left.axvline(at, color="black", linestyle="--", label="runway 4x slower")
    left.set_yticks(range(len(BACKEND_COLOURS)), list(BACKEND_COLOURS))
    _labels(left, "Job starts per backend (last run)", "seconds", "")
    for backend, colour in BACKEND_COLOURS.items():
        spans = [(start, end) for name, start, end in last["timeline"] if name == backend]
        times, busy = _busy_steps(spans)
        right.step(times, busy, where="post", label=backend, color=colour)
    right.axvline(at, color="black", linestyle="--")
    summary = result["summary"]
    title = f"Busy slots; makespan {summary['makespan_s']:.1f} s, ideal {summary['ideal_s']:.1f} s"
    _labels(right, title, "seconds", "jobs running")


def _cost(result: dict[str, Any], axes: Any) -> None:
    left, right = axes
    summary = result["summary"]
    _cost_bars(left, summary)
    timeline = result["runs"]["cheapest"][-1]["timeline"]
    for backend, colour in BACKEND_COLOURS.items():
        spans = [(start, end) for name, start, end in timeline if name == backend]
        times, busy = _busy_steps(spans)
        right.step(times, busy, where="post", label=backend, color=colour)
    right.axvline(summary["deadline_s"], color="tab:red", linestyle="--", label="deadline")
    _labels(right, "cheapest: busy vendor slots (last run)", "seconds", "jobs running")


def _cost_bars(left: Axes, summary: dict[str, Any]) -> None:
    """Cost (left axis) and makespan (right axis) side by side for each run."""
    runs = ["default", "cheapest"]
    costs = [_number(summary[f"{n}_usd"]) for n in runs]
    left.bar([i - 0.2 for i in range(2)], costs, 0.4, color="tab:blue", label="cost")
    left.axhline(_number(summary["bound_usd"]), color="black", label="least cost within deadline")
    left.set_xticks(range(2), runs)
    left.set_ylim(0, 1.35 * max(*costs, _number(summary["bound_usd"]), 1e-9))  # legend room
    _labels(left, "Cost and makespan (median of runs)", "", "USD")
    right = left.twinx()
    spans = [_number(summary[f"{n}_makespan_s"]) for n in runs]
    right.bar([i + 0.2 for i in range(2)], spans, 0.4, color="tab:gray", label="makespan")
    right.axhline(summary["deadline_s"], color="tab:red", linestyle="--", label="deadline")
    right.set_ylim(0, 1.35 * max(*spans, summary["deadline_s"], 1e-9))
    right.set_ylabel("seconds")
    left.legend(fontsize="small", loc="upper left")
    right.legend(fontsize="small", loc="upper right")


def _busy_steps(spans: list[tuple[float, float]]) -> tuple[list[float], list[int]]:
    events = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans])
    times, busy, level = [0.0], [0], 0
    for when, change in events:
        level += change
        times.append(when)
        busy.append(level)
    return times, busy


def _failover(result: dict[str, Any], axes: Any) -> None:
    left, right = axes
    last = result["runs"][-1]
    rows = {name: i for i, name in enumerate(("runway", "pika", "luma"))}
    for when, backend in last["timeline"]:
        left.plot(when, rows.get(backend, -1), "|", color=BACKEND_COLOURS.get(backend, "k"))
    left.set_yticks(list(rows.values()), list(rows))
    left.axvline(0, color="black", label="outage")
    first = last["outage_to_first_503_s"] or 0.0
    for key, style in (
        ("stop_routing_after_first_failure_s", "tab:red"),
        ("circuit_open_after_first_failure_s", "tab:purple"),
    ):
        if last[key] is not None:
            left.axvline(first + last[key], color=style, linestyle="--", label=key[:-2])
    _labels(left, "Routing decisions around the outage (last run)", "s after outage", "")
    summary = result["summary"]
    keys = [
        "stop_routing_after_first_failure_s",
        "circuit_open_after_first_failure_s",
        "in_flight_done_after_outage_s",
    ]
    values = [_number(summary.get(k)) for k in keys]
    right.barh(["stop routing", "circuit open", "in-flight stored"], values)
    right.axvline(2.0, color="tab:red", linestyle="--", label="target (2 s)")
    _labels(right, "Failover times (median of runs)", "seconds", "")


def _memory(result: dict[str, Any], axes: Any) -> None:
    left, right = axes
    summary = result["summary"]
    for kind in ("videogen", "baseline"):
        rss = summary[f"{kind}_rss_mb"]
        slots = sorted(rss, key=int)
        left.plot([int(s) for s in slots], [rss[s] for s in slots], "o-", label=kind)
    _labels(left, "Worker RSS, all slots busy (median of runs)", "slots", "MB")
    per_slot = [summary["videogen_mb_per_slot"], summary["baseline_mb_per_slot"]]
    right.bar(["videogen", "bare Celery"], per_slot, color=[COLOURS["videogen"], "tab:gray"])
    right.axhline(15, color="tab:red", linestyle="--", label="target (15 MB)")
    _labels(right, "Cost per extra slot", "", "MB per slot")


def _scale(result: dict[str, Any], axes: Any) -> None:
    left, right = axes
    for i, run in enumerate(result["runs"]):
        waiting = run["waiting_at_deciles"]
        left.plot(waiting, run["dispatch_deciles_ms"], "o-", label=f"run {i + 1}")
    left.set_ylim(bottom=0)
    _labels(left, "Dispatch pass per freed slot as the backlog grows", "scenes waiting", "ms")
    summary = result["summary"]
    labels = ["pending scene", "Celery message", "finished scene"]
    values = [
        summary["bytes_per_pending_scene"],
        summary["baseline_bytes_per_message"],
        summary["bytes_per_finished_scene"],
    ]
    right.bar(labels, values, color=["tab:blue", "tab:gray", "tab:blue"])
    right.axhline(2048, color="tab:red", linestyle="--", label="target per finished (2 KB)")
    _labels(right, "Redis memory (median of runs)", "", "bytes")


def _web(result: dict[str, Any], axes: Any) -> None:
    summary = result["summary"]
    left, right = axes
    rates = [summary["baseline_scenes_per_s"], summary["web_scenes_per_s"]]
    left.bar(["no web process", "web under load"], rates, color=["tab:gray", "tab:blue"])
    _labels(left, f"Pipeline throughput (ratio {summary['throughput_ratio']:.2f})", "", "scenes/s")
    counts = [summary["web_events_received"], summary["web_missing_events"]]
    right.bar(["events received", "events missing"], counts, color=["tab:green", "tab:red"])
    right.set_title(f"SSE clients: {summary['web_client_errors']:.0f} client errors")


def _number(value: Any) -> float:
    """0 for a figure that is missing (None, NaN): a bar that is absent rather than broken."""
    return 0.0 if value is None or value != value else float(value)


def _labels(axes: Axes, title: str, xlabel: str, ylabel: str) -> None:
    axes.set_title(title)
    axes.set_xlabel(xlabel)
    axes.set_ylabel(ylabel)
    if axes.get_legend_handles_labels()[0]:
        axes.legend(fontsize="small")


DRAWERS: dict[str, Callable[[dict[str, Any], Any], None]] = {
    "overhead": _overhead,
    "capacity": _capacity,
    "slowdown": _slowdown,
    "cost": _cost,
    "failover": _failover,
    "memory": _memory,
    "scale": _scale,
    "web": _web,
}
