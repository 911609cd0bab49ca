"""The health step: probe backends on their cheap endpoints (the beat's, or on demand) and
store what they say, driving circuits; a backend that recovered may take waiting scenes.
"""

from __future__ import annotations

from typing import Any

from .context import Context

HEALTH_TTL_FACTOR = 3
"""Health records live this many beat intervals: one missed beat does not make a backend
unknown."""


def probe(ctx: Context, name: str) -> dict[str, Any]:
    """Probe one backend now and store the result with a TTL.

    A probe without a key says nothing about the backend (only about this host's config):
    its report is returned but never written into the shared health or circuit state."""
    backend = ctx.backend(name)
    report = backend.health_check().model_dump()
    report["checked_at"] = ctx.clock()
    if backend.requires_key and not backend.settings.has_key:
        return report
    ctx.store.set_health(name, report, ttl=ctx.vg.health_check_interval * HEALTH_TTL_FACTOR)
    if report["healthy"]:
        ctx.circuit_success(name)
    else:
        ctx.circuit_failure(name)
    return report


def probe_all(ctx: Context) -> dict[str, dict[str, Any]]:
    """Probe every enabled backend; one that recovered may take waiting scenes now."""
    reports = {name: probe(ctx, name) for name in ctx.enabled()}
    ctx.ask_dispatch()
    return reports
