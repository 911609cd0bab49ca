"""Retry-After parsing and backoff: tables."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from videogen.retry import MAX_RETRY_AFTER, backoff_delay, parse_retry_after

NOW = datetime(2026, 11, 28, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("header", "ms", "expected"),
    [
        ("20", None, 20.0),
        ("0", None, 0.0),
        ("1.5", None, 1.5),
        ("-3", None, 0.0),
        ("", None, None),
        (None, None, None),
        ("soon", None, None),
        ("Sat, 28 Nov 2026 12:00:30 GMT", None, 30.0),
        ("Sat, 28 Nov 2026 11:59:00 GMT", None, 0.0),  # a date in the past: go now
        ("99999", None, MAX_RETRY_AFTER),
        (None, "1500", 1.5),
        ("20", "250", 0.25),  # retry-after-ms is the more precise of the two
        ("nan", None, None),
    ],
)
def test_parse_retry_after(header, ms, expected):
    assert parse_retry_after(header, milliseconds=ms, now=NOW) == expected


@pytest.mark.parametrize(
    ("attempt", "retry_after", "jitter", "expected"),
    [
        (1, None, 0.0, 1.0),
        (2, None, 0.0, 2.0),
        (3, None, 0.0, 4.0),
        (3, None, 1.0, 6.0),  # up to 50 % jitter
        (10, None, 0.0, 60.0),  # capped
        (1, 20.0, 0.0, 20.0),  # Retry-After is a floor
        (4, 2.0, 0.0, 8.0),
    ],
)
def test_backoff_delay(attempt, retry_after, jitter, expected):
    assert backoff_delay(attempt, retry_after=retry_after, jitter=lambda: jitter) == expected
