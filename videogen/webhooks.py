"""Webhooks, the pure part: event names, bodies, signatures, the retry schedule, and which
destinations are allowed. Receivers import :func:`verify` from here (no I/O library comes with
it); the relay that delivers is :mod:`videogen.webhook_relay`, its Redis
:mod:`videogen.webhook_store`.

Signature (``Videogen-Signature: t=<unix seconds>,v1=<hex>``): ``v1`` is
``HMAC-SHA256(secret, f"{t}.{body}")`` over the exact bytes of the body. The timestamp is
signed with the body, so a receiver that refuses old timestamps (:func:`verify`'s
``tolerance``, 300 s by default) refuses a replayed request; the ``Idempotency-Key`` header
(the same for every attempt of one event to one destination) lets it drop a retry of an
event it already took. Several ``v1=`` entries may come (a secret being rotated): one match
is enough.

Destinations are refused when they point at a link-local or cloud-metadata address, as vendor
output URLs are before a download (:func:`videogen.media.check_output_url`); loopback and
private networks stay allowed, since receivers are often the team's own services (and the
sandboxes and tests run on 127.0.0.1). Like downloads, the check reads the URL's literal host
and no redirect is followed.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import re
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

from .errors import WebhookSignatureError
from .record import SceneRecord

SIGNATURE_HEADER = "Videogen-Signature"
EVENT_HEADER = "Videogen-Event"
IDEMPOTENCY_HEADER = "Idempotency-Key"
DEFAULT_TOLERANCE = 300
"""Seconds a signature's timestamp may be away from the receiver's clock (the replay window;
five minutes, as Stripe and Slack use, covers clock skew and a slow network)."""


class WebhookEvent(StrEnum):
    """What a webhook tells: a scene reached a terminal state, or a whole job did."""

    SCENE_SUCCEEDED = "scene.succeeded"
    SCENE_FAILED = "scene.failed"
    SCENE_CANCELLED = "scene.cancelled"
    JOB_FINISHED = "job.finished"
    """Once per job, when its last scene reaches a terminal state."""


ALL_EVENTS: frozenset[WebhookEvent] = frozenset(WebhookEvent)

METADATA_HOSTS = frozenset(
    {
        "metadata",
        "metadata.google.internal",
        "metadata.goog",
        "instance-data",
        "instance-data.ec2.internal",
    }
)
"""Cloud metadata services by name (their addresses are below)."""
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a) for a in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200")
)
"""AWS, GCP and Azure (link-local anyway), AWS over IPv6, Alibaba Cloud."""
_NUMERIC_HOST = re.compile(r"^(0x[0-9a-f]+|[0-9]+)(\.(0x[0-9a-f]+|[0-9]+))*$", re.IGNORECASE)
"""Hosts that resolvers read as an IPv4 address in short, octal or hex forms (``2852039166``
is 169.254.169.254)."""


def destination_problem(url: str) -> str | None:
    """Why a webhook may not be sent to ``url``, or ``None`` when it may."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        return f"scheme {parts.scheme!r} is not http or https"
    host = (parts.hostname or "").lower().rstrip(".")
    if not host:
        return "the URL has no host"
    if parts.username is not None or parts.password is not None:
        return "the URL carries credentials (the signature authenticates a delivery)"
    if host in METADATA_HOSTS:
        return f"{host} is a cloud metadata service"
    return _address_problem(host)


def _address_problem(host: str) -> str | None:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        if _NUMERIC_HOST.match(host):
            return f"{host} is a numeric host that is not a plain IP address"
        return None  # a name: resolved when sent, as a download's is
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    if address in METADATA_ADDRESSES:
        return f"{host} is a cloud metadata address"
    if address.is_link_local:
        return f"{host} is a link-local address"
    if address.is_loopback:
        return None  # before the next test: Python counts ::1 as reserved
    if address.is_unspecified or address.is_multicast or address.is_reserved:
        return f"{host} is not an address a receiver listens on"
    return None


