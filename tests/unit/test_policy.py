"""Failover decisions, circuits and routing: pure policies, tested as tables."""

from __future__ import annotations

import pytest

from videogen.capabilities import Capabilities, ImageInput, ModeSpec
from videogen.config import Strategy
from videogen.errors import Action
from videogen.models import Scene, Size
from videogen.policy import (
    Circuit,
    CircuitPolicy,
    CircuitState,
    RetryPolicy,
    after_error,
    is_open,
    on_failure,
    on_success,
)
from videogen.router import BackendView, choose, only_for_now
from videogen.states import Event

POLICY = RetryPolicy(max_retries=3, max_rate_limited=10, base_delay=1.0)


@pytest.mark.parametrize(
    ("action", "retries", "fallback", "rate_limited", "retry_after", "expected", "delay"),
    [
        (Action.RETRY_SAME, 0, True, False, None, Event.RETRY, 1.0),
        (Action.RETRY_SAME, 2, True, False, None, Event.RETRY, 4.0),
        (Action.RETRY_SAME, 3, True, False, None, Event.REROUTE, 0.0),
        (Action.RETRY_SAME, 3, False, False, None, Event.FAIL, 0.0),
        (Action.RETRY_SAME, 5, True, True, 7.0, Event.RETRY, 32.0),  # 429s get a larger budget
        (Action.RETRY_SAME, 0, True, True, 20.0, Event.RETRY, 20.0),  # Retry-After is a floor
        (Action.RETRY_SAME, 10, True, True, None, Event.REROUTE, 0.0),
        (Action.FAILOVER, 0, True, False, None, Event.REROUTE, 0.0),
        (Action.FAILOVER, 0, False, False, None, Event.FAIL, 0.0),
        (Action.FAIL_SCENE, 0, True, False, None, Event.FAIL, 0.0),
        (Action.RESOLVE, 0, True, False, None, Event.FAIL, 0.0),
    ],
)
def test_after_error(action, retries, fallback, rate_limited, retry_after, expected, delay):
    decision = after_error(
        action,
        "boom",
        retries_here=retries,
        fallback_enabled=fallback,
        retry_after=retry_after,
        rate_limited=rate_limited,
        policy=POLICY,
        jitter=0.0,
    )
    assert decision.event is expected
    assert decision.delay == delay
    assert "boom" in decision.reason


@pytest.mark.parametrize(
    ("rate_limited", "fallback", "expected"),
    [(False, True, Event.REROUTE), (False, False, Event.FAIL), (True, True, Event.RETRY)],
)
def test_an_open_circuit_ends_retries_on_that_backend(rate_limited, fallback, expected):
    decision = after_error(
        Action.RETRY_SAME,
        "503",
        retries_here=0,
        fallback_enabled=fallback,
        rate_limited=rate_limited,
        backend_open=True,
    )
    assert decision.event is expected


def test_ambiguous_submit_says_it_was_not_resubmitted():
    decision = after_error(Action.RESOLVE, "no answer", retries_here=0, fallback_enabled=True)
    assert "never paid for twice" in decision.reason


def test_circuit_opens_after_threshold_and_cools_down():
    policy = CircuitPolicy(threshold=3, cooldown=30)
    circuit = Circuit()
    for t in (1.0, 2.0):
        circuit = on_failure(circuit, t, policy)
        assert circuit.state is CircuitState.CLOSED and not is_open(circuit, t, policy)
    circuit = on_failure(circuit, 3.0, policy)
    assert circuit.state is CircuitState.OPEN
    assert is_open(circuit, 32.9, policy) and not is_open(circuit, 33.1, policy)
    circuit = on_failure(circuit, 40.0, policy)  # the trial after the cooldown failed
    assert is_open(circuit, 41.0, policy)
    assert on_success(circuit) == Circuit()


SPEC = ModeSpec(durations=(5.0,), sizes=(Size(1280, 720),))
TEXT_AND_IMAGE = Capabilities(text=SPEC, image=SPEC, prompt_max_chars=100,
                              image_inputs=frozenset({ImageInput.DATA_URI}))  # fmt: skip
