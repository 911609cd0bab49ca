"""ComfyUI sandbox standing in for a local Stable Video Diffusion server (vendor-apis.md D.1).

Every route also answers under ``/api``. No auth. Inputs are uploaded with ``POST /upload/image``, a
workflow is queued with ``POST /prompt`` (validated like ComfyUI does, see
:mod:`videogen.sandbox.comfy_graph`), progress is read from ``/queue`` and ``/history/{prompt_id}``
(``{}`` until the prompt finished), and files are fetched from ``/view``. Like ComfyUI, it runs one
prompt at a time by default; the others wait in ``queue_pending``.
"""

from __future__ import annotations

import posixpath
import re
import uuid
from typing import Any

from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from videogen.sandbox import comfy_graph
from videogen.sandbox.http import (
    Call,
    Handler,
    OpChooser,
    Vendor,
    control_routes,
    create_delay,
    empty,
    json_error,
    vendor_route,
    video_response,
)
from videogen.sandbox.mp4 import make_test_pattern_webp, scaled_size
from videogen.sandbox.state import Job, JobSpec, Knobs, Phase, SandboxState

DEFAULT_KNOBS = Knobs(concurrency_limit=1)
"""ComfyUI executes one prompt at a time."""
_IMAGE_MAGIC = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff")
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
# A prompt waiting for the single slot, or just given it and not yet picked up by the executor.
_PENDING = (Phase.WAITING, Phase.QUEUED)
_DEFAULT_FAILURE = "CUDA error: an illegal memory access was encountered"
_SYSTEM = {
    "os": "linux",
    "ram_total": 135_000_000_000,
    "ram_free": 120_000_000_000,
    "comfyui_version": "0.3.60-sandbox",
    "required_frontend_version": "1.26.0",
    "python_version": "3.11.9 (sandbox)",
    "pytorch_version": "2.8.0+cu128",
    "embedded_python": False,
    "argv": ["main.py", "--listen", "127.0.0.1"],
}
_DEVICE = {
    "name": "cuda:0 NVIDIA H100 80GB HBM3 : cudaMallocAsync",
    "type": "cuda",
    "index": 0,
    "vram_total": 85_000_000_000,
    "vram_free": 80_000_000_000,
    "torch_vram_total": 0,
    "torch_vram_free": 0,
}


def _refusal(status: int, kind: str, message: str, details: str = "") -> Response:
    """ComfyUI's error answer: ``{"error": {...}, "node_errors": {}}``."""
    return json_error(
        status, {"error": comfy_graph.error(kind, message, details), "node_errors": {}}
    )


def _error(status: int, message: str) -> Response:
    return _refusal(status, "sandbox_error", message)


VENDOR = Vendor(name="svd", error=_error)


def _is_image(data: bytes) -> bool:
    webp = data[:4] == b"RIFF" and data[8:12] == b"WEBP"
    return webp or any(data.startswith(magic) for magic in _IMAGE_MAGIC)


def _escapes(path: str) -> bool:
    """Whether a client-supplied relative path would leave its folder."""
    return path.startswith(("/", "\\")) or ".." in path.replace("\\", "/").split("/")


def _millis(call: Call, clock_time: float) -> int:
    return int(call.state.wall_time(clock_time).timestamp() * 1000)


# -- upload ----------------------------------------------------------------------------------------
def _free_name(state: SandboxState, folder: str, name: str, overwrite: bool) -> str:
    """ComfyUI's naming: ``frame.png``, then ``frame (1).png``... unless overwriting."""
    stem, ext = posixpath.splitext(name)
    candidate, index = name, 1
    while not overwrite and state.input_bytes(posixpath.join(folder, candidate)) is not None:
        candidate, index = f"{stem} ({index}){ext}", index + 1
    return candidate


