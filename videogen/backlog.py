"""The shared backlog in Redis: waiting scenes by class, the dispatch script that binds them,
the learned job times, and the coalesced request for a dispatch step.

A mixin of :class:`videogen.store.Store` (same client, same key names from
:mod:`videogen.redis_keys`); the policy is :mod:`videogen.scheduler`'s.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from . import lua
from . import redis_keys as keys
from .classes import ScClass
from .jobtimes import KEEP, LAGS, JobTimes, decode_lags, decode_samples, encode_sample
from .policy import Circuit
from .pricing import to_micro
from .scheduler import Pick, Waiting, band_range
from .shared_state import parse_circuit
from .spend import Cap


@dataclass(frozen=True)
class Blocked:
    """A scene a budget stopped from being bound (it stays at its place in the backlog)."""

    scene_id: str
    pick: Pick
    name: str
    """The budget: a :class:`videogen.spend.Cap` name, or ``job``."""
    ledger: str
    """The ledger's key."""
    used: int
    limit: int
    cost: int
    job_id: str


@dataclass(frozen=True)
class Snapshot:
    """Shared state a dispatch pass starts from (see :meth:`Backlog.snapshot`)."""

    shared: dict[str, tuple[dict[str, Any] | None, Circuit]]
    loads: dict[str, tuple[int, int]]
    times: JobTimes
    classes: list[str]
    budget_full: dict[str, str]
    """Backends (or ``all``) a budget stops for now -> why (:meth:`Backlog.stop_for_budget`)."""
    asked: float | None = None
    """When the dispatch step now starting was first asked for (``None``: not asked, or not
    a starting pass)."""


DISPATCH_FLAG_MS = 2000
"""How long an asked-for dispatch step coalesces further requests (a lost message is asked
for again after this, and the sweep asks every interval)."""


