"""Request and response models of the HTTP API: what its OpenAPI document shows.

Responses name the fields clients rely on and allow more (``extra="allow"``), so a field the
Python API adds later reaches clients without a change here.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

from ..config import Strategy
from ..models import Scene

SceneList = Annotated[
    list[dict[str, Any]],
    WithJsonSchema({"type": "array", "minItems": 1, "items": Scene.model_json_schema()}),
]
"""Scenes as JSON objects, checked by the same code as ``videogen submit`` (so an error names
the scene and the field as the CLI does); the document shows the scene's schema."""


class SubmitRequest(BaseModel):
    """A job: its scenes and its options (those of ``videogen submit``)."""

    model_config = ConfigDict(extra="forbid")

    scenes: SceneList
    """A scene's ``image`` is an http(s) or ``data:image/`` URL, or the file name of an image
    uploaded with the scenes (multipart); never a path on the server."""
    priority: int = 0
    """-100..100; higher goes first."""
    strategy: Strategy | None = None
    deadline: float | None = None
    """Seconds from now by which the job's scenes should be done."""
    max_cost_usd: float | None = None
    max_cost_per_second: float | None = None
    webhook: str | None = None
    """A URL that gets this job's events, signed with the config's per-job secret."""
    cache: bool = True
    """``false``: generate every scene anew."""


class JobCreated(BaseModel):
    job_id: str
    scenes: int
    """How many scenes were enqueued."""


class ErrorBody(BaseModel):
    """Every error: the class name and message the CLI shows."""

    error: str
    message: str
    problems: list[dict[str, str]] | None = None
    """For invalid scenes: ``scene``, ``field``, ``message`` of each problem."""


class Open(BaseModel):
    """A response with named fields and room for more."""

    model_config = ConfigDict(extra="allow")


class JobSummary(Open):
    job_id: str
    priority: int
    submitted_at: float | None
    states: dict[str, int]
    """How many scenes are in each state."""
    expected_completion: float | None
    backlog: int
    cost: dict[str, Any]
    scenes: list[dict[str, Any]]
    """Each scene's id, state, backend, error, place in the backlog, expected start and
    finish (Unix times)."""


class JobList(BaseModel):
    jobs: list[JobSummary]
    """The latest jobs, newest first."""


class SceneStatus(Open):
    id: str
    index: int
    state: str
    backend: str | None = None
    attempts: list[dict[str, Any]] = Field(default_factory=list)
    """Each try: backend, outcome and reason."""
    cost: dict[str, Any] = Field(default_factory=dict)


class SceneStatuses(BaseModel):
    scenes: list[SceneStatus]


class ControlRequest(BaseModel):
    """Which scenes to cancel or retry (by id or index; none: all of them)."""

    model_config = ConfigDict(extra="forbid")

    scene_ids: list[str] | None = None
    reason: str = ""
    """For a cancel: recorded on each cancelled scene."""


class ControlResult(Open):
    """What the cancel or retry did (as ``videogen cancel --json``)."""


class BackendStatus(Open):
    healthy: bool
    enabled: bool
    circuit: str
    current_tasks: int
    max_tasks: int
    learned_job_seconds: float | None = None
    spend: dict[str, Any] | None = None


class Backends(BaseModel):
    backends: dict[str, BackendStatus]


class Statistics(Open):
    healthy_backends: int
    total_active_tasks: int
    backlog: int
    backends: dict[str, dict[str, Any]]
    spend: dict[str, Any]
