"""A real Redis Sentinel deployment on loopback for tests: a master, replicas and sentinels,
each a ``redis-server`` child process (the binary videogen's embedded Redis uses).

Timings are short so that a failover takes a few seconds: a sentinel calls the master down
after ``DOWN_AFTER_MS`` without an answer, and the sentinels then elect one of them to
promote the replica.
"""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from tests.helpers import wait_until
from videogen.embedded import EmbeddedRedis, free_port, pings, redis_server_binary

MASTER_NAME = "videogen"
DOWN_AFTER_MS = 1000
FAILOVER_TIMEOUT_MS = 5000
QUORUM = 2


def _client(port: int, password: str | None, timeout: float = 0.5) -> redis.Redis:
    return redis.Redis(
        host="127.0.0.1",
        port=port,
        password=password,
        socket_connect_timeout=timeout,
        socket_timeout=timeout,
        retry=Retry(NoBackoff(), 0),
        decode_responses=True,
    )


class RedisNode(EmbeddedRedis):
    """The embedded Redis (AOF, noeviction) with a password and extra arguments."""

    def __init__(self, data_dir: Path, *extra: str, password: str | None = None) -> None:
        super().__init__(data_dir, port=free_port())
        self.extra = list(extra)
        self.password = password

    def command(self) -> list[str]:
        auth = ["--requirepass", self.password, "--masterauth", self.password]
        return super().command() + (auth if self.password else []) + self.extra

    def client(self, timeout: float = 0.5) -> redis.Redis:
        return _client(self.port, self.password, timeout)

    def _answers(self) -> bool:
        return pings(self.client(0.2))

    def pause(self) -> None:
        """SIGSTOP: alive to the kernel (connections stay open) and silent."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)


def replica_of(master: RedisNode, data_dir: Path) -> RedisNode:
    """A replica of ``master``, synced (its link up) when this returns."""
    replica = RedisNode(
        data_dir, "--replicaof", "127.0.0.1", str(master.port), password=master.password
    ).start()
    client = replica.client()
    wait_until(
        lambda: client.info("replication").get("master_link_status") == "up",
        15,
        "the replica's link to its master",
    )
    client.close()
    return replica


class SentinelNode:
    """``redis-server sentinel.conf --sentinel``, watching one master."""

    def __init__(self, data_dir: Path, master: RedisNode) -> None:
        self.data_dir = data_dir.resolve()
        self.port = free_port()
        self.master = master
        self.process: subprocess.Popen[bytes] | None = None

    def config(self) -> str:
        m = MASTER_NAME
        lines = [
            f"port {self.port}",
            "bind 127.0.0.1",
            "daemonize no",
            f"dir {self.data_dir}",
            f"logfile {self.data_dir / 'sentinel.log'}",
            f"sentinel monitor {m} 127.0.0.1 {self.master.port} {QUORUM}",
            f"sentinel down-after-milliseconds {m} {DOWN_AFTER_MS}",
            f"sentinel failover-timeout {m} {FAILOVER_TIMEOUT_MS}",
            f"sentinel parallel-syncs {m} 1",
        ]
        if self.master.password:
            lines.append(f"sentinel auth-pass {m} {self.master.password}")
        return "\n".join(lines) + "\n"

    def start(self) -> SentinelNode:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        conf = self.data_dir / "sentinel.conf"  # Sentinel rewrites it: one file per sentinel
        conf.write_text(self.config())
        self.process = subprocess.Popen(
            [redis_server_binary(), str(conf), "--sentinel"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            start_new_session=True,
        )
        wait_until(self._answers, 15, f"sentinel on port {self.port}")
        return self

    def client(self) -> redis.Redis:
        return _client(self.port, None)

    def _answers(self) -> bool:
        return pings(self.client())

    def state(self) -> dict[str, object]:
        client = self.client()
        try:
            return dict(client.sentinel_master(MASTER_NAME))
        finally:
            client.close()

    def master_port(self) -> int | None:
        client = self.client()
        try:
            address = client.sentinel_get_master_addr_by_name(MASTER_NAME)
        except redis.RedisError:
            return None
        finally:
            client.close()
        return int(address[1]) if address else None

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


class SentinelDeployment:
    """A master, one replica and three sentinels that know each other, on loopback."""

    def __init__(self, root: Path, password: str | None = None) -> None:
        self.root = root
        self.master = RedisNode(root / "master", password=password)
        self.replica: RedisNode | None = None
        self.sentinels: list[SentinelNode] = []

    @property
    def nodes(self) -> list[RedisNode]:
        return [self.master] + ([self.replica] if self.replica else [])

    def url(self) -> str:
        auth = f":{self.master.password}@" if self.master.password else ""
        hosts = ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels)
        return f"redis+sentinel://{auth}{hosts}/{MASTER_NAME}/0"

    def start(self) -> SentinelDeployment:
        self.master.start()
        self.replica = replica_of(self.master, self.root / "replica")
        self.sentinels = [SentinelNode(self.root / f"sentinel-{i}", self.master) for i in range(3)]
        for sentinel in self.sentinels:
            sentinel.start()
        wait_until(self._ready, 30, lambda: f"sentinels ready: {self._describe()}")
        return self

    def _ready(self) -> bool:
        """Every sentinel sees the master up, its replica, and the two other sentinels: a
        failover can then reach its quorum and elect a leader."""
        for sentinel in self.sentinels:
            try:
                state = sentinel.state()
            except redis.RedisError:
                return False
            seen = (state["num-other-sentinels"], state["num-slaves"], state["is_sdown"])
            if seen != (2, 1, False):
                return False
        return True

    def _describe(self) -> str:
        return "; ".join(str(_safe_state(s)) for s in self.sentinels)

    def master_port(self) -> int | None:
        """The master's port as a majority of the sentinels name it now."""
        ports = [s.master_port() for s in self.sentinels]
        for port in set(ports):
            if port is not None and ports.count(port) >= QUORUM:
                return port
        return None

    def kill_master(self) -> RedisNode:
        """SIGKILL the node the sentinels name as master; returns it."""
        port = self.master_port()
        (node,) = [n for n in self.nodes if n.port == port]
        node.kill()
        return node

    def wait_failover(self, old: RedisNode, timeout: float = 30) -> float:
        """Seconds until a majority of the sentinels name another master (from the call)."""
        started = time.monotonic()
        wait_until(
            lambda: self.master_port() not in (None, old.port), timeout, "the sentinels' failover"
        )
        return time.monotonic() - started

    def stop(self) -> None:
        for sentinel in self.sentinels:
            sentinel.stop()
        for node in self.nodes:
            node.kill()


def _safe_state(sentinel: SentinelNode) -> object:
    try:
        state = sentinel.state()
    except redis.RedisError as error:
        return repr(error)
    return {k: state.get(k) for k in ("num-other-sentinels", "num-slaves", "flags")}
