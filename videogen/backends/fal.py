"""Any video model on fal's queue (vendor-apis-2.md §6): Kling, Hailuo, Wan, Veo, Seedance...

The queue protocol is :mod:`.fal_queue`'s, the same for every endpoint; what differs per model
is the endpoint ids and the input schema. A :class:`FalEndpoint` says both: which endpoint id
takes text and which an image, and which of our scene fields go to which input names (Kling 3
wants ``start_image_url`` where the others take ``image_url``; ``duration`` is ``"5"`` on most,
``5`` on Pika, ``"8s"`` on Veo; some take an aspect ratio, some a resolution, some both), with
the clip lengths and shapes it offers and its prices. :data:`KNOWN_ENDPOINTS` has the
well-known ones; ``backends.fal.endpoints`` adds others (or replaces one), and
``backends.fal.model`` picks the one this backend uses::

    "fal": {"model": "veo-3.1-fast", "max_concurrent_tasks": 2}
    "fal": {"model": "my-wan", "endpoints": {"my-wan": {
        "text_endpoint": "fal-ai/wan/v2.7/text-to-video", "durations": [5, 10],
        "resolution_field": "resolution", "resolutions": ["720p", "1080p"],
        "usd_per_second": {"720p": 0.1, "1080p": 0.15}}}}

To run two fal models at once, use two backends (the ``pika`` backend is one more); fal's
concurrency limit is the account's (shared/vendor-apis.md §C.2), so with one ``FAL_KEY`` keep
their ``max_concurrent_tasks`` together within it.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..capabilities import Capabilities, ImageInput, ModeSpec
from ..config import BackendSettings
from ..constants import FAL_QUEUE_URL
from ..models import GenerationRequest, Mode, Size
from .fal_queue import FalQueueBackend, app_path


class DurationFormat(StrEnum):
    """How an endpoint wants the clip length."""

    STRING = "string"
    """``"5"``: most fal video endpoints (Kling, Hailuo, Wan, Seedance)."""
    INTEGER = "integer"
    """``5`` (Pika)."""
    SECONDS = "seconds"
    """``"8s"`` (Veo)."""


def wire_duration(seconds: float, form: DurationFormat | str) -> str | int:
    """A clip length as the endpoint wants it: ``"5"``, ``5`` or ``"5s"``."""
    whole = int(round(seconds))
    if form == DurationFormat.INTEGER:
        return whole
    return f"{whole}s" if form == DurationFormat.SECONDS else str(whole)


_LABEL = re.compile(r"^(\d+)[pP]$|^4[kK]$")


def short_side(label: str) -> int:
    """``720p``/``768P`` → 720/768, ``4k`` → 2160."""
    match = _LABEL.match(label.strip())
    if match is None:
        raise ValueError(f"resolution {label!r} is not like 720p, 768P or 4k")
    return int(match.group(1)) if match.group(1) else 2160


def frame_size(aspect: str, resolution: str) -> Size:
    """The frame of ``aspect`` (``16:9``) at ``resolution`` (its short side), even sides."""
    w, h = (int(part) for part in aspect.split(":"))
    short = short_side(resolution)
    long = int(round(short * max(w, h) / min(w, h) / 2) * 2)
    return Size(long, short) if w >= h else Size(short, long)


class FalEndpoint(BaseModel):
    """One model on fal: its endpoint ids, how our scene's fields map to its input names, and
    what it offers. Field names set to ``None`` are never sent (the model has no such input)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    text_endpoint: str | None = None
    """Endpoint id for text-to-video (``fal-ai/kling-video/v2.5-turbo/pro/text-to-video``);
    ``None``: text scenes are not offered."""
    image_endpoint: str | None = None
    """Endpoint id for image-to-video; ``None``: image scenes are not offered."""
    image_field: str = "image_url"
    """Where the first frame goes (Kling 3: ``start_image_url``; Veo first-last:
    ``first_frame_url``)."""
    duration_field: str | None = "duration"
    duration_format: DurationFormat = DurationFormat.STRING
    durations: tuple[float, ...] = (5.0, 10.0)
    """Clip lengths offered, seconds; a scene's is snapped to the nearest."""
    aspect_ratio_field: str | None = "aspect_ratio"
    aspect_ratios: tuple[str, ...] = ("16:9", "9:16", "1:1")
    """Shapes offered; the first is the default. Without ``aspect_ratio_field`` only the
    first is (the model's fixed shape)."""
    aspect_ratio_with_image: bool = False
    """Whether image-to-video takes the aspect ratio too (else the image decides)."""
    resolution_field: str | None = None
    resolutions: tuple[str, ...] = ("1080p",)
    """Resolutions offered (``720p``, ``768P``, ``4k``), the first the default; without
    ``resolution_field`` only the first is (what the model makes)."""
    negative_prompt_field: str | None = "negative_prompt"
    seed_field: str | None = "seed"
    prompt_max_chars: int = Field(default=2500, ge=1)
    extra_input: dict[str, Any] = Field(default_factory=dict)
    """Constant inputs sent with every request (``{"generate_audio": false}``)."""
    usd_per_second: dict[str, float] = Field(default_factory=dict)
    """Price per output second by resolution label (every offered one); ``pricing`` overrides."""

    @model_validator(mode="after")
    def _coherent(self) -> FalEndpoint:
        if self.text_endpoint is None and self.image_endpoint is None:
            raise ValueError("an endpoint needs text_endpoint, image_endpoint or both")
        if not self.durations or not self.aspect_ratios or not self.resolutions:
            raise ValueError("durations, aspect_ratios and resolutions must not be empty")
        for label in self.offered_resolutions():
            short_side(label)
            if self.usd_per_second and label not in self.usd_per_second:
                raise ValueError(f"usd_per_second has no price for {label}")
        return self

    def offered_resolutions(self) -> tuple[str, ...]:
        return self.resolutions if self.resolution_field else self.resolutions[:1]

    def offered_aspects(self) -> tuple[str, ...]:
        return self.aspect_ratios if self.aspect_ratio_field else self.aspect_ratios[:1]

    def size_labels(self) -> dict[Size, tuple[str, str]]:
        """Every frame offered → its (aspect ratio, resolution) labels; the first the default."""
        return {
            frame_size(a, r): (a, r)
            for r in self.offered_resolutions()
            for a in self.offered_aspects()
        }

    def price_table(self) -> tuple[tuple[float, int, float], ...]:
        return tuple(
            (d, short_side(label), round(usd * d, 6))
            for label, usd in self.usd_per_second.items()
            for d in self.durations
        )


