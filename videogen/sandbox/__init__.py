"""Local stand-ins for the video vendors' APIs, for the tests and for ``videogen sandbox``.

Each sandbox is an HTTP server on loopback that speaks one vendor's API (paths, headers, bodies,
status codes, state sequences, auth) and serves real, small MP4 files. Knobs inject faults; records
show what was received::

    with SandboxServer("runway") as server:
        ...  # point the Runway backend at server.base_url with DEFAULT_KEYS["runway"]
        server.state.set_knobs(concurrency_limit=1, fail_prompts={"forbidden": "SAFETY.INPUT.TEXT"})
        assert server.state.records()["peak_active"] <= 2

The servers need the ``sandbox`` extra (starlette, uvicorn, python-multipart): they are imported
on first use, and without the extra that use fails with :class:`~videogen.errors.MissingExtraError`
naming the install line. :data:`DEFAULT_KEYS` and :data:`SANDBOX_NAMES` need nothing.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from videogen.errors import MissingExtraError
from videogen.sandbox.defaults import DEFAULT_KEYS, SANDBOX_NAMES

if TYPE_CHECKING:
    from videogen.sandbox.server import SandboxServer, start_sandboxes
    from videogen.sandbox.state import HttpFault, Knobs, SandboxState

EXTRA = "sandbox"
_EXTRA_MODULES = ("starlette", "uvicorn", "multipart", "python_multipart")
"""What the ``sandbox`` extra installs (python-multipart is imported as either name)."""
_LAZY = {
    "SandboxServer": "videogen.sandbox.server",
    "start_sandboxes": "videogen.sandbox.server",
    "HttpFault": "videogen.sandbox.state",
    "Knobs": "videogen.sandbox.state",
    "SandboxState": "videogen.sandbox.state",
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    try:
        module = importlib.import_module(_LAZY[name])
    except ModuleNotFoundError as error:
        if (error.name or "").split(".")[0] not in _EXTRA_MODULES:
            raise
        raise MissingExtraError(EXTRA, "the vendor sandboxes", str(error.name)) from None
    return getattr(module, name)


__all__ = [
    "DEFAULT_KEYS",
    "SANDBOX_NAMES",
    "HttpFault",
    "Knobs",
    "SandboxServer",
    "SandboxState",
    "start_sandboxes",
]
