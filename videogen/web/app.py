"""The app and its routes: each one authorises, calls :class:`VideoGenerator`, shapes the
answer. Routes are plain functions (FastAPI runs them on its thread pool), since the Python
API they call is synchronous."""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, File, Form, Header, Request, UploadFile
from fastapi.responses import FileResponse
from pydantic import ValidationError
from sse_starlette import EventSourceResponse

from .. import __version__
from ..api import VideoGenerator
from ..config import Settings
from ..errors import (
    InvalidRequestError,
    NoVideoError,
    SceneValidationError,
    UnknownJobError,
    UnknownSceneError,
)
from ..models import is_url
from ..record import SceneRecord
from . import problems
from .auth import READ, WRITE, tokens_of
from .events import job_events
from .schemas import (
    Backends,
    ControlRequest,
    ControlResult,
    ErrorBody,
    JobCreated,
    JobList,
    JobSummary,
    SceneStatus,
    SceneStatuses,
    Statistics,
    SubmitRequest,
)

PREFIX = "/v1"
ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody} for status in (401, 403, 404, 409, 422, 503)
}
MAX_JOBS_LISTED = 100
MAX_UPLOAD_BYTES = 50 * 2**20
"""A first frame larger than this is refused (vendors take far smaller images)."""


def create_app(settings: Settings, generator: VideoGenerator | None = None) -> FastAPI:
    """The API for ``settings`` (its tokens; :class:`ConfigError` for a token without a
    value). ``generator``: the one to use (tests), else one on the settings' Redis."""
    app = FastAPI(
        title="videogen",
        version=__version__,
        description="Generate video scene by scene across many AI video backends.",
        openapi_url=f"{PREFIX}/openapi.json",
        docs_url=f"{PREFIX}/docs",
        redoc_url=None,
    )
    app.state.tokens = tokens_of(settings.video_generation.api)
    app.state.generator = generator or VideoGenerator(settings)
    problems.install(app)
    app.include_router(router, prefix=PREFIX, responses=ERRORS)
    return app


router = APIRouter()


def _generator(request: Request) -> VideoGenerator:
    generator: VideoGenerator = request.app.state.generator
    return generator


def _records(generator: VideoGenerator, job_id: str) -> list[SceneRecord]:
    records = generator.records(job_id)
    if not records and generator.store.job(job_id) is None:
        raise UnknownJobError(job_id)
    return records


# -- jobs ------------------------------------------------------------------------------------


@router.post("/jobs", status_code=201, dependencies=[WRITE])
def submit(request: Request, body: SubmitRequest) -> JobCreated:
    """Submit a job: every scene is checked first, and a bad one enqueues nothing."""
    refuse_server_paths(body.scenes, uploaded=set())
    return _submit(_generator(request), body)


@router.post("/jobs/upload", status_code=201, dependencies=[WRITE])
def submit_with_images(
    request: Request,
    job: Annotated[str, Form(description="The job as JSON (the body of POST /jobs).")],
    images: Annotated[list[UploadFile], File(description="First frames, by file name.")],
) -> JobCreated:
    """Submit a job whose scenes name uploaded first frames (``"image": "<file name>"``)."""
    try:
        body = SubmitRequest.model_validate(json.loads(job))
    except (ValueError, ValidationError) as error:
        raise InvalidRequestError(f"job: not a valid job: {error}") from None
    names = [upload_name(image.filename) for image in images]
    refuse_server_paths(body.scenes, uploaded=set(names))
    generator = _generator(request)
    folder = generator.settings.outputs / "uploads" / secrets.token_hex(8)
    folder.mkdir(parents=True, exist_ok=True)
    for name, image in zip(names, images, strict=True):
        data = image.file.read(MAX_UPLOAD_BYTES + 1)
        if len(data) > MAX_UPLOAD_BYTES:
            raise InvalidRequestError(f"images: {name} is over {MAX_UPLOAD_BYTES} bytes")
        (folder / name).write_bytes(data)
    scenes = [_uploaded(scene, folder, set(names)) for scene in body.scenes]
    return _submit(generator, body.model_copy(update={"scenes": scenes}))


def upload_name(filename: str | None) -> str:
    """An uploaded file's name without any folder part, or :class:`InvalidRequestError`:
    uploads are stored under that name in a fresh folder, so it must name a file there."""
    name = Path(filename or "").name
    if name in ("", ".", ".."):
        raise InvalidRequestError(f"images: {filename!r} is not a usable file name")
    return name


def refuse_server_paths(scenes: list[dict[str, Any]], uploaded: set[str]) -> None:
    """A scene's image must be a URL or an uploaded file: a client may not make the server
    read (and send to a vendor) a file of its own."""
    problems_found = [
        (f"scene {i + 1}", "image", f"{scene['image'][:60]!r} is neither a URL nor an upload")
        for i, scene in enumerate(scenes)
        if isinstance(scene, dict)
        and isinstance(scene.get("image"), str)
        and not is_url(scene["image"])
        and scene["image"] not in uploaded
    ]
    if problems_found:
        raise SceneValidationError(problems_found)


