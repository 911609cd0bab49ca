"""Spend ledgers in Redis: reading them, budget alerts, and stopping work a budget caps.

A mixin of :class:`videogen.store.Store` (same client, key names from
:mod:`videogen.redis_keys`); what the ledgers mean is :mod:`videogen.spend`'s. Reservations
are made by the dispatch script and resolved by the transition script, atomically.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from . import redis_keys as keys
from .pricing import from_micro

FIELDS = ("reserved", "settled", "held", "baseline")
ALERT_KEEP_S = 40 * 86400
"""An alert flag outlives the longest period (a month), so each level alerts once per period."""


class Ledgers:
    """Spend per job, per backend and overall, over all time and per UTC period."""

    r: Any

    def ledgers(self, scopes: Iterable[str]) -> dict[str, dict[str, float]]:
        """``reserved``, ``settled`` and ``held`` (USD) of each scope, and ``saved``: what
        the default strategy was expected to pay for the settled scenes, less what they
        cost; in one round trip."""
        names = list(scopes)
        pipe = self.r.pipeline(transaction=False)
        for scope in names:
            pipe.hmget(keys.spend(scope), *FIELDS)
        out = {}
        for scope, values in zip(names, pipe.execute(), strict=True):
            book = {name: from_micro(v) for name, v in zip(FIELDS, values, strict=True)}
            base = book.pop("baseline")
            book["saved"] = round(base - book["settled"], 6) if base else 0.0
            out[scope] = book
        return out

    def stop_for_budget(self, scope: str, why: str, seconds: float) -> None:
        """Take ``scope`` (a backend, or ``all``) out of dispatch for ``seconds``: a budget
        stops it (tried again after, so released spend or a new period lets work go on)."""
        self.r.set(keys.budget_full(scope), why, px=int(seconds * 1000))

    def first_alert(self, scope: str, level: int) -> bool:
        """True the first time ``level`` % of ``scope``'s budget is reached."""
        return bool(self.r.set(keys.budget_alert(scope, level), 1, nx=True, ex=ALERT_KEEP_S))
