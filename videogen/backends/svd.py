"""Stable Video Diffusion on a self-hosted ComfyUI (the usual local SVD deployment).

Upload the first frame (``POST /upload/image``), queue the SVD workflow (``POST /prompt``, a
JSON template under ``config/`` with the image, seed, frames, fps and size filled in), poll
``GET /history/{prompt_id}`` (empty until done; ``GET /queue`` tells queued from running),
fetch the file with ``GET /view``, probe ``GET /system_stats``, cancel through ``/queue`` and
``/interrupt``. SVD animates an image: text-only scenes are taken only when a
``text_workflow`` with a text-to-image stage is configured. Contract: vendor-apis.md §D.1.
"""

from __future__ import annotations

import hashlib
import json
from functools import cached_property
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlencode

from pydantic import Field

from ..capabilities import Capabilities, ImageInput, ModeSpec
from ..config import BackendSettings
from ..constants import COMFYUI_BASE_URL, DEFAULT_SVD_WORKFLOW
from ..errors import ConfigError, MalformedResponseError
from ..media import ImageData, load_image
from ..models import GenerationRequest, JobState, JobStatus, Mode, Size, VendorJob
from ..transport import field, json_object, send
from .base import BaseVideoBackend, Lookup

VIDEO_SUFFIXES = (".mp4", ".webm", ".mov", ".mkv", ".gif", ".webp")
CLIENT_ID = "videogen"
PROMPT_MAX_CHARS = 2000


class SVDSettings(BackendSettings):
    default_base_url: ClassVar[str] = COMFYUI_BASE_URL
    requires_key: ClassVar[bool] = False
    """A local ComfyUI has no auth."""
    path_fields: ClassVar[tuple[str, ...]] = ("workflow", "text_workflow")
    gpu_usd_per_hour: ClassVar[float | None] = 2.50
    """A rented H100-class GPU (an example rate, ``shared/vendor-apis-2.md`` §8.1, 2026-11;
    UNCONFIRMED): set ``pricing.usd_per_gpu_hour`` to your own (near 0 for an owned, idle GPU,
    whose marginal cost is power)."""

    workflow: str = str(DEFAULT_SVD_WORKFLOW)
    """Image-to-video workflow template (ComfyUI API format, ``{{placeholders}}``); the one
    shipped with videogen unless set. A relative path is relative to the config file."""
    text_workflow: str | None = None
    """A template with a text-to-image stage before SVD; when set, text-only scenes are taken."""
    checkpoint: str = "svd_xt_1_1.safetensors"
    fps: int = Field(default=6, ge=1, le=30)
    max_frames: int = Field(default=25, ge=2, le=200)
    """SVD makes 14 frames, SVD-XT 25: the clip length is frames / fps."""
    min_frames: int = Field(default=6, ge=1)
    sizes: tuple[tuple[int, int], ...] = ((1024, 576), (576, 1024), (768, 768))
    """Frame sizes the model is good at; the first is the default."""


def fill(template: Any, values: dict[str, Any]) -> Any:
    """Replace every ``"{{name}}"`` string in a workflow with its typed value (pure)."""
    if isinstance(template, dict):
        return {key: fill(item, values) for key, item in template.items()}
    if isinstance(template, list):
        return [fill(item, values) for item in template]
    if isinstance(template, str) and template.startswith("{{") and template.endswith("}}"):
        name = template[2:-2].strip()
        if name not in values:
            raise ConfigError(f"svd workflow placeholder {template!r} is unknown")
        return values[name]
    return template


def placeholders(template: Any) -> set[str]:
    """The ``{{names}}`` a workflow template uses."""
    text = json.dumps(template)
    return {part.split("}}")[0].strip() for part in text.split("{{")[1:]}