class Backlog:
    """Waiting scenes, their binding to backends, and job times."""

    r: Any
    clock: Any

    def _register_backlog(self) -> None:
        self._dispatch = self.r.register_script(lua.DISPATCH)

    def next_job_rounds(self) -> tuple[int, int]:
        """The backlog round a new job's first scene takes, and the job's sequence number."""
        pipe = self.r.pipeline(transaction=False)
        pipe.get(keys.VTIME)
        pipe.incr(keys.JOB_SEQ)
        vtime, seq = pipe.execute()
        return int(vtime or 0), int(seq)

    def snapshot(
        self, backends: list[str], seeds: dict[str, float], *, starting: bool = False
    ) -> Snapshot:
        """Every backend's health, circuit, leases, reservations and job times, and the
        backlog's class names, in one round trip; ``starting``: a dispatch pass starts (the
        asked-for flag is cleared in the same trip)."""
        now_ms = int(time.time() * 1000)
        pipe = self.r.pipeline(transaction=False)
        if starting:
            pipe.get(keys.DISPATCH)
            pipe.delete(keys.DISPATCH)
        pipe.lrange(keys.DISPATCH_LAGS, 0, LAGS - 1)
        scopes = [*backends, "all"]
        pipe.mget([k for b in backends for k in (keys.health(b), keys.circuit(b))] or ["-"])
        pipe.mget([keys.budget_full(s) for s in scopes])
        for b in backends:
            pipe.zcount(keys.lease(b), f"({now_ms}", "+inf")
            pipe.zcard(keys.queued(b))
            pipe.lrange(keys.job_times(b), 0, KEEP - 1)
        pipe.smembers(keys.BACKLOG)
        flat = pipe.execute()
        asked = _seconds(flat[0]) if starting else None
        lags, shared, full, *rest = flat[2 if starting else 0 :]
        per = [rest[3 * i : 3 * i + 3] for i in range(len(backends))]
        return Snapshot(
            shared={
                b: (json.loads(h) if h else None, parse_circuit(c))
                for b, h, c in zip(backends, shared[::2], shared[1::2], strict=False)
            },
            loads={b: (int(z), int(q)) for b, (z, q, _) in zip(backends, per, strict=True)},
            times=JobTimes(
                {b: decode_samples(t) for b, (_, _, t) in zip(backends, per, strict=True)},
                seeds,
                decode_lags(lags),
            ),
            classes=sorted(rest[-1]),
            budget_full={s: why for s, why in zip(scopes, full, strict=True) if why},
            asked=asked,
        )

    def waiting(self, width: int, names: list[str] | None = None) -> list[Waiting]:
        """Every backlog class (``names``, else read) with its size and its first ``width``
        scores (never more: a dispatch pass reads the heads, not the backlog)."""
        names = sorted(self.r.smembers(keys.BACKLOG)) if names is None else names
        if not names:
            return []
        pipe = self.r.pipeline(transaction=False)
        for name in names:
            pipe.zcard(keys.backlog(name))
            pipe.zrange(keys.backlog(name), 0, max(0, width - 1), withscores=True)
        flat = pipe.execute()
        out = []
        for i, name in enumerate(names):
            count, heads = int(flat[2 * i]), flat[2 * i + 1]
            out.append(Waiting(ScClass.parse(name), count, [s for _, s in heads] if width else []))
        return self._count_top_band(out)

    def _count_top_band(self, waiting: list[Waiting]) -> list[Waiting]:
        """Each class's count in the best priority band waiting (one more round trip, unless
        the heads read are the whole backlog)."""
        heads = [s for w in waiting for s in w.heads]
        if not heads:
            return waiting
        low, high = band_range(min(heads))
        if all(w.count == len(w.heads) for w in waiting):
            for w in waiting:
                w.top = sum(1 for s in w.heads if low <= s < high)
            return waiting
        pipe = self.r.pipeline(transaction=False)
        for w in waiting:
            pipe.zcount(keys.backlog(w.cls.name), low, f"({high}")
        for w, top in zip(waiting, pipe.execute(), strict=True):
            w.top = int(top)
        return waiting

    def backlog_classes(self) -> list[str]:
        return sorted(self.r.smembers(keys.BACKLOG))

    def backlog_members(self, class_name: str, limit: int) -> list[str]:
        """The first ``limit`` scene ids waiting in a class, best first."""
        return list(self.r.zrange(keys.backlog(class_name), 0, limit - 1))

    def backlog_length(self) -> int:
        names = list(self.r.smembers(keys.BACKLOG))
        pipe = self.r.pipeline(transaction=False)
        for name in names:
            pipe.zcard(keys.backlog(name))
        return sum(int(n) for n in pipe.execute()) if names else 0

    def ahead(self, scenes: Sequence[tuple[str, float]]) -> list[dict[ScClass, int]]:
        """For each ``(class name, rank)``: per class, how many waiting scenes rank before it
        (one ``ZCOUNT`` per class: logarithmic in the backlog)."""
        names = sorted(self.r.smembers(keys.BACKLOG))
        if not scenes or not names:
            return [{} for _ in scenes]
        pipe = self.r.pipeline(transaction=False)
        for _, score in scenes:
            for name in names:
                pipe.zcount(keys.backlog(name), "-inf", f"({score}")
        flat = pipe.execute()
        classes = [ScClass.parse(n) for n in names]
        n = len(names)
        return [
            {c: int(v) for c, v in zip(classes, flat[i * n : (i + 1) * n], strict=True) if v}
            for i in range(len(scenes))
        ]

    def in_backlog(self, scenes: Sequence[tuple[str, str]]) -> list[bool]:
        """For each ``(class name, scene id)``: whether the scene has its backlog entry."""
        pipe = self.r.pipeline(transaction=False)
        for name, scene_id in scenes:
            pipe.zscore(keys.backlog(name), scene_id)
        return [s is not None for s in pipe.execute()] if scenes else []

    def enqueue(self, scenes: Iterable[tuple[str, str, float]]) -> None:
        """Put ``(scene id, class name, rank)`` entries into the backlog (the sweep's repair;
        submit and fail-over do it in the same step as their state change)."""
        pipe = self.r.pipeline(transaction=False)
        for scene_id, name, score in scenes:
            pipe.sadd(keys.BACKLOG, name)
            pipe.zadd(keys.backlog(name), {scene_id: score})
        pipe.execute()

    def bind(
        self,
        picks: Sequence[Pick],
        caps: dict[str, int],
        costs: Sequence[float] = (),
        ledgers: dict[str, list[Cap]] | None = None,
        baselines: Sequence[float] = (),
        lag: float | None = None,
    ) -> tuple[list[tuple[str, Pick]], list[Blocked]]:
        """Bind each pick's best waiting scene to its backend if it still has a free slot,
        reserving its cost (``costs``, per pick, in USD) on ``ledgers[backend]`` and its
        job's, unless a budget would be passed (atomic, see :data:`videogen.lua.DISPATCH`);
        ``baselines``: what the default strategy would be expected to pay (for the money
        saved); ``lag``: seconds since this step was asked for, learned in the same step when
        it binds a scene (:attr:`videogen.jobtimes.JobTimes.lag`). Returns each scene bound,
        with its pick, and each a budget stopped."""
        if not picks:
            return [], []
        keys_: list[str] = [keys.VTIME, keys.DISPATCH_LAGS]
        lag_ = "" if lag is None else f"{max(0.0, lag):.4f}"
        args: list[Any] = [keys.scene(""), self.clock(), keys.job(""), keys.spend(""), lag_, LAGS]
        for i, pick in enumerate(picks):
            b = pick.backend
            keys_ += [keys.lease(b), keys.queued(b), keys.backlog(pick.cls.name)]
            caps_b = (ledgers or {}).get(b, [])
            books = [[keys.spend(c.scope), c.limit, c.name] for c in caps_b]
            cost = to_micro(costs[i]) if i < len(costs) else 0
            base = to_micro(baselines[i]) if i < len(baselines) else cost
            args += [b, caps[b], pick.reason, pick.cls.name, cost, json.dumps(books), base]
        flat = self._dispatch(keys=keys_, args=args)
        bound, blocked = [], []
        for scene_id, i, over in zip(flat[::3], flat[1::3], flat[2::3], strict=True):
            if int(i) >= 0:
                bound.append((scene_id, picks[int(i)]))
            else:
                info = json.loads(over)
                blocked.append(
                    Blocked(scene_id, picks[-1 - int(i)], info["name"], info["key"], info["used"],
                            info["limit"], info["cost"], info["job"])
                )  # fmt: skip
        return bound, blocked

    # -- job times -------------------------------------------------------------------------

    def job_times(self, backends: Iterable[str], seeds: dict[str, float]) -> JobTimes:
        names = list(backends)
        pipe = self.r.pipeline(transaction=False)
        pipe.lrange(keys.DISPATCH_LAGS, 0, LAGS - 1)
        for name in names:
            pipe.lrange(keys.job_times(name), 0, KEEP - 1)
        lags, *raw = pipe.execute()
        samples = {n: decode_samples(r) for n, r in zip(names, raw, strict=True)}
        return JobTimes(samples, seeds, decode_lags(lags))

    def add_job_time(self, backend: str, duration: float, seconds: float) -> None:
        pipe = self.r.pipeline(transaction=False)
        pipe.lpush(keys.job_times(backend), encode_sample(duration, seconds))
        pipe.ltrim(keys.job_times(backend), 0, KEEP - 1)
        pipe.execute()

    # -- asking for a dispatch step --------------------------------------------------------

    def ask_dispatch(self) -> bool:
        """True when no dispatch step is asked for yet (the caller sends one); later events
        coalesce into it until it starts (:meth:`dispatch_started`)."""
        return bool(self.ask_in(self.r))

    def ask_in(self, client: Any) -> Any:
        """:meth:`ask_dispatch`'s command, on ``client`` (a pipeline adds it to its trip);
        the flag holds the time it was asked (the dispatch lag's start)."""
        asked = f"{self.clock():.4f}"
        return client.set(keys.DISPATCH, asked, nx=True, px=DISPATCH_FLAG_MS)

    def dispatch_started(self) -> None:
        """A dispatch step starts: events from now on ask for another."""
        self.r.delete(keys.DISPATCH)


def _seconds(raw: str | None) -> float | None:
    try:
        return float(raw) if raw else None
    except ValueError:  # a flag set by an older version (a bare 1)
        return None