async def _upload(call: Call) -> Response:
    form = await call.request.form()
    image, subfolder = form.get("image"), str(form.get("subfolder") or "")
    kind = str(form.get("type") or "input")
    if (
        not isinstance(image, UploadFile)
        or not image.filename
        or kind not in ("input", "temp", "output")
    ):
        return _error(400, "Expected a multipart 'image' file and type input|temp|output.")
    data = await image.read()
    call.record_body = {
        "image": {"filename": image.filename, "size": len(data)},
        "type": kind,
        "subfolder": subfolder,
    }
    if _escapes(subfolder) or not _is_image(data):
        return _error(400, "Invalid image file (expected PNG, JPEG or WEBP) or subfolder.")
    overwrite = str(form.get("overwrite") or "").lower() in ("true", "1")
    name = _free_name(call.state, subfolder, posixpath.basename(image.filename), overwrite)
    call.state.store_input(posixpath.join(subfolder, name), data)
    return JSONResponse({"name": name, "subfolder": subfolder, "type": kind})


# -- queueing a prompt -----------------------------------------------------------------------------
def _output_file(info: comfy_graph.GraphInfo, counter: int) -> dict[str, str] | None:
    """Where the video lands, named the way each save node names it."""
    if info.output_class is None:
        return None
    subfolder, prefix = posixpath.split(info.filename_prefix)
    if info.output_class == "VHS_VideoCombine":
        filename = f"{prefix}_{counter:05}.mp4"
    else:
        ext = "webp" if info.output_class == "SaveAnimatedWEBP" else "mp4"
        filename = f"{prefix}_{counter:05}_.{ext}"
    return {"filename": filename, "subfolder": subfolder, "type": "output"}


def _job_spec(call: Call, graph: dict[str, Any], info: comfy_graph.GraphInfo) -> JobSpec:
    body = call.body
    number = call.state.next_number()
    extra_data = body.get("extra_data")
    extra = {
        **(extra_data if isinstance(extra_data, dict) else {}),
        "client_id": body.get("client_id"),
    }
    vendor = {
        "number": number,
        "graph": graph,
        "extra_data": extra,
        "info": info,
        "file": _output_file(info, number),
    }
    params = {
        "seed": info.seed,
        "checkpoint": info.checkpoint,
        "frames": info.frames,
        "fps": info.fps,
        "width": info.width,
        "height": info.height,
        "output_node": info.output_class,
    }
    return JobSpec(
        "comfyui/prompt",
        info.prompt,
        params,
        info.duration_s,
        info.width,
        info.height,
        vendor=vendor,
    )


def _prompt_id_problem(call: Call) -> Response | None:
    prompt_id = call.body.get("prompt_id")
    if prompt_id is None:
        return None
    if not isinstance(prompt_id, str) or not _UUID.match(prompt_id):
        message = "prompt_id must be a canonical lowercase UUID"
        return _refusal(400, "invalid_prompt_id", message, str(prompt_id))
    if call.state.get_job(prompt_id, include_deleted=True) is not None:
        return json_error(409, {"error": "prompt_id already exists"})
    return None


async def _post_prompt(call: Call) -> Response:
    if not isinstance(call.body, dict) or "prompt" not in call.body:
        return _refusal(400, "no_prompt", "No prompt provided", "No prompt provided")
    refused = _prompt_id_problem(call)
    if refused is not None:
        return refused
    graph = call.body["prompt"]
    problem = comfy_graph.validate(graph, lambda name: call.state.input_bytes(name) is not None)
    if problem is not None:
        return json_error(400, problem)
    spec = _job_spec(call, graph, comfy_graph.describe(graph))
    try:
        job = call.state.create_job(spec, job_id=call.body.get("prompt_id") or str(uuid.uuid4()))
    except ValueError:
        return json_error(409, {"error": "prompt_id already exists"})
    await create_delay(call.state)
    return JSONResponse({"prompt_id": job.id, "number": job.vendor["number"], "node_errors": {}})


# -- queue and history -----------------------------------------------------------------------------
def _queue_item(job: Job) -> list[Any]:
    vendor = job.vendor
    return [vendor["number"], job.id, vendor["graph"], vendor["extra_data"], vendor["info"].outputs]


