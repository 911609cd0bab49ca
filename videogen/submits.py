"""Creating a scene's vendor job once, and resolving a create whose answer was lost.

Before a create request leaves, the scene records it (:class:`~videogen.models.Submitting`:
the backend, a client-chosen key, the send time); the answer's job replaces it. A lost answer
(a timeout, a dropped connection, an unreadable answer), or a worker that died in between,
leaves it set: a vendor job may exist. What happens then is the backend's
:class:`~videogen.backends.base.Lookup`:

- ``NONE`` (Runway, Pika on fal): the scene fails with the reason, never resubmitted.
- ``CLIENT_ID`` (SVD on ComfyUI) and ``LIST`` (Luma): once the answer can no longer arrive
  (the send time plus the backend's ``request_timeout``), the job is looked up. Found, it is
  the scene's job, resumed like any other (created once, counted once). Not found, the create
  is sent once more: with the same key for ``CLIENT_ID`` (the vendor itself refuses a second
  job with that id: 409, and the job is looked up again), a fresh one for ``LIST``. A lookup
  that cannot tell, or a second lost answer the vendor does not show either, fails the scene
  as ``NONE`` does.
"""

from __future__ import annotations

import logging
from typing import Protocol

from .backends.base import BaseVideoBackend, Lookup
from .context import Context
from .errors import (
    AmbiguousSubmitError,
    BackendError,
    MalformedResponseError,
    RejectedInputError,
    TransientBackendError,
)
from .models import GenerationRequest, Submitting, VendorJob
from .record import SceneRecord
from .retry import backoff_delay

log = logging.getLogger("videogen")

MAX_CREATES = 2
"""Creates sent for one try: a lost answer the vendor does not know of is sent once more."""
LOOKUP_TRIES = 3
"""Lookups tried (with a backoff between) when the lookup itself fails transiently."""
WAIT_STEP = 0.5
"""Seconds between heartbeats while waiting for a lost answer's time to pass: short next to
any real ``lease_ttl`` (60 s by default; the heartbeat renews it every third of that)."""
DIED = "a worker died while creating the vendor job: one may exist"


class Creator(Protocol):
    """A run that holds the scene's slot (:class:`videogen.generation.Run`)."""

    ctx: Context
    backend: BaseVideoBackend
    record: SceneRecord
    created: bool

    def heartbeat(self) -> None: ...


def vendor_job(run: Creator, request: GenerationRequest) -> VendorJob:
    """The scene's vendor job: resumed when one is stored, looked up when a create was sent
    and not answered, else created (once)."""
    saved, name = run.record.vendor_job, run.backend.name
    if saved is not None and saved.backend == name:
        log.info("scene %s: resuming %s job %s", run.record.id, name, saved.job_id)
        return saved
    sent = run.record.submitting
    if sent is not None and sent.backend == name:
        return resolve(run, request, sent, AmbiguousSubmitError(name, DIED), ours=False)
    return create(run, request, run.backend.new_key(), attempt=1)


def create(run: Creator, request: GenerationRequest, key: str, attempt: int) -> VendorJob:
    """Record the create, then send it; an ambiguous answer is resolved."""
    backend = run.backend
    sent = Submitting(backend=backend.name, key=key, sent_at=run.ctx.clock(), attempt=attempt)
    run.ctx.store.update(run.record.id, submitting=sent)
    # Still ours? A write that stalled (a Redis failover) may have outlived the lease, and a
    # worker resuming the scene must not meet a vendor job it was never told of. Free unless
    # a third of the lease has passed since it was taken or renewed.
    run.heartbeat()
    try:
        job = backend.submit(request, key=key)
    except AmbiguousSubmitError as error:
        return resolve(run, request, sent, error, ours=True)
    except RejectedInputError as error:
        if error.status_code == 409 and backend.lookup is Lookup.CLIENT_ID:
            return _taken(run, request, sent, error)
        run.ctx.store.update(run.record.id, submitting=None)  # an answer: no job was made
        raise
    except BackendError:
        run.ctx.store.update(run.record.id, submitting=None)  # an answer: no job was made
        raise
    return adopt(run, request, job, sent, ours=True, how="created")