def safe_url(url: str) -> str:
    """A destination for logs, errors and people: scheme, host, port and path (a query string
    may carry a token)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"[:200]


# -- signatures ------------------------------------------------------------------------------


def signature(secret: str, body: bytes, timestamp: int) -> str:
    """The hex HMAC-SHA256 of ``f"{timestamp}.{body}"`` under ``secret``."""
    message = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """The ``Videogen-Signature`` header's value."""
    return f"t={timestamp},v1={signature(secret, body, timestamp)}"


def verify(
    secret: str,
    body: bytes | str,
    header: str,
    tolerance: float = DEFAULT_TOLERANCE,
    *,
    now: float | None = None,
) -> int:
    """Check a delivery's ``Videogen-Signature`` header against its raw body; returns its
    timestamp. Raises :class:`~videogen.errors.WebhookSignatureError` when the header is
    malformed, its timestamp is more than ``tolerance`` seconds from ``now`` (a replay), or no
    ``v1`` matches (a tampered body, or another secret)."""
    raw = body.encode() if isinstance(body, str) else body
    timestamp, candidates = _parse_header(header)
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        raise WebhookSignatureError(
            f"timestamp {timestamp} is outside the {tolerance:g}-s window (a replay?)"
        )
    expected = signature(secret, raw, timestamp)
    if not any(hmac.compare_digest(expected, c) for c in candidates):
        raise WebhookSignatureError("no signature matches the body")
    return timestamp


def _parse_header(header: str) -> tuple[int, list[str]]:
    timestamp: int | None = None
    candidates: list[str] = []
    for item in header.split(","):
        key, _, value = item.strip().partition("=")
        if key == "t" and value.isdigit():
            timestamp = int(value)
        elif key == "v1" and value:
            candidates.append(value)
    if timestamp is None or not candidates:
        raise WebhookSignatureError("the header needs t=<unix seconds> and v1=<hex>")
    return timestamp, candidates


def idempotency_key(event_id: str, url: str) -> str:
    """Stable per event and destination: the same on every attempt, and after a relay crash
    (a receiver drops what it has already taken)."""
    return hashlib.sha256(f"{event_id}\n{url}".encode()).hexdigest()[:32]


# -- retry schedule --------------------------------------------------------------------------


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with jitter, capped, for a bounded number of attempts."""

    max_attempts: int = 8
    base_delay: float = 5.0
    max_delay: float = 300.0
    jitter: float = 0.2
    """Each delay is spread by up to this fraction either way, so deliveries that failed
    together do not all come back together."""


def retry_delay(policy: Backoff, attempts: int, u: float) -> float | None:
    """Seconds before the next attempt after ``attempts`` failed ones, or ``None`` when none
    is left (the delivery is dead). ``u`` in [0, 1) spreads it (a random draw; tests pass
    0.5 for the plain schedule: 5, 10, 20, 40, 80, 160, 300 s by default, ~10 min in all)."""
    if attempts >= policy.max_attempts:
        return None
    plain = min(policy.max_delay, policy.base_delay * 2.0 ** (attempts - 1))
    return plain * (1 - policy.jitter + 2 * policy.jitter * u)


# -- events ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class HookEvent:
    """One event, before it is addressed to destinations."""

    id: str
    """Stable: ``scene.failed:<scene id>``, ``job.finished:<job id>``."""
    type: WebhookEvent
    job_id: str
    time: float
    data: dict[str, Any]

    def body(self) -> str:
        """The JSON body, as sent and signed (one string: every attempt sends these bytes)."""
        stamp = datetime.fromtimestamp(self.time, UTC).isoformat(timespec="milliseconds")
        head = {"id": self.id, "type": self.type.value, "time": stamp, "job_id": self.job_id}
        return json.dumps({**head, **self.data}, separators=(",", ":"), sort_keys=True)


def scene_event(record: SceneRecord, at: float) -> HookEvent | None:
    """The event of a scene in a terminal state (``None`` for a live one)."""
    if not record.finished:
        return None
    kind = WebhookEvent(f"scene.{record.state.value}")
    result = record.result or {}
    video = {k: result[k] for k in _VIDEO_FIELDS if k in result} or None
    scene = {
        "id": record.id,
        "index": record.index,
        "state": record.state.value,
        "backend": record.backend,
        "video_path": result.get("video_path"),
        "video": video,
        "error": None if kind is WebhookEvent.SCENE_SUCCEEDED else record.error,
        "cost_usd": record.spent / 1e6,
    }
    event_id = f"{kind.value}:{record.id}" + _round(record.resubmits)
    return HookEvent(event_id, kind, record.job_id, at, {"scene": scene})


def _round(resubmits: int) -> str:
    """An event id's suffix for a round after a retry (none for the first): a scene, or a
    job, that ends again after ``videogen retry`` is news again, under a new idempotency
    key; the same round processed twice keeps its key."""
    return f":{resubmits}" if resubmits else ""


_VIDEO_FIELDS = ("width", "height", "frames", "duration", "size_bytes", "resolution", "fps")


def job_finished(job_id: str, records: list[SceneRecord], at: float) -> HookEvent | None:
    """The job's ``job.finished`` event once every scene is terminal, else ``None``: one
    per round (a retry that sends scenes back makes the job finish again, under a new id)."""
    if not records or not all(r.finished for r in records):
        return None
    states = Counter(r.state.value for r in records)
    counts = {s: states.get(s, 0) for s in ("succeeded", "failed", "cancelled")}
    data = {"job": {"scenes": len(records), "states": counts}}
    event_id = f"job.finished:{job_id}" + _round(sum(r.resubmits for r in records))
    return HookEvent(event_id, WebhookEvent.JOB_FINISHED, job_id, at, data)


@dataclass(frozen=True)
class Destination:
    """Where events go: a configured webhook, or a job's own."""

    url: str
    source: str
    """``config`` or ``job``: where its signing secret is found."""
    events: frozenset[WebhookEvent] = ALL_EVENTS