def _queue_lists(state: SandboxState) -> tuple[list[Any], list[Any]]:
    with state.locked() as now:
        active = [(job, job.phase(now)) for job in state.jobs(now) if job.finished_at is None]
    running = [_queue_item(job) for job, phase in active if phase is Phase.RUNNING]
    pending = [_queue_item(job) for job, phase in active if phase in _PENDING]
    return running, pending


async def _get_queue(call: Call) -> Response:
    running, pending = _queue_lists(call.state)
    return JSONResponse({"queue_running": running, "queue_pending": pending})


async def _get_prompt(call: Call) -> Response:
    running, pending = _queue_lists(call.state)
    return JSONResponse({"exec_info": {"queue_remaining": len(running) + len(pending)}})


def _failure_text(job: Job) -> str:
    if job.failure_message:
        return job.failure_message
    return f"{job.failure_code}: generation failed" if job.failure_code else _DEFAULT_FAILURE


def _end_message(call: Call, job: Job) -> list[Any]:
    """The history's last status message: success, error (at the sampler) or interrupted."""
    timestamp = _millis(call, job.finished_at or 0.0)
    if job.end_phase is Phase.SUCCEEDED:
        return ["execution_success", {"prompt_id": job.id, "timestamp": timestamp}]
    graph = job.vendor["graph"]
    node_id = next((n for n, node in graph.items() if node["class_type"] == "KSampler"), None)
    where = {"node_id": node_id, "node_type": graph[node_id]["class_type"] if node_id else None}
    base: dict[str, Any] = {"prompt_id": job.id, **where, "executed": [], "timestamp": timestamp}
    if job.end_phase is Phase.CANCELLED:
        return ["execution_interrupted", base]
    error = {"exception_message": _failure_text(job), "exception_type": "RuntimeError"}
    extra: dict[str, Any] = {"traceback": [], "current_inputs": {}, "current_outputs": []}
    return ["execution_error", {**base, **error, **extra}]


def _outputs(job: Job) -> dict[str, Any]:
    info: comfy_graph.GraphInfo = job.vendor["info"]
    file = job.vendor["file"]
    if job.end_phase is not Phase.SUCCEEDED or file is None or info.output_id is None:
        return {}
    if info.output_class == "VHS_VideoCombine":
        workflow = file["filename"].replace(".mp4", ".png")
        entry = {**file, "format": "video/h264-mp4", "frame_rate": info.fps, "workflow": workflow}
        return {info.output_id: {"gifs": [entry]}}
    return {info.output_id: {"images": [file], "animated": [True]}}


def _history_entry(call: Call, job: Job) -> dict[str, Any]:
    succeeded = job.end_phase is Phase.SUCCEEDED
    started = {"prompt_id": job.id, "timestamp": _millis(call, job.started_at or 0.0)}
    status = {
        "status_str": "success" if succeeded else "error",
        "completed": succeeded,
        "messages": [["execution_start", started], _end_message(call, job)],
    }
    outputs = _outputs(job)
    meta = {
        node: {"node_id": node, "display_node": node, "parent_node": None, "real_node_id": node}
        for node in outputs
    }
    return {"prompt": _queue_item(job), "outputs": outputs, "status": status, "meta": meta}


def _finished(state: SandboxState) -> list[Job]:
    return [job for job in state.jobs() if job.finished_at is not None and not job.deleted]


async def _get_history_one(call: Call) -> Response:
    job = call.state.get_job(call.param("prompt_id"))
    if job is None or job.finished_at is None:
        return JSONResponse({})
    return JSONResponse({job.id: _history_entry(call, job)})


async def _get_history(call: Call) -> Response:
    jobs = _finished(call.state)
    max_items = call.request.query_params.get("max_items")
    if max_items and max_items.isdigit():
        jobs = jobs[-int(max_items) :]
    return JSONResponse({job.id: _history_entry(call, job) for job in jobs})


