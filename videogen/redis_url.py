"""Redis URLs (pure): which forms videogen takes, the Sentinel form parsed, passwords masked.

A plain Redis is ``redis://``, ``rediss://`` (TLS) or ``unix://`` (redis-py's own forms). A
Sentinel-managed master with replicas (many machines) is one URL naming every sentinel::

    redis+sentinel://[[USER]:PASSWORD@]HOST[:PORT][,HOST[:PORT]...]/MASTER_NAME[/DB]

e.g. ``redis+sentinel://:s3cret@10.0.0.1:26379,10.0.0.2:26379,10.0.0.3:26379/videogen/0``.
``PORT`` defaults to 26379 (Sentinel's), ``DB`` to 0; ``MASTER_NAME`` is the name the
sentinels ``monitor``. The user and password are the Redis master's (and its replicas',
which take over its role); the sentinels themselves are asked without them. Characters
special in a URL (``@ : / , %``) are percent-encoded in the password.

One URL serves the three users of Redis (the store, the Celery broker, the result backend),
each mapped to its client's own form by :mod:`videogen.redis_conn` and :mod:`videogen.queue`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote, unquote

from .errors import ConfigError

SENTINEL_SCHEME = "redis+sentinel"
SENTINEL_FORM = (
    f"{SENTINEL_SCHEME}://[[user]:password@]host[:port][,host[:port]...]/master_name[/db]"
)
PLAIN_SCHEMES = ("redis", "rediss", "unix")
SENTINEL_PORT = 26379
"""Sentinel's standard port, used for a host named without one."""
MASTER_NAME = re.compile(r"^[A-Za-z0-9._-]+$")
"""The characters a master name may have here: Sentinel allows more, but nothing that needs
quoting in a URL path, which these names never do in practice."""
PASSWORD_OPTION = re.compile(r"([?&]password=)[^&#]*")
HOST = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+)$")


@dataclass(frozen=True)
class SentinelURL:
    """A parsed ``redis+sentinel://`` URL."""

    sentinels: tuple[tuple[str, int], ...]
    """``(host, port)`` of every sentinel, in the URL's order (IPv6 hosts without brackets)."""
    master_name: str
    db: int = 0
    username: str | None = None
    password: str | None = None

    def kombu_urls(self) -> str:
        """The form kombu's Sentinel transport and Celery's Sentinel result backend read: one
        ``sentinel://`` URL per sentinel, joined by ``;``, each with the master's credentials
        and db (kombu reads them from the first, Celery's backend from the first too)."""
        auth = ""
        if self.password is not None:
            auth = f"{quote(self.username or '', safe='')}:{quote(self.password, safe='')}@"
        return ";".join(
            f"sentinel://{auth}{_bracketed(host)}:{port}/{self.db}" for host, port in self.sentinels
        )


def is_sentinel(url: str) -> bool:
    return url.startswith(f"{SENTINEL_SCHEME}://")


def parse_sentinel_url(url: str) -> SentinelURL:
    """Parse a ``redis+sentinel://`` URL, or raise :class:`ConfigError` saying what is wrong
    with it (the URL shown with its password masked, never in clear)."""
    if not is_sentinel(url):
        raise _bad(url, f"it must start with {SENTINEL_SCHEME}://")
    # Up to the last @: hosts and master names never hold one, a password may hold anything.
    userinfo, at, rest = url[len(SENTINEL_SCHEME) + 3 :].rpartition("@")
    if "?" in rest or "#" in rest:
        raise _bad(url, "query options and fragments are not supported")
    hosts, _, path = rest.partition("/")
    username, password = _credentials(url, userinfo) if at else (None, None)
    sentinels = tuple(_sentinel(url, item) for item in hosts.split(","))
    master_name, db = _path(url, path)
    return SentinelURL(sentinels, master_name, db, username, password)


def check_redis_url(url: str) -> str:
    """``url`` if videogen can use it, else :class:`ConfigError` naming what is wrong."""
    scheme, sep, _ = url.partition("://")
    if is_sentinel(url):
        parse_sentinel_url(url)
    elif not sep or scheme not in PLAIN_SCHEMES:
        forms = ", ".join(f"{s}://" for s in (*PLAIN_SCHEMES, SENTINEL_SCHEME))
        raise ConfigError(f"Redis URL {safe_url(url)!r} must start with one of {forms}")
    return url


def safe_url(url: str) -> str:
    """``url`` with any password replaced by ``***``: the one in ``user:password@`` (up to
    the last ``@``, so a password with unencoded ``@ / ;`` is masked whole too; all of a
    ``something@`` without a colon), and a ``password=`` query option."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    userinfo, at, tail = rest.rpartition("@")
    if at:  # no colon: a user name, or a password whose colon was forgotten; mask it whole
        rest = f"{userinfo.partition(':')[0]}:***@{tail}" if ":" in userinfo else f"***@{tail}"
    return f"{scheme}://" + PASSWORD_OPTION.sub(r"\1***", rest)


def _credentials(url: str, userinfo: str) -> tuple[str | None, str | None]:
    user, colon, password = userinfo.partition(":")
    if not colon:
        raise _bad(url, "credentials go as [user]:password@ (a password is required)")
    if not password:
        raise _bad(url, "the password before @ is empty")
    return unquote(user) or None, unquote(password)


def _sentinel(url: str, item: str) -> tuple[str, int]:
    if not item:
        raise _bad(url, "a sentinel host is missing (an empty entry between commas?)")
    host, port_text = item, ""
    if item.startswith("["):  # [IPv6]:port
        end = item.find("]")
        host, port_text = item[: end + 1], item[end + 1 :].removeprefix(":")
        if end < 0 or (item[end + 1 :] and not item[end + 1 :].startswith(":")):
            raise _bad(url, f"sentinel {item!r} is not [ipv6]:port")
    elif ":" in item:
        host, _, port_text = item.partition(":")
    if not HOST.match(host):
        raise _bad(url, f"sentinel host {host!r} is not a host name or address")
    return host.strip("[]"), _port(url, item, port_text)


def _port(url: str, item: str, text: str) -> int:
    if not text:
        return SENTINEL_PORT
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise _bad(url, f"sentinel {item!r} has no valid port (1-65535)")
    return int(text)


def _path(url: str, path: str) -> tuple[str, int]:
    name, _, db_text = path.partition("/")
    if not name:
        raise _bad(url, "the master name is missing after the sentinel hosts")
    if not MASTER_NAME.match(name):
        raise _bad(url, f"master name {name!r} may have only letters, digits and . _ -")
    db_text = db_text.removesuffix("/")
    if not db_text:
        return name, 0
    if not db_text.isdigit():
        raise _bad(url, f"the database {db_text!r} after the master name must be a number")
    return name, int(db_text)


def _bracketed(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _bad(url: str, why: str) -> ConfigError:
    return ConfigError(f"Redis Sentinel URL {safe_url(url)!r}: {why} (form: {SENTINEL_FORM})")
