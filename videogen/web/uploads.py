"""First frames uploaded with a job (API multipart or the submit page): checked, then stored
under their own names in a fresh folder of the outputs, where the scenes name them."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

from ..errors import InvalidRequestError, SceneValidationError
from ..models import is_url

MAX_UPLOAD_BYTES = 50 * 2**20
"""A first frame larger than this is refused (vendors take far smaller images)."""


def upload_name(filename: str | None) -> str:
    """An uploaded file's name without any folder part, or :class:`InvalidRequestError`:
    uploads are stored under that name in a fresh folder, so it must name a file there."""
    name = Path(filename or "").name
    if name in ("", ".", ".."):
        raise InvalidRequestError(f"images: {filename!r} is not a usable file name")
    return name


def save_uploads(outputs: Path, files: dict[str, bytes]) -> tuple[Path, set[str]]:
    """Store ``files`` (name → content, read with at most :data:`MAX_UPLOAD_BYTES` + 1 bytes)
    in a new folder; returns it and the names stored. Nothing is written if one is refused."""
    named = {upload_name(name): data for name, data in files.items()}
    for name, data in named.items():
        if len(data) > MAX_UPLOAD_BYTES:
            raise InvalidRequestError(f"images: {name} is over {MAX_UPLOAD_BYTES} bytes")
    folder = outputs / "uploads" / secrets.token_hex(8)
    if named:
        folder.mkdir(parents=True, exist_ok=True)
    for name, data in named.items():
        (folder / name).write_bytes(data)
    return folder, set(named)


def refuse_server_paths(scenes: list[dict[str, Any]], uploaded: set[str]) -> None:
    """A scene's image must be a URL or an uploaded file: a client may not make the server
    read (and send to a vendor) a file of its own."""
    problems_found = [
        (f"scene {i + 1}", "image", f"{scene['image'][:60]!r} is neither a URL nor an upload")
        for i, scene in enumerate(scenes)
        if isinstance(scene, dict)
        and isinstance(scene.get("image"), str)
        and not is_url(scene["image"])
        and scene["image"] not in uploaded
    ]
    if problems_found:
        raise SceneValidationError(problems_found)