# -- cancelling ------------------------------------------------------------------------------------
async def _post_queue(call: Call) -> Response:
    """``{"clear": true}`` or ``{"delete": [ids]}``: drops *pending* prompts only, like ComfyUI."""
    body = call.body if isinstance(call.body, dict) else {}
    with call.state.locked() as now:
        pending = [job.id for job in call.state.jobs(now) if job.phase(now) in _PENDING]
        doomed = (
            pending if body.get("clear") else [i for i in body.get("delete") or [] if i in pending]
        )
        for prompt_id in doomed:
            call.state.delete_job(prompt_id)
    return empty(200)


async def _interrupt(call: Call) -> Response:
    """Interrupts the running prompt (only the named one, when a ``prompt_id`` is given)."""
    wanted = call.body.get("prompt_id") if isinstance(call.body, dict) else None
    with call.state.locked() as now:
        running = [job for job in call.state.jobs(now) if job.phase(now) is Phase.RUNNING]
        for job in running:
            if wanted is None or job.id == wanted:
                call.state.cancel_job(job.id)
    return empty(200)


# -- files and health ------------------------------------------------------------------------------
def _output_job(state: SandboxState, filename: str, subfolder: str) -> Job | None:
    for job in _finished(state):
        file = job.vendor["file"]
        if (
            job.end_phase is Phase.SUCCEEDED
            and file
            and (file["filename"], file["subfolder"]) == (filename, subfolder)
        ):
            return job
    return None


def _webp(state: SandboxState, job: Job) -> bytes:
    width, height = (
        (job.width, job.height)
        if state.knobs.full_size_video
        else scaled_size(job.width, job.height)
    )
    return make_test_pattern_webp(job.duration_s, width, height, state.knobs.video_fps)


async def _view(call: Call) -> Response:
    query = call.request.query_params
    filename, subfolder = query.get("filename", ""), query.get("subfolder", "")
    if not filename or filename.startswith("/") or ".." in filename:
        return Response(status_code=400)
    if _escapes(subfolder):
        return Response(status_code=403)
    if query.get("type", "output") == "input":
        data = call.state.input_bytes(posixpath.join(subfolder, filename))
        return Response(status_code=404) if data is None else Response(data, media_type="image/png")
    job = _output_job(call.state, filename, subfolder)
    if job is None:
        return Response(status_code=404)
    if filename.endswith(".webp"):
        return await video_response(
            call.state, job, lambda: _webp(call.state, job), media_type="image/webp"
        )
    return await video_response(call.state, job)


async def _system_stats(call: Call) -> Response:
    return JSONResponse({"system": _SYSTEM, "devices": [_DEVICE]})


async def _checkpoints(call: Call) -> Response:
    return JSONResponse(list(comfy_graph.CHECKPOINTS))


_ROUTES: list[tuple[str, Handler, str, OpChooser]] = [
    ("/upload/image", _upload, "POST", "upload"),
    ("/prompt", _post_prompt, "POST", "create"),
    ("/prompt", _get_prompt, "GET", "poll"),
    ("/queue", _get_queue, "GET", "poll"),
    ("/queue", _post_queue, "POST", "cancel"),
    ("/interrupt", _interrupt, "POST", "cancel"),
    ("/history", _get_history, "GET", "poll"),
    ("/history/{prompt_id}", _get_history_one, "GET", "poll"),
    ("/view", _view, "GET", "download"),
    ("/system_stats", _system_stats, "GET", "health"),
    ("/models/checkpoints", _checkpoints, "GET", "health"),
]


def create_app(state: SandboxState) -> Starlette:
    """The ComfyUI sandbox; its base URL is the server root; every route is also under ``/api``."""
    routes: list[Route] = []
    for prefix in ("", "/api"):
        for path, handler, method, op in _ROUTES:
            routes.append(
                vendor_route(VENDOR, state, prefix + path, handler, methods=[method], op=op)
            )
    return Starlette(routes=[*routes, *control_routes(state)])
