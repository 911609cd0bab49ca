"""The result cache's rules (pure): what makes two scenes the same, which scenes of a job
reuse a stored video or wait for an identical one, and which videos to evict.

The key is a hash of the normalised request: the prompt, style and negative prompt with their
whitespace collapsed (case is kept: models read it), the first frame's content hash (never
its path: the same picture under two names is one request), the duration, the resolution or
else the aspect (``16:9`` and ``32:18`` are one shape), the seed, and the backend and model
the scene is pinned to. A :class:`~videogen.models.Scene` cannot pin a backend today, so
every scene says "any backend will do" (``*``): a video any backend made for the same request
is reused (each backend that made one could take the scene: it did).

What is not cached, and why:

- a scene without a seed when ``cache.unseeded`` is off (it is on by default: a resubmitted
  scene file must not pay again for shots it has; off, each unseeded scene asks for a fresh
  random take);
- a first frame given by URL: its content may change behind the same address, and reading it
  at submit would be network I/O before anything is stored;
- a scene or job that says ``no_cache``.

The steps that use these rules (at submit, when a video is stored, in the sweep) are
:mod:`videogen.reuse`; the index in Redis is :mod:`videogen.cache_store`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from .config import CacheSettings
from .models import Scene

KEY_VERSION = 1
"""Part of every key: a change to what the key covers starts a fresh cache, never a wrong hit."""
ANY_BACKEND = "*"
CACHE_DIR = ".cache"
"""The content-addressed store's folder, under the outputs folder (same file system: videos
are hard-linked in and out of it)."""
DAY = 86400.0


def normalise_text(text: str | None) -> str:
    """Whitespace collapsed to single spaces and trimmed; ``None`` reads as empty."""
    return " ".join(text.split()) if text else ""


def image_digest(scene: Scene) -> str | None:
    """sha256 of the first frame's bytes (a local file or a ``data:`` URI); ``""`` without
    an image; ``None`` when it cannot be known without the network (an http(s) URL) or read.
    Reads the file: called at submit, where the file is checked to exist anyway."""
    if scene.image is None:
        return ""
    if scene.image.startswith("data:"):
        _, _, payload = scene.image.partition(",")
        try:
            return hashlib.sha256(base64.b64decode(payload, validate=True)).hexdigest()
        except (binascii.Error, ValueError):
            return None
    path = scene.image_path
    if path is None:
        return None
    try:
        return file_digest(path)
    except OSError:
        return None


def file_digest(path: Path) -> str:
    """sha256 of a file's bytes (hex)."""
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def shape(scene: Scene) -> str:
    """The requested frame size, else the requested aspect (rounded), else ``""``."""
    if scene.requested_size is not None:
        return str(scene.requested_size)
    aspect = scene.requested_aspect
    return f"a{aspect:.4f}" if aspect is not None else ""


def cache_key(scene: Scene, digest: str, pin: tuple[str, str] | None = None) -> str:
    """The scene's key: its normalised request, with ``digest`` (:func:`image_digest`) for
    its first frame and ``pin`` (backend, model) when it names one (``None``: any backend)."""
    fields: dict[str, Any] = {
        "v": KEY_VERSION,
        "prompt": normalise_text(scene.prompt),
        "style": normalise_text(scene.style),
        "negative": normalise_text(scene.negative_prompt),
        "image": digest,
        "duration": f"{scene.duration:g}",
        "shape": shape(scene),
        "seed": scene.seed,
        "backend": ":".join(pin) if pin else ANY_BACKEND,
    }
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()


def uncached_reason(scene: Scene, settings: CacheSettings, job_no_cache: bool) -> str | None:
    """Why the scene is left out of the cache; ``None`` when it may use it."""
    if not settings.enabled:
        return "the cache is off"
    if job_no_cache or scene.no_cache:
        return "no_cache"
    if scene.seed is None and not settings.unseeded:
        return "no seed"
    if scene.image_is_url and not (scene.image or "").startswith("data:"):
        return "first frame by URL"
    return None


def key_of(scene: Scene, settings: CacheSettings, job_no_cache: bool = False) -> str | None:
    """The scene's cache key, ``None`` when it is not cached (see the module docstring)."""
    if uncached_reason(scene, settings, job_no_cache) is not None:
        return None
    digest = image_digest(scene)
    return None if digest is None else cache_key(scene, digest)


@dataclass(frozen=True)
class Mark:
    """What the cache does for one scene of a job being submitted."""

    key: str | None = None
    """Its cache key (``None``: not cached)."""
    hit: bool = False
    """A stored video is reused: it never enters the backlog."""
    leader: int | None = None
    """Index of the earlier identical scene of its job it waits for (out of the backlog)."""

    @property
    def held(self) -> bool:
        """Kept out of the backlog at submit."""
        return self.hit or self.leader is not None


def plan(keys: Sequence[str | None], stored: set[str]) -> list[Mark]:
    """Each scene's mark: a key in ``stored`` is a hit (every scene with it); otherwise the
    first scene with a key leads and the later ones with the same key follow it."""
    first: dict[str, int] = {}
    marks = []
    for index, key in enumerate(keys):
        if key is None:
            marks.append(Mark())
        elif key in stored:
            marks.append(Mark(key, hit=True))
        else:
            marks.append(Mark(key, leader=first.get(key)))
            first.setdefault(key, index)
    return marks


class Entry(BaseModel):
    """One cached video: where its bytes are, and where they came from."""

    key: str
    sha256: str
    size_bytes: int
    backend: str
    model: str = ""
    vendor_job_id: str
    scene_id: str
    """The scene whose vendor job made it."""
    job_id: str
    created_at: float
    usd: float = 0.0
    """What its vendor job cost: what each reuse saves."""
    result: dict[str, Any] = Field(default_factory=dict)
    """The original scene's result (sizes, effective duration...)."""

    def path(self, outputs: Path) -> Path:
        return blob_path(outputs, self.sha256)

    def reused_result(self, dest: Path) -> dict[str, Any]:
        """A reusing scene's result: the original's facts, its own file, where it came from."""
        return {
            **self.result,
            "video_path": str(dest),
            "estimated_cost_usd": 0.0,
            "seconds": 0.0,
            "cached": True,
            "cache": {
                "key": self.key,
                "sha256": self.sha256,
                "scene": self.scene_id,
                "job": self.job_id,
                "backend": self.backend,
                "model": self.model,
                "vendor_job_id": self.vendor_job_id,
                "saved_usd": self.usd,
            },
        }


def blob_path(outputs: Path, sha256: str) -> Path:
    return outputs / CACHE_DIR / f"{sha256}.mp4"


@dataclass(frozen=True)
class Stored:
    """An entry as eviction sees it."""

    key: str
    last_used: float
    size_bytes: int


def evictions(
    oldest_first: Sequence[Stored], total_bytes: int, now: float, settings: CacheSettings
) -> list[str]:
    """Keys to evict, least recently used first: every one unused for ``max_age_days``, and
    more until the store fits ``max_bytes`` (a file two keys share is counted for each: an
    estimate the next sweep corrects, since the stored total is exact)."""
    max_age = settings.max_age_days * DAY if settings.max_age_days else None
    out = []
    for entry in oldest_first:
        too_old = max_age is not None and now - entry.last_used > max_age
        too_big = settings.max_bytes is not None and total_bytes > settings.max_bytes
        if not (too_old or too_big):
            break
        out.append(entry.key)
        total_bytes -= entry.size_bytes
    return out
