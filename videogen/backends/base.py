"""The backend protocol every vendor adapter implements.

An adapter declares its :class:`Capabilities` and makes single attempts at five things:
``submit`` (one create request, returning the vendor's job handle), ``poll`` (one status
request, normalised), ``cancel``, ``probe`` (a cheap health request that never starts a paid
generation) and ``download`` (stream the output to disk and check it is a video). Everything
HTTP goes through :mod:`videogen.transport`, so errors arrive already classified.

The original design's methods (``generate_video``, ``get_task_status``, ``health_check``,
``get_capabilities``) are built on those five here, once, for every backend.
"""

from __future__ import annotations

import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, ClassVar, Self

import httpx

from ..capabilities import Capabilities, plan
from ..config import BackendSettings
from ..errors import (
    AmbiguousSubmitError,
    BackendError,
    ConfigError,
    GenerationFailedError,
    InvalidOutputError,
    JobCancelledError,
    MalformedResponseError,
    RejectedInputError,
    TransientBackendError,
    VendorUnknownError,
)
from ..media import download_video
from ..models import (
    GenerationRequest,
    GenerationResult,
    HealthReport,
    JobState,
    JobStatus,
    Scene,
    VendorJob,
    VideoInfo,
)
from ..retry import backoff_delay
from ..transport import Clock, Sleep, make_client


@contextmanager
def tolerate(*statuses: int) -> Iterator[None]:
    """Let a refusal with one of ``statuses`` pass: cancelling what is already gone is fine."""
    try:
        yield
    except RejectedInputError as error:
        if error.status_code not in statuses:
            raise


@contextmanager
def refused_unless_ended(backend: BaseVideoBackend, job: VendorJob) -> Iterator[None]:
    """For vendors that cancel only queued jobs (DashScope, Ark): a refused cancel of a job that
    has already ended, or is gone (404), is what we wanted; of one still running it is raised,
    as that job runs on (one status request tells them apart)."""
    try:
        yield
    except RejectedInputError as error:
        if error.status_code != 404 and not backend.poll(job).state.terminal:
            raise


HEARTBEAT_EVERY = 1.0
"""Seconds between heartbeats during a long pause (the heartbeat itself renews the lease only
once a third of its time has passed)."""
UNKNOWN_POLL_CAP = 8.0
"""Most seconds between polls of a job whose vendor stopped answering: back off, but notice
its return within seconds."""


@dataclass
class Unknown:
    """How long a job's vendor has not answered, and when to ask again (pure)."""

    grace: float
    since: float | None = None
    errors: int = 0

    def failed(self, now: float, error: BackendError) -> float | None:
        """One more unanswered poll: seconds until the next, ``None`` once the grace is out."""
        if self.since is None:
            self.since = now
        self.errors += 1
        left = self.grace - (now - self.since)
        if left <= 0:
            return None
        delay = backoff_delay(self.errors, retry_after=error.retry_after, cap=UNKNOWN_POLL_CAP)
        return min(delay, left)

    def answered(self) -> None:
        self.since, self.errors = None, 0


class Lookup(StrEnum):
    """How a backend finds a job whose create answer was lost (an ambiguous submit)."""

    NONE = "none"
    """The vendor offers no way: the scene fails with the reason, never resubmitted."""
    CLIENT_ID = "client_id"
    """We choose the job's id and send it with the create (ComfyUI's ``prompt_id``, Kling's
    ``external_task_id``): look it up by that id; a resubmit reuses it, so the vendor itself
    refuses a second job."""
    LIST = "list"
    """The vendor lists recent jobs with their creation time and echoed request (Luma): match
    one created around the send time whose request is the one we sent."""


