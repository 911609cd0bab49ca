"""Sandbox servers for the sandbox's own tests: started once, reset before every test."""

from __future__ import annotations

import ssl
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import trustme

from tests.helpers import stop_all
from tests.sandbox.drivers import (
    DRIVERS,
    ComfyDriver,
    Driver,
    FalDriver,
    FalGenericDriver,
    KlingDriver,
    LumaDriver,
    MiniMaxDriver,
    MiniMaxV2Driver,
    RunwayDriver,
    SeedanceDriver,
    WanDriver,
)
from videogen.sandbox import SandboxServer, start_sandboxes
from videogen.sandbox.server import new_state

D = TypeVar("D", bound=Driver)

FAST = {"run_seconds": 0.15, "queue_seconds": 0.05}
"""Short vendor jobs: every test waits for a few of them."""


@pytest.fixture(scope="session")
def servers() -> Iterator[dict[str, SandboxServer]]:
    started = start_sandboxes()
    try:
        yield started
    finally:
        stop_all(started.values())


@pytest.fixture(autouse=True)
def _fresh_sandboxes(request: pytest.FixtureRequest) -> None:
    """Every test starts from empty records and fast default knobs (only if it uses servers)."""
    if "servers" not in request.fixturenames:
        return
    for server in request.getfixturevalue("servers").values():
        server.state.reset()
        server.state.set_knobs(**FAST)


def _drivers(name: str, keep: Callable[[type[Driver]], bool]) -> Any:
    """A fixture named ``name`` giving a raw-HTTP client for each vendor API that ``keep``
    accepts: the same contract tests run against all of them."""

    @pytest.fixture(name=name, params=[n for n, kind in DRIVERS.items() if keep(kind)])
    def made(request: pytest.FixtureRequest, servers: dict[str, SandboxServer]) -> Iterator[Driver]:
        yield from _driver(servers, DRIVERS[request.param])

    return made


driver = _drivers("driver", lambda kind: True)
keyed_driver = _drivers("keyed_driver", lambda kind: kind.name != "svd")
"""Drivers of the vendors that check an API key."""
queueing_driver = _drivers("queueing_driver", lambda kind: kind.queues)
"""Drivers of the vendors that queue jobs over their concurrency limit."""
cancelling_driver = _drivers("cancelling_driver", lambda kind: kind.cancels is not None)
"""Drivers of the vendors that can stop a job."""
stubborn_driver = _drivers("stubborn_driver", lambda kind: kind.cancels is None)
"""Drivers of the vendors that cannot."""


def _driver(servers: dict[str, SandboxServer], kind: type[D]) -> Iterator[D]:
    made = kind(servers[kind.name])
    try:
        yield made
    finally:
        made.close()


@pytest.fixture
def runway(servers: dict[str, SandboxServer]) -> Iterator[RunwayDriver]:
    yield from _driver(servers, RunwayDriver)


@pytest.fixture
def luma(servers: dict[str, SandboxServer]) -> Iterator[LumaDriver]:
    yield from _driver(servers, LumaDriver)


@pytest.fixture
def pika(servers: dict[str, SandboxServer]) -> Iterator[FalDriver]:
    yield from _driver(servers, FalDriver)


@pytest.fixture
def fal(servers: dict[str, SandboxServer]) -> Iterator[FalGenericDriver]:
    yield from _driver(servers, FalGenericDriver)


@pytest.fixture
def svd(servers: dict[str, SandboxServer]) -> Iterator[ComfyDriver]:
    yield from _driver(servers, ComfyDriver)


@pytest.fixture
def wan(servers: dict[str, SandboxServer]) -> Iterator[WanDriver]:
    yield from _driver(servers, WanDriver)


@pytest.fixture
def seedance(servers: dict[str, SandboxServer]) -> Iterator[SeedanceDriver]:
    yield from _driver(servers, SeedanceDriver)


@pytest.fixture
def kling(servers: dict[str, SandboxServer]) -> Iterator[KlingDriver]:
    yield from _driver(servers, KlingDriver)


@pytest.fixture
def minimax(servers: dict[str, SandboxServer]) -> Iterator[MiniMaxDriver]:
    yield from _driver(servers, MiniMaxDriver)


@pytest.fixture
def minimax_v2(servers: dict[str, SandboxServer]) -> Iterator[MiniMaxV2Driver]:
    yield from _driver(servers, MiniMaxV2Driver)


# -- fal over TLS ----------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def tls_ca(tmp_path_factory: pytest.TempPathFactory) -> tuple[trustme.CA, Path]:
    """A throwaway certificate authority; its certificate is written to a PEM file for clients."""
    ca = trustme.CA()
    ca_file = tmp_path_factory.mktemp("tls") / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    return ca, ca_file


@pytest.fixture(scope="session")
def fal_tls_server(
    tls_ca: tuple[trustme.CA, Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SandboxServer]:
    """The fal sandbox served over HTTPS with a certificate for 127.0.0.1 signed by ``tls_ca``."""
    ca, _ = tls_ca
    folder = tmp_path_factory.mktemp("fal-tls")
    cert = ca.issue_cert("127.0.0.1", "localhost")
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(b"".join(blob.bytes() for blob in cert.cert_chain_pems))
    cert.private_key_pem.write_to_path(str(key_file))
    server = SandboxServer(
        "pika", new_state("pika"), ssl_certfile=str(cert_file), ssl_keyfile=str(key_file)
    )
    with server:
        yield server


@pytest.fixture
def fal_tls(fal_tls_server: SandboxServer) -> SandboxServer:
    fal_tls_server.state.reset()
    fal_tls_server.state.set_knobs(**FAST)
    return fal_tls_server


@pytest.fixture
def tls_client(tls_ca: tuple[trustme.CA, Path]) -> Iterator[httpx.Client]:
    """An httpx client that trusts only the throwaway CA."""
    context = ssl.create_default_context(cafile=str(tls_ca[1]))
    with httpx.Client(verify=context) as client:
        yield client