def resolve(
    run: Creator,
    request: GenerationRequest,
    sent: Submitting,
    error: AmbiguousSubmitError,
    *,
    ours: bool,
) -> VendorJob:
    """After ``error`` (a lost answer to ``sent``): the job found at the vendor, or the create
    sent once more; raises ``error`` where the backend cannot look (or the record predates
    keys)."""
    backend = run.backend
    if backend.lookup is Lookup.NONE or sent.key is None or sent.sent_at is None:
        raise error
    wait_until(run, sent.sent_at + backend.settings.request_timeout)
    job = look_up(run, request, sent, error)
    if job is not None:
        return adopt(run, request, job, sent, ours=ours, how="found after a lost create answer")
    if sent.attempt >= MAX_CREATES:
        raise AmbiguousSubmitError(
            backend.name,
            f"{error.message}; the vendor shows no such job, and the create was already sent "
            f"{sent.attempt} times",
        )
    log.warning(
        "scene %s: %s shows no job for a lost create answer; sending it once more",
        run.record.id, backend.name,
    )  # fmt: skip
    key = sent.key if backend.lookup is Lookup.CLIENT_ID else backend.new_key()
    return create(run, request, key, sent.attempt + 1)


def _taken(
    run: Creator, request: GenerationRequest, sent: Submitting, error: RejectedInputError
) -> VendorJob:
    """The vendor refused the key as taken: an earlier create with it made the job."""
    job = look_up(run, request, sent, AmbiguousSubmitError(run.backend.name, error.message))
    if job is None:
        raise AmbiguousSubmitError(
            run.backend.name, f"the vendor says job {sent.key} exists ({error.message}) but "
            "shows no such job",
        )  # fmt: skip
    return adopt(run, request, job, sent, ours=True, how="found after a lost create answer")


def look_up(
    run: Creator, request: GenerationRequest, sent: Submitting, error: AmbiguousSubmitError
) -> VendorJob | None:
    """``find_submitted``, retried with a backoff while it fails transiently; any failure
    left leaves the submit ambiguous (:class:`AmbiguousSubmitError`, saying why)."""
    backend, key, sent_at = run.backend, sent.key or "", sent.sent_at or 0.0
    for attempt in range(1, LOOKUP_TRIES + 1):
        try:
            return backend.find_submitted(request, key, sent_at)
        except (TransientBackendError, MalformedResponseError) as failure:
            if attempt == LOOKUP_TRIES:
                raise AmbiguousSubmitError(
                    backend.name,
                    f"{error.message}; looking the job up failed {attempt} times: "
                    f"{failure.message}",
                ) from None
            delay = backoff_delay(attempt, retry_after=failure.retry_after)
            wait_until(run, run.ctx.clock() + delay)
        except BackendError as failure:
            reason = f"{error.message}; looking the job up: {failure.message}"
            raise AmbiguousSubmitError(backend.name, reason) from None
    raise AssertionError("unreachable: the last try returns or raises")


def adopt(
    run: Creator,
    request: GenerationRequest,
    job: VendorJob,
    sent: Submitting,
    *,
    ours: bool,
    how: str,
) -> VendorJob:
    """Store ``job`` as the scene's (its timeout counts from the send) and count it, once.
    ``ours``: this run sent the create (its time teaches the scheduler)."""
    job = job.model_copy(update={"created_at": sent.sent_at})
    run.ctx.store.update_counting(
        run.record.id, run.backend.name,
        {"submitted": 1, "cost_usd": request.estimated_cost_usd},
        vendor_job=job, submitting=None, request=request,
    )  # fmt: skip
    run.created = ours
    log.info("scene %s: %s job %s %s", run.record.id, run.backend.name, job.job_id, how)
    return job


def wait_until(run: Creator, until: float) -> None:
    """Let time pass until ``until`` (the pipeline's clock), keeping the slot."""
    while (left := until - run.ctx.clock()) > 0:
        run.heartbeat()
        run.ctx.sleep(min(WAIT_STEP, left))
