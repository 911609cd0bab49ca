"""Every Redis key videogen uses, built in this one place (all start with ``vg:``).

Celery's own keys (its queues, ``unacked``, ``_kombu.*``) are Celery's; nothing here clashes
with them, and ``vg:*`` can be cleared without touching the broker's state.
"""

from __future__ import annotations

PREFIX = "vg:"

JOBS = f"{PREFIX}jobs"
"""Sorted set: job id -> submit time."""
LIVE = f"{PREFIX}live"
"""Set of unfinished scene ids: added at submit, removed by the terminal transition."""
ROUND_ROBIN = f"{PREFIX}rr"
"""The round-robin counter, shared by every router process."""
STACK = f"{PREFIX}stack"
"""Hash of what the running stack's workers use (see :mod:`videogen.stackview`), by role."""
BACKLOG = f"{PREFIX}backlog"
"""Set of the backlog's class names (each class is a sorted set, :func:`backlog`)."""
VTIME = f"{PREFIX}vtime"
"""The round of the latest scene bound to a backend (the backlog's fair-queuing clock)."""
JOB_SEQ = f"{PREFIX}jobseq"
"""Counter: jobs in submit order (breaks ties between jobs in one backlog round)."""
EVENTS = f"{PREFIX}events"
"""Stream: one entry per scene reaching a terminal state (``scene``, ``job``, ``state``),
appended by the transition script in the same atomic step (an outbox: webhooks and live
views read it; capped near 100,000 entries)."""
SAMPLES = f"{PREFIX}samples"
"""List: the latest backend samples (JSON, newest first) for the dashboard's charts, one per
sampling slot, capped at an hour's worth (:mod:`videogen.web.history`)."""


def sample_slot(slot: int) -> str:
    """Taken (SET NX) by the one web process that samples slot ``slot``."""
    return f"{PREFIX}samples:slot:{slot}"


WEBHOOK_GROUP = "vg-webhooks"
"""The consumer group of :data:`EVENTS` that webhook relays share (each entry goes to one)."""
WEBHOOKS_DUE = f"{PREFIX}webhooks:due"
"""Sorted set: pending delivery id -> time of its next attempt (pushed forward while one
relay sends it, so that no other takes it meanwhile)."""
WEBHOOKS_RECENT = f"{PREFIX}webhooks:recent"
"""Sorted set: delivery id -> creation time, the latest ones (``videogen webhooks``)."""
WEBHOOKS_DEAD = f"{PREFIX}webhooks:dead"
"""Sorted set: delivery id -> when it ran out of attempts."""
WEBHOOKS_STATS = f"{PREFIX}webhooks:stats"
"""Hash: ``<counter>|<destination>`` -> count (delivered, retrying, dead, failed attempts)."""
WEBHOOKS_ERRORS = f"{PREFIX}webhooks:errors"
"""Hash: destination -> its latest failed attempt (JSON: error, status, time)."""
ORPHANS = f"{PREFIX}orphans"
"""Hash: ``backend:vendor job id`` -> orphan (JSON, :class:`videogen.models.Orphan`)."""
DISPATCH = f"{PREFIX}dispatch"
"""Flag with a short TTL: a dispatch step is already asked for (events coalesce); its value is
when it was first asked (seconds, for the dispatch lag)."""
DISPATCH_LAGS = f"{PREFIX}dispatch_lags"
"""List, newest first: seconds from a dispatch step being asked for to its binding scenes
(:attr:`videogen.jobtimes.JobTimes.lag`)."""


def job(job_id: str) -> str:
    """Hash: the job's id, submit time and scene count."""
    return f"{PREFIX}job:{job_id}"


def webhook(delivery_id: str) -> str:
    """Hash: one webhook delivery (:class:`videogen.webhooks.Delivery`)."""
    return f"{PREFIX}webhook:{delivery_id}"


def job_scenes(job_id: str) -> str:
    """List: the job's scene ids, in order."""
    return f"{PREFIX}job:{job_id}:scenes"


def scene(scene_id: str) -> str:
    """Hash: one scene's record (:mod:`videogen.record`)."""
    return f"{PREFIX}scene:{scene_id}"


def attempts(scene_id: str) -> str:
    """List: the scene's failed tries (JSON: backend, error, kind, time)."""
    return f"{PREFIX}scene:{scene_id}:attempts"


def lease(backend: str) -> str:
    """Sorted set: scene id -> lease expiry (server ms); the backend's global in-flight cap."""
    return f"{PREFIX}lease:{backend}"


def queued(backend: str) -> str:
    """Sorted set: scenes routed to the backend and not yet started."""
    return f"{PREFIX}queued:{backend}"


def stats(backend: str) -> str:
    """Hash: the backend's counters (submitted, succeeded, failed, errors, ...)."""
    return f"{PREFIX}stats:{backend}"


def latency(backend: str) -> str:
    """Hash: latency histogram bucket -> count."""
    return f"{PREFIX}latency:{backend}"


def health(backend: str) -> str:
    """String with a TTL: the backend's latest probe report (JSON); gone means unknown."""
    return f"{PREFIX}health:{backend}"


def circuit(backend: str) -> str:
    """String: the backend's circuit breaker (JSON); no key means closed."""
    return f"{PREFIX}circuit:{backend}"


def lock(name: str) -> str:
    return f"{PREFIX}lock:{name}"


def probed(request_id: str) -> str:
    """List a client blocks on while the router probes for it (``videogen health``)."""
    return f"{PREFIX}probed:{request_id}"


def backlog(class_name: str) -> str:
    """Sorted set: waiting scenes of one backlog class -> rank (lower goes first)."""
    return f"{PREFIX}backlog:{class_name}"


def job_times(backend: str) -> str:
    """List: the backend's latest finished jobs, ``duration:seconds``, newest first."""
    return f"{PREFIX}jobtime:{backend}"


def spend(scope: str) -> str:
    """Hash: one spend ledger (``reserved``, ``settled``, ``held`` micro-dollars) of a job,
    a backend or everything, over all time or one UTC period (:mod:`videogen.spend`)."""
    return f"{PREFIX}spend:{scope}"


def budget_alert(scope: str, level: int) -> str:
    """Flag: the alert for ``level`` % of a budget's period was given (set once)."""
    return f"{PREFIX}alert:{scope}:{level}"


def budget_full(scope: str) -> str:
    """String with a TTL: a budget stops new work on ``scope`` (a backend, or ``all``) for a
    while; the value says which and why."""
    return f"{PREFIX}budgetfull:{scope}"


CACHE_LRU = f"{PREFIX}cache:lru"
"""Sorted set: result-cache key -> when its video was last stored or reused (eviction order)."""
CACHE_REFS = f"{PREFIX}cache:refs"
"""Hash: content hash -> how many cache keys point at its file (deleted at zero)."""
CACHE_STATS = f"{PREFIX}cache:stats"
"""Hash: the result cache's counters (``hits``, ``misses``, ``bytes``, ``saved_micro``)."""


def cache_entry(key: str) -> str:
    """String: one result-cache entry (JSON, :class:`videogen.cache.Entry`)."""
    return f"{PREFIX}cache:entry:{key}"


def cache_uses(key: str) -> str:
    """List: every reuse of a cache entry (JSON: scene, job, time, USD saved), newest last."""
    return f"{PREFIX}cache:uses:{key}"


def followers(scene_id: str) -> str:
    """List: scenes of the same job identical to this one, waiting for its video."""
    return f"{PREFIX}followers:{scene_id}"
