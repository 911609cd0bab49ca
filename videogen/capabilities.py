"""What a backend can do, and fitting a scene to it (pure functions, no I/O).

A scene asks for a duration and a shape; each backend offers a few of each. :func:`plan`
checks that a backend can ever take a scene (raising :class:`CapabilityError` before any HTTP
call) and snaps the request to the nearest thing the backend offers, keeping both.
"""

from __future__ import annotations

import math
from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from .errors import CapabilityError
from .models import GenerationRequest, Mode, Scene, Size


class ImageInput(StrEnum):
    """How a backend can receive a first-frame image."""

    PUBLIC_URL = "public_url"
    """An http(s) URL the vendor fetches itself."""
    DATA_URI = "data_uri"
    """Inline ``data:image/...;base64,`` in the request body."""
    UPLOAD = "upload"
    """An upload endpoint of the vendor's (ComfyUI ``/upload/image``)."""


class ModeSpec(BaseModel):
    """What a backend offers in one mode (text-to-video or image-to-video)."""

    model_config = ConfigDict(frozen=True)

    model: str = ""
    """The vendor model used for this mode, when the vendor has several."""
    durations: tuple[float, ...]
    """Every clip length offered, in seconds."""
    sizes: tuple[Size, ...]
    """Every output frame size offered; the first is the default."""
    cost_per_second_usd: float = 0.0
    cost_per_clip_usd: float = 0.0
    cost_per_megapixel_usd: float = 0.0
    """Luma prices output pixels: width x height x 24 fps x seconds."""
    price_table: tuple[tuple[float, int, float], ...] = ()
    """Exact prices as ``(seconds, short side px, usd)`` rows, where the vendor lists clips."""

    def cost(self, duration: float, size: Size) -> float:
        """Estimated price of one clip, in USD."""
        short = min(size)
        for seconds, side, usd in self.price_table:
            if seconds == duration and side == short:
                return usd
        pixels = size.width * size.height * 24 * duration / 1e6
        usd = self.cost_per_clip_usd + self.cost_per_second_usd * duration
        return round(usd + self.cost_per_megapixel_usd * pixels, 4)


class Capabilities(BaseModel):
    """A backend's declared abilities; the router and :func:`plan` read only this."""

    model_config = ConfigDict(frozen=True)

    text: ModeSpec | None
    """Text-to-video, when offered."""
    image: ModeSpec | None
    """Image-to-video, when offered."""
    prompt_max_chars: int
    image_inputs: frozenset[ImageInput] = frozenset()
    negative_prompt: bool = False
    seed: bool = True

    @property
    def text_to_video(self) -> bool:
        return self.text is not None

    @property
    def image_to_video(self) -> bool:
        return self.image is not None

    def spec(self, mode: Mode) -> ModeSpec:
        spec = self.text if mode is Mode.TEXT_TO_VIDEO else self.image
        if spec is None:
            raise ValueError(f"{mode} is not offered")
        return spec


def frame_size(ratio: str, short: int) -> Size:
    """The frame of a ``W:H`` ratio whose short side is ``short`` pixels (the long side
    rounded to an even number): how vendors that take a ratio and a resolution name sizes."""
    width, height = (int(part) for part in ratio.split(":"))
    long = int(round(short * max(width, height) / min(width, height) / 2) * 2)
    return Size(long, short) if width >= height else Size(short, long)


def snap_duration(requested: float, allowed: tuple[float, ...]) -> float:
    """The allowed duration nearest to ``requested``; ties go to the longer one."""
    return min(allowed, key=lambda d: (abs(d - requested), -d))


def snap_size(
    allowed: tuple[Size, ...], size: Size | None = None, aspect: float | None = None
) -> Size:
    """The allowed size closest in shape, then in pixel count; the default when nothing is asked.

    Shape is compared on a log scale so 16:9 vs 9:16 are as far apart as they look.
    """
    if size is None and aspect is None:
        return allowed[0]
    target = size.aspect if size is not None else aspect
    assert target is not None
    area = size.width * size.height if size is not None else allowed[0].width * allowed[0].height

    def distance(candidate: Size) -> tuple[float, float]:
        shape = round(abs(math.log(candidate.aspect / target)), 3)
        return shape, abs(math.log(candidate.width * candidate.height / area))

    return min(allowed, key=distance)


def check_scene(backend: str, caps: Capabilities, scene: Scene) -> Mode:
    """The mode this backend would use for ``scene``, or :class:`CapabilityError`."""
    mode = Mode.IMAGE_TO_VIDEO if scene.has_image else Mode.TEXT_TO_VIDEO
    if mode is Mode.TEXT_TO_VIDEO and not caps.text_to_video:
        raise CapabilityError(backend, "text-only scenes are not supported (it animates an image)")
    if mode is Mode.IMAGE_TO_VIDEO and not caps.image_to_video:
        raise CapabilityError(backend, "image-to-video is not supported")
    if len(scene.full_prompt) > caps.prompt_max_chars:
        raise CapabilityError(
            backend,
            f"prompt is {len(scene.full_prompt)} characters; the limit is {caps.prompt_max_chars}",
        )
    if mode is Mode.IMAGE_TO_VIDEO:
        _check_image_input(backend, caps, scene)
    return mode


def _check_image_input(backend: str, caps: Capabilities, scene: Scene) -> None:
    assert scene.image is not None
    if scene.image_is_url and not scene.image.startswith("data:"):
        return  # a URL can be passed on, inlined or uploaded by every image backend
    if {ImageInput.DATA_URI, ImageInput.UPLOAD} & caps.image_inputs:
        return
    raise CapabilityError(
        backend,
        f"it needs the first frame at a public https URL; {scene.image[:80]!r} is a local file",
    )


def plan(backend: str, caps: Capabilities, scene: Scene) -> GenerationRequest:
    """Fit ``scene`` to a backend: check it can ever be taken, then snap its parameters."""
    mode = check_scene(backend, caps, scene)
    spec = caps.spec(mode)
    duration = snap_duration(scene.duration, spec.durations)
    size = snap_size(spec.sizes, scene.requested_size, scene.requested_aspect)
    return GenerationRequest(
        backend=backend,
        mode=mode,
        prompt=scene.full_prompt,
        negative_prompt=scene.negative_prompt if caps.negative_prompt else None,
        seed=scene.seed if caps.seed else None,
        image=scene.image,
        requested_duration=scene.duration,
        requested_size=scene.requested_size,
        requested_aspect=scene.requested_aspect,
        duration=duration,
        size=size,
        model=spec.model,
        estimated_cost_usd=spec.cost(duration, size),
    )


def can_take(backend: str, caps: Capabilities, scene: Scene) -> str | None:
    """``None`` when the backend can take the scene, else the reason it cannot."""
    try:
        check_scene(backend, caps, scene)
    except CapabilityError as error:
        return error.reason
    return None
