"""Scenario: the web process under load. 50 clients follow jobs' event streams (SSE) and 20
clients submit jobs over HTTP for ``web_seconds`` (60 s); the baseline is the same 20
submitters calling the Python API, with no web process at all.

Each submitter submits a job of two text scenes, waits for it to finish (the web clients poll
``GET /v1/jobs/{id}``, the baseline reads the records), and submits the next. Each SSE client
follows the jobs of one submitter (50 over 20: two or three per submitter), each from the
stream position taken just before the submit, to ``job.finished``; it must receive a
terminal event for every scene of the job. The sample config (all four backends, 9 slots),
sandbox jobs of ``JOB_SECONDS``, so the pipeline is the bottleneck and stays saturated.

Measured: scenes the pipeline finished per second after a warm-up, in each case; every client
error (an exception or an unexpected status); events missing from any stream; the web
process's RSS at the end.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import psutil
from httpx_sse import connect_sse

from videogen import redis_keys as keys
from videogen.embedded import free_port
from videogen.store import Store

from .observe import job_scene_ids
from .profiles import Profile
from .stack import Services, VideogenStack, make_config, running, start_videogen
from .stats import median

JOB_SECONDS = 0.5
SCENES_PER_JOB = 2
TOKEN = "bench-dashboard-token-" + "5e" * 12
TOKEN_ENV = "VG_BENCH_API_TOKEN"
TARGET_RATIO = 0.8
POLL = 0.25


def run(svc: Services, profile: Profile) -> dict[str, Any]:
    runs = []
    for rep in range(profile.reps):
        order = ("baseline", "web") if rep % 2 == 0 else ("web", "baseline")
        row: dict[str, Any] = {}
        for kind in order:
            row.update({f"{kind}_{k}": v for k, v in _case(svc, profile, rep, kind).items()})
        row["throughput_ratio"] = row["web_scenes_per_s"] / max(row["baseline_scenes_per_s"], 1e-9)
        runs.append(row)
    keys_ = [k for k in runs[0] if isinstance(runs[0][k], int | float)]
    summary = {k: median(r[k] for r in runs) for k in keys_}
    summary["web_client_errors"] = sum(r["web_errors"] for r in runs)
    summary["web_missing_events"] = sum(r["web_missing_events"] for r in runs)
    targets = {
        f"throughput_ratio_at_least_{TARGET_RATIO}": summary["throughput_ratio"] >= TARGET_RATIO,
        "no_client_error": summary["web_client_errors"] == 0,
        "every_sse_client_got_every_event": summary["web_missing_events"] == 0,
    }
    params = {
        "seconds": profile.web_seconds,
        "submitters": profile.web_submitters,
        "sse_clients": profile.web_sse_clients,
        "scenes_per_job": SCENES_PER_JOB,
        "job_seconds": JOB_SECONDS,
    }
    return {"params": params, "runs": runs, "summary": summary, "targets": targets}


def _case(svc: Services, profile: Profile, rep: int, kind: str) -> dict[str, Any]:
    svc.reset_sandboxes(run_seconds=JOB_SECONDS, queue_seconds=0.05)
    label = f"web-{kind}-{rep}"

    def tokens(vg: dict[str, Any]) -> None:
        vg["api"] = {"tokens": [{"name": "bench", "token_env": TOKEN_ENV, "scope": "full"}]}

    config = make_config(svc, svc.folder(label) / "out", 0.05, 30, tokens)
    with running(start_videogen(svc, label, config)) as stack:
        if kind == "baseline":
            generator = stack.generator()
            return _load(stack, profile, lambda: _PythonClient(generator), sse=False)
        base = _serve(stack)
        result = _load(stack, profile, lambda: _HttpClient(base), sse=True)
        result["rss_mb"] = psutil.Process(stack.workers.pid("api")).memory_info().rss / 2**20
        return result


def _serve(stack: VideogenStack) -> str:
    port = free_port()
    stack.workers.env_extra[TOKEN_ENV] = TOKEN
    stack.workers.spawn("api", ["-m", "videogen", "api", "--port", str(port)])
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/v1/openapi.json", timeout=2).status_code == 200:
                return base
        except httpx.TransportError:
            time.sleep(0.2)
    raise RuntimeError(f"the API did not start: {stack.workers.log('api')[-2000:]}")


class _PythonClient:
    def __init__(self, generator: Any) -> None:
        self.generator = generator

    def submit(self, scenes: list[dict[str, Any]]) -> str:
        job_id: str = self.generator.submit(scenes)
        return job_id

    def finished(self, job_id: str) -> bool:
        return all(r.finished for r in self.generator.records(job_id))

    def close(self) -> None:
        pass


class _HttpClient:
    def __init__(self, base: str) -> None:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        self.http = httpx.Client(base_url=f"{base}/v1", headers=headers, timeout=30)

    def submit(self, scenes: list[dict[str, Any]]) -> str:
        answer = self.http.post("/jobs", json={"scenes": scenes})
        if answer.status_code != 201:
            raise RuntimeError(f"submit answered {answer.status_code}: {answer.text[:200]}")
        job_id: str = answer.json()["job_id"]
        return job_id

    def finished(self, job_id: str) -> bool:
        answer = self.http.get(f"/jobs/{job_id}")
        if answer.status_code != 200:
            raise RuntimeError(f"job answered {answer.status_code}: {answer.text[:200]}")
        states = answer.json()["states"]
        return not any(states.get(s) for s in ("pending", "routed", "running"))

    def close(self) -> None:
        self.http.close()


@dataclass
class _Tally:
    lock: threading.Lock = field(default_factory=threading.Lock)
    jobs: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    streams: int = 0
    events: int = 0
    missing: int = 0

    def error(self, what: str) -> None:
        with self.lock:
            self.errors.append(what[:300])


def _load(
    stack: VideogenStack, profile: Profile, client: Callable[[], Any], sse: bool
) -> dict[str, Any]:
    store = Store.from_url(stack.redis_url)
    tally = _Tally()
    followers: list[list[queue.Queue[tuple[str, str] | None]]] = [
        [] for _ in range(profile.web_submitters)
    ]
    threads = []
    if sse:
        base = str(client().http.base_url)  # type: ignore[attr-defined]
        for i in range(profile.web_sse_clients):
            inbox: queue.Queue[tuple[str, str] | None] = queue.Queue()
            followers[i % profile.web_submitters].append(inbox)
            threads.append(threading.Thread(target=_follow, args=(base, inbox, tally)))
    start = time.time()
    stop_at = start + profile.web_seconds
    for i in range(profile.web_submitters):
        args = (client(), store, i, stop_at, followers[i], tally)
        threads.append(threading.Thread(target=_submit_loop, args=args))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=profile.web_seconds + 180)
    return _figures(store, tally, start, stop_at, profile)


def _submit_loop(
    client: Any,
    store: Store,
    number: int,
    stop_at: float,
    inboxes: list[queue.Queue[tuple[str, str] | None]],
    tally: _Tally,
) -> None:
    count = 0
    try:
        while time.time() < stop_at:
            scenes = [
                {"prompt": f"web {number} {count} {k}", "duration": 2}
                for k in range(SCENES_PER_JOB)
            ]
            since = _stream_position(store)
            try:
                job_id = client.submit(scenes)
            except Exception as error:  # noqa: BLE001 - every failure is counted
                tally.error(f"submit: {error}")
                continue
            with tally.lock:
                tally.jobs.append(job_id)
            for inbox in inboxes:
                inbox.put((job_id, since))
            _wait_finished(client, job_id, tally)
            count += 1
    finally:
        for inbox in inboxes:
            inbox.put(None)
        client.close()


def _stream_position(store: Store) -> str:
    newest = store.r.xrevrange(keys.EVENTS, count=1)
    return str(newest[0][0]) if newest else "0-0"


def _wait_finished(client: Any, job_id: str, tally: _Tally) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if client.finished(job_id):
                return
        except Exception as error:  # noqa: BLE001
            tally.error(f"poll: {error}")
        time.sleep(POLL)
    tally.error(f"job {job_id} not finished after 120 s")


def _follow(base: str, inbox: queue.Queue[tuple[str, str] | None], tally: _Tally) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with httpx.Client(base_url=base, headers=headers, timeout=60) as http:
        while (item := inbox.get()) is not None:
            job_id, since = item
            try:
                scenes, finished = _stream(http, job_id, since)
            except Exception as error:  # noqa: BLE001
                tally.error(f"sse {job_id}: {type(error).__name__}: {error}")
                continue
            with tally.lock:
                tally.streams += 1
                tally.events += len(scenes) + finished
                tally.missing += SCENES_PER_JOB - len(scenes) + (1 - finished)


def _stream(http: httpx.Client, job_id: str, since: str) -> tuple[set[str], int]:
    scenes: set[str] = set()
    with connect_sse(
        http, "GET", f"/jobs/{job_id}/events", headers={"Last-Event-ID": since}
    ) as source:
        if source.response.status_code != 200:
            raise RuntimeError(f"events answered {source.response.status_code}")
        for event in source.iter_sse():
            if event.event == "job.finished":
                return scenes, 1
            scenes.add(event.json()["scene_id"])
    return scenes, 0


def _figures(
    store: Store, tally: _Tally, start: float, stop_at: float, profile: Profile
) -> dict[str, Any]:
    warmup = min(5.0, profile.web_seconds / 4)
    records = store.scenes(job_scene_ids(store, tally.jobs))
    window = [
        r
        for r in records
        if r.state.value == "succeeded"
        and r.finished_at
        and start + warmup <= r.finished_at <= stop_at
    ]
    return {
        "jobs": len(tally.jobs),
        "scenes_succeeded": sum(1 for r in records if r.state.value == "succeeded"),
        "scenes_failed": sum(1 for r in records if r.state.value != "succeeded"),
        "scenes_per_s": len(window) / (stop_at - start - warmup),
        "errors": len(tally.errors),
        "error_samples": tally.errors[:5],
        "sse_streams": tally.streams,
        "events_received": tally.events,
        "missing_events": tally.missing,
    }
