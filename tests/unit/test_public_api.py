"""The curated public API and the layering of the pure core."""

from __future__ import annotations

import subprocess
import sys

import videogen


def test_all_lists_exactly_the_public_names():
    public = {name for name in dir(videogen) if not name.startswith("_")} | {"BaseVideoBackend"}
    modules = {name for name in public if type(getattr(videogen, name)).__name__ == "module"}
    assert set(videogen.__all__) - {"__version__"} == public - modules
    assert sorted(videogen.__all__) == list(videogen.__all__)


def test_pure_core_imports_no_io_library():
    """Policy modules are plain functions over plain values: no celery, redis or httpx."""
    code = (
        "import sys\n"
        "import videogen.capabilities, videogen.retry, videogen.errors, videogen.models\n"
        "bad = [m for m in ('celery', 'redis', 'httpx', 'av') if m in sys.modules]\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == ""
