"""Local stand-ins for the video vendors' APIs, for the tests and for ``videogen sandbox``.

Each sandbox is an HTTP server on loopback that speaks one vendor's API (paths, headers, bodies,
status codes, state sequences, auth) and serves real, small MP4 files. Knobs inject faults; records
show what was received::

    with SandboxServer("runway") as server:
        ...  # point the Runway backend at server.base_url with DEFAULT_KEYS["runway"]
        server.state.set_knobs(concurrency_limit=1, fail_prompts={"forbidden": "SAFETY.INPUT.TEXT"})
        assert server.state.records()["peak_active"] <= 2
"""

from videogen.sandbox.server import DEFAULT_KEYS, SANDBOX_NAMES, SandboxServer, start_sandboxes
from videogen.sandbox.state import HttpFault, Knobs, SandboxState

__all__ = [
    "DEFAULT_KEYS",
    "SANDBOX_NAMES",
    "HttpFault",
    "Knobs",
    "SandboxServer",
    "SandboxState",
    "start_sandboxes",
]
