"""What every pipeline step works with: the settings, the store, the dispatcher, a clock, and
the backends (built once per process), plus the circuit bookkeeping steps share.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from .backends import create_backend
from .backends.base import BaseVideoBackend
from .capabilities import Capabilities
from .config import Settings, VideoGenerationSettings
from .jobtimes import JobTimes
from .policy import Circuit, CircuitPolicy, RetryPolicy, on_failure
from .store import Store


class Dispatcher(Protocol):
    """How steps enqueue the next step (Celery in production, a recorder in step tests)."""

    def dispatch(self) -> None: ...

    def generate(self, backend: str, scene_id: str, countdown: float = 0.0) -> None: ...

    def sweep(self) -> None: ...


@dataclass
class Context:
    settings: Settings
    store: Store
    dispatch: Dispatcher
    clock: Callable[[], float] = time.time
    sleep: Callable[[float], None] = time.sleep
    """How a step lets time pass (step tests move their clock instead)."""
    _backends: dict[str, BaseVideoBackend] = field(default_factory=dict)
    _capabilities: dict[str, Capabilities] = field(default_factory=dict)

    # -- tuning, read from the config ------------------------------------------------------

    @property
    def vg(self) -> VideoGenerationSettings:
        return self.settings.video_generation

    @property
    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(max_retries=self.vg.max_retries, base_delay=self.vg.retry_base_delay)

    @property
    def circuit_policy(self) -> CircuitPolicy:
        return CircuitPolicy(self.vg.circuit_failure_threshold, self.vg.circuit_cooldown)

    # -- backends --------------------------------------------------------------------------

    def backend(self, name: str) -> BaseVideoBackend:
        if name not in self._backends:
            self._backends[name] = create_backend(name, self.settings.backend(name))
        return self._backends[name]

    def enabled(self) -> list[str]:
        return self.vg.enabled_backends()

    def capabilities(self) -> dict[str, Capabilities]:
        return {name: self.capabilities_of(name) for name in self.enabled()}

    def capabilities_of(self, name: str) -> Capabilities:
        """What backend ``name`` can take: worked out once, from the settings it was built
        with (every dispatch step reads every backend's)."""
        if name not in self._capabilities:
            self._capabilities[name] = self.backend(name).get_capabilities()
        return self._capabilities[name]

    def ask_dispatch(self) -> None:
        """Capacity was freed or added, or work arrived: make sure a dispatch step runs (one
        message, however many events ask before it starts)."""
        if self.store.ask_dispatch():
            self.dispatch.dispatch()

    def job_times(self) -> JobTimes:
        """Every backend's learned job times, seeded from its ``expected_seconds``."""
        return self.store.job_times(self.vg.backends, self.vg.expected_seconds())

    def close(self) -> None:
        for backend in self._backends.values():
            backend.close()

    # -- circuits --------------------------------------------------------------------------

    def circuit_failure(self, backend: str) -> Circuit:
        """Count a failure against the backend; returns its circuit as now stored."""
        circuit = on_failure(self.store.circuit(backend), self.clock(), self.circuit_policy)
        self.store.set_circuit(backend, circuit)
        return circuit

    def circuit_success(self, backend: str) -> None:
        self.store.close_circuit(backend)
