"""A scene as stored (pure): :class:`SceneRecord`, and its encoding as a Redis hash.

The store reads a scene's hash once per step into a record and hands it down; ``None`` means
unset (the hash has no such field). Writes name record fields only (:func:`encode`): a typo
is an error here, not a stray hash field.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from .models import GenerationRequest, Orphan, Scene, SceneState, Submitting, VendorJob


@dataclass(frozen=True)
class SceneRecord:
    """One scene of a job and where it is in the pipeline."""

    id: str
    job_id: str
    index: int
    spec: Scene
    state: SceneState
    created_at: float
    updated_at: float
    backend: str | None = None
    """The backend it is routed to (or last ran on)."""
    route_reason: str | None = None
    tried: tuple[str, ...] = ()
    """Backends it was sent to, in order (one that was only unavailable is forgotten)."""
    retries: int = 0
    """Transient retries on the current backend."""
    deliveries: int = 0
    """Generate tasks started on the current backend since the last retry (crash-loop guard)."""
    failures: int = 0
    """Failed tries, across backends and retries."""
    error: str | None = None
    queue: str | None = None
    """Its backlog class while it waits there (:class:`videogen.scheduler.ScClass`)."""
    rank: float | None = None
    """Its place in the backlog order (:func:`videogen.scheduler.rank`), kept for good: a
    scene that fails over goes back to the same place."""
    bound_at: float | None = None
    """When a dispatch step bound it to its backend: from then it holds a slot there (sent,
    then running), which is where a slot's learned job time starts."""
    started_at: float | None = None
    finished_at: float | None = None
    submitting: Submitting | None = None
    """The create request sent and not yet answered (backend, key, send time): a worker that
    dies here leaves an ambiguous submit, resolved by looking the job up where the backend
    can."""
    vendor_job: VendorJob | None = None
    request: GenerationRequest | None = None
    """What was sent to the vendor (the scene fitted to the backend), while it runs."""
    lease: str | None = None
    """The token of the worker holding its slot."""
    result: dict[str, Any] | None = None
    policy: str | None = None
    """Its job's scheduling options (:class:`videogen.scheduler.Policy`), when not the
    config's."""
    reserved: dict[str, Any] | None = None
    """The current try's reservation: ``usd`` (micro-dollars) on the ledgers ``keys``."""
    spent: int = 0
    """Micro-dollars settled for it so far (every billed try, on any backend)."""
    held: int = 0
    """Micro-dollars kept reserved for tries whose submit was ambiguous."""
    blocked: str | None = None
    """Why it waits although a backend is free: the budget that stops it."""
    resubmits: int = 0
    """Times a person sent it back after it ended (``videogen retry``): each round ends with
    its own events."""
    unknown_since: float | None = None
    """When its running vendor job stopped answering (unset once it answers again)."""
    cache_key: str | None = None
    """Its result-cache key (:func:`videogen.cache.cache_key`); unset: not cached."""
    follows: str | None = None
    """The scene of its job it is identical to and waits for (out of the backlog): it
    succeeds with that scene's video (:mod:`videogen.reuse`)."""

    @property
    def finished(self) -> bool:
        return self.state.terminal

    def guard(self) -> tuple[str, str]:
        """``(on, token)`` for :meth:`videogen.store.Store.apply`: a move from wherever the
        scene is now, refused if it moves meanwhile (bound: its backend; running: its
        lease, whose slot the move gives back)."""
        on = self.backend or "" if self.state in (SceneState.ROUTED, SceneState.RUNNING) else ""
        token = self.lease or "" if self.state is SceneState.RUNNING else ""
        return on, token

    def orphan(
        self,
        job: VendorJob,
        *,
        since: float,
        reason: str,
        usd: float | None = None,
        request: GenerationRequest | None = None,
        cancelled: bool = False,
    ) -> Orphan:
        """Its vendor job ``job``, left behind, with what the try settled on its ledgers
        (``usd``; ``None``: the reservation's amount)."""
        reserved = self.reserved or {}
        return Orphan(
            job=job,
            scene_id=self.id,
            since=since,
            usd=reserved.get("usd", 0) / 1e6 if usd is None else usd,
            base=reserved.get("base", 0) / 1e6,
            ledgers=list(reserved.get("keys", [])),
            request=request or self.request,
            reason=reason,
            cancelled=cancelled,
        )

    def on(self, backend: str) -> bool:
        """Still routed to, or running on, ``backend`` (a stale message finds it elsewhere)."""
        return self.backend == backend and self.state in (SceneState.ROUTED, SceneState.RUNNING)

    def as_dict(self) -> dict[str, Any]:
        """The record as JSON-able data (for the API, the CLI and people); unset fields are
        left out."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None:
                continue
            if isinstance(value, Scene | VendorJob | GenerationRequest | Submitting):
                value = value.model_dump(mode="json", exclude_none=True)
            out[f.name] = list(value) if isinstance(value, tuple) else value
        out["state"] = self.state.value
        out.pop("lease", None)
        reserved = out.pop("reserved", None)
        out["cost"] = {
            "reserved_usd": reserved["usd"] / 1e6 if reserved else 0.0,
            "spent_usd": out.pop("spent", 0) / 1e6,
            "held_usd": out.pop("held", 0) / 1e6,
        }
        return out


FIELDS: frozenset[str] = frozenset(f.name for f in fields(SceneRecord))
_INTS = ("index", "retries", "deliveries", "failures", "spent", "held", "resubmits")
_FLOATS = (
    "created_at", "updated_at", "bound_at", "started_at", "finished_at", "rank", "unknown_since"
)  # fmt: skip
_JSON = ("tried", "result", "reserved")


def decode(data: Mapping[str, str]) -> SceneRecord:
    """A record from a scene hash as Redis returns it (all strings)."""
    values: dict[str, Any] = {k: v for k, v in data.items() if k in FIELDS and v != ""}
    for key in _INTS:
        values[key] = int(values.get(key, 0))
    for key in _FLOATS:
        if key in values:
            values[key] = float(values[key])
    for key in _JSON:
        if key in values:
            values[key] = json.loads(values[key])
    values["tried"] = tuple(values.get("tried", ()))
    values["spec"] = Scene.model_validate_json(values["spec"])
    values["state"] = SceneState(values["state"])
    if "vendor_job" in values:
        values["vendor_job"] = VendorJob.model_validate_json(values["vendor_job"])
    if "request" in values:
        values["request"] = GenerationRequest.model_validate_json(values["request"])
    if "submitting" in values:
        values["submitting"] = Submitting.parse(values["submitting"])
    return SceneRecord(**values)


def encode(changes: Mapping[str, Any]) -> dict[str, str | int | float]:
    """Record-field changes as hash fields; ``None`` unsets a field (stored as ``""``, which
    :func:`decode` reads as unset, so that one ``HSET`` does every change)."""
    unknown = set(changes) - FIELDS
    if unknown:
        raise KeyError(f"not scene record fields: {', '.join(sorted(unknown))}")
    return {key: "" if value is None else _encode(value) for key, value in changes.items()}


def _encode(value: Any) -> str | int | float:
    if isinstance(value, SceneState):
        return value.value
    if isinstance(value, str | int | float):
        return value
    if isinstance(value, Scene | VendorJob | GenerationRequest | Submitting):
        return value.model_dump_json(exclude_none=True)
    return json.dumps(list(value) if isinstance(value, tuple) else value)


def new_record(
    scene_id: str,
    job_id: str,
    index: int,
    spec: Scene,
    now: float,
    *,
    queue: str | None = None,
    rank: float | None = None,
    policy: str | None = None,
) -> SceneRecord:
    """A scene as submitted: pending (in backlog class ``queue`` at ``rank``), never tried."""
    return SceneRecord(
        id=scene_id,
        job_id=job_id,
        index=index,
        spec=spec,
        state=SceneState.PENDING,
        created_at=now,
        updated_at=now,
        queue=queue,
        rank=rank,
        policy=policy,
    )


def initial_fields(record: SceneRecord) -> dict[str, str | int | float]:
    """The hash of a new record (defaults left out: absent means the default)."""
    values = {
        f.name: getattr(record, f.name)
        for f in fields(record)
        if getattr(record, f.name) != f.default
    }
    return encode(values)


def replace(record: SceneRecord, **changes: Any) -> SceneRecord:
    """``record`` with ``changes`` applied (what a step knows it just wrote)."""
    return dataclasses.replace(record, **changes)
