"""When ``videogen up`` restarts a crashed child, and when it gives up (pure, no I/O).

A child that ran for ``stable_after`` seconds before it died is restarted at once: it was
working, and a crash (an OOM kill, a SIGKILL) is an event, not a pattern. One that dies sooner
is restarted after a doubling backoff; after ``max_fast_crashes`` such deaths in a row the
supervisor gives up on it (a bad config or a port in use will not mend by itself).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RestartPolicy:
    stable_after: float = 10.0
    """Seconds of running after which a crash no longer counts as a fast one."""
    max_fast_crashes: int = 5
    base_delay: float = 0.5
    max_delay: float = 15.0


@dataclass(frozen=True)
class Restart:
    """What to do about a child that exited: restart after ``delay`` s, or give up."""

    give_up: bool
    delay: float
    fast_crashes: int
    """Fast crashes in a row, this one included (0 after a stable run)."""


def after_exit(fast_crashes: int, uptime: float, policy: RestartPolicy) -> Restart:
    """The decision for a child that exited after ``uptime`` seconds, having crashed fast
    ``fast_crashes`` times in a row before."""
    if uptime >= policy.stable_after:
        return Restart(give_up=False, delay=0.0, fast_crashes=0)
    crashes = fast_crashes + 1
    if crashes >= policy.max_fast_crashes:
        return Restart(give_up=True, delay=0.0, fast_crashes=crashes)
    delay = min(policy.max_delay, policy.base_delay * 2 ** (crashes - 1))
    return Restart(give_up=False, delay=delay, fast_crashes=crashes)
