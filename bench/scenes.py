"""Scene lists for the scenarios, and the first frame they animate."""

from __future__ import annotations

from typing import Any


def text_scenes(tag: str, count: int, start: int = 0) -> list[dict[str, Any]]:
    """Text-only scenes with unique prompts (sandbox records are matched by prompt)."""
    return [{"prompt": f"{tag} text scene {i}", "duration": 5} for i in range(start, start + count)]


def image_scenes(tag: str, count: int, image: str, kind: str) -> list[dict[str, Any]]:
    """Scenes that animate ``image`` (a loopback URL or a local file)."""
    return [
        {"prompt": f"{tag} {kind} scene {i}", "image": image, "duration": 5} for i in range(count)
    ]


def mixed_scenes(
    tag: str, total: int, image_url: str, image_file: str
) -> dict[str, list[dict[str, Any]]]:
    """Half text-only, 30 % image by URL (every backend), 20 % image by local file (not Luma)."""
    n_url = total * 3 // 10
    n_file = total // 5
    return {
        "text": text_scenes(tag, total - n_url - n_file),
        "image_url": image_scenes(tag, n_url, image_url, "image-url"),
        "image_file": image_scenes(tag, n_file, image_file, "image-file"),
    }
