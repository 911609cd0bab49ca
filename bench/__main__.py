"""``python -m bench [--smoke] [--only NAME ...] [--out DIR]``: run the benchmarks.

Starts Redis, the sandboxes and worker processes itself, runs each scenario with its baseline,
and writes ``<out>/<date>.json`` plus ``<out>/<date>-<scenario>.png``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

import celery
import redis

from . import capacity, cost, failover, memory, overhead, scale, slowdown, web
from .charts import draw_all
from .profiles import FULL, SMOKE, Profile
from .stack import Services, services
from .stats import rounded

SCENARIOS: dict[str, Callable[[Services, Profile], dict[str, Any]]] = {
    "overhead": overhead.run,
    "capacity": capacity.run,
    "slowdown": slowdown.run,
    "cost": cost.run,
    "failover": failover.run,
    "memory": memory.run,
    "scale": scale.run,
    "web": web.run,
}
RESULTS = Path(__file__).resolve().parent / "results"
log = logging.getLogger("bench")


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, one repetition")
    parser.add_argument("--only", nargs="+", choices=list(SCENARIOS), help="run only these")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where results go")
    parser.add_argument("--reps", type=int, help="repetitions (default: the profile's)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (logs)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    for noisy in ("videogen", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    profile = SMOKE if args.smoke else FULL
    if args.reps:
        profile = replace(profile, reps=args.reps)
    names = args.only or list(SCENARIOS)
    work = Path(tempfile.mkdtemp(prefix="videogen-bench-"))
    try:
        results = run(profile, names, work)
    finally:
        if args.keep:
            log.info("work folder kept: %s", work)
        else:
            shutil.rmtree(work, ignore_errors=True)
    write(results, args.out, profile)
    return 0


def run(profile: Profile, names: list[str], work: Path) -> dict[str, Any]:
    started = time.time()
    results: dict[str, Any] = {"meta": meta(profile)}
    with services(work) as svc:
        for name in names:
            log.info("%s: running", name)
            began = time.time()
            results[name] = SCENARIOS[name](svc, profile)
            results[name]["seconds"] = time.time() - began
            log.info(
                "%s: done in %.0f s: %s", name, results[name]["seconds"], _brief(results[name])
            )
    results["meta"]["seconds"] = time.time() - started
    return results


def _brief(result: dict[str, Any]) -> str:
    return json.dumps(rounded(result["targets"]))


def meta(profile: Profile) -> dict[str, Any]:
    return {
        "date": datetime.now().isoformat(timespec="seconds"),
        "profile": profile.name,
        "reps": profile.reps,
        "cpus": os.cpu_count(),
        "machine": platform.platform(),
        "python": platform.python_version(),
        "celery": celery.__version__,
        "redis_py": redis.__version__,
        "code": _code_version(),
    }


def _code_version() -> str:
    """The commit the run measured (``-dirty`` when the tree had changes)."""
    try:
        done = subprocess.run(
            ["git", "describe", "--always", "--dirty"],
            cwd=RESULTS.parent.parent,
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return done.stdout.strip() or os.environ.get("BENCH_CODE_VERSION", "unknown")


def write(results: dict[str, Any], out: Path, profile: Profile) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    stem = datetime.now().strftime("%Y-%m-%d") + ("-smoke" if profile.name == "smoke" else "")
    path = out / f"{stem}.json"
    path.write_text(json.dumps(rounded(results), indent=1) + "\n")
    charts = draw_all(results, out, stem)
    log.info("wrote %s and %d charts", path, len(charts))
    return path


if __name__ == "__main__":
    sys.exit(main())
