"""Prices (pure): what a scene costs on a backend, estimated before it is dispatched and
settled when it ends.

Vendors bill a finished clip per second of output, at a price that depends on the model, the
resolution, sound and any input video (``shared/vendor-apis-2.md`` §8). Each backend declares
its published prices in its capabilities (:class:`videogen.capabilities.ModeSpec`: per second,
per clip, per megapixel or a clip table, each dated with its source beside the table in the
backend's module); ``backends.<name>.pricing`` overrides them (:class:`Pricing`). A local GPU
(SVD) has no price list: it costs its configured hourly rate times the GPU time of a job, the
learned job time for an estimate and the job's own time when it settles.

Money is counted in integer micro-dollars in Redis (:data:`MICRO`), so that concurrent
reservations and settlements add up exactly.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from .capabilities import Capabilities, ModeSpec, snap_duration, snap_size
from .models import Mode, Size

MICRO = 1_000_000
"""Micro-dollars per dollar: the ledgers' unit."""


class Pricing(BaseModel):
    """``backends.<name>.pricing``: overrides of the backend's published prices (a negotiated
    rate, a price change not yet in videogen, a reseller). Unset keys keep the defaults."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    usd_per_second: float | None = Field(default=None, ge=0)
    """One price per output second, whatever the mode and resolution."""
    usd_per_second_by_resolution: dict[str, float] = Field(default_factory=dict)
    """Per output second by the short side, ``{"720p": 0.05, "1080p": 0.09}``: a clip takes the
    smallest listed resolution at least as large as its own (else the largest)."""
    usd_per_clip: float = Field(default=0.0, ge=0)
    """Added to every clip (a per-request fee)."""
    usd_per_gpu_hour: float | None = Field(default=None, ge=0)
    """A local GPU's cost per hour (SVD): a clip costs it times the GPU seconds of the job."""
    audio_usd_per_second: float = Field(default=0.0, ge=0)
    """Added per output second when the clip has sound."""
    input_video_usd_per_second: float = Field(default=0.0, ge=0)
    """Added per second of input video (vendors that bill reference video)."""

    @property
    def overrides_list(self) -> bool:
        return self.usd_per_second is not None or bool(self.usd_per_second_by_resolution)


def resolution_label(size: Size) -> str:
    """``720p``-style label of a frame size, by its short side (``4k`` for 2160)."""
    short = min(size)
    return "4k" if short >= 2160 else f"{short}p"


def _label_px(label: str) -> int:
    text = label.strip().lower()
    return 2160 if text == "4k" else int(text.rstrip("p"))


def by_resolution(table: dict[str, float], size: Size) -> float:
    """The per-second price of the smallest listed resolution at least ``size``'s short side."""
    rows = sorted((_label_px(label), usd) for label, usd in table.items())
    short = min(size)
    for px, usd in rows:
        if px >= short:
            return usd
    return rows[-1][1]


def clip_usd(
    spec: ModeSpec,
    pricing: Pricing,
    duration: float,
    size: Size,
    *,
    gpu_usd_per_hour: float | None = None,
    gpu_seconds: float = 0.0,
    audio: bool = False,
    input_video_seconds: float = 0.0,
) -> float:
    """The price of one clip of ``duration`` seconds at ``size`` (both as sent to the vendor).

    ``gpu_usd_per_hour``: the backend is a local GPU at this rate (the config's
    ``usd_per_gpu_hour`` wins), costing ``gpu_seconds`` of it."""
    rate = pricing.usd_per_gpu_hour if pricing.usd_per_gpu_hour is not None else gpu_usd_per_hour
    if rate is not None and not pricing.overrides_list:
        usd = rate * gpu_seconds / 3600
    elif pricing.usd_per_second_by_resolution:
        usd = by_resolution(pricing.usd_per_second_by_resolution, size) * duration
    elif pricing.usd_per_second is not None:
        usd = pricing.usd_per_second * duration
    else:
        usd = spec.cost(duration, size)
    usd += pricing.usd_per_clip
    usd += pricing.audio_usd_per_second * duration if audio else 0.0
    usd += pricing.input_video_usd_per_second * input_video_seconds
    return round(usd, 6)


def shape_usd(
    caps: Capabilities,
    pricing: Pricing,
    mode: Mode,
    duration: float,
    size: Size | None,
    aspect: float | None,
    *,
    gpu_usd_per_hour: float | None = None,
    gpu_seconds: float = 0.0,
) -> float:
    """The price of a scene of this mode, duration and asked shape, fitted to the backend as
    :func:`videogen.capabilities.plan` fits it (snapped duration and frame size)."""
    spec = caps.spec(mode)
    snapped = snap_duration(duration, spec.durations)
    frame = snap_size(spec.sizes, size, aspect)
    return clip_usd(
        spec,
        pricing,
        snapped,
        frame,
        gpu_usd_per_hour=gpu_usd_per_hour,
        gpu_seconds=gpu_seconds,
    )


def to_micro(usd: float) -> int:
    return int(round(usd * MICRO))


def from_micro(micro: int | float | str | None) -> float:
    return round(int(float(micro or 0)) / MICRO, 6)
