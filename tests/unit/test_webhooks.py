"""Webhooks' pure core: signatures and their verification, the retry schedule, which
destinations are allowed, and what each event's body says."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest

from videogen.config import job_options
from videogen.errors import ConfigError, WebhookSignatureError
from videogen.loading import build_settings
from videogen.models import Scene, SceneState
from videogen.record import new_record, replace
from videogen.webhooks import (
    Backoff,
    Destination,
    WebhookEvent,
    addressed,
    destination_problem,
    headers,
    idempotency_key,
    job_finished,
    retry_delay,
    scene_event,
    sign,
    verify,
)

SECRET = "whsec-test-0123456789"
BODY = b'{"id":"scene.failed:j-000","type":"scene.failed"}'
T = 1_800_000_000


# -- signatures ------------------------------------------------------------------------------


def test_the_signature_is_hmac_sha256_of_timestamp_dot_body():
    expected = hmac.new(SECRET.encode(), f"{T}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert sign(SECRET, BODY, T) == f"t={T},v1={expected}"


def test_a_signed_body_verifies_and_gives_its_timestamp():
    assert verify(SECRET, BODY, sign(SECRET, BODY, T), now=T + 10) == T
    assert verify(SECRET, BODY.decode(), sign(SECRET, BODY, T), now=T) == T  # str body too


@pytest.mark.parametrize(
    ("body", "secret", "now", "why"),
    [
        (BODY.replace(b"failed", b"succeeded"), SECRET, T, "no signature matches"),
        (BODY + b" ", SECRET, T, "no signature matches"),
        (BODY, "another-secret", T, "no signature matches"),
        (BODY, SECRET, T + 301, "outside the 300-s window"),  # replayed 5 min later
        (BODY, SECRET, T - 301, "outside the 300-s window"),  # from the future
    ],
)
def test_tampering_another_secret_or_a_replay_is_refused(body, secret, now, why):
    with pytest.raises(WebhookSignatureError, match=why):
        verify(secret, body, sign(SECRET, BODY, T), now=now)


def test_the_window_edges_and_a_custom_tolerance():
    header = sign(SECRET, BODY, T)
    assert verify(SECRET, BODY, header, now=T + 300) == T
    with pytest.raises(WebhookSignatureError):
        verify(SECRET, BODY, header, tolerance=30, now=T + 31)


def test_a_replayed_signature_with_a_new_timestamp_does_not_verify():
    """The timestamp is signed: moving it forward to pass the window breaks the match."""
    old = sign(SECRET, BODY, T).split(",v1=")[1]
    with pytest.raises(WebhookSignatureError, match="no signature matches"):
        verify(SECRET, BODY, f"t={T + 1000},v1={old}", now=T + 1000)


@pytest.mark.parametrize("header", ["", "t=,v1=ab", f"t={T}", "v1=abc", f"t=x{T},v1=ab"])
def test_a_malformed_header_is_refused(header):
    with pytest.raises(WebhookSignatureError, match="needs t="):
        verify(SECRET, BODY, header, now=T)


def test_any_of_several_v1_entries_may_match_during_a_rotation():
    header = f"{sign('old-secret', BODY, T)},v1={sign(SECRET, BODY, T).split('v1=')[1]}"
    assert verify(SECRET, BODY, header, now=T) == T
    assert verify("old-secret", BODY, header, now=T) == T


# -- retry schedule --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("attempts", "delay"),
    [(1, 5.0), (2, 10.0), (3, 20.0), (4, 40.0), (5, 80.0), (6, 160.0), (7, 300.0), (8, None)],
)
def test_the_default_schedule_doubles_up_to_five_minutes_over_eight_attempts(attempts, delay):
    assert retry_delay(Backoff(), attempts, 0.5) == delay


def test_eight_attempts_span_about_ten_minutes():
    total = sum(retry_delay(Backoff(), n, 0.5) or 0 for n in range(1, 8))
    assert 540 <= total <= 660


@pytest.mark.parametrize(("u", "delay"), [(0.0, 8.0), (0.5, 10.0), (0.999999, 12.0)])
def test_jitter_spreads_each_delay_by_a_fifth_either_way(u, delay):
    assert retry_delay(Backoff(), 2, u) == pytest.approx(delay, rel=1e-5)


def test_a_custom_schedule_is_followed():
    fast = Backoff(max_attempts=3, base_delay=0.2, max_delay=0.3, jitter=0)
    assert [retry_delay(fast, n, 0.9) for n in (1, 2, 3)] == [0.2, 0.3, None]


# -- destinations ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hook",  # loopback stays allowed: sandboxes, tests, a local proxy
        "http://localhost/hook",
        "http://[::1]:9000/",
        "http://10.1.2.3/hook",  # the team's own services on a private network
        "https://hooks.example.com/videogen?token=abc",
    ],
)
def test_allowed_destinations(url):
    assert destination_problem(url) is None


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("ftp://example.com/hook", "not http or https"),
        ("file:///etc/passwd", "not http or https"),
        ("http:///hook", "no host"),
        ("http://169.254.169.254/latest/meta-data/", "metadata"),
        ("http://169.254.10.1/", "link-local"),
        ("http://[fe80::1]/", "link-local"),
        ("http://[fd00:ec2::254]/", "metadata"),
        ("http://[::ffff:169.254.169.254]/", "metadata"),
        ("http://100.100.100.200/", "metadata"),
        ("http://metadata.google.internal/computeMetadata/v1/", "metadata"),
        ("http://METADATA.google.internal./", "metadata"),
        ("http://2852039166/", "numeric host"),  # 169.254.169.254 as one number
        ("http://0xa9.0xfe.0xa9.0xfe/", "numeric host"),
        ("http://0.0.0.0:80/", "not an address a receiver listens on"),
        ("http://user:pw@example.com/", "credentials"),
    ],
)
def test_refused_destinations_say_why(url, why):
    problem = destination_problem(url)
    assert problem is not None and why in problem


def test_a_refused_job_webhook_is_a_clear_error_before_anything_is_enqueued():
    with pytest.raises(ConfigError, match="webhook: .*link-local"):
        job_options(webhook="http://169.254.0.7/hook")
    assert job_options(webhook="http://127.0.0.1:9/h").webhook == "http://127.0.0.1:9/h"


def config_with(hooks, delivery=None):
    vg = {"webhooks": hooks, "backends": {"runway": {"api_key": "key_" + "r" * 40}}}
    if delivery is not None:
        vg["webhook_delivery"] = delivery
    return {"video_generation": vg}


def test_config_webhooks_are_checked_and_need_a_secret():
    with pytest.raises(ConfigError, match="webhooks.0.url.*metadata"):
        build_settings(config_with([{"url": "http://169.254.169.254/", "secret": "s"}]), env={})
    with pytest.raises(ConfigError, match="needs a signing secret"):
        build_settings(config_with([{"url": "https://h.example.com/"}]), env={})
    with pytest.raises(ConfigError, match="events"):
        hook = {"url": "https://h.example.com/", "secret": "s", "events": ["scene.exploded"]}
        build_settings(config_with([hook]), env={})


def test_secrets_come_from_the_variables_named():
    hooks = [{"url": "https://h.example.com/", "secret_env": "HOOK_SECRET"}]
    settings = build_settings(
        config_with(hooks, {"job_secret_env": "JOB_HOOK_SECRET"}),
        env={"HOOK_SECRET": "from-env", "JOB_HOOK_SECRET": "job-env"},
    )
    vg = settings.video_generation
    assert vg.webhooks[0].secret is not None
    assert vg.webhooks[0].secret.get_secret_value() == "from-env"
    assert vg.webhooks[0].events == frozenset(WebhookEvent)  # all by default
    assert vg.webhook_delivery.job_secret is not None
    assert vg.webhook_delivery.job_secret.get_secret_value() == "job-env"
    assert "from-env" not in repr(vg) and "job-env" not in repr(vg)
    unset = build_settings(config_with(hooks), env={}).video_generation
    assert unset.webhooks[0].secret is None  # a client that only submits needs none


# -- events ----------------------------------------------------------------------------------


def record(index, state, **changes):
    base = new_record(f"job1-{index:03d}", "job1", index, Scene(prompt="p"), 1.0)
    return replace(base, state=state, **changes)


RESULT = {"video_path": "/out/job1-000.mp4", "width": 320, "height": 180, "duration": 5.0,
          "frames": 40, "size_bytes": 1234, "vendor_job_id": "v1"}  # fmt: skip


def test_a_succeeded_scene_s_body_has_its_video():
    done = record(0, SceneState.SUCCEEDED, backend="runway", result=RESULT, spent=250_000)
    event = scene_event(done, 1_800_000_000.5)
    assert event is not None
    body = json.loads(event.body())
    assert body["id"] == "scene.succeeded:job1-000" and body["type"] == "scene.succeeded"
    assert body["job_id"] == "job1" and body["time"] == "2027-01-15T08:00:00.500+00:00"
    scene = body["scene"]
    assert scene["index"] == 0 and scene["state"] == "succeeded" and scene["backend"] == "runway"
    assert scene["video_path"] == "/out/job1-000.mp4" and scene["error"] is None
    assert scene["video"] == {"width": 320, "height": 180, "duration": 5.0, "frames": 40,
                              "size_bytes": 1234}  # fmt: skip
    assert scene["cost_usd"] == 0.25


def test_a_failed_scene_s_body_has_its_reason_and_a_live_scene_has_none():
    failed = record(1, SceneState.FAILED, backend="luma", error="content policy: SAFETY")
    body = json.loads(scene_event(failed, 2.0).body())  # type: ignore[union-attr]
    assert body["type"] == "scene.failed" and body["scene"]["error"] == "content policy: SAFETY"
    assert body["scene"]["video"] is None and body["scene"]["video_path"] is None
    cancelled = scene_event(record(2, SceneState.CANCELLED), 2.0)
    assert cancelled is not None and cancelled.type is WebhookEvent.SCENE_CANCELLED
    assert scene_event(record(3, SceneState.RUNNING), 2.0) is None


def test_job_finished_only_once_every_scene_is_terminal_with_counts():
    done = [record(0, SceneState.SUCCEEDED), record(1, SceneState.FAILED)]
    assert job_finished("job1", [*done, record(2, SceneState.ROUTED)], 3.0) is None
    event = job_finished("job1", [*done, record(2, SceneState.SUCCEEDED)], 3.0)
    assert event is not None and event.id == "job.finished:job1"
    body = json.loads(event.body())
    assert body["job"] == {"scenes": 3, "states": {"succeeded": 2, "failed": 1, "cancelled": 0}}


def test_a_retried_scene_and_its_job_end_again_under_new_ids():
    again = record(0, SceneState.SUCCEEDED, resubmits=1)
    assert scene_event(again, 4.0).id == "scene.succeeded:job1-000:1"  # type: ignore[union-attr]
    done = [again, record(1, SceneState.SUCCEEDED)]
    event = job_finished("job1", done, 4.0)
    assert event is not None and event.id == "job.finished:job1:1"
    twice = job_finished("job1", [*done[:1], record(1, SceneState.FAILED, resubmits=1)], 5.0)
    assert twice is not None and twice.id == "job.finished:job1:2"


def test_one_delivery_per_event_and_destination_with_a_stable_key():
    events = [
        scene_event(record(0, SceneState.FAILED, error="x"), 1.0),
        job_finished("job1", [record(0, SceneState.FAILED)], 1.0),
    ]
    only_jobs = Destination("https://a.example.com/", "config", frozenset({"job.finished"}))
    every = Destination("http://127.0.0.1:1/h", "job")
    made = addressed([e for e in events if e], [only_jobs, every, every])
    assert sorted((d.url, d.type) for d in made) == [
        ("http://127.0.0.1:1/h", "job.finished"),
        ("http://127.0.0.1:1/h", "scene.failed"),
        ("https://a.example.com/", "job.finished"),
    ]
    for d in made:
        assert d.id == idempotency_key(d.event_id, d.url)
    assert idempotency_key("e", "http://a/") == idempotency_key("e", "http://a/")
    assert idempotency_key("e", "http://a/") != idempotency_key("e", "http://b/")


def test_each_attempt_s_headers_sign_the_stored_body():
    (delivery,) = addressed(
        [scene_event(record(0, SceneState.FAILED, error="x"), 1.0)],  # type: ignore[list-item]
        [Destination("http://127.0.0.1:1/h", "job")],
    )
    sent = headers(delivery, SECRET, T)
    assert sent["Content-Type"] == "application/json"
    assert sent["Videogen-Event"] == "scene.failed"
    assert sent["Idempotency-Key"] == delivery.id
    assert verify(SECRET, delivery.body, sent["Videogen-Signature"], now=T) == T
    assert SECRET not in json.dumps(delivery.fields())
