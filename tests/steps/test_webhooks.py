"""The webhook relay, step by step, on the real Redis: events become deliveries once however
many relays read them, a crashed relay's events are taken over, failures retry on the schedule
and end dead, visibly. Receivers are ``httpx.MockTransport`` handlers; the clock is the test's.
"""

from __future__ import annotations

import json
import time

import httpx
import pytest

from videogen.config import job_options
from videogen.models import Scene
from videogen.store import Store
from videogen.webhook_relay import WebhookRelay
from videogen.webhooks import verify

SECRET = "job-secret-0123456789"


class Receiver:
    """Answers ``statuses`` in turn (then 200), keeping every request."""

    def __init__(self, *statuses: int) -> None:
        self.statuses = list(statuses)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return httpx.Response(self.statuses.pop(0) if self.statuses else 200)

    def events(self) -> list[tuple[str, str]]:
        return [(r.headers["Videogen-Event"], r.headers["Idempotency-Key"]) for r in self.requests]


def fast(vg):
    vg["webhook_delivery"] = {"base_delay": 1, "max_delay": 4, "max_attempts": 3, "jitter": 0,
                              "claim_idle": 0.05}  # fmt: skip


@pytest.fixture
def hooked(make_steps):
    steps = make_steps(fast)
    relays: list[WebhookRelay] = []

    def relay(receiver: Receiver, name: str = "a") -> WebhookRelay:
        client = httpx.Client(transport=httpx.MockTransport(receiver))
        store = Store(steps.store.r, clock=steps.clock)
        made = WebhookRelay(steps.pipeline.settings, store, client, name, steps.clock, lambda: 0.5)
        relays.append(made)
        return made

    yield steps, relay
    for made in relays:
        made.client.close()


def finished_job(steps, *prompts: str) -> str:
    job_id = steps.pipeline.submit(
        [Scene(prompt=p) for p in prompts],
        options=job_options(webhook="http://127.0.0.1:9/hook", webhook_secret=SECRET),
    )
    steps.run_all()
    assert all(r.finished for r in steps.store.scenes(steps.store.job_scene_ids(job_id)))
    return job_id


def test_two_relays_make_each_delivery_once_and_send_it_signed(hooked):
    steps, relay = hooked
    receiver = Receiver()
    a, b = relay(receiver, "a"), relay(receiver, "b")
    job_id = finished_job(steps, "one", "two")
    assert a.relay_events() + b.relay_events() == 2  # each stream entry read by one relay
    assert a.relay_events() + b.relay_events() == 0
    assert a.send_due() + b.send_due() == 3  # two scenes and the job
    assert sorted(e for e, _ in receiver.events()) == [
        "job.finished", "scene.succeeded", "scene.succeeded"
    ]  # fmt: skip
    for request in receiver.requests:
        verify(SECRET, request.content, request.headers["Videogen-Signature"], now=steps.clock())
        assert json.loads(request.content)["job_id"] == job_id
    stats = steps.store.webhook_stats()
    assert stats["pending"] == 0
    assert stats["destinations"]["http://127.0.0.1:9/hook"]["delivered"] == 3


def test_a_crashed_relay_s_events_are_taken_over(hooked):
    steps, relay = hooked
    receiver = Receiver()
    finished_job(steps, "one")
    lost = steps.store.take_events("crashed", 10, 30.0)  # read, never acknowledged
    assert len(lost) == 1
    survivor = relay(receiver, "b")
    time.sleep(0.1)  # past claim_idle, on the server's clock
    assert survivor.relay_events() == 1
    assert survivor.send_due() == 2
    assert sorted(e for e, _ in receiver.events()) == ["job.finished", "scene.succeeded"]


def test_failures_retry_on_the_schedule_with_one_key_then_die_visibly(hooked):
    steps, relay = hooked
    receiver = Receiver(500, 503, 500, 500, 500, 500)
    sender = relay(receiver)
    finished_job(steps, "one")
    sender.relay_events()
    assert sender.send_due() == 2  # both fail (500, 503)
    assert sender.send_due() == 0  # nothing is due before its backoff
    steps.clock.advance(1.0)  # base_delay
    assert sender.send_due() == 2  # second attempts fail too
    steps.clock.advance(1.9)
    assert sender.send_due() == 0
    steps.clock.advance(0.1)  # 2 s after the second attempt
    assert sender.send_due() == 2  # third and last attempts fail: dead
    steps.clock.advance(100)
    assert sender.send_due() == 0
    keys = [k for _, k in receiver.events()]
    assert len(keys) == 6 and len(set(keys)) == 2  # every retry kept its idempotency key
    stats = steps.store.webhook_stats()
    row = stats["destinations"]["http://127.0.0.1:9/hook"]
    assert (stats["pending"], stats["dead"]) == (0, 2)
    assert row["dead"] == 2 and row["retrying"] == 0 and row["failed_attempts"] == 6
    assert row["last_error"]["error"] == "HTTP 500"
    dead = steps.store.dead_deliveries()
    assert {d.state for d in dead} == {"dead"} and {d.attempts for d in dead} == {3}


def test_a_receiver_that_recovers_gets_it_and_counts_settle(hooked):
    steps, relay = hooked
    sender = relay(Receiver(500))
    finished_job(steps, "one")
    sender.relay_events()
    sender.send_due()
    row = steps.store.webhook_stats()["destinations"]["http://127.0.0.1:9/hook"]
    assert (row["delivered"], row["retrying"]) == (1, 1)
    steps.clock.advance(1.0)
    sender.send_due()
    row = steps.store.webhook_stats()["destinations"]["http://127.0.0.1:9/hook"]
    assert (row["delivered"], row["retrying"], row["dead"]) == (2, 0, 0)


def test_no_secret_is_stored_with_a_delivery_and_a_missing_one_is_a_visible_failure(hooked):
    steps, relay = hooked
    sender = relay(Receiver())
    finished_job(steps, "one")
    sender.relay_events()
    for delivery in steps.store.recent_deliveries():
        assert SECRET not in json.dumps(delivery.fields())
    # The job forgets its secret (and the config has none): nothing can be signed.
    job_id = steps.store.recent_jobs()[0]
    steps.store.r.hdel(f"vg:job:{job_id}", "webhook_secret")
    sender.send_due()
    dead = steps.store.dead_deliveries()
    assert len(dead) == 2 and all("no signing secret" in (d.last_error or "") for d in dead)
