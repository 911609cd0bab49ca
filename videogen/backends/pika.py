"""Pika, whose public API is fal's queue (queue.fal.run): :mod:`.fal_queue` speaks the
protocol; this module adds Pika's endpoints (``fal-ai/pika/v2.2/{text-to-video|image-to-video}``),
inputs, sizes and prices. Contract: shared/vendor-apis.md §C.
"""

from __future__ import annotations

from typing import Any, ClassVar

from ..capabilities import Capabilities, ImageInput, ModeSpec, frame_size
from ..config import BackendSettings
from ..constants import FAL_QUEUE_URL
from ..models import GenerationRequest, Mode
from .fal_queue import FalQueueBackend, app_path, failure_class

__all__ = ["PikaBackend", "PikaSettings", "app_path", "failure_class", "frame_size"]

ASPECT_SIZES = {
    "16:9": (16, 9),
    "9:16": (9, 16),
    "1:1": (1, 1),
    "4:5": (4, 5),
    "5:4": (5, 4),
    "3:2": (3, 2),
    "2:3": (2, 3),
}
RESOLUTIONS = {"720p": 720, "1080p": 1080}
PRICES = ((5.0, 720, 0.20), (5.0, 1080, 0.45), (10.0, 720, 0.60), (10.0, 1080, 1.00))
"""Pika v2.2 on fal, USD per clip by (seconds, short side), as of 2026-11-29 (fal's model
page and Comfy's table, ``shared/vendor-apis.md`` §C.3, vendor-apis-2.md §8.1: $0.04/s at
720p for 5 s). Override with ``backends.pika.pricing``."""
PROMPT_MAX_CHARS = 2000


class PikaSettings(BackendSettings):
    default_base_url: ClassVar[str] = FAL_QUEUE_URL
    key_env: ClassVar[tuple[str, ...]] = ("FAL_KEY",)

    model: str = "fal-ai/pika/v2.2"
    """fal endpoint prefix; ``/text-to-video`` or ``/image-to-video`` is appended."""


SIZE_LABELS = {frame_size(a, px): (a, r) for r, px in RESOLUTIONS.items() for a in ASPECT_SIZES}


class PikaBackend(FalQueueBackend):
    name = "pika"
    settings_model = PikaSettings
    settings: PikaSettings

    def get_capabilities(self) -> Capabilities:
        spec = ModeSpec(
            model=self.settings.model,
            durations=(5.0, 10.0),
            sizes=tuple(SIZE_LABELS),
            price_table=PRICES,
        )
        return Capabilities(
            text=spec,
            image=spec,
            prompt_max_chars=PROMPT_MAX_CHARS,
            image_inputs=frozenset({ImageInput.PUBLIC_URL, ImageInput.DATA_URI}),
            negative_prompt=True,
        )

    def endpoint(self, request: GenerationRequest) -> str:
        kind = "image-to-video" if request.mode is Mode.IMAGE_TO_VIDEO else "text-to-video"
        return f"{request.model.strip('/')}/{kind}"

    def home_app(self) -> str:
        return app_path(self.settings.model)

    def payload(self, request: GenerationRequest) -> dict[str, Any]:
        aspect, resolution = SIZE_LABELS[request.size]
        body: dict[str, Any] = {
            "prompt": request.prompt,
            "resolution": resolution,
            "duration": int(request.duration),
        }
        if request.negative_prompt:
            body["negative_prompt"] = request.negative_prompt
        if request.seed is not None:
            body["seed"] = request.seed
        if request.mode is Mode.IMAGE_TO_VIDEO:
            body["image_url"] = self.image_url(request.image or "")
        else:
            body["aspect_ratio"] = aspect
        return body