def history_status(backend: str, entry: dict[str, Any]) -> tuple[JobState, str, str | None]:
    """A history entry's state, vendor word and failure reason."""
    status = entry.get("status") or {}
    messages = status.get("messages") or []
    kinds = {m[0]: m[1] for m in messages if isinstance(m, list) and len(m) == 2}
    if "execution_interrupted" in kinds:
        return JobState.CANCELLED, "interrupted", None
    word = status.get("status_str")
    if word == "error" or "execution_error" in kinds:
        error = kinds.get("execution_error") or {}
        reason = f"{error.get('exception_type', 'error')}: {error.get('exception_message', '')}"
        return JobState.FAILED, "error", reason.strip(": ")
    if word == "success" or entry.get("outputs"):
        return JobState.SUCCEEDED, "success", None
    raise MalformedResponseError(backend, "history entry has no status and no outputs")


def output_file(outputs: dict[str, Any]) -> dict[str, Any] | None:
    """The first video file among a prompt's outputs (``gifs`` or ``images``), MP4 first."""
    files = [
        item
        for node in outputs.values()
        if isinstance(node, dict)
        for key in ("gifs", "images", "videos")
        for item in node.get(key) or []
        if isinstance(item, dict) and str(item.get("filename", "")).endswith(VIDEO_SUFFIXES)
    ]
    files.sort(key=lambda item: not str(item["filename"]).endswith(".mp4"))
    return files[0] if files else None


