"""A fresh venv holding videogen's built wheel and, besides it, only the wheel's own runtime
dependencies (``Requires-Dist``, with the extras asked for, followed transitively).

The dependencies are linked from the venv running the tests instead of being resolved,
downloaded and unpacked again: that took most of a minute of the wheel test, and proved
nothing the test venv's own install (the same requirements) had not proved already. What the
test is about stays real: the wheel is installed by pip, and the new venv sees neither the
repository nor any test or bench package.
"""

from __future__ import annotations

import importlib.metadata as metadata
import subprocess
import sys
import zipfile
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name


def wheel_venv(wheel: Path, venv: Path, extras: tuple[str, ...] = ()) -> Path:
    """Make ``venv`` with ``wheel`` installed and its dependencies (with ``extras``) linked;
    returns its python."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    install = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps",
         "--disable-pip-version-check", str(wheel)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert install.returncode == 0, install.stderr[-3000:]
    deps = venv / "deps"
    link_distributions(closure(wheel_requirements(wheel), extras), deps)
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    (Path(site) / "videogen-deps.pth").write_text(f"{deps}\n")  # after the venv's own
    return python


def wheel_requirements(wheel: Path) -> list[Requirement]:
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        text = archive.read(name).decode()
    lines = [
        line.split(":", 1)[1] for line in text.splitlines() if line.startswith("Requires-Dist:")
    ]
    return [Requirement(line.strip()) for line in lines]


def _applies(requirement: Requirement, extra: str) -> bool:
    return requirement.marker is None or requirement.marker.evaluate({"extra": extra})


def closure(
    requirements: list[Requirement], extras: tuple[str, ...] = ()
) -> list[metadata.Distribution]:
    """The installed distributions ``requirements`` (with our ``extras``) need, transitively."""
    found: dict[str, metadata.Distribution] = {}
    seen: set[tuple[str, str]] = set()
    todo = [r for r in requirements if any(_applies(r, e) for e in ("", *extras))]
    while todo:
        requirement = todo.pop()
        dist = metadata.distribution(requirement.name)
        name = canonicalize_name(dist.metadata["Name"])
        found[name] = dist
        for extra in {"", *requirement.extras}:  # celery[redis] brings celery's "redis" extra
            if (name, extra) not in seen:
                seen.add((name, extra))
                needs = [Requirement(r) for r in dist.requires or []]
                todo += [r for r in needs if _applies(r, extra)]
    return list(found.values())


def link_distributions(dists: list[metadata.Distribution], folder: Path) -> None:
    """Symlink every top-level entry each distribution installed (packages, modules, its
    ``.dist-info`` for entry points, bundled libraries) into ``folder``."""
    folder.mkdir(parents=True)
    for dist in dists:
        assert dist.files is not None, f"{dist.metadata['Name']} lists no files"
        tops = {f.parts[0] for f in dist.files if f.parts[0] not in ("..", "__pycache__")}
        for top in tops:
            target = folder / top
            if not target.exists():
                target.symlink_to(Path(str(dist.locate_file(top))))
