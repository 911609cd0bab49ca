"""Connections to Redis: a patient one for workers, a quick check for people at a prompt.

Both take every URL form of :mod:`videogen.redis_url`. On a ``redis+sentinel://`` URL the
client asks the sentinels where the master is, and asks again whenever a connection fails:
a failover (the master dies, a replica is promoted) is ridden out like a restart.
"""

from __future__ import annotations

from typing import Any

import redis
from redis.backoff import ExponentialBackoff, NoBackoff
from redis.retry import Retry
from redis.sentinel import Sentinel, SentinelManagedConnection

from .constants import SENTINEL_TIMEOUT
from .errors import StoreUnavailableError
from .redis_url import SentinelURL, check_redis_url, is_sentinel, parse_sentinel_url, safe_url

__all__ = ["REDIS_RETRIES", "check_reachable", "connect", "safe_url", "sentinel_master"]

REDIS_RETRIES = 40
"""~70 s of reconnect attempts, capped at 2 s apart: longer than a Redis restart takes, and
than a Sentinel failover (seconds after ``down-after-milliseconds``)."""
RETRIED_ERRORS = [redis.ConnectionError, redis.TimeoutError, redis.ReadOnlyError]
"""``ReadOnlyError``: a master demoted to replica answers writes with READONLY; redis-py's
Sentinel connections turn it into a reconnect (a new question to the sentinels), and a plain
client meets it while a replica is promoted under a fixed address (a proxy, a DNS name)."""


def connect(url: str, *, patient: bool = True) -> redis.Redis:
    """A client whose every command rides out a Redis restart or a Sentinel failover (about
    a minute of retries): the steps are idempotent, and giving up mid-step could lose a
    vendor job id. ``patient=False``: one quick try, for what must never hold up a stop."""
    retry = Retry(ExponentialBackoff(cap=2.0, base=0.05), REDIS_RETRIES if patient else 0)
    options: dict[str, Any] = {
        "decode_responses": True,
        "retry": retry,
        "retry_on_error": RETRIED_ERRORS,
        "socket_connect_timeout": 2,
        "health_check_interval": 10,
    }
    if is_sentinel(url):
        return sentinel_master(parse_sentinel_url(url), **options)
    return redis.Redis.from_url(check_redis_url(url), **options)


class MasterFollowingConnection(SentinelManagedConnection):
    """A Sentinel-managed connection that asks the sentinels for the master whenever it
    reconnects.

    redis-py asks them only when a pooled connection is first opened: a command retried after
    its connection dropped reconnects at the address the connection had (``connect_check_
    health``; redis/redis-py#3874). So a command in flight when the master died retried the
    dead address for all its retries (about 80 s), and held up its step that long: seen as a
    router stuck in a health probe's SET after a failover (``tests/pipeline/test_redis_ha.py``).
    """

    def connect_check_health(
        self, check_health: bool = True, retry_socket_connect: bool = True
    ) -> None:
        if self._sock is None and self.connection_pool.is_master:
            # MasterNotFoundError while the sentinels elect: a ConnectionError, retried.
            self.host, self.port = self.connection_pool.get_master_address()
        super().connect_check_health(check_health, retry_socket_connect)


def sentinel_master(where: SentinelURL, **options: Any) -> redis.Redis:
    """A client of the master the sentinels name now (redis-py's ``master_for``: every new
    connection asks them again, so a promoted replica is found)."""
    sentinel = Sentinel(
        where.sentinels,
        sentinel_kwargs={
            "socket_connect_timeout": SENTINEL_TIMEOUT,
            "socket_timeout": SENTINEL_TIMEOUT,
        },
    )
    client: redis.Redis = sentinel.master_for(
        where.master_name,
        connection_class=MasterFollowingConnection,
        db=where.db,
        username=where.username,
        password=where.password,
        **options,
    )
    return client


def check_reachable(url: str, timeout: float = 3.0) -> None:
    """Fail fast, naming the URL (never its password), when no Redis answers at ``url`` (on
    a Sentinel URL: when no sentinel names a master, or the master it names does not answer).

    Clients call this before anything else: the store's own retries ride out a Redis restart
    for a minute, which is right for workers and far too long for a person at a prompt.
    """
    options: dict[str, Any] = {
        "socket_connect_timeout": timeout,
        "socket_timeout": timeout,
        "retry": Retry(NoBackoff(), 0),  # one try: redis-py would retry a refused connection
    }
    try:
        if is_sentinel(url):
            client = sentinel_master(parse_sentinel_url(url), **options)
        else:
            client = redis.Redis.from_url(check_redis_url(url), **options)
        try:
            client.ping()
        finally:
            client.close()
            manager = getattr(client.connection_pool, "sentinel_manager", None)
            if manager is not None:
                manager.close()  # its connections to the sentinels
    except redis.RedisError as error:
        why = str(error).rstrip(".") or type(error).__name__
        raise StoreUnavailableError(f"cannot reach Redis at {safe_url(url)}: {why}") from None
