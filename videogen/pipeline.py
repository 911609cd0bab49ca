"""The pipeline's steps behind one object: submit, dispatch, generate, probe, sweep.

Celery tasks (``workers/app.py``) are thin shells around these: load by id, call one step, and
let the step enqueue the next one through a :class:`~videogen.context.Dispatcher`. Each step
lives in its own module:

- :mod:`videogen.routing`: submit a job into the backlog; dispatch waiting scenes to free
  slots;
- :mod:`videogen.generation` (and :mod:`videogen.failures`): run a scene on its backend;
- :mod:`videogen.probes`: health probes;
- :mod:`videogen.recovery`: the sweep for lost workers, messages and backlog entries.

The steps read and write state only through :class:`~videogen.store.Store`, call vendors only
through backends, and decide only through pure policies (:mod:`videogen.router`,
:mod:`videogen.policy`, :mod:`videogen.states`).
"""

from __future__ import annotations

from typing import Any

from . import generation, probes, recovery, routing
from .capabilities import Capabilities
from .config import JobOptions
from .context import Context, Dispatcher
from .models import Scene

__all__ = ["Dispatcher", "Pipeline"]


class Pipeline(Context):
    """Every step, over one settings, store, dispatcher and clock."""

    def submit(
        self,
        scenes: list[Scene],
        capabilities: dict[str, Capabilities] | None = None,
        priority: int = 0,
        options: JobOptions | None = None,
    ) -> str:
        return routing.submit(self, scenes, capabilities, priority, options)

    def dispatch_waiting(self) -> list[tuple[str, str]]:
        return routing.dispatch(self)

    def generate(self, backend: str, scene_id: str) -> None:
        generation.generate(self, backend, scene_id)

    def probe(self, name: str) -> dict[str, Any]:
        return probes.probe(self, name)

    def probe_all(self) -> dict[str, dict[str, Any]]:
        return probes.probe_all(self)

    def sweep(self) -> dict[str, int]:
        return recovery.sweep(self)