def _uploaded(scene: dict[str, Any], folder: Path, names: set[str]) -> dict[str, Any]:
    image = scene.get("image")
    return {**scene, "image": str(folder / image)} if image in names else scene


def _submit(generator: VideoGenerator, body: SubmitRequest) -> JobCreated:
    options = body.model_dump(exclude={"scenes", "priority", "cache"}, exclude_none=True)
    job_id = generator.submit(body.scenes, priority=body.priority, cache=body.cache, **options)
    return JobCreated(job_id=job_id, scenes=len(body.scenes))


@router.get("/jobs", dependencies=[READ])
def list_jobs(request: Request, limit: int = 20) -> JobList:
    """The latest jobs, newest first, each with its progress and expected completion."""
    generator = _generator(request)
    ids = generator.store.recent_jobs(max(1, min(limit, MAX_JOBS_LISTED)))
    return JobList(jobs=[JobSummary(**generator.job_forecast(job_id)) for job_id in ids])


@router.get("/jobs/{job_id}", dependencies=[READ])
def read_job(request: Request, job_id: str) -> JobSummary:
    """A job: counts by state, backlog, cost, expected completion, and each scene's place."""
    generator = _generator(request)
    _records(generator, job_id)
    return JobSummary(**generator.job_forecast(job_id))


@router.get("/jobs/{job_id}/scenes", dependencies=[READ])
def read_scenes(request: Request, job_id: str) -> SceneStatuses:
    """Every scene of a job: state, backend, tries with their reasons, result, cost."""
    generator = _generator(request)
    _records(generator, job_id)
    return SceneStatuses(scenes=[SceneStatus(**s) for s in generator.job_status(job_id)])


@router.get("/jobs/{job_id}/scenes/{scene_id}", dependencies=[READ])
def read_scene(request: Request, job_id: str, scene_id: str) -> SceneStatus:
    """One scene of a job, with its tries."""
    generator = _generator(request)
    record = _scene(generator, job_id, scene_id)
    return SceneStatus(**record.as_dict(), attempts=generator.store.attempts(record.id))


@router.get(
    "/jobs/{job_id}/scenes/{scene_id}/video",
    dependencies=[READ],
    response_class=FileResponse,
    responses={200: {"content": {"video/mp4": {}}}},
)
def read_video(request: Request, job_id: str, scene_id: str) -> FileResponse:
    """A succeeded scene's video (MP4)."""
    record = _scene(_generator(request), job_id, scene_id)
    path = (record.result or {}).get("video_path")
    if record.state.value != "succeeded" or not path:
        raise NoVideoError(f"scene {record.id} has no video: it is {record.state.value}")
    if not Path(path).is_file():
        raise NoVideoError(f"scene {record.id}: its video is gone from the output folder")
    return FileResponse(path, media_type="video/mp4", filename=f"{record.id}.mp4")


def _scene(generator: VideoGenerator, job_id: str, scene_id: str) -> SceneRecord:
    for record in _records(generator, job_id):
        if scene_id in (record.id, str(record.index)):
            return record
    raise UnknownSceneError(job_id, scene_id)


@router.post("/jobs/{job_id}/cancel", dependencies=[WRITE])
def cancel(request: Request, job_id: str, body: ControlRequest | None = None) -> ControlResult:
    """Cancel a job's live scenes (all, or those named); finished ones stay."""
    body = body or ControlRequest()
    result = _generator(request).cancel(job_id, body.scene_ids, reason=body.reason)
    return ControlResult(**result)


@router.post("/jobs/{job_id}/retry", dependencies=[WRITE])
def retry(request: Request, job_id: str, body: ControlRequest | None = None) -> ControlResult:
    """Send a job's failed or cancelled scenes (all, or those named) back to the backlog."""
    body = body or ControlRequest()
    return ControlResult(**_generator(request).retry(job_id, body.scene_ids))


@router.get(
    "/jobs/{job_id}/events",
    dependencies=[READ],
    response_class=EventSourceResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
def follow_job(
    request: Request, job_id: str, last_event_id: Annotated[str | None, Header()] = None
) -> EventSourceResponse:
    """Server-sent events: ``scene.succeeded``, ``scene.failed``, ``scene.cancelled`` as they
    happen, then ``job.finished`` (and the stream ends). Resumes from ``Last-Event-ID``."""
    generator = _generator(request)
    _records(generator, job_id)
    return EventSourceResponse(
        job_events(generator, job_id, last_event_id, request.is_disconnected)
    )


# -- the stack -------------------------------------------------------------------------------


@router.get("/backends", dependencies=[READ])
def backends(request: Request) -> Backends:
    """Each backend: health, circuit, in flight against its cap, learned job time, spend."""
    generator = _generator(request)
    status = generator.get_backend_status()
    stats = generator.get_statistics()
    spend = stats["spend"].get("backends", {})
    return Backends(
        backends={
            name: {
                **row,
                "learned_job_seconds": stats["backends"][name]["learned_job_seconds"],
                "spend": spend.get(name),
            }
            for name, row in status.items()
        }
    )


@router.get("/statistics", dependencies=[READ])
def statistics(request: Request) -> Statistics:
    """Success rates, latencies, errors, spend, cache and webhook counters."""
    return Statistics(**_generator(request).get_statistics())
