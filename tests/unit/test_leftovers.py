"""What a new `videogen up` does about the processes a killed one left (videogen.children)."""

from __future__ import annotations

import subprocess
import time

import psutil

from tests.helpers import wait_until
from videogen.children import alive as _alive
from videogen.children import identity as _identity
from videogen.children import stop_leftovers as _stop_leftovers


def test_a_leftover_that_turns_zombie_counts_as_stopped_at_once():
    """A killed `up`'s children are orphans; where init never reaps (a container's PID 1),
    a stopped one stays a zombie. `holder` plays that init: it never reaps its child."""
    holder = subprocess.Popen(
        ["bash", "-c", "setsid sleep 60 & echo $!; exec sleep 60"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None
        identity = _identity(int(holder.stdout.readline()))
        # Until bash has become `sleep`, bash itself would reap the child it is killed.
        wait_until(lambda: psutil.Process(holder.pid).cmdline() == ["sleep", "60"], 10)
        assert _alive(identity)
        started = time.monotonic()
        assert _stop_leftovers({"worker-runway": identity}) == 1
        assert time.monotonic() - started < 5  # was twice the 10 s grace, waiting out a zombie
        assert psutil.Process(identity["pid"]).status() == psutil.STATUS_ZOMBIE
        assert not _alive(identity)  # nor is a zombie `up` a live owner of its run folder
    finally:
        holder.kill()
        holder.wait()
