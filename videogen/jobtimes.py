"""Learned job times (pure): each backend's seconds per job, from its own finished jobs.

Kept in Redis as a short list per backend (``duration:seconds``, newest first), shared by every
router; read into :class:`JobTimes` by a dispatch step.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

WINDOW = 5
"""Finished jobs per backend and duration whose median is the learned job time: one outlier
in five moves nothing; a backend that slows down for good is seen within three jobs."""
MIN_SECONDS = 0.001
KEEP = 60
"""Job times kept per backend (all durations together)."""
LAGS = 15
"""Dispatch lags kept (the latest dispatch steps that bound scenes); the median is used."""


@dataclass(frozen=True)
class JobTimes:
    """Each backend's job time, learned from its own finished jobs (seconds from a dispatch
    step binding the scene to a slot to the slot being given back: the vendor job's end, the
    download being done on a spare thread), seeded from its ``expected_seconds`` until it has
    data; and the dispatch lag, the rest of a slot's cycle when work waits."""

    samples: Mapping[str, Sequence[tuple[float, float]]]
    """Backend -> ``(duration, seconds)`` of its latest finished jobs, newest first."""
    seeds: Mapping[str, float]
    lags: Sequence[float] = ()
    """Seconds from a dispatch step being asked for (a slot given back, a scene submitted) to
    its binding scenes, for the latest steps that bound some, newest first."""

    @property
    def lag(self) -> float:
        """How long a freed slot waits for its next scene while scenes wait: the median of
        the latest dispatch lags (0 until there are some)."""
        return _median(self.lags[:LAGS]) if self.lags else 0.0

    def cycle(self, backend: str, duration: float) -> float:
        """Seconds a slot of ``backend`` spends per job of ``duration`` while work waits for
        it: the job time and the dispatch lag before the next one."""
        return self.seconds(backend, duration) + self.lag

    def seconds(self, backend: str, duration: float) -> float:
        """The median of the latest jobs of this duration; else the median seconds per
        output second of its latest jobs, times ``duration``; else the seed (never below a
        millisecond: rates divide by it)."""
        return max(MIN_SECONDS, self._seconds(backend, duration))

    def _seconds(self, backend: str, duration: float) -> float:
        own = self.samples.get(backend, ())
        same = [s for d, s in own if d == duration][:WINDOW]
        if same:
            return _median(same)
        if own:
            per_second = [s / d for d, s in own[:WINDOW] if d > 0]
            if per_second:
                return _median(per_second) * duration
        return self.seeds.get(backend, 60.0)

    def learned(self, backend: str) -> int:
        return len(self.samples.get(backend, ()))


def _median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def encode_sample(duration: float, seconds: float) -> str:
    return f"{duration:g}:{seconds:.3f}"


def decode_lags(raw: Iterable[str]) -> list[float]:
    return [float(x) for x in raw]


def decode_samples(raw: Iterable[str]) -> list[tuple[float, float]]:
    out = []
    for entry in raw:
        duration, _, seconds = entry.partition(":")
        out.append((float(duration), float(seconds)))
    return out
