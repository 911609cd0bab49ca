"""Who may call the HTTP API: bearer tokens with a scope, and where it may listen.

The rules are plain functions (:func:`check_bind`, :func:`authorize`); :func:`require` turns
them into a FastAPI dependency. Tokens are compared with :func:`secrets.compare_digest`, each
one every time (no early exit that would tell a caller which token nearly matched).
"""

from __future__ import annotations

import ipaddress
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ..config import ApiSettings, TokenScope
from ..errors import APIAuthError, APIScopeError, ConfigError

COOKIE = "videogen_token"
"""The dashboard's login: the token in an HttpOnly, SameSite=Strict cookie, which the API
accepts as it accepts a bearer token (a browser's EventSource and video element send no
headers of their own)."""
MIN_TOKEN_LENGTH = 16
"""Shorter tokens are refused at start: a guessable token is no auth at all."""


@dataclass(frozen=True)
class Token:
    """A configured token, resolved: its holder's name, its value, its scope."""

    name: str
    value: str
    scope: TokenScope


def tokens_of(api: ApiSettings) -> list[Token]:
    """The configured tokens, or :class:`ConfigError` naming one that has no value (its
    variable unset) or too short a value. The message never contains a token."""
    found = []
    for entry in api.tokens:
        if entry.token is None:
            raise ConfigError(f"API token {entry.name!r}: ${entry.token_env} is not set")
        value = entry.token.get_secret_value()
        if len(value) < MIN_TOKEN_LENGTH:
            raise ConfigError(
                f"API token {entry.name!r} is shorter than {MIN_TOKEN_LENGTH} characters"
            )
        found.append(Token(entry.name, value, entry.scope))
    return found


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve anywhere


def check_bind(host: str, tokens: list[Token]) -> None:
    """Refuse to listen beyond loopback without tokens, as ``videogen flower`` refuses
    without basic auth."""
    if not tokens and not is_loopback(host):
        raise ConfigError(
            f"refusing to serve the API on {host} without auth: "
            "configure video_generation.api.tokens (token_env, scope)"
        )


def authorize(tokens: list[Token], presented: str | None, write: bool) -> Token | None:
    """The token ``presented`` matches, or an error: :class:`APIAuthError` (none, or no
    match), :class:`APIScopeError` (a read token for a write). With no tokens configured
    (loopback only, see :func:`check_bind`) everyone may do everything: returns ``None``."""
    if not tokens:
        return None
    if not presented:
        raise APIAuthError("an API token is required: send 'Authorization: Bearer <token>'")
    given = presented.encode()
    match = None
    for token in tokens:  # every one compared, in constant time each
        if secrets.compare_digest(token.value.encode(), given):
            match = token
    if match is None:
        raise APIAuthError("the API token is not valid")
    if write and match.scope is not TokenScope.FULL:
        raise APIScopeError(f"token {match.name!r} is read-only; this request needs a full token")
    return match


BEARER = HTTPBearer(auto_error=False, description="An API token from the config (read or full).")


def require(write: bool) -> Callable[..., Token | None]:
    """A FastAPI dependency: the caller's token, checked for ``write`` access."""

    def dependency(
        request: Request,
        credentials: HTTPAuthorizationCredentials | None = Depends(BEARER),  # noqa: B008
    ) -> Token | None:
        tokens: list[Token] = request.app.state.tokens
        presented = credentials.credentials if credentials else request.cookies.get(COOKIE)
        return authorize(tokens, presented, write)

    return dependency


READ = Depends(require(write=False))
WRITE = Depends(require(write=True))
