"""``videogen up`` start time and memory: one worker per backend against worker groups.

Starts the real stack (``python -m videogen up``, as users run it, sandboxes for every backend
since no key is set) with the sample config's four backends, in three layouts:

* ``separate``: one worker per backend (the default): router + 4 backend workers;
* ``cloud``: SVD alone, Runway, Pika and Luma in one group (``"worker": "cloud"``);
* ``one``: all four backends in one group;
* ``separate+fal`` and ``cloud+fal``: the same with the generic fal backend enabled too, on
  its own worker or in the cloud group;
* ``every-separate`` and ``every-cloud``: every backend of the sample config enabled (a
  sandbox each), one worker per backend, or SVD alone and every HTTP backend in one group.

Measured per run: seconds from launching ``up`` to its "running" line (printed once every
expected worker answered a ping), and the memory of ``up`` and every process under it, a few
seconds later: RSS summed (counts shared pages once per process) and PSS summed (shared pages
split between the processes that share them: what the stack really holds); and the CPU
seconds those processes used by then, which the machine's other load does not change (the
start time it does: this machine is shared). Median of ``reps``
runs. Uses its own Redis (a fresh database per run) and ``--no-flower``, so that it never
collides with another stack on this machine (the embedded Redis and Flower have fixed ports)::

    python -m bench.startup --reps 3 --out bench/results/2026-12-04-startup.json
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

from videogen.embedded import EmbeddedRedis, free_port

REPO = Path(__file__).resolve().parents[1]
CLOUD: dict[str, str | None] = {"runway": "cloud", "pika": "cloud", "luma": "cloud"}
SAMPLE_BACKENDS = list(
    json.loads((REPO / "config" / "config.json").read_text())["video_generation"]["backends"]
)
"""Every backend the sample config names (the later ones disabled there)."""
LAYOUTS: dict[str, dict[str, str | None]] = {
    "separate": {},
    "cloud": CLOUD,
    "one": {"svd": "all", "runway": "all", "pika": "all", "luma": "all"},
    "separate+fal": {"fal": None},
    "cloud+fal": {**CLOUD, "fal": "cloud"},
    "every-separate": {name: None for name in SAMPLE_BACKENDS},
    "every-cloud": {name: None if name == "svd" else "cloud" for name in SAMPLE_BACKENDS},
}
"""Backend → its worker group (``None``: its own worker); a backend named here that the
sample config disables (fal) is enabled."""
READY = "running; press Ctrl-C to stop"
START_TIMEOUT = 180.0
SETTLE = 3.0
"""Seconds after "running" before memory is read: each worker builds its pipeline (imports
PyAV, httpx clients) when it publishes, right after it answers the first ping."""
MB = 1024 * 1024


def config(layout: dict[str, str | None], output: Path) -> dict[str, Any]:
    raw: dict[str, Any] = json.loads((REPO / "config" / "config.json").read_text())
    vg = raw["video_generation"]
    vg["output_dir"] = str(output)
    for name, group in layout.items():
        vg["backends"][name].update(enabled=True, worker=group)
    return raw


def tree_memory(pid: int) -> dict[str, float]:
    root = psutil.Process(pid)
    procs = [root, *root.children(recursive=True)]
    rss = pss = 0
    cpu = 0.0
    for proc in procs:
        try:
            info = proc.memory_full_info()
            times = proc.cpu_times()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        rss += info.rss
        pss += getattr(info, "pss", info.rss)
        cpu += times.user + times.system + times.children_user + times.children_system
    return {"processes": len(procs), "rss_mb": rss / MB, "pss_mb": pss / MB, "cpu_seconds": cpu}


def one_run(layout: str, redis_url: str, work: Path) -> dict[str, Any]:
    work.mkdir(parents=True)
    config_file = work / "config.json"
    config_file.write_text(json.dumps(config(LAYOUTS[layout], work / "output")))
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIDEOGEN_")}
    for var in ("RUNWAYML_API_SECRET", "LUMAAI_API_KEY", "FAL_KEY"):
        env.pop(var, None)
    env.update(VIDEOGEN_CONFIG=str(config_file), VIDEOGEN_REDIS_URL=redis_url)
    out = work / "up.out"
    cmd = [sys.executable, "-m", "videogen", "up", "--no-flower", "--run-dir", str(work / "var")]
    cmd += ["--no-api"] if os.environ.get("BENCH_NO_API") else []
    started = time.monotonic()
    with out.open("wb") as sink:
        up = subprocess.Popen(cmd, cwd=work, env=env, stdout=sink, stderr=subprocess.STDOUT)
    try:
        while READY not in out.read_text(errors="replace"):
            if up.poll() is not None or time.monotonic() - started > START_TIMEOUT:
                raise RuntimeError(f"up did not start:\n{out.read_text(errors='replace')}")
            time.sleep(0.05)
        seconds = time.monotonic() - started
        time.sleep(SETTLE)
        memory = tree_memory(up.pid)
    finally:
        up.send_signal(signal.SIGTERM)
        up.wait(60)
    return {"start_seconds": round(seconds, 2), **{k: round(v, 1) for k, v in memory.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--layouts", nargs="+", choices=list(LAYOUTS), default=list(LAYOUTS))
    args = parser.parse_args()
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in args.layouts}
    with tempfile.TemporaryDirectory(prefix="vg-startup-") as tmp:
        redis_server = EmbeddedRedis(Path(tmp) / "redis", port=free_port()).start()
        try:
            db = 0
            for rep in range(args.reps):
                for layout in args.layouts:  # interleaved: the shared machine's load hits all alike
                    db += 1
                    url = f"{redis_server.url.rsplit('/', 1)[0]}/{db}"
                    run = one_run(layout, url, Path(tmp) / f"{layout}-{rep}")
                    print(layout, rep, run, flush=True)  # noqa: T201 - a bench's progress
                    runs[layout].append(run)
        finally:
            redis_server.stop()
    summary = {
        name: {
            key: statistics.median(r[key] for r in rs)
            for key in ("start_seconds", "cpu_seconds", "processes", "rss_mb", "pss_mb")
        }
        for name, rs in runs.items()
    }
    meta = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "cpus": os.cpu_count(),
        "load_avg_at_end": os.getloadavg(),
        "code": subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True
        ).stdout.strip(),
        "layouts": {name: LAYOUTS[name] for name in args.layouts},
        "note": "a sandbox per enabled backend, --no-flower (the API and dashboard run, as "
        "`up` starts them), own Redis; median of reps",
    }
    args.out.write_text(json.dumps({"meta": meta, "summary": summary, "runs": runs}, indent=2))
    print(json.dumps(summary, indent=2))  # noqa: T201


if __name__ == "__main__":
    main()
