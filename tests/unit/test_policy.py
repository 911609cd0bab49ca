"""Failover decisions, circuits and routing: pure policies, tested as tables."""

from __future__ import annotations

import pytest

from videogen.errors import Action
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
