"""Spend ledgers and budgets (pure): which ledgers a scene's cost goes to, which budgets
cap them, and what happens to a reservation when a try ends.

Reserve, then settle. When a dispatch step binds a scene to a backend it reserves the scene's
estimate on every ledger it counts in (its job, the backend and everything, over all time and
this UTC day and month), atomically with the binding and only if no capped ledger would go
past its budget (:data:`videogen.lua.DISPATCH`); so however many routers dispatch at once,
reserved plus settled never passes a budget. When the try ends the reservation is settled
(the vendor's own figure, else the estimate for what was delivered), released (no vendor job
was made, or the vendor said it failed: nothing is billed), or kept (an ambiguous submit: the
vendor may bill a job we never heard of), in the same atomic step as the scene's move.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from .config import Budget, VideoGenerationSettings
from .errors import (
    AmbiguousSubmitError,
    BackendError,
    ContentPolicyError,
    GenerationFailedError,
    JobCancelledError,
)
from .pricing import to_micro


class Settle(StrEnum):
    """What becomes of a try's reservation."""

    SETTLE = "settle"
    """Billed: the reservation becomes the settled cost."""
    RELEASE = "release"
    """Not billed (no vendor job, or the vendor said it failed): the reservation goes back."""
    KEEP = "keep"
    """Unknown (an ambiguous submit): the reservation stays, shown as held."""


NOT_BILLED = (GenerationFailedError, ContentPolicyError, JobCancelledError)
"""Errors that mean the vendor ended the job as failed: vendors do not bill those (Kling,
MiniMax, Ark, DashScope say so; ``shared/vendor-apis-2.md`` §8)."""


def outcome(*, job_made: bool, error: BackendError | None) -> Settle:
    """What a try that ends with ``error`` (``None``: it did not fail) owes."""
    if isinstance(error, AmbiguousSubmitError):
        return Settle.KEEP
    if not job_made or isinstance(error, NOT_BILLED):
        return Settle.RELEASE
    return Settle.SETTLE  # the vendor made the job and may bill it: a timeout, a bad file


def day(now: float) -> str:
    return datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%d")


def month(now: float) -> str:
    return datetime.fromtimestamp(now, UTC).strftime("%Y-%m")


def job_scope(job_id: str) -> str:
    return f"job:{job_id}"


def backend_scopes(backend: str, now: float) -> dict[str, str]:
    """The backend's ledgers: over all time, this UTC day and this UTC month."""
    return {
        "total": f"backend:{backend}",
        "day": f"backend:{backend}:day:{day(now)}",
        "month": f"backend:{backend}:month:{month(now)}",
    }


def all_scopes(now: float) -> dict[str, str]:
    return {"total": "all", "day": f"all:day:{day(now)}", "month": f"all:month:{month(now)}"}


@dataclass(frozen=True)
class Cap:
    """One ledger a reservation counts in, with its budget (``limit`` 0: uncapped)."""

    scope: str
    limit: int
    """Micro-dollars."""
    name: str
    """How the budget is named to people, in reasons and alerts."""


def _capped(scopes: dict[str, str], budget: Budget, whose: str, now: float) -> list[Cap]:
    limits = {"day": budget.daily_usd, "month": budget.monthly_usd}
    periods = {"day": f"daily budget of {whose} ({day(now)} UTC)",
               "month": f"monthly budget of {whose} ({month(now)} UTC)"}  # fmt: skip
    caps = []
    for period, scope in scopes.items():
        usd = limits.get(period)
        caps.append(Cap(scope, to_micro(usd) if usd else 0, periods.get(period, whose)))
    return caps


def caps_for(vg: VideoGenerationSettings, backend: str, now: float) -> list[Cap]:
    """Every ledger a scene bound to ``backend`` now counts in, except its job's (the script
    finds that one from the scene), with the budgets the config sets."""
    mine = vg.backends[backend].budget
    return _capped(backend_scopes(backend, now), mine, backend, now) + _capped(
        all_scopes(now), vg.budgets, "all backends", now
    )


def budget_reason(name: str, used: int, limit: int, cost: int) -> str:
    """Why a scene cannot be reserved now (for its record and people)."""
    return (
        f"the {name} would be exceeded: ${used / 1e6:.2f} of ${limit / 1e6:.2f} is reserved "
        f"or spent, and this scene needs ${cost / 1e6:.2f}"
    )


def alert_levels(used: float, limit: float, fraction: float) -> list[int]:
    """The alert levels (percent) a budget has reached: ``fraction`` of it, and full."""
    if limit <= 0:
        return []
    levels = [int(round(fraction * 100))] if used >= fraction * limit else []
    return levels + ([100] if used >= limit else [])


PERIODS = ("total", "day", "month")


def scopes_to_read(backends: list[str], now: float) -> list[str]:
    """Every ledger the statistics show: each backend's and everything's, per period."""
    out = list(all_scopes(now).values())
    for backend in backends:
        out += backend_scopes(backend, now).values()
    return out


def report(
    books: dict[str, dict[str, float]], vg: VideoGenerationSettings, backends: list[str], now: float
) -> dict[str, Any]:
    """Spend for people: everything's and each backend's, over all time, today and this
    month (UTC), with each budget set, how much of it is used and the money saved against
    the default strategy."""

    def rows(scopes: dict[str, str], budget: Budget) -> dict[str, dict[str, object]]:
        limits = {"day": budget.daily_usd, "month": budget.monthly_usd}
        out: dict[str, dict[str, object]] = {}
        for period, scope in scopes.items():
            book = books.get(scope, {})
            row: dict[str, object] = {**book, "period": _period(period, now)}
            limit = limits.get(period)
            if limit:
                used = book.get("reserved", 0.0) + book.get("settled", 0.0)
                row.update(budget_usd=limit, used_fraction=round(used / limit, 4))
            out[period] = row
        return out

    return {
        "all": rows(all_scopes(now), vg.budgets),
        "backends": {b: rows(backend_scopes(b, now), vg.backends[b].budget) for b in backends},
    }


def _period(period: str, now: float) -> str:
    return {"day": day(now), "month": month(now)}.get(period, "all time")
