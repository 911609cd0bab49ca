"""Each real client against its vendor sandbox, over real loopback HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from tests.helpers import file_server, png_bytes, stop_all
from videogen.backends import backend_class, create_backend
from videogen.backends.base import BaseVideoBackend
from videogen.constants import SVD_TEXT_WORKFLOW
from videogen.sandbox import DEFAULT_KEYS, SandboxServer, start_sandboxes

REPO = Path(__file__).resolve().parents[2]
BACKENDS = (
    "svd", "runway", "pika", "luma", "veo", "replicate", "wan", "seedance", "fal", "kling",
    "minimax",
)  # fmt: skip
FAST = {"run_seconds": 0.2, "queue_seconds": 0.08}
"""Short vendor jobs, still long enough for polls to see every state."""


@pytest.fixture(scope="session")
def servers() -> Iterator[dict[str, SandboxServer]]:
    started = start_sandboxes(list(BACKENDS))
    try:
        yield started
    finally:
        stop_all(started.values())


@pytest.fixture
def sandbox(servers: dict[str, SandboxServer], backend_name: str) -> SandboxServer:
    server = servers[backend_name]
    server.state.reset()
    server.state.set_knobs(**FAST)
    return server


def settings_for(name: str, base_url: str, **overrides: Any) -> Any:
    values: dict[str, Any] = {
        "base_url": base_url,
        "poll_interval": 0.02,
        "timeout": 15,
        "request_timeout": 3,
    }
    if name == "svd":
        values["text_workflow"] = str(SVD_TEXT_WORKFLOW)
    key = overrides.pop("api_key", DEFAULT_KEYS.get(name))
    values.update(overrides)
    settings = backend_class(name).settings_model(**values)
    return settings.model_copy(update={"api_key": SecretStr(key) if key else None})


@pytest.fixture
def make_backend(sandbox: SandboxServer, backend_name: str) -> Iterator[Any]:
    made: list[BaseVideoBackend] = []

    def make(**overrides: Any) -> BaseVideoBackend:
        base_url = overrides.pop("base_url", sandbox.base_url)
        extra = {k: overrides.pop(k) for k in ("sleep", "clock") if k in overrides}
        settings = settings_for(backend_name, base_url, **overrides)
        backend = create_backend(backend_name, settings, **extra)
        made.append(backend)
        return backend

    yield make
    for backend in made:
        backend.close()


@pytest.fixture(scope="session")
def images(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A first frame as a local file and at a loopback URL."""
    root = tmp_path_factory.mktemp("images")
    (root / "frame.png").write_bytes(png_bytes(64, 36))
    (root / "not-an-image.png").write_bytes(b"<html>nope</html>")
    with file_server(root) as url:
        yield {
            "file": str(root / "frame.png"),
            "url": f"{url}/frame.png",
            "bad_file": str(root / "not-an-image.png"),
        }