KNOWN_ENDPOINTS: dict[str, FalEndpoint] = {
    "kling-2.5-turbo-pro": FalEndpoint(
        text_endpoint="fal-ai/kling-video/v2.5-turbo/pro/text-to-video",
        image_endpoint="fal-ai/kling-video/v2.5-turbo/pro/image-to-video",
        seed_field=None,
        usd_per_second={"1080p": 0.07},
    ),
    "kling-3-pro": FalEndpoint(
        text_endpoint="fal-ai/kling-video/v3/pro/text-to-video",
        image_endpoint="fal-ai/kling-video/v3/pro/image-to-video",
        image_field="start_image_url",
        durations=tuple(float(s) for s in range(3, 16)),
        seed_field=None,
        extra_input={"generate_audio": False},
        usd_per_second={"1080p": 0.112},
    ),
    "hailuo-02-standard": FalEndpoint(
        text_endpoint="fal-ai/minimax/hailuo-02/standard/text-to-video",
        image_endpoint="fal-ai/minimax/hailuo-02/standard/image-to-video",
        durations=(6.0, 10.0),
        aspect_ratio_field=None,
        aspect_ratios=("16:9",),
        resolution_field="resolution",
        resolutions=("768P", "512P"),
        negative_prompt_field=None,
        seed_field=None,
        usd_per_second={"768P": 0.05, "512P": 0.05},
    ),
    "veo-3.1-fast": FalEndpoint(
        text_endpoint="fal-ai/veo3.1/fast",
        image_endpoint="fal-ai/veo3.1/fast/image-to-video",
        duration_format=DurationFormat.SECONDS,
        durations=(4.0, 6.0, 8.0),
        aspect_ratios=("16:9", "9:16"),
        aspect_ratio_with_image=True,
        resolution_field="resolution",
        resolutions=("720p", "1080p"),
        extra_input={"generate_audio": False},
        usd_per_second={"720p": 0.10, "1080p": 0.12},
    ),
    "wan-2.6": FalEndpoint(
        text_endpoint="wan/v2.6/text-to-video",
        image_endpoint="wan/v2.6/image-to-video",
        durations=(5.0, 10.0, 15.0),
        resolution_field="resolution",
        resolutions=("720p", "1080p"),
        usd_per_second={"720p": 0.10, "1080p": 0.15},
    ),
    "seedance-1.5-pro": FalEndpoint(
        text_endpoint="fal-ai/bytedance/seedance/v1.5/pro/text-to-video",
        image_endpoint="fal-ai/bytedance/seedance/v1.5/pro/image-to-video",
        durations=tuple(float(s) for s in range(4, 13)),
        aspect_ratios=("16:9", "9:16", "1:1", "4:3", "3:4", "21:9"),
        resolution_field="resolution",
        resolutions=("720p", "480p", "1080p"),
        negative_prompt_field=None,
        extra_input={"generate_audio": False},
        usd_per_second={"480p": 0.066, "720p": 0.142, "1080p": 0.354},
    ),
}
"""Well-known fal video endpoints: ids and input names from ``@fal-ai/client`` 1.10.1's
``endpoints.d.ts`` (vendor-apis-2.md §6.1). Prices, USD per output second, as of 2026-11-29;
fal publishes none of these per endpoint in a form we could read (§6.2 says "roughly the
vendor list price", UNCONFIRMED), so each is the vendor's own list price from §8.2: Kling
2.5 turbo 1080p $0.07 and Kling 3 1080p silent $0.112 (unmodel ``pricing.ts``), Hailuo-02
768P ≈ $0.05 (gateway resale; 512P assumed the same), Veo 3.1 Fast 720p/1080p $0.10/$0.12
(LiteLLM), Wan 2.7's $0.10/$0.15 for Wan 2.6, and Seedance 2.0's Volcengine list for 1.5 pro
(an upper bound). Check fal's model page ("Your request will cost ...") and override with
``backends.fal.pricing`` before routing on them."""


