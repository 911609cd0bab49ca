"""The vendor-neutral core of every sandbox: knobs, a job scheduler with exact times, and records.

One :class:`SandboxState` backs one sandbox server. The vendor modules translate HTTP into calls on
it and its neutral job phases into their own words (Runway ``THROTTLED``, Luma ``dreaming``, fal
``IN_QUEUE``...).

Scheduling is exact rather than "whatever the last poll saw": a job created at ``t`` waits for a
slot while the vendor-side ``concurrency_limit`` is reached, holds a slot for ``queue_seconds +
run_seconds`` from the moment it gets one, and then ends. When a slot frees at ``T`` the oldest
waiting job starts at ``T``. :meth:`advance` replays these events lazily, in time order, up to
"now", so the peak counters are exact whatever the polling rate.

Everything is guarded by one lock: uvicorn's event loop, test threads and the control endpoints all
touch it.
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from videogen.sandbox.mp4 import make_test_pattern_mp4, scaled_size

FaultOn = Literal["create", "poll", "result", "cancel", "download", "health", "any"]
"""Which kind of vendor request a fault or a malformed answer applies to."""

# Strings longer than this that look like base64 or a data URI are cut in the records: an image
# in a request body would otherwise bloat every records dump.
_RECORD_STRING_LIMIT = 100
# Enough for any test; keeps a demo sandbox that runs for days from growing without bound.
_MAX_RECORDED_REQUESTS = 100_000
_BASE64ISH = re.compile(r"^[A-Za-z0-9+/=_-]+$")
# Failure codes that mean "the vendor refused the content" rather than "the vendor broke".
_POLICY_CODE = re.compile(r"SAFETY|MODERAT|POLICY|CONTENT", re.IGNORECASE)


class HttpFault(BaseModel):
    """Answer the next ``count`` matching vendor requests with an HTTP error instead."""

    model_config = ConfigDict(extra="forbid")

    status: int
    """The HTTP status to answer with (429, 500, 502, 503, ...)."""
    count: int = 1
    """How many matching requests get this answer before the fault is used up."""
    on: FaultOn = "any"
    """The kind of request it applies to; ``any`` matches every vendor request."""
    retry_after: float | None = None
    """Sent as a ``Retry-After`` header, in whole seconds (rounded up)."""
    code: str | None = None
    """The vendor's own error code to answer with, for vendors that have codes (Kling's
    ``1102``: a 429 that is a bill, not a rate limit; MiniMax's ``1008``); ``None``: the
    vendor's usual code for the status."""


class Knobs(BaseModel):
    """Everything a test or a demo can turn on a sandbox; all fields have defaults."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    run_seconds: float = Field(0.3, ge=0)
    """How long a job runs (after its queue time)."""
    queue_seconds: float = Field(0.05, ge=0)
    """How long a job stays in the vendor's queued/pending state after it got a slot."""
    concurrency_limit: int | None = Field(None, ge=1)
    """Vendor-side limit on jobs holding a slot; more wait (THROTTLED, IN_QUEUE...), FIFO."""
    fail_next_jobs: int = Field(0, ge=0)
    """The next N jobs created fail at the end of their run."""
    failure_code: str | None = None
    """The code a failed job reports; ``None`` means the vendor's own default."""
    failure_message: str | None = None
    """The message a failed job reports; ``None`` means the vendor's default for the code."""
    fail_prompts: dict[str, str] = Field(default_factory=dict)
    """Prompt substring -> failure code: a job whose prompt contains the key fails so."""
    http_faults: list[HttpFault] = Field(default_factory=list)
    """HTTP errors to inject, consumed in order."""
    outage: bool = False
    """Every vendor endpoint answers 503 (the control endpoints keep working)."""
    malformed_next: int = Field(0, ge=0)
    """The next N matching answers are cut-off, invalid JSON with status 200."""
    malformed_on: FaultOn = "poll"
    """Which kind of request :attr:`malformed_next` applies to."""
    fake_video: Literal["html", "empty"] | None = None
    """The output file URL serves an HTML page or zero bytes instead of the video."""
    never_finish: bool = False
    """Jobs created while this is set run forever (until cancelled)."""
    create_delay: float = Field(0.0, ge=0)
    """Seconds to hold back a create's answer, the job already made (ambiguous submits)."""
    full_size_video: bool = False
    """Encode files at the requested size instead of at most 320 px wide."""
    video_fps: int = Field(8, ge=1, le=60)
    """Frame rate of the files the sandbox serves."""


