"""The app and its routes: each one authorises, calls :class:`VideoGenerator`, shapes the
answer. Routes are plain functions (FastAPI runs them on its thread pool), since the Python
API they call is synchronous."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, File, Form, Header, Request, UploadFile
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from pydantic import ValidationError
from sse_starlette import EventSourceResponse

from .. import __version__, posters
from ..api import VideoGenerator
from ..config import Settings
from ..errors import (
    InvalidRequestError,
    NoVideoError,
    UnknownJobError,
    UnknownSceneError,
)
from ..record import SceneRecord
from . import problems
from .auth import READ, WRITE, tokens_of
from .events import EventHub, job_events
from .history import Sampler
from .pages import HERE, LoginRequired, login_redirect, pages
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
from .uploads import MAX_UPLOAD_BYTES, refuse_server_paths, save_uploads, upload_name

PREFIX = "/v1"
ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody} for status in (401, 403, 404, 409, 422, 503)
}
MAX_JOBS_LISTED = 100


def create_app(
    settings: Settings, generator: VideoGenerator | None = None, *, dashboard: bool = True
) -> FastAPI:
    """The API for ``settings`` (its tokens; :class:`ConfigError` for a token without a
    value) and, unless ``dashboard=False``, the web dashboard beside it. ``generator``: the
    one to use (tests), else one on the settings' Redis."""
    generator = generator or VideoGenerator(settings)
    hub = EventHub(generator)
    sampler = Sampler(generator)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if dashboard:
            sampler.start()
        try:
            yield
        finally:
            sampler.stop()
            hub.stop()

    app = FastAPI(
        lifespan=lifespan,
        title="videogen",
        version=__version__,
        description="Generate video scene by scene across many AI video backends.",
        openapi_url=f"{PREFIX}/openapi.json",
        docs_url=f"{PREFIX}/docs",
        redoc_url=None,
    )
    app.state.tokens = tokens_of(settings.video_generation.api)
    app.state.generator = generator
    app.state.hub = hub
    problems.install(app)
    app.include_router(router, prefix=PREFIX, responses=ERRORS)
    if dashboard:
        app.add_exception_handler(LoginRequired, login_redirect)
        app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
        app.include_router(pages)
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
    files = {image.filename or "": image.file.read(MAX_UPLOAD_BYTES + 1) for image in images}
    names = {upload_name(name) for name in files}
    refuse_server_paths(body.scenes, uploaded=names)
    generator = _generator(request)
    folder, names = save_uploads(generator.settings.outputs, files)
    scenes = [_uploaded(scene, folder, names) for scene in body.scenes]
    return _submit(generator, body.model_copy(update={"scenes": scenes}))


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


@router.get(
    "/jobs/{job_id}/scenes/{scene_id}/poster",
    dependencies=[READ],
    response_class=FileResponse,
    responses={200: {"content": {"image/jpeg": {}}}},
)
def read_poster(request: Request, job_id: str, scene_id: str) -> FileResponse:
    """A succeeded scene's first frame (JPEG), for a player's poster."""
    video = read_video(request, job_id, scene_id)
    return FileResponse(posters.poster(Path(video.path)), media_type="image/jpeg")


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
    _records(_generator(request), job_id)
    hub: EventHub = request.app.state.hub
    return EventSourceResponse(job_events(hub, job_id, last_event_id, request.is_disconnected))


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
