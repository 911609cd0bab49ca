"""Checks of a backend's own config options (pure): one wording for every backend's refusal
of a model, resolution or duration it does not offer."""

from __future__ import annotations

from collections.abc import Collection
from typing import TypeVar

T = TypeVar("T")


def one_of(what: str, value: str | None, allowed: Collection[str]) -> str | None:
    """``value`` (``None`` passes: the option is off), or ``ValueError`` naming the choices."""
    if value is not None and value not in allowed:
        raise ValueError(f"{what} {value!r} is not one of {', '.join(allowed)}")
    return value


def all_among(what: str, values: tuple[T, ...], allowed: Collection[T]) -> tuple[T, ...]:
    """``values`` if there is one and each is allowed, or ``ValueError`` naming the choices."""
    if not values or any(v not in allowed for v in values):
        choices = ", ".join(f"{a:g}" if isinstance(a, float) else str(a) for a in allowed)
        raise ValueError(f"{what} must be among {choices}")
    return values
