"""Connections to Redis: a patient one for workers, a quick check for people at a prompt."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

import redis
from redis.backoff import ExponentialBackoff, NoBackoff
from redis.retry import Retry

from .errors import StoreUnavailableError

REDIS_RETRIES = 40
"""~70 s of reconnect attempts, capped at 2 s apart: longer than a Redis restart takes."""


def connect(url: str, *, patient: bool = True) -> redis.Redis:
    """A client whose every command rides out a Redis restart (about a minute of retries):
    the steps are idempotent, and giving up mid-step could lose a vendor job id.
    ``patient=False``: one quick try, for what must never hold up a stop."""
    retry = Retry(ExponentialBackoff(cap=2.0, base=0.05), REDIS_RETRIES if patient else 0)
    return redis.Redis.from_url(
        url,
        decode_responses=True,
        retry=retry,
        retry_on_error=[redis.ConnectionError, redis.TimeoutError],
        socket_connect_timeout=2,
        health_check_interval=10,
    )


def check_reachable(url: str, timeout: float = 3.0) -> None:
    """Fail fast, naming the URL (never its password), when no Redis answers at ``url``.

    Clients call this before anything else: the store's own retries ride out a Redis restart
    for a minute, which is right for workers and far too long for a person at a prompt.
    """
    client = redis.Redis.from_url(
        url, socket_connect_timeout=timeout, socket_timeout=timeout, retry=Retry(NoBackoff(), 0)
    )  # one try: redis-py would otherwise retry a refused connection for seconds
    try:
        client.ping()
    except redis.RedisError as error:
        why = str(error).rstrip(".") or type(error).__name__
        raise StoreUnavailableError(f"cannot reach Redis at {safe_url(url)}: {why}") from None
    finally:
        client.close()


def safe_url(url: str) -> str:
    """``url`` with any password replaced by ``***``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}{port}"))
