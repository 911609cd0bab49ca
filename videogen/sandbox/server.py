"""Run sandbox apps on loopback: one uvicorn server per vendor, each in a daemon thread.

The socket is bound before the thread starts, so an ephemeral port (``port=0``) is known at once and
:meth:`SandboxServer.start` only has to wait for uvicorn to start serving.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import TracebackType

import uvicorn
from starlette.applications import Starlette

from videogen.sandbox import (
    comfyui,
    fal,
    kling,
    luma,
    minimax,
    replicate,
    runway,
    seedance,
    veo,
    wan,
)  # fmt: skip
from videogen.sandbox.defaults import DEFAULT_KEYS, SANDBOX_NAMES
from videogen.sandbox.state import Knobs, SandboxState

_START_TIMEOUT = 10.0


@dataclass(frozen=True)
class _Kind:
    create_app: Callable[[SandboxState], Starlette]
    url_path: str
    """Appended to the root for the base URL (Luma's API lives under /dream-machine/v1)."""
    default_knobs: Knobs


_KINDS = {
    "svd": _Kind(comfyui.create_app, "", comfyui.DEFAULT_KNOBS),
    "runway": _Kind(runway.create_app, "", Knobs()),
    "luma": _Kind(luma.create_app, luma.PREFIX, Knobs()),
    "pika": _Kind(fal.create_app, "", Knobs()),
    "veo": _Kind(veo.create_app, "", Knobs()),
    "replicate": _Kind(replicate.create_app, "", Knobs()),
    "wan": _Kind(wan.create_app, wan.PREFIX, Knobs()),
    "seedance": _Kind(seedance.create_app, seedance.PREFIX, Knobs()),
    "fal": _Kind(fal.create_app, "", Knobs()),
    "kling": _Kind(kling.create_app, "", Knobs()),
    "minimax": _Kind(minimax.create_app, "", Knobs()),
}


def new_state(
    name: str, api_key: str | None = None, clock: Callable[[], float] = time.monotonic
) -> SandboxState:
    """A fresh state for backend ``name``: the vendor's default knobs, and key unless given."""
    kind = _KINDS[name]
    key = api_key if api_key is not None else DEFAULT_KEYS[name]
    return SandboxState(name, api_key=key, default_knobs=kind.default_knobs, clock=clock)


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto=IPPROTO_TCP matters: asyncio only sets TCP_NODELAY on sockets that say so, and
    # without it Nagle + delayed ACK add ~40 ms to every request on a kept-alive connection.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    return sock


class SandboxServer:
    """One vendor sandbox served by uvicorn in a daemon thread.

    Args:
        name: Backend name, one of :data:`SANDBOX_NAMES`.
        state: The state to serve (``None``: a fresh one with the vendor's default key and knobs).
        host: Interface to bind; loopback by default.
        port: Port to bind; 0 picks a free one.
        ssl_certfile: PEM certificate (chain) to serve HTTPS with.
        ssl_keyfile: PEM private key for ``ssl_certfile``.
    """

    def __init__(
        self,
        name: str,
        state: SandboxState | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        ssl_certfile: str | None = None,
        ssl_keyfile: str | None = None,
    ) -> None:
        if name not in _KINDS:
            raise ValueError(
                f"unknown sandbox {name!r}; expected one of {', '.join(SANDBOX_NAMES)}"
            )
        self.name = name
        self.state = state if state is not None else new_state(name)
        self.host = host
        self._kind = _KINDS[name]
        self._tls = ssl_certfile is not None
        config = uvicorn.Config(
            self._kind.create_app(self.state),
            log_level="warning",
            access_log=False,
            lifespan="off",
            ssl_certfile=ssl_certfile,
            ssl_keyfile=ssl_keyfile,
        )
        self._server = uvicorn.Server(config)
        self._socket: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._requested_port = port
        self._port: int | None = None

    @property
    def port(self) -> int:
        """The bound port (known from :meth:`start` on, kept after :meth:`stop`)."""
        if self._port is None:
            raise RuntimeError("the sandbox server was never started")
        return self._port

    @property
    def root_url(self) -> str:
        """``http(s)://host:port``: where the control endpoints live."""
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        host = f"[{host}]" if ":" in host else host
        return f"{'https' if self._tls else 'http'}://{host}:{self.port}"

    @property
    def base_url(self) -> str:
        """The URL a client config uses as the vendor's base URL."""
        return self.root_url + self._kind.url_path

    def start(self) -> SandboxServer:
        """Bind, start serving, and wait until connections are accepted."""
        if self._thread is not None:
            return self
        self._socket = _bind(self.host, self._requested_port)
        self._port = int(self._socket.getsockname()[1])
        self._thread = threading.Thread(
            target=self._server.run,
            kwargs={"sockets": [self._socket]},
            name=f"sandbox-{self.name}",
            daemon=True,
        )
        self._thread.start()
        deadline = time.monotonic() + _START_TIMEOUT
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"sandbox {self.name!r} did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        """Stop serving and wait for the thread (briefly: it is a daemon)."""
        self._server.should_exit = True
        # Don't wait for idle keep-alive clients: over TLS, closing one waits for a close_notify
        # that a pooled client never sends.
        self._server.force_exit = True
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._socket is not None:
            self._socket.close()
        self._thread = None

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def start_sandboxes(
    names: Iterable[str] = SANDBOX_NAMES,
    ports: Mapping[str, int] | None = None,
    keys: Mapping[str, str | None] | None = None,
    host: str = "127.0.0.1",
) -> dict[str, SandboxServer]:
    """Start one sandbox per name; if one fails to start, the ones already started are stopped.

    Args:
        names: Backend names (default: all of them).
        ports: Port per name (missing: a free port).
        keys: API key per name (missing: :data:`DEFAULT_KEYS`).
        host: Interface to bind.
    """
    servers: dict[str, SandboxServer] = {}
    try:
        for name in names:
            state = new_state(name, (keys or {}).get(name))
            servers[name] = SandboxServer(
                name, state, host=host, port=(ports or {}).get(name, 0)
            ).start()
    except BaseException:
        for server in servers.values():
            server.stop()
        raise
    return servers