def addressed(events: Iterable[HookEvent], destinations: Iterable[Destination]) -> list[Delivery]:
    """A new delivery for each event each destination wants (one per idempotency key)."""
    out: dict[str, Delivery] = {}
    for event in events:
        for dest in destinations:
            if event.type in dest.events:
                key = idempotency_key(event.id, dest.url)
                out.setdefault(key, Delivery.new(key, event, dest))
    return list(out.values())


@dataclass(frozen=True)
class Delivery:
    """One event to one destination, and how its attempts went."""

    id: str
    """Its idempotency key."""
    event_id: str
    type: str
    job_id: str
    url: str
    source: str
    body: str
    created_at: float
    state: str = "pending"
    """``pending`` (due or waiting to retry), ``delivered`` or ``dead``."""
    attempts: int = 0
    next_at: float | None = None
    last_status: int | None = None
    last_error: str | None = None
    finished_at: float | None = None

    @classmethod
    def new(cls, key: str, event: HookEvent, dest: Destination) -> Delivery:
        return cls(
            key, event.id, event.type.value, event.job_id, dest.url, dest.source,
            event.body(), event.time,
        )  # fmt: skip

    def fields(self) -> dict[str, str | int | float]:
        """As a Redis hash (unset fields left out)."""
        data = self.__dict__.items()
        return {k: v for k, v in data if v is not None}

    @classmethod
    def parse(cls, data: dict[str, str]) -> Delivery:
        values: dict[str, Any] = dict(data)
        for name in ("attempts", "last_status"):
            if name in values:
                values[name] = int(values[name])
        for name in ("created_at", "next_at", "finished_at"):
            if name in values:
                values[name] = float(values[name])
        return cls(**{k: v for k, v in values.items() if k in _DELIVERY_FIELDS})

    def summary(self) -> dict[str, Any]:
        """For people and the API: no body, the destination without its query string."""
        out = {k: v for k, v in self.__dict__.items() if k != "body"}
        out["url"] = safe_url(self.url)
        return out


_DELIVERY_FIELDS = frozenset(Delivery.__dataclass_fields__)


def headers(delivery: Delivery, secret: str, timestamp: int) -> dict[str, str]:
    """Every header of one attempt (the signature is made again for each, with its time)."""
    return {
        "Content-Type": "application/json",
        EVENT_HEADER: delivery.type,
        IDEMPOTENCY_HEADER: delivery.id,
        SIGNATURE_HEADER: sign(secret, delivery.body.encode(), timestamp),
    }
