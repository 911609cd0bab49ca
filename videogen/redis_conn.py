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
from redis.sentinel import Sentinel

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