class BaseVideoBackend(ABC):
    """One vendor, one adapter. Subclasses set the class attributes and the five methods."""

    name: ClassVar[str]
    settings_model: ClassVar[type[BackendSettings]] = BackendSettings
    """The backend's settings class; it also holds the vendor's facts mirrored below."""
    default_base_url: ClassVar[str]
    key_env: ClassVar[tuple[str, ...]]
    requires_key: ClassVar[bool]
    lookup: ClassVar[Lookup] = Lookup.NONE
    """How a lost create answer is resolved (:meth:`find_submitted`)."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # Written once, on the settings class: the config schema reads them from there
        # without importing any adapter (and its httpx and PyAV).
        cls.default_base_url = cls.settings_model.default_base_url
        cls.key_env = cls.settings_model.key_env
        cls.requires_key = cls.settings_model.requires_key

    def __init__(
        self,
        settings: BackendSettings,
        *,
        client: httpx.Client | None = None,
        sleep: Sleep = time.sleep,
        clock: Clock = time.monotonic,
    ) -> None:
        self.settings = settings
        self.base_url = settings.base_url or self.default_base_url
        self._client = client or make_client(settings.request_timeout)
        self._owns_client = client is None
        self._sleep = sleep
        self._clock = clock

    def close(self) -> None:
        if self._owns_client:
            self._client.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- what each adapter provides -------------------------------------------------------

    @abstractmethod
    def get_capabilities(self) -> Capabilities:
        """What this backend can take, with its current settings."""

    @abstractmethod
    def submit(self, request: GenerationRequest, *, key: str | None = None) -> VendorJob:
        """Start one vendor job (one create request, never retried here).

        Args:
            key: the client-chosen key (:meth:`new_key`), stored by the caller before this is
                sent; a ``CLIENT_ID`` backend sends it as the job's id (``None``: it picks
                one itself), the others ignore it.
        """

    @abstractmethod
    def poll(self, job: VendorJob) -> JobStatus:
        """One status request, normalised."""

    @abstractmethod
    def cancel(self, job: VendorJob) -> None:
        """Ask the vendor to stop (or delete) the job."""

    def cancellable(self, job: VendorJob) -> bool:
        """Whether the vendor has a way to stop this job. Where it has none (Kling, MiniMax's
        V1 API) a job given up on runs to its end: it is left as an orphan, which the sweep
        asks about until it ends (its video may yet be the scene's; a failure is refunded)."""
        return True

    @abstractmethod
    def probe(self) -> dict[str, Any]:
        """A cheap authenticated request that never starts a paid generation; returns facts."""

    def new_key(self) -> str:
        """A fresh key for one create (what :meth:`submit` and :meth:`find_submitted` take):
        a canonical lowercase UUID, which ComfyUI requires of a ``prompt_id``."""
        return str(uuid.uuid4())

    def find_submitted(
        self, request: GenerationRequest, key: str, sent_at: float
    ) -> VendorJob | None:
        """The job a create with ``key``, sent at ``sent_at`` (wall clock), made, or ``None``
        when the vendor has no such job (one or a few requests, never retried here).

        Raises:
            AmbiguousSubmitError: the vendor's answer cannot tell (two jobs match), or this
                backend has no way to look (``lookup`` is ``NONE``).
        """
        raise AmbiguousSubmitError(self.name, "the vendor offers no way to look up a job")

    def failure_class(self, status: JobStatus) -> type[BackendError]:
        """Which error a FAILED status stands for; adapters map their vendor's codes."""
        return GenerationFailedError

    def failure_error(self, job: VendorJob, status: JobStatus) -> BackendError:
        """The error a FAILED or CANCELLED status stands for."""
        if status.state is JobState.CANCELLED:
            return JobCancelledError(self.name, f"job {job.job_id} was cancelled or deleted")
        reason = status.failure_reason or "no reason given"
        return self.failure_class(status)(
            self.name, f"job {job.job_id} failed: {reason}", vendor_code=status.failure_code
        )

    def download_headers(self) -> dict[str, str]:
        """Headers for fetching outputs (none: vendor output URLs are pre-signed)."""
        return {}

    # -- shared behaviour -----------------------------------------------------------------

    def api_key(self) -> str:
        """The key, read at the moment a header is built; refuses to run without one."""
        if self.settings.api_key is None:
            raise ConfigError(f"{self.name}: no API key ({self.settings.key_source})")
        return self.settings.api_key.get_secret_value()

    def prepare(self, scene: Scene) -> GenerationRequest:
        """Fit the scene to this backend; :class:`CapabilityError` before any HTTP call."""
        return plan(self.name, self.get_capabilities(), scene)

    def download(self, status: JobStatus, dest: Path) -> VideoInfo:
        """Fetch a SUCCEEDED job's output to ``dest`` and check that it is a real video."""
        if not status.output_url:
            raise InvalidOutputError(self.name, "the job succeeded without an output URL")
        return download_video(
            self._client,
            self.name,
            status.output_url,
            dest,
            base_url=self.base_url,
            max_bytes=self.settings.max_download_bytes,
            headers=self.download_headers(),
        )

    def wait(
        self,
        job: VendorJob,
        *,
        timeout: float,
        heartbeat: Callable[[], None] | None = None,
        on_change: Callable[[JobStatus], None] | None = None,
        on_unknown: Callable[[BackendError | None], None] | None = None,
        silent_for: float | None = None,
    ) -> JobStatus:
        """Poll until the job ends or ``timeout`` seconds pass (timed on this backend's clock).

        A poll the vendor does not answer (5xx, refused connection, timeout, garbage) leaves
        the job *unknown*, not failed: it may still be running, and paid for. It is polled on,
        with backoff, for up to the backend's ``unknown_grace``, and ``timeout`` is not applied
        to it meanwhile (a job is not timed out for what we cannot see). ``heartbeat`` runs before
        every poll (the pipeline renews the scene's slot there); ``on_change`` gets every
        status whose vendor state differs from the previous one; ``on_unknown`` gets each
        unanswered poll's error, and ``None`` when the vendor answers again. ``silent_for``:
        seconds the vendor had already been silent about the job (a resumed job keeps its
        grace, as it keeps its deadline).

        Raises:
            VendorUnknownError: no answer for ``unknown_grace`` seconds.
            GenerationFailedError: ``timeout`` passed (the caller cancels the vendor job).
        """
        deadline = self._clock() + timeout
        since = None if silent_for is None else self._clock() - silent_for
        unknown = Unknown(self.settings.unknown_grace, since)
        last = ""
        while True:
            if heartbeat is not None:
                heartbeat()
            try:
                status = self.poll(job)
            except (TransientBackendError, MalformedResponseError) as error:
                delay = unknown.failed(self._clock(), error)
                if on_unknown is not None:
                    on_unknown(error)
                if delay is None:
                    raise VendorUnknownError(
                        self.name,
                        f"job {job.job_id}: no answer from the vendor for "
                        f"{self.settings.unknown_grace:g} s (last: {error})",
                    ) from error
                self._pause(None, delay, heartbeat)  # the timeout waits for an answer
                continue
            if unknown.since is not None:
                unknown.answered()
                if on_unknown is not None:
                    on_unknown(None)
            if on_change is not None and status.vendor_state != last:
                on_change(status)
            last = status.vendor_state
            if status.state.terminal:
                return status
            self._pause(deadline, self.settings.poll_interval, heartbeat)

    def _pause(
        self, deadline: float | None, seconds: float, heartbeat: Callable[[], None] | None = None
    ) -> None:
        """Sleep until the next poll, the heartbeat still beating at least every
        :data:`HEARTBEAT_EVERY` seconds (a long backoff must not cost the slot's lease).
        ``deadline`` ``None``: the vendor is not answering, and a job is not timed out for
        what we cannot see (the grace bounds that wait)."""
        left = seconds
        if deadline is not None:
            remaining = deadline - self._clock()
            if remaining <= 0:
                raise GenerationFailedError(
                    self.name, f"no result within {self.settings.timeout:g} s"
                )
            left = min(seconds, remaining)
        while left > HEARTBEAT_EVERY and heartbeat is not None:
            self._sleep(HEARTBEAT_EVERY)
            heartbeat()
            left -= HEARTBEAT_EVERY
        self._sleep(left)

    def finish(self, job: VendorJob, status: JobStatus, dest: Path) -> VideoInfo:
        """Turn a terminal status into a stored video or the error it stands for."""
        if status.state is not JobState.SUCCEEDED:
            raise self.failure_error(job, status)
        return self.download(status, dest)

    # -- the original design's interface --------------------------------------------------

    def generate_video(self, scene: Scene | dict[str, Any], dest: Path) -> GenerationResult:
        """Generate one scene on this backend, start to finish, and store it at ``dest``.

        A single-backend convenience: failover between backends is the pipeline's job.
        """
        scene = scene if isinstance(scene, Scene) else Scene.model_validate(scene)
        started = self._clock()
        request = self.prepare(scene)
        job = self.submit(request)
        try:
            status = self.wait(job, timeout=self.settings.timeout)
        except BackendError:
            self.cancel_quietly(job)  # never leave a paid job running that nobody will fetch
            raise
        video = self.finish(job, status, dest)
        return GenerationResult(
            backend=self.name,
            job=job,
            request=request,
            video=video,
            source_url=status.output_url or "",
            seconds=round(self._clock() - started, 3),
        )

    def billed_usd(self, status: JobStatus) -> float | None:
        """The vendor's own figure for a finished job, where its answer carries one (Kling's
        units, DashScope's seconds...); ``None``: the estimate for what was asked is settled.
        None of Runway, Luma, fal or ComfyUI reports a cost per job."""
        return None

    def cancel_quietly(self, job: VendorJob) -> bool:
        """Cancel, best effort: the error that made us give up is the one worth reporting.
        True when the vendor took the cancel (or the job was already gone); False, without
        asking, for a job the vendor cannot stop (:meth:`cancellable`)."""
        if not self.cancellable(job):
            return False
        try:
            self.cancel(job)
        except BackendError:
            return False
        return True

    def get_task_status(self, job: VendorJob | str) -> JobStatus:
        """The normalised status of a vendor job (a handle, or a bare vendor job id)."""
        handle = job if isinstance(job, VendorJob) else VendorJob(backend=self.name, job_id=job)
        return self.poll(handle)

    def health_check(self) -> HealthReport:
        """Run the cheap probe; any error makes an unhealthy report that says why."""
        started = self._clock()
        try:
            info = self.probe()
        except (BackendError, ConfigError) as error:
            return self._report(started, healthy=False, detail=str(error))
        return self._report(started, healthy=True, detail="ok", info=info)

    def _report(
        self, started: float, *, healthy: bool, detail: str, info: dict[str, Any] | None = None
    ) -> HealthReport:
        latency = (self._clock() - started) * 1000
        return HealthReport(
            backend=self.name,
            healthy=healthy,
            latency_ms=round(latency, 1),
            detail=detail,
            info=info or {},
        )