class FalSettings(BackendSettings):
    default_base_url: ClassVar[str] = FAL_QUEUE_URL
    key_env: ClassVar[tuple[str, ...]] = ("FAL_KEY",)

    model: str = "kling-2.5-turbo-pro"
    """Which endpoint this backend uses: a name in ``endpoints`` or in the well-known table
    (``kling-2.5-turbo-pro``, ``kling-3-pro``, ``hailuo-02-standard``, ``veo-3.1-fast``,
    ``wan-2.6``, ``seedance-1.5-pro``)."""
    endpoints: dict[str, FalEndpoint] = Field(default_factory=dict)
    """Your own endpoints by name (an entry named like a well-known one replaces it)."""

    @model_validator(mode="after")
    def _known_model(self) -> FalSettings:
        if self.model not in self.endpoints and self.model not in KNOWN_ENDPOINTS:
            known = ", ".join(sorted({*KNOWN_ENDPOINTS, *self.endpoints}))
            raise ValueError(f"model {self.model!r} is not a known endpoint ({known})")
        return self

    @property
    def spec(self) -> FalEndpoint:
        """The endpoint this backend uses."""
        return self.endpoints.get(self.model) or KNOWN_ENDPOINTS[self.model]


class FalBackend(FalQueueBackend):
    name = "fal"
    settings_model = FalSettings
    settings: FalSettings

    def get_capabilities(self) -> Capabilities:
        spec = self.settings.spec
        modes = {
            mode: ModeSpec(
                model=endpoint,
                durations=spec.durations,
                sizes=tuple(spec.size_labels()),
                price_table=spec.price_table(),
            )
            for mode, endpoint in (
                (Mode.TEXT_TO_VIDEO, spec.text_endpoint),
                (Mode.IMAGE_TO_VIDEO, spec.image_endpoint),
            )
            if endpoint
        }
        return Capabilities(
            text=modes.get(Mode.TEXT_TO_VIDEO),
            image=modes.get(Mode.IMAGE_TO_VIDEO),
            prompt_max_chars=spec.prompt_max_chars,
            image_inputs=frozenset({ImageInput.PUBLIC_URL, ImageInput.DATA_URI}),
            negative_prompt=spec.negative_prompt_field is not None,
            seed=spec.seed_field is not None,
        )

    def endpoint(self, request: GenerationRequest) -> str:
        return request.model  # the mode's endpoint id (get_capabilities)

    def home_app(self) -> str:
        spec = self.settings.spec
        return app_path(spec.text_endpoint or spec.image_endpoint or "")

    def payload(self, request: GenerationRequest) -> dict[str, Any]:
        spec = self.settings.spec
        aspect, resolution = spec.size_labels()[request.size]
        image = request.mode is Mode.IMAGE_TO_VIDEO
        inputs: dict[str | None, Any] = {
            "prompt": request.prompt,
            spec.duration_field: wire_duration(request.duration, spec.duration_format),
            spec.resolution_field: resolution,
            spec.negative_prompt_field: request.negative_prompt or None,
            spec.seed_field: request.seed,
        }
        if spec.aspect_ratio_with_image or not image:
            inputs[spec.aspect_ratio_field] = aspect
        if image:
            inputs[spec.image_field] = self.image_url(request.image or "")
        sent = {k: v for k, v in inputs.items() if k is not None and v is not None}
        return {**spec.extra_input, **sent}