class Phase(StrEnum):
    """A job's vendor-neutral phase; each vendor names these in its own words."""

    WAITING = "waiting"
    """Created, no vendor slot yet (over the concurrency limit)."""
    QUEUED = "queued"
    """Holds a slot, still in the vendor's pending/queued state."""
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


TERMINAL_PHASES = frozenset({Phase.SUCCEEDED, Phase.FAILED, Phase.CANCELLED})


def is_policy_code(code: str | None) -> bool:
    """Whether a failure code means a content-policy refusal (never worth retrying)."""
    return code is not None and bool(_POLICY_CODE.search(code))


@dataclass
class Job:
    """One vendor job as the sandbox tracks it. Times are on the state's clock."""

    id: str
    kind: str
    """Vendor model or endpoint, e.g. ``gen4_turbo`` or ``fal-ai/pika/v2.2/text-to-video``."""
    prompt: str
    params: dict[str, Any]
    duration_s: float
    width: int
    height: int
    created_at: float
    hold_seconds: float
    """Time from getting a slot to the end: queue_seconds + run_seconds, or infinity."""
    queue_seconds: float
    fails: bool = False
    failure_code: str | None = None
    failure_message: str | None = None
    started_at: float | None = None
    finished_at: float | None = None
    end_phase: Phase = Phase.SUCCEEDED
    """How the job ended; meaningful only once ``finished_at`` is set (use :meth:`phase`)."""
    cancelled: bool = False
    deleted: bool = False
    vendor: dict[str, Any] = field(default_factory=dict)
    """Vendor-specific extras (ComfyUI graph and output file, Luma request echo, ...)."""

    def phase(self, now: float) -> Phase:
        """The job's phase at ``now`` (call after :meth:`SandboxState.advance`)."""
        if self.finished_at is not None:
            return self.end_phase
        if self.started_at is None:
            return Phase.WAITING
        return Phase.QUEUED if now < self.started_at + self.queue_seconds else Phase.RUNNING

    def progress(self, now: float) -> float:
        """Fraction of the run done at ``now``, 0 to 1."""
        if self.finished_at is not None:
            return 1.0
        if self.started_at is None:
            return 0.0
        run = self.hold_seconds - self.queue_seconds
        elapsed = now - self.started_at - self.queue_seconds
        return 0.0 if run <= 0 or elapsed <= 0 else min(elapsed / run, 0.99)

    def as_record(self, now: float) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "prompt": self.prompt,
            "params": _sanitize(self.params),
            "duration_s": self.duration_s,
            "width": self.width,
            "height": self.height,
            "created_at": self.created_at,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "state": self.phase(now).value,
            "failure_code": self.failure_code if self.fails else None,
            "cancelled": self.cancelled,
            "deleted": self.deleted,
        }


@dataclass(frozen=True)
class JobSpec:
    """What a vendor module asks the core to create."""

    kind: str
    prompt: str
    params: dict[str, Any]
    duration_s: float
    width: int
    height: int
    vendor: dict[str, Any] = field(default_factory=dict)


def frame_size(aspect: str, short: int) -> tuple[int, int]:
    """Width and height of a ``W:H`` frame whose short side is ``short`` (how the vendors that
    take a ratio and a resolution size their output)."""
    across, down = (int(part) for part in aspect.split(":"))
    if across >= down:
        return round(short * across / down), short
    return short, round(short * down / across)


