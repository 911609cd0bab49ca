"""The curated public API (the layering of the pure core: test_imports.py)."""

from __future__ import annotations

import videogen


def test_all_lists_exactly_the_public_names():
    public = {name for name in dir(videogen) if not name.startswith("_")} | {"BaseVideoBackend"}
    modules = {name for name in public if type(getattr(videogen, name)).__name__ == "module"}
    assert set(videogen.__all__) - {"__version__"} == public - modules
    assert sorted(videogen.__all__) == list(videogen.__all__)
