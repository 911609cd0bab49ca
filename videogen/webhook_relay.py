"""The webhook relay: turns terminal-state events into deliveries and sends them, at least
once, with retries.

**Where it runs: a thread of its own in each router worker** (started when the worker is
ready, stopped with it), not a Celery task driven by the beat. The router worker routes with
one thread, one decision at a time; a task waiting on a slow receiver (up to ``timeout`` per
attempt, several attempts a run) would hold every routing decision behind it. A thread beside
it shares nothing with the pipeline but Redis, so a receiver that hangs delays other
deliveries, never a scene; and it needs no beat (a stack run without one still delivers).

Several routers each run a relay, safely: the event stream's consumer group gives each event
to one of them (a crashed one's are claimed again after ``claim_idle``), a delivery is created
once (its id is its idempotency key), and a due delivery is taken by one relay at a time (held
for the length of its attempt). A relay that dies mid-attempt leaves it due again: a receiver
may see an event twice, and drops the second by its ``Idempotency-Key``.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx

from .config import Settings, VideoGenerationSettings, WebhookDelivery
from .store import Store
from .webhooks import (
    Delivery,
    Destination,
    HookEvent,
    WebhookEvent,
    addressed,
    destination_problem,
    headers,
    job_finished,
    retry_delay,
    safe_url,
    scene_event,
)

log = logging.getLogger("videogen")

HOLD_MARGIN = 5.0
"""Seconds a taken delivery stays held beyond its attempt's timeout before another relay may
take it (a relay that died mid-attempt)."""
TICK_SECONDS = 10.0
"""A relay stops sending after this long in one round and reads new events first."""
ERROR_CHARS = 200


def destinations(vg: VideoGenerationSettings, job: dict[str, Any] | None) -> list[Destination]:
    """Where a job's events go: every configured webhook, and the job's own."""
    out = [Destination(h.url, "config", h.events) for h in vg.webhooks]
    if job and job.get("webhook"):
        out.append(Destination(job["webhook"], "job"))
    return out


def entry_time(entry_id: str) -> float:
    """When a stream entry was written (its id starts with the server's milliseconds)."""
    return int(entry_id.split("-", 1)[0]) / 1000


class WebhookRelay:
    """One relay: :meth:`tick` relays new events and sends due deliveries; :meth:`run` ticks
    until told to stop."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        client: httpx.Client,
        consumer: str,
        clock: Callable[[], float] = time.time,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.vg = settings.video_generation
        self.store = store
        self.client = client
        self.consumer = consumer
        self.clock = clock
        self.rand = rand

    @property
    def options(self) -> WebhookDelivery:
        return self.vg.webhook_delivery

    def run(self, stop: threading.Event) -> None:
        """Tick until ``stop`` is set; a round that found a full batch goes on at once. An
        error (Redis gone for longer than the store's retries) is logged, never fatal."""
        while not stop.is_set():
            try:
                counts = self.tick()
            except Exception as error:  # noqa: BLE001 - the relay must outlive any one round
                log.warning("webhook relay: %s: %s", type(error).__name__, error)
                counts = {}
            if max(counts.values(), default=0) < self.options.batch:
                stop.wait(self.options.interval)

    def tick(self) -> dict[str, int]:
        return {"events": self.relay_events(), "sent": self.send_due()}

    # -- events into deliveries ------------------------------------------------------------

    def relay_events(self) -> int:
        """Store the deliveries of new events (and of those a dead relay left), then
        acknowledge them; returns how many events were read."""
        opts = self.options
        entries = self.store.take_events(self.consumer, opts.batch, opts.claim_idle)
        jobs: dict[str, dict[str, Any] | None] = {}  # a batch's events are mostly one job's
        for entry_id, fields in entries:
            self._relay(entry_id, fields, jobs)
        self.store.ack_events([entry_id for entry_id, _ in entries])
        return len(entries)

    def _relay(
        self, entry_id: str, fields: dict[str, str], jobs: dict[str, dict[str, Any] | None]
    ) -> int:
        """Store the deliveries one event makes; ``jobs``: job hashes this batch read."""
        job_id, scene_id = fields.get("job"), fields.get("scene")
        if not job_id or not scene_id:
            return 0
        if job_id not in jobs:
            jobs[job_id] = self.store.job(job_id)
        dests = destinations(self.vg, jobs[job_id])
        record = self.store.scene(scene_id) if dests else None
        if record is None:
            return 0
        at = entry_time(entry_id)
        events = [scene_event(record, at)]
        if any(WebhookEvent.JOB_FINISHED in d.events for d in dests):
            ids = self.store.job_scene_ids(job_id)
            if not self.store.any_live(ids):  # one command, not a read of every scene
                events.append(job_finished(job_id, self.store.scenes(ids), at))
        made = addressed([e for e in events if isinstance(e, HookEvent)], dests)
        now = self.clock()
        return sum(self.store.add_delivery(d, now) for d in made)

    # -- sending ---------------------------------------------------------------------------

    def send_due(self) -> int:
        """Attempt due deliveries, one taken at a time (each held only for its own attempt),
        up to a batch or :data:`TICK_SECONDS`; returns how many were attempted."""
        opts = self.options
        started, sent = self.clock(), 0
        while sent < opts.batch and self.clock() - started < TICK_SECONDS:
            taken = self.store.claim_deliveries(self.clock(), opts.timeout + HOLD_MARGIN, 1)
            if not taken:
                break
            delivery = self.store.delivery(taken[0])
            if delivery is None or delivery.state != "pending":
                self.store.drop_due(taken[0])
                continue
            self.attempt(delivery)
            sent += 1
        return sent

    def attempt(self, delivery: Delivery) -> str | None:
        """Send one delivery once, and record how it went."""
        secret, why = self.secret_for(delivery)
        problem = destination_problem(delivery.url)
        if secret is None or problem:  # no attempt can ever succeed
            return self._failed(delivery, problem or why, None, final=True)
        stamp = int(self.clock())
        try:
            response = self.client.post(
                delivery.url,
                content=delivery.body.encode(),
                headers=headers(delivery, secret, stamp),
                timeout=self.options.timeout,
            )
        except httpx.HTTPError as error:
            return self._failed(delivery, f"{type(error).__name__}: {error}", None)
        if 200 <= response.status_code < 300:
            dest = safe_url(delivery.url)
            return self.store.record_attempt(
                delivery, dest, self.clock(), status=response.status_code
            )
        reason = f"HTTP {response.status_code}"
        if response.is_redirect:
            reason += " (redirects are not followed)"
        return self._failed(delivery, reason, response.status_code)

    def _failed(
        self, delivery: Delivery, error: str, status: int | None, *, final: bool = False
    ) -> str | None:
        tries = delivery.attempts + 1
        delay = None if final else retry_delay(self.options.backoff, tries, self.rand())
        now, dest = self.clock(), safe_url(delivery.url)
        outcome = self.store.record_attempt(
            delivery, dest, now, error=error[:ERROR_CHARS], status=status,
            retry_at=None if delay is None else now + delay,
        )  # fmt: skip
        if outcome == "dead":
            log.warning(
                "webhook %s to %s is dead after %d attempts: %s",
                delivery.event_id, dest, delivery.attempts + 1, error[:ERROR_CHARS],
            )  # fmt: skip
        return outcome

    def secret_for(self, delivery: Delivery) -> tuple[str | None, str]:
        """The delivery's signing secret, or why there is none (naming where it was looked
        for, never a value)."""
        if delivery.source == "job":
            own = (self.store.job(delivery.job_id) or {}).get("webhook_secret")
            shared = self.options.job_secret
            if own:
                return str(own), ""
            if shared is not None:
                return shared.get_secret_value(), ""
            env = self.options.job_secret_env
            where = f"${env}" if env else "webhook_delivery.job_secret_env"
            return None, f"no signing secret: the job brought none and {where} is not set here"
        for hook in self.vg.webhooks:
            if hook.url == delivery.url and hook.secret is not None:
                return hook.secret.get_secret_value(), ""
            if hook.url == delivery.url:
                return None, f"no signing secret: ${hook.secret_env} is not set here"
        return None, "the destination is no longer configured"


def start_relay(settings: Settings) -> Callable[[], None]:
    """Run a relay in a daemon thread of this process; returns what stops it."""
    store = Store.from_url(settings.redis)
    client = httpx.Client(follow_redirects=False)
    consumer = f"{socket.gethostname()}-{os.getpid()}"
    relay = WebhookRelay(settings, store, client, consumer)
    stop = threading.Event()
    thread = threading.Thread(target=relay.run, args=(stop,), name="webhooks", daemon=True)
    thread.start()

    def halt() -> None:
        stop.set()
        thread.join(settings.video_generation.webhook_delivery.timeout + 1)
        client.close()

    return halt
