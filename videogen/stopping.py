"""How videogen's long-running commands stop: on SIGTERM (process managers, Docker), SIGINT
(Ctrl-C) or SIGHUP (a closed terminal), cleanly and with exit status 0."""

from __future__ import annotations

import signal
import threading

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def stop_event() -> threading.Event:
    """An event set by the first stop signal; the command waits on it, then cleans up."""
    stop = threading.Event()
    for sig in STOP_SIGNALS:
        signal.signal(sig, lambda *_: stop.set())
    return stop