class SVDBackend(BaseVideoBackend):
    name = "svd"
    settings_model = SVDSettings
    settings: SVDSettings
    lookup = Lookup.CLIENT_ID
    """We send the ``prompt_id``: a lost answer is looked up by it, and ComfyUI refuses a
    second prompt with the same id (409)."""

    @cached_property
    def _templates(self) -> dict[Mode, Any]:
        templates = {Mode.IMAGE_TO_VIDEO: self._load(self.settings.workflow, "image")}
        if self.settings.text_workflow:
            templates[Mode.TEXT_TO_VIDEO] = self._load(self.settings.text_workflow, "prompt")
        return templates

    def _load(self, path: str, needs: str) -> Any:
        try:
            template = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as error:
            raise ConfigError(f"svd: cannot load workflow {path}: {error}") from None
        if needs not in placeholders(template):
            raise ConfigError(f"svd: workflow {path} has no {{{{{needs}}}}} placeholder")
        return template

    def get_capabilities(self) -> Capabilities:
        s = self.settings
        frames = range(min(s.min_frames, s.max_frames), s.max_frames + 1)
        spec = ModeSpec(
            model=s.checkpoint,
            durations=tuple(round(n / s.fps, 3) for n in frames),
            sizes=tuple(Size(w, h) for w, h in s.sizes),
        )
        return Capabilities(
            text=spec if Mode.TEXT_TO_VIDEO in self._templates else None,
            image=spec,
            prompt_max_chars=PROMPT_MAX_CHARS,
            image_inputs=frozenset({ImageInput.UPLOAD}),
            negative_prompt=Mode.TEXT_TO_VIDEO in self._templates,
        )

    def _send(self, method: str, path: str, **kwargs: Any) -> Any:
        headers = {"Accept": "application/json"}
        if self.settings.api_key is not None:  # a reverse proxy in front of ComfyUI
            headers["Authorization"] = f"Bearer {self.api_key()}"
        return send(
            self._client, self.name, method, self.base_url + path, headers=headers, **kwargs
        )

    def upload(self, image: ImageData) -> str:
        """Upload a first frame; named by content so a retried upload overwrites itself."""
        digest = hashlib.sha256(image.data).hexdigest()[:20]
        name = f"videogen_{digest}.{image.filename.rsplit('.', 1)[-1]}"
        files = {"image": (name, image.data, image.mime)}
        data = {"type": "input", "overwrite": "true"}
        answer = json_object(self.name, self._send("POST", "/upload/image", files=files, data=data))
        uploaded = field(self.name, answer, "name")
        sub = answer.get("subfolder") or ""
        return f"{sub}/{uploaded}" if sub else str(uploaded)

    def workflow(self, request: GenerationRequest, image_name: str | None) -> Any:
        """The filled-in workflow graph for one request."""
        frames = max(1, round(request.duration * self.settings.fps))
        values = {
            "image": image_name,
            "prompt": request.prompt,
            "negative_prompt": request.negative_prompt or "",
            "seed": request.seed if request.seed is not None else 0,
            "frames": frames,
            "fps": self.settings.fps,
            "width": request.size.width,
            "height": request.size.height,
            "checkpoint": self.settings.checkpoint,
            "filename_prefix": "videogen/svd",
        }
        return fill(self._templates[request.mode], values)

    def submit(self, request: GenerationRequest, *, key: str | None = None) -> VendorJob:
        image_name = None
        if request.mode is Mode.IMAGE_TO_VIDEO:
            image_name = self.upload(load_image(self._client, self.name, request.image or ""))
        prompt_id = key or self.new_key()  # chosen by us, so a lost answer can be looked up
        body = {
            "prompt": self.workflow(request, image_name),
            "client_id": CLIENT_ID,
            "prompt_id": prompt_id,
        }
        response = self._send("POST", "/prompt", json=body, creates_job=True)
        answer = json_object(self.name, response, creates_job=True)
        return VendorJob(backend=self.name, job_id=str(answer.get("prompt_id") or prompt_id))

    def poll(self, job: VendorJob) -> JobStatus:
        entry = self._history(job.job_id)
        if entry is None:
            place = self._queue_place(job.job_id)
            if place is not None:
                return JobStatus(state=place, vendor_state=f"queue_{place.value}")
            entry = self._history(job.job_id)  # it may have finished between the two calls
            if entry is None:
                # Deleted from the queue, or lost in a ComfyUI restart: either way it is gone.
                return JobStatus(state=JobState.CANCELLED, vendor_state="gone")
        return self._status(entry)

    def find_submitted(
        self, request: GenerationRequest, key: str, sent_at: float
    ) -> VendorJob | None:
        """The prompt ``key`` if ComfyUI knows it: finished (in the history) or queued or
        running (in ``/queue``); looked up in the history twice, as :meth:`poll` does, since
        it may finish between the two calls."""
        known = (
            self._history(key) is not None
            or self._queue_place(key) is not None
            or self._history(key) is not None
        )
        return VendorJob(backend=self.name, job_id=key) if known else None

    def _history(self, prompt_id: str) -> dict[str, Any] | None:
        body = json_object(self.name, self._send("GET", f"/history/{prompt_id}"))
        entry = body.get(prompt_id)
        return entry if isinstance(entry, dict) else None

    def _queue(self) -> dict[str, Any]:
        return json_object(self.name, self._send("GET", "/queue"))

    def _queue_place(self, prompt_id: str) -> JobState | None:
        queue = self._queue()
        for key, state in (("queue_running", JobState.RUNNING), ("queue_pending", JobState.QUEUED)):
            if any(len(item) > 1 and item[1] == prompt_id for item in queue.get(key) or []):
                return state
        return None

    def _status(self, entry: dict[str, Any]) -> JobStatus:
        state, word, reason = history_status(self.name, entry)
        url = None
        if state is JobState.SUCCEEDED:
            found = output_file(entry.get("outputs") or {})
            if found is None:
                raise MalformedResponseError(self.name, "finished prompt has no video output")
            url = self._view_url(found)
        code = reason.split(":")[0] if reason else None
        return JobStatus(
            state=state, vendor_state=word, output_url=url, failure_code=code, failure_reason=reason
        )

    def _view_url(self, item: dict[str, Any]) -> str:
        query = {
            "filename": item["filename"],
            "subfolder": item.get("subfolder", ""),
            "type": item.get("type", "output"),
        }
        return f"{self.base_url}/view?{urlencode(query)}"

    def cancel(self, job: VendorJob) -> None:
        """Drop it from the pending queue; interrupt it only if it is the one running
        (an old ComfyUI's interrupt stops whatever runs, which may be another scene's job)."""
        self._send("POST", "/queue", json={"delete": [job.job_id]})
        if self._queue_place(job.job_id) is JobState.RUNNING:
            self._send("POST", "/interrupt", json={"prompt_id": job.job_id})

    def probe(self) -> dict[str, Any]:
        body = json_object(self.name, self._send("GET", "/system_stats"))
        system = body.get("system") or {}
        devices = body.get("devices") or []
        return {
            "comfyui_version": system.get("comfyui_version"),
            "devices": [d.get("name") for d in devices if isinstance(d, dict)],
        }