IMAGE_ONLY = Capabilities(text=None, image=SPEC, prompt_max_chars=100,
                          image_inputs=frozenset({ImageInput.UPLOAD}))  # fmt: skip


def view(name, priority, capacity=2, in_flight=0, queued=0, caps=TEXT_AND_IMAGE, **kw):
    defaults = {"enabled": True, "healthy": True, "circuit_open": False}
    return BackendView(name, priority, capacity=capacity, in_flight=in_flight, queued=queued,
                       caps=caps, **(defaults | kw))  # fmt: skip


TEXT = Scene(prompt="a cat")
IMAGE = Scene(prompt="a cat", image="frame.png")


@pytest.mark.parametrize(
    ("views", "scene", "strategy", "turn", "tried", "expected"),
    [
        # priority: the first with room; svd cannot take text
        (
            [view("svd", 1, caps=IMAGE_ONLY), view("runway", 2), view("pika", 3)],
            TEXT,
            Strategy.PRIORITY,
            0,
            (),
            "runway",
        ),
        (
            [view("svd", 1, caps=IMAGE_ONLY), view("runway", 2)],
            IMAGE,
            Strategy.PRIORITY,
            0,
            (),
            "svd",
        ),
        # spill-over at capacity (in-flight plus queued)
        (
            [view("runway", 2, capacity=3, in_flight=2, queued=1), view("pika", 3)],
            TEXT,
            Strategy.PRIORITY,
            0,
            (),
            "pika",
        ),
        # all full: the least overloaded
        (
            [view("runway", 2, capacity=2, queued=6), view("pika", 3, capacity=2, queued=3)],
            TEXT,
            Strategy.PRIORITY,
            0,
            (),
            "pika",
        ),
        # exclusions: unhealthy, open circuit, disabled, tried
        (
            [view("runway", 2, healthy=False), view("pika", 3)],
            TEXT,
            Strategy.PRIORITY,
            0,
            (),
            "pika",
        ),
        (
            [view("runway", 2, circuit_open=True), view("pika", 3)],
            TEXT,
            Strategy.PRIORITY,
            0,
            (),
            "pika",
        ),
        (
            [view("runway", 2, enabled=False), view("pika", 3)],
            TEXT,
            Strategy.PRIORITY,
            0,
            (),
            "pika",
        ),
        ([view("runway", 2), view("pika", 3)], TEXT, Strategy.PRIORITY, 0, ("runway",), "pika"),
        # round robin turns through the candidates in priority order
        (
            [view("runway", 2), view("pika", 3), view("luma", 4)],
            TEXT,
            Strategy.ROUND_ROBIN,
            4,
            (),
            "pika",
        ),
        # least loaded: load is (in-flight + queued) / capacity
        (
            [view("runway", 2, capacity=3, in_flight=2), view("pika", 3, capacity=2, in_flight=1)],
            TEXT,
            Strategy.LEAST_LOADED,
            0,
            (),
            "pika",
        ),
        ([view("runway", 2), view("pika", 3)], TEXT, Strategy.LEAST_LOADED, 0, (), "runway"),
    ],
)
def test_choose(views, scene, strategy, turn, tried, expected):
    decision = choose(scene, views, tried=frozenset(tried), strategy=strategy, turn=turn)
    assert decision.backend == expected
    assert strategy.value in decision.reason


def test_only_for_now_tells_waiting_from_failing():
    down = choose(TEXT, [view("runway", 2, healthy=False), view("svd", 1, caps=IMAGE_ONLY)])
    assert down.backend is None and only_for_now(down)
    never = choose(TEXT, [view("runway", 2, enabled=False), view("svd", 1, caps=IMAGE_ONLY)])
    assert never.backend is None and not only_for_now(never)
    tried = choose(TEXT, [view("runway", 2, circuit_open=True)], tried=frozenset({"runway"}))
    assert not only_for_now(tried)


def test_no_backend_says_why_for_each():
    views = [view("svd", 1, caps=IMAGE_ONLY), view("runway", 2, healthy=False)]
    decision = choose(TEXT, views)
    assert decision.backend is None
    assert decision.excluded == {
        "svd": "text-only scenes are not supported (it animates an image)",
        "runway": "unhealthy",
    }
