"""What scenes cost on each backend, from the config's pricing and the learned job times
(pure): the scheduler's prices per backlog class, and a finished try's settled cost."""

from __future__ import annotations

from collections.abc import Mapping

from .capabilities import Capabilities
from .classes import ScClass, parse_shape
from .config import BackendSettings, VideoGenerationSettings
from .jobtimes import JobTimes
from .models import GenerationRequest
from .pricing import clip_usd, shape_usd
from .scheduler import Prices


def prices(
    vg: VideoGenerationSettings, caps: Mapping[str, Capabilities], times: JobTimes
) -> Prices:
    """A scene of a class's price on a backend (a local GPU's from its learned job time);
    each ``(backend, duration, shape)`` is worked out once."""
    cache: dict[tuple[str, float, str], float] = {}

    def price(backend: str, cls: ScClass) -> float:
        key = (backend, cls.duration, cls.shape)
        if key not in cache:
            cfg = vg.backends[backend]
            mode, size, aspect = parse_shape(cls.shape)
            cache[key] = shape_usd(
                caps[backend],
                cfg.pricing,
                mode,
                cls.duration,
                size,
                aspect,
                gpu_usd_per_hour=type(cfg).gpu_usd_per_hour,
                gpu_seconds=times.seconds(backend, cls.duration),
            )
        return cache[key]

    return price


def baseline(price: Prices, slots: Mapping[str, int], times: JobTimes, cls: ScClass) -> float:
    """What the default strategy (earliest finish) is expected to pay for a scene of ``cls``:
    it shares the class among the backends up for it (``slots``) by their speed, so the mean
    of their prices weighted by scenes per second."""
    rates = {b: n / times.seconds(b, cls.duration) for b, n in slots.items() if b in cls.backends}
    if not rates:
        return 0.0
    return sum(price(b, cls) * r for b, r in rates.items()) / sum(rates.values())


def per_second(price: Prices, backend: str, cls: ScClass) -> float:
    """USD per requested output second."""
    return price(backend, cls) / cls.duration


def delivered_usd(
    cfg: BackendSettings,
    caps: Capabilities,
    request: GenerationRequest,
    seconds: float,
    billed: float | None = None,
) -> float:
    """A finished try's cost: the vendor's own figure (``billed``) where it reports one, else
    the price of what was asked of it (a local GPU: the ``seconds`` the job took)."""
    if billed is not None:
        return billed
    return clip_usd(
        caps.spec(request.mode),
        cfg.pricing,
        request.duration,
        request.size,
        gpu_usd_per_hour=type(cfg).gpu_usd_per_hour,
        gpu_seconds=seconds,
    )
