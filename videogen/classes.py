"""Backlog classes (pure): scenes that are interchangeable to the scheduler.

Scenes that may go to the same backends, ask for the same duration and shape (so cost the
same on each backend) and share their job's options (:class:`Policy`) wait in one class, one
sorted set in Redis; a dispatch pass reads only the heads of each class.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from .capabilities import Capabilities, can_take
from .config import Strategy
from .models import Mode, Scene, Size


@dataclass(frozen=True)
class Policy:
    """A job's own scheduling options, kept with each of its scenes (and in their class, so
    that scenes with different options are never interchangeable)."""

    strategy: Strategy | None = None
    """Overrides the config's strategy for this job."""
    deadline_at: float | None = None
    """When every scene should be done (epoch seconds): ``cheapest`` spills over to dearer
    backends only to meet it."""
    max_usd_per_second: float | None = None
    """Backends dearer than this per output second are never used for the job."""

    @property
    def tag(self) -> str:
        parts = []
        if self.strategy is not None:
            parts.append(f"s={self.strategy.value}")
        if self.deadline_at is not None:
            parts.append(f"d={self.deadline_at:.3f}")
        if self.max_usd_per_second is not None:
            parts.append(f"p={self.max_usd_per_second:g}")
        return ";".join(parts)

    @classmethod
    def parse(cls, tag: str | None) -> Policy:
        values = dict(part.split("=", 1) for part in (tag or "").split(";") if "=" in part)
        return cls(
            strategy=Strategy(values["s"]) if "s" in values else None,
            deadline_at=float(values["d"]) if "d" in values else None,
            max_usd_per_second=float(values["p"]) if "p" in values else None,
        )


def shape_of(spec: Scene) -> str:
    """What a scene's price depends on besides its duration and backend: its mode and the
    frame size or aspect it asks for (``t``, ``i1920x1080``, ``ta0.5625``)."""
    mode = "i" if spec.has_image else "t"
    if spec.requested_size is not None:
        return f"{mode}{spec.requested_size.width}x{spec.requested_size.height}"
    aspect = spec.requested_aspect
    return f"{mode}a{aspect:.4f}" if aspect is not None else mode


def parse_shape(shape: str) -> tuple[Mode, Size | None, float | None]:
    """``(mode, size, aspect)`` of a :func:`shape_of` token (``""``: text, no shape)."""
    mode = Mode.IMAGE_TO_VIDEO if shape.startswith("i") else Mode.TEXT_TO_VIDEO
    rest = shape[1:]
    if rest.startswith("a"):
        return mode, None, float(rest[1:])
    if "x" in rest:
        width, height = rest.split("x")
        return mode, Size(int(width), int(height)), None
    return mode, None, None


@dataclass(frozen=True, order=True)
class ScClass:
    """Scenes that may go to the same backends, ask for the same duration and shape (so cost
    the same on each backend), and share their job's options."""

    backends: tuple[str, ...]
    duration: float
    shape: str = ""
    policy: str = ""

    @property
    def name(self) -> str:
        name = f"{','.join(self.backends)}:{self.duration:g}:{self.shape}"
        return f"{name}:{self.policy}" if self.policy else name

    @classmethod
    def parse(cls, name: str) -> ScClass:
        parts = name.split(":")
        backends, duration = parts[0], parts[1]
        shape = parts[2] if len(parts) > 2 else ""
        policy = parts[3] if len(parts) > 3 else ""
        return cls(tuple(backends.split(",")) if backends else (), float(duration), shape, policy)

    @classmethod
    def of(
        cls, backends: Iterable[str], duration: float, shape: str = "", policy: str = ""
    ) -> ScClass:
        return cls(tuple(sorted(set(backends))), float(duration), shape, policy)


def class_of(
    spec: Scene,
    caps: Mapping[str, Capabilities],
    tried: frozenset[str] = frozenset(),
    policy: str = "",
    too_dear: Callable[[str, ScClass], bool] | None = None,
) -> ScClass | None:
    """A scene's backlog class: the enabled backends (``caps``) that can take it, were not
    tried for it and are not ``too_dear`` for its job; ``None`` when there are none."""
    names = [n for n, c in caps.items() if n not in tried and can_take(n, c, spec) is None]
    probe = ScClass.of(names, spec.duration, shape_of(spec), policy)
    if too_dear is not None:
        names = [n for n in names if not too_dear(n, probe)]
    return ScClass.of(names, spec.duration, probe.shape, policy) if names else None
