"""Reading and checking scene files, all of it before anything is enqueued.

Every problem in a file is reported at once, each naming the scene and the field, and a file
with any problem enqueues nothing.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from .capabilities import Capabilities, can_take
from .errors import SceneValidationError
from .models import Scene

MAX_SCENES_PER_JOB = 10_000


def _label(index: int, item: Any) -> str:
    name = item.get("id") if isinstance(item, dict) else None
    return f"scene {index + 1}" + (f" ({name})" if isinstance(name, str) and name else "")


def scene_label(index: int, scene: Scene) -> str:
    """How a scene of a file is named to people: ``scene 3 (its id)``."""
    return _label(index, {"id": scene.id})


def _items(data: Any) -> list[Any]:
    if isinstance(data, dict) and "scenes" in data:
        data = data["scenes"]
    if not isinstance(data, list):
        raise SceneValidationError(
            [("file", "(top level)", 'expected a list of scenes or {"scenes": [...]}')]
        )
    if not data:
        raise SceneValidationError([("file", "scenes", "the list of scenes is empty")])
    if len(data) > MAX_SCENES_PER_JOB:
        raise SceneValidationError(
            [("file", "scenes", f"{len(data)} scenes; one job takes at most {MAX_SCENES_PER_JOB}")]
        )
    return data


def parse_scenes(data: Any, *, base_dir: Path | None = None) -> list[Scene]:
    """Validate every scene; relative image paths are taken from ``base_dir``."""
    scenes: list[Scene] = []
    problems: list[tuple[str, str, str]] = []
    for index, item in enumerate(_items(data)):
        try:
            scene = Scene.model_validate(item)
        except ValidationError as error:
            problems += [
                (_label(index, item), ".".join(map(str, e["loc"])) or "(scene)", e["msg"])
                for e in error.errors()
            ]
            continue
        scene, problem = _resolve_image(scene, base_dir)
        if problem:
            problems.append((_label(index, item), "image", problem))
        scenes.append(scene)
    if problems:
        raise SceneValidationError(problems)
    return scenes


def _resolve_image(scene: Scene, base_dir: Path | None) -> tuple[Scene, str | None]:
    path = scene.image_path
    if path is None:
        return scene, None
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    if not path.is_file():
        return scene, f"file {str(path)!r} does not exist"
    return scene.model_copy(update={"image": str(path.resolve())}), None


def load_scene_file(path: Path) -> list[Scene]:
    """Read a scene file (JSON); image paths are relative to the file's folder."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise SceneValidationError(
            [(str(path), "(file)", error.strerror or "unreadable")]
        ) from None
    except json.JSONDecodeError as error:
        message = f"not valid JSON (line {error.lineno}, column {error.colno}: {error.msg})"
        raise SceneValidationError([(str(path), "(file)", message)]) from None
    return parse_scenes(data, base_dir=path.parent)


def check_routable(scenes: list[Scene], caps: dict[str, Capabilities]) -> None:
    """Refuse scenes that no enabled backend could ever take, saying why for each backend."""
    problems = []
    for index, scene in enumerate(scenes):
        reasons = {name: can_take(name, c, scene) for name, c in caps.items()}
        if reasons and all(reasons.values()):
            why = "; ".join(f"{name}: {reason}" for name, reason in reasons.items())
            problems.append(
                (_label(index, {"id": scene.id}), "(scene)", f"no backend can take it ({why})")
            )
        elif not reasons:
            problems.append((_label(index, {"id": scene.id}), "(scene)", "no backend is enabled"))
    if problems:
        raise SceneValidationError(problems)
