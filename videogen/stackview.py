"""What a running stack uses, published in Redis, so every client sees the stack and not its
own config.

Workers publish when they are ready and withdraw when they stop cleanly. The router publishes
the routing view (strategy, and per backend: enabled, priority, cap, capabilities); each backend
worker publishes its own backend's effective endpoint and whether it has a key (never the key).
Clients (the CLI, the Python API) read capabilities and status from here; :func:`differences`
names what a client's own config says otherwise, so it can say so in one line.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

from pydantic import BaseModel, ValidationError

from .capabilities import Capabilities
from .config import Settings
from .errors import VideoGenError

ROUTER_ROLE = "router"
BACKEND_ROLE = "backend:"


class PublishedBackend(BaseModel):
    """One backend as the running stack uses it."""

    enabled: bool
    priority: int
    max_concurrent_tasks: int
    base_url: str
    has_key: bool
    capabilities: Capabilities | None = None
    capability_error: str | None = None
    """Why no capabilities could be read (a workflow that cannot be loaded, say)."""


class PublishedWorker(BaseModel):
    """What one backend worker publishes about its backend."""

    backend: str
    base_url: str
    has_key: bool
    node: str
    published_at: float


class PublishedStack(BaseModel):
    """What the router publishes: the routing view of the whole stack."""

    config: str
    strategy: str
    fallback_enabled: bool
    backends: dict[str, PublishedBackend]
    node: str
    published_at: float

    def capabilities(self) -> dict[str, Capabilities]:
        """Capabilities of the enabled backends that have any (what submit checks against)."""
        return {
            name: b.capabilities
            for name, b in self.backends.items()
            if b.enabled and b.capabilities is not None
        }


def backend_entry(
    settings: Settings, name: str, caps: Capabilities | None, caps_error: str | None = None
) -> PublishedBackend:
    cfg = settings.backend(name)
    return PublishedBackend(
        enabled=cfg.enabled,
        priority=cfg.priority,
        max_concurrent_tasks=cfg.max_concurrent_tasks,
        base_url=settings.base_url(name),
        has_key=cfg.has_key,
        capabilities=caps,
        capability_error=caps_error,
    )


class Publisher(Protocol):
    def publish(self, role: str, view: str) -> None: ...


def publish(
    store: Publisher,
    settings: Settings,
    role: str,
    node: str,
    capabilities_of: Callable[[str], Capabilities],
) -> None:
    """Publish what this worker uses: the router its routing view, a backend worker each of
    its backends' endpoint and key presence. ``role`` is ``router``, a backend name or a
    worker group."""
    now = time.time()
    if role != ROUTER_ROLE:
        for name in settings.video_generation.worker_members(role):
            worker = PublishedWorker(
                backend=name,
                base_url=settings.base_url(name),
                has_key=settings.backend(name).has_key,
                node=node,
                published_at=now,
            )
            store.publish(BACKEND_ROLE + name, worker.model_dump_json())
        return
    backends = {}
    for name in settings.video_generation.backends:
        try:
            backends[name] = backend_entry(settings, name, capabilities_of(name))
        except VideoGenError as error:
            backends[name] = backend_entry(settings, name, None, str(error))
    stack = PublishedStack(
        config=settings.source,
        strategy=settings.video_generation.effective_strategy.value,
        fallback_enabled=settings.video_generation.fallback_enabled,
        backends=backends,
        node=node,
        published_at=now,
    )
    store.publish(ROUTER_ROLE, stack.model_dump_json())


def role_keys(settings: Settings, role: str) -> list[str]:
    """The fields a worker of ``role`` publishes under (one per backend it serves)."""
    if role == ROUTER_ROLE:
        return [ROUTER_ROLE]
    return [BACKEND_ROLE + name for name in settings.video_generation.worker_members(role)]


def merge(records: dict[str, str]) -> PublishedStack | None:
    """The stack's view from the raw published records; ``None`` when no router published.

    Each backend worker's own endpoint and key presence win over the router's: the worker is
    what runs the vendor jobs.
    """
    try:
        stack = PublishedStack.model_validate_json(records[ROUTER_ROLE])
    except (KeyError, ValidationError):
        return None
    for role, raw in records.items():
        if not role.startswith(BACKEND_ROLE):
            continue
        try:
            worker = PublishedWorker.model_validate_json(raw)
        except ValidationError:
            continue
        if worker.backend in stack.backends:
            entry = stack.backends[worker.backend]
            stack.backends[worker.backend] = entry.model_copy(
                update={"base_url": worker.base_url, "has_key": worker.has_key}
            )
    return stack


def differences(settings: Settings, stack: PublishedStack) -> list[str]:
    """What the client's config says otherwise than the running stack, as short phrases.

    Endpoints and keys are left out on purpose: ``videogen up`` points keyless backends at
    sandboxes, and clients never call vendors themselves.
    """
    vg = settings.video_generation
    found = []
    if vg.effective_strategy.value != stack.strategy:
        found.append(f"strategy {vg.effective_strategy.value} (stack: {stack.strategy})")
    if vg.fallback_enabled != stack.fallback_enabled:
        found.append(f"fallback_enabled {vg.fallback_enabled} (stack: {stack.fallback_enabled})")
    mine = set(vg.enabled_backends())
    theirs = {name for name, b in stack.backends.items() if b.enabled}
    if mine != theirs:
        found.append(f"enabled {sorted(mine)} (stack: {sorted(theirs)})")
    for name in sorted(mine & theirs):
        found.extend(_backend_differences(name, settings, stack.backends[name]))
    return found


def _backend_differences(name: str, settings: Settings, theirs: PublishedBackend) -> list[str]:
    cfg = settings.backend(name)
    found = []
    if cfg.priority != theirs.priority:
        found.append(f"{name} priority {cfg.priority} (stack: {theirs.priority})")
    if cfg.max_concurrent_tasks != theirs.max_concurrent_tasks:
        found.append(
            f"{name} max_concurrent_tasks {cfg.max_concurrent_tasks} "
            f"(stack: {theirs.max_concurrent_tasks})"
        )
    return found