def _sanitize(value: Any) -> Any:
    """Copy a JSON value, cutting data URIs and long base64 strings for the records."""
    if isinstance(value, dict):
        return {key: _sanitize(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_sanitize(item) for item in value]
    if isinstance(value, str) and len(value) > _RECORD_STRING_LIMIT:
        if value.startswith("data:") or _BASE64ISH.match(value):
            return value[:_RECORD_STRING_LIMIT] + "..."
    return value


class SandboxState:
    """Jobs, knobs and records of one sandbox, safe to share between threads.

    Args:
        name: The backend name (``svd``, ``runway``, ``luma``, ``pika``, ``kling``...).
        api_key: The key the sandbox expects; ``None`` for vendors without auth.
        default_knobs: Knobs :meth:`reset` returns to (ComfyUI runs one prompt at a time).
        clock: Monotonic seconds; injectable so the scheduler can be tested without sleeping.
    """

    def __init__(
        self,
        name: str,
        api_key: str | None = None,
        default_knobs: Knobs | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self.api_key = api_key
        self._default_knobs = (default_knobs or Knobs()).model_copy(deep=True)
        self._clock = clock
        self._lock = threading.RLock()
        # Wall time of clock zero, so vendors can show ISO timestamps for clock times.
        self._epoch = time.time() - clock()
        self.reset()

    # -- knobs and lifecycle -----------------------------------------------------------------------
    def reset(self) -> None:
        """Forget every job, record and uploaded input; knobs back to the defaults."""
        with self._lock:
            self.knobs = self._default_knobs.model_copy(deep=True)
            self._jobs: dict[str, Job] = {}
            self._requests: deque[dict[str, Any]] = deque(maxlen=_MAX_RECORDED_REQUESTS)
            self._inputs: dict[str, bytes] = {}
            self._counter = 0
            self._peak_active = 0
            self._peak_running = 0

    def set_knobs(self, **partial: Any) -> Knobs:
        """Change some knobs (validated); returns the knobs now in force."""
        with self._lock:
            merged = {**self.knobs.model_dump(), **partial}
            self.knobs = Knobs.model_validate(merged)
            now = self._clock()
            self._advance(now)
            self._fill_slots(now)
            return self.knobs.model_copy(deep=True)

    def now(self) -> float:
        return self._clock()

    def wall_time(self, clock_time: float) -> datetime:
        """The UTC wall-clock time of a time on this state's clock."""
        return datetime.fromtimestamp(self._epoch + clock_time, tz=UTC)

    @contextmanager
    def locked(self) -> Iterator[float]:
        """Hold the lock with the schedule advanced; yields now. For multi-step vendor reads."""
        with self._lock:
            now = self._clock()
            self._advance(now)
            yield now

    def next_number(self) -> int:
        """A counter for vendor sequence numbers (ComfyUI's queue ``number``, file counters)."""
        with self._lock:
            self._counter += 1
            return self._counter

    # -- scheduler ---------------------------------------------------------------------------------
    def advance(self, now: float | None = None) -> float:
        """Process every job end up to ``now`` (default: the clock), in time order."""
        with self._lock:
            now = self._clock() if now is None else now
            self._advance(now)
            return now

    def _advance(self, now: float) -> None:
        while True:
            holding = [job for job in self._jobs.values() if self._holds_slot(job)]
            end = min((self._ends_at(job) for job in holding), default=None)
            if end is None or end > now:
                return
            # Finish every job ending at this instant before starting others (exact peak).
            for job in holding:
                if self._ends_at(job) == end:
                    self._finish(job, end, Phase.FAILED if job.fails else Phase.SUCCEEDED)
            self._fill_slots(end)

    @staticmethod
    def _holds_slot(job: Job) -> bool:
        return job.started_at is not None and job.finished_at is None

    @staticmethod
    def _ends_at(job: Job) -> float:
        assert job.started_at is not None
        return job.started_at + job.hold_seconds

    def _finish(self, job: Job, at: float, phase: Phase) -> None:
        job.finished_at = at
        job.end_phase = phase

    def _fill_slots(self, at: float) -> None:
        """Start waiting jobs, oldest first, while the concurrency limit allows."""
        limit = self.knobs.concurrency_limit
        waiting = [
            job for job in self._jobs.values() if job.started_at is None and job.finished_at is None
        ]
        running = sum(1 for job in self._jobs.values() if self._holds_slot(job))
        for job in sorted(waiting, key=lambda job: job.created_at):
            if limit is not None and running >= limit:
                break
            job.started_at = at
            running += 1
        self._peak_running = max(self._peak_running, running)

    def _active_count(self) -> int:
        return sum(1 for job in self._jobs.values() if job.finished_at is None)

    # -- jobs --------------------------------------------------------------------------------------
    def create_job(self, spec: JobSpec, job_id: str | None = None) -> Job:
        """Create a job now: decides now whether it will fail, and starts it if a slot is free.

        Raises:
            ValueError: ``job_id`` (a client-chosen id) is already taken.
        """
        with self._lock:
            if job_id is not None and job_id in self._jobs:
                raise ValueError(f"job id {job_id!r} already exists")
            now = self._clock()
            self._advance(now)
            knobs = self.knobs
            job = Job(
                id=job_id or str(uuid.uuid4()),
                kind=spec.kind,
                prompt=spec.prompt,
                params=spec.params,
                duration_s=spec.duration_s,
                width=spec.width,
                height=spec.height,
                created_at=now,
                hold_seconds=float("inf")
                if knobs.never_finish
                else knobs.queue_seconds + knobs.run_seconds,
                queue_seconds=knobs.queue_seconds,
                vendor=dict(spec.vendor),
            )
            self._plan_failure(job)
            self._jobs[job.id] = job
            self._peak_active = max(self._peak_active, self._active_count())
            self._fill_slots(now)
            return job

    def _plan_failure(self, job: Job) -> None:
        knobs = self.knobs
        for needle, code in knobs.fail_prompts.items():
            if needle in job.prompt:
                job.fails, job.failure_code, job.failure_message = True, code, knobs.failure_message
                return
        if knobs.fail_next_jobs > 0:
            self.knobs = knobs.model_copy(update={"fail_next_jobs": knobs.fail_next_jobs - 1})
            job.fails, job.failure_code, job.failure_message = (
                True,
                knobs.failure_code,
                knobs.failure_message,
            )

    def get_job(self, job_id: str, include_deleted: bool = False) -> Job | None:
        """The job, advanced to now; ``None`` if unknown (or deleted, unless asked for)."""
        with self._lock:
            self._advance(self._clock())
            job = self._jobs.get(job_id)
            if job is None or (job.deleted and not include_deleted):
                return None
            return job

    def cancel_job(self, job_id: str) -> Job | None:
        """End a job still going at once as cancelled, freeing its slot; others are left alone."""
        with self._lock:
            now = self._clock()
            self._advance(now)
            job = self._jobs.get(job_id)
            if job is None or job.finished_at is not None:
                return job
            job.cancelled = True
            self._finish(job, now, Phase.CANCELLED)
            self._fill_slots(now)
            return job

    def delete_job(self, job_id: str) -> Job | None:
        """Cancel the job if still going, then hide it from the vendor API (404 from now on)."""
        with self._lock:
            job = self.cancel_job(job_id)
            if job is not None:
                job.deleted = True
            return job

    def jobs(self, now: float | None = None) -> list[Job]:
        """All jobs (deleted ones included), oldest first, advanced to now."""
        with self._lock:
            self._advance(self._clock() if now is None else now)
            return sorted(self._jobs.values(), key=lambda job: job.created_at)

    def waiting_position(self, job: Job) -> int:
        """0-based position among jobs without a slot (0 for jobs that have one)."""
        with self._lock:
            if job.started_at is not None:
                return 0
            position = 0
            for other in self._jobs.values():  # insertion order is creation order
                if other is job:
                    break
                position += other.started_at is None and other.finished_at is None
            return position

    # -- files -------------------------------------------------------------------------------------
    def video_bytes(self, job: Job) -> bytes:
        """The job's video, at the sandbox's reduced size unless ``full_size_video`` is set."""
        knobs = self.knobs
        if knobs.full_size_video:
            width, height = job.width, job.height
        else:
            width, height = scaled_size(job.width, job.height)
        return make_test_pattern_mp4(job.duration_s, width, height, knobs.video_fps)

    def store_input(self, name: str, data: bytes) -> None:
        """Keep an uploaded input file (ComfyUI ``/upload/image``) in memory."""
        with self._lock:
            self._inputs[name] = data

    def input_bytes(self, name: str) -> bytes | None:
        with self._lock:
            return self._inputs.get(name)

    # -- faults ------------------------------------------------------------------------------------
    def take_fault(self, op: str) -> HttpFault | None:
        """Use up one matching HTTP fault, the first in list order, or return ``None``."""
        with self._lock:
            faults = list(self.knobs.http_faults)
            for index, fault in enumerate(faults):
                if fault.on in (op, "any") and fault.count > 0:
                    remaining = fault.count - 1
                    if remaining:
                        faults[index] = fault.model_copy(update={"count": remaining})
                    else:
                        del faults[index]
                    self.knobs = self.knobs.model_copy(update={"http_faults": faults})
                    return fault
            return None

    def take_malformed(self, op: str) -> bool:
        """Use up one malformed answer if one is due for this kind of request."""
        with self._lock:
            knobs = self.knobs
            if knobs.malformed_next <= 0 or knobs.malformed_on not in (op, "any"):
                return False
            self.knobs = knobs.model_copy(update={"malformed_next": knobs.malformed_next - 1})
            return True

    # -- records -----------------------------------------------------------------------------------
    def record_request(
        self,
        *,
        at: float,
        method: str,
        path: str,
        query: dict[str, str],
        auth_ok: bool | None,
        body: Any,
        status: int,
        op: str,
    ) -> None:
        """Remember one vendor request. Never pass headers here: they carry the API key."""
        entry = {
            "time": at,
            "method": method,
            "path": path,
            "query": dict(query),
            "op": op,
            "auth_ok": auth_ok,
            "body": _sanitize(body),
            "status": status,
        }
        with self._lock:
            self._requests.append(entry)

    def records(self) -> dict[str, Any]:
        """Every request, every job and the concurrency counters, as plain JSON-ready values."""
        with self._lock:
            now = self._clock()
            self._advance(now)
            jobs = sorted(self._jobs.values(), key=lambda job: job.created_at)
            return {
                "backend": self.name,
                "now": now,
                "requests": [dict(entry) for entry in self._requests],
                "jobs": [job.as_record(now) for job in jobs],
                "peak_active": self._peak_active,
                "peak_running": self._peak_running,
                "active_now": self._active_count(),
                "running_now": sum(1 for job in jobs if self._holds_slot(job)),
            }

    def jobs_with_prompt(self, substring: str) -> list[dict[str, Any]]:
        """Job records whose prompt contains ``substring``: how many vendor jobs a scene created."""
        return [job for job in self.records()["jobs"] if substring in job["prompt"]]

    def requests_matching(
        self, method: str | None = None, path_contains: str = ""
    ) -> list[dict[str, Any]]:
        """Request records filtered by method and a path substring."""
        return [
            entry
            for entry in self.records()["requests"]
            if (method is None or entry["method"] == method) and path_contains in entry["path"]
        ]
