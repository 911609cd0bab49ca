"""ByteDance Seedance on BytePlus ModelArk (Volcengine Ark in China), under ``/api/v3``.

``POST /contents/generations/tasks`` (``model``, a ``content`` list of text and role-tagged
images, ``resolution``, ``ratio``, ``duration``...) → ``{"id": "cgt-..."}``;
``GET /contents/generations/tasks/{id}`` (queued, running, succeeded, failed, cancelled,
expired; ``content.video_url``, ``error.code``); ``DELETE`` on it cancels a queued task and
deletes a finished one's record (Ark reportedly refuses to stop a running one); health from
``GET /contents/generations/tasks?page_size=1``. Bearer auth; errors are ``{"error": {"code",
"message"}}``. Contract: shared/vendor-apis-2.md §7.

A lost create answer is looked for in the task list: Ark takes no client id, but every task
echoes its ``seed``, so a scene without a seed of its own is sent with one drawn from the
create's key, and the task created around the send time with that seed and shape is ours.
"""

from __future__ import annotations

import uuid
from typing import Any, ClassVar, NamedTuple

from pydantic import field_validator

from ..capabilities import Capabilities, ImageInput, ModeSpec
from ..config import BackendSettings
from ..constants import SEEDANCE_BASE_URL
from ..errors import (
    AmbiguousSubmitError,
    BackendError,
    ContentPolicyError,
    GenerationFailedError,
    MalformedResponseError,
    RejectedInputError,
)
from ..media import data_uri, load_image
from ..models import GenerationRequest, JobState, JobStatus, Mode, Size, VendorJob
from ..transport import field, is_policy_code, json_object, mapped_state, send
from .base import BaseVideoBackend, Lookup, refused_unless_ended
from .options import all_among, one_of

TASKS = "/contents/generations/tasks"
SIZES = {
    # (resolution, ratio) -> frame size, as Seedance's docs list them (UNCONFIRMED per model).
    ("480p", "16:9"): Size(864, 480),
    ("480p", "4:3"): Size(736, 544),
    ("480p", "1:1"): Size(640, 640),
    ("480p", "3:4"): Size(544, 736),
    ("480p", "9:16"): Size(480, 864),
    ("480p", "21:9"): Size(960, 416),
    ("720p", "16:9"): Size(1248, 704),
    ("720p", "4:3"): Size(1120, 832),
    ("720p", "1:1"): Size(960, 960),
    ("720p", "3:4"): Size(832, 1120),
    ("720p", "9:16"): Size(704, 1248),
    ("720p", "21:9"): Size(1504, 640),
    ("1080p", "16:9"): Size(1920, 1088),
    ("1080p", "4:3"): Size(1664, 1248),
    ("1080p", "1:1"): Size(1440, 1440),
    ("1080p", "3:4"): Size(1248, 1664),
    ("1080p", "9:16"): Size(1088, 1920),
    ("1080p", "21:9"): Size(2176, 928),
}
RESOLUTIONS = ("480p", "720p", "1080p")
TOKEN_PIXELS = 1024
"""Ark bills video tokens ≈ width × height × fps × seconds / 1024 (§7.3)."""


class SeedanceModel(NamedTuple):
    durations: tuple[float, ...]
    usd_per_million_tokens: float
    audio_usd_per_million_tokens: float
    """BytePlus list prices as of 2026-11-29 (Comfy's partner-node pricing table, 211 credits =
    $1, ``shared/vendor-apis-2.md`` §7.5; 2.0: ≈ $0.151/s at 720p, matching Volcengine's
    $0.142/s). Override with ``backends.seedance.pricing``."""


MODELS = {
    "seedance-1-5-pro-251215": SeedanceModel(tuple(float(s) for s in range(4, 13)), 1.20, 2.40),
    "dreamina-seedance-2-0-260128": SeedanceModel(
        tuple(float(s) for s in range(4, 16)), 7.00, 7.00
    ),
}
"""Duration ranges: 1.5 pro 4-12 s (fal's schema), 2.x 4-15 s (3P): UNCONFIRMED per id."""

STATES = {
    "queued": JobState.QUEUED,
    "running": JobState.RUNNING,
    "succeeded": JobState.SUCCEEDED,
    "failed": JobState.FAILED,
    "expired": JobState.FAILED,
    "cancelled": JobState.CANCELLED,
}
"""Ark's task statuses in our vocabulary (§10); ``expired``: not done within
``execution_expires_after``."""
PROMPT_MAX_CHARS = 2000
"""UNCONFIRMED (Ark documents no limit we found; 3P clients cut at 2000)."""
MAX_SEED = 2**31 - 1
CLOCK_SKEW = 10.0
"""Seconds our clock and Ark's may disagree (its ``created_at`` is whole seconds)."""
LIST_LIMIT = 100
LIST_PAGES = 5


class SeedanceSettings(BackendSettings):
    default_base_url: ClassVar[str] = SEEDANCE_BASE_URL
    key_env: ClassVar[tuple[str, ...]] = ("ARK_API_KEY",)

    model: str = "seedance-1-5-pro-251215"
    """Model ids are dated and must be activated on the account (``ModelNotOpen`` otherwise)."""
    resolutions: tuple[str, ...] = ("720p", "480p", "1080p")
    """Resolutions offered to scenes, the first being the default."""
    generate_audio: bool = False
    """Sound doubles 1.5 pro's price; off unless asked for."""
    watermark: bool = False

    @field_validator("model")
    @classmethod
    def _model(cls, value: str) -> str:
        return str(one_of("model", value, MODELS))

    @field_validator("resolutions")
    @classmethod
    def _resolutions(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return all_among("resolutions", value, RESOLUTIONS)


def size_labels(resolutions: tuple[str, ...]) -> dict[Size, tuple[str, str]]:
    """Every offered frame size → (resolution, ratio), the default resolution's 16:9 first."""
    return {
        size: (resolution, ratio)
        for resolution in resolutions
        for (res, ratio), size in SIZES.items()
        if res == resolution
    }


def seed_for(key: str) -> int:
    """The seed a create with client key ``key`` carries when its scene has none (pure)."""
    return uuid.UUID(key).int % (MAX_SEED + 1)


def failure_class(code: str | None) -> type[BackendError]:
    """A failed task's ``error.code`` → error class (pure; a table in the tests): the
    ``*SensitiveContentDetected*`` codes are moderation, the scene's fault."""
    return ContentPolicyError if code and is_policy_code(code) else GenerationFailedError


def parse_task(backend: str, body: dict[str, Any]) -> JobStatus:
    """A ``GET /contents/generations/tasks/{id}`` body → :class:`JobStatus`."""
    vendor_state, state = mapped_state(backend, body, "status", STATES, "task status")
    content = body.get("content") or {}
    video = content.get("video_url") if isinstance(content, dict) else None
    if state is JobState.SUCCEEDED and not isinstance(video, str):
        raise MalformedResponseError(backend, "succeeded task has no content.video_url")
    error = body.get("error")
    error = error if isinstance(error, dict) else {}
    code = error.get("code") or ("expired" if vendor_state == "expired" else None)
    usage = body.get("usage")
    tokens = usage.get("completion_tokens") if isinstance(usage, dict) else None
    billed = state is JobState.SUCCEEDED and isinstance(tokens, int | float) and tokens > 0
    return JobStatus(
        state=state,
        vendor_state=vendor_state,
        output_url=video if state is JobState.SUCCEEDED else None,
        failure_code=code,
        failure_reason=error.get("message"),
        usage={"completion_tokens": float(tokens or 0)} if billed else {},
    )


class SeedanceBackend(BaseVideoBackend):
    name = "seedance"
    settings_model = SeedanceSettings
    settings: SeedanceSettings
    lookup = Lookup.LIST
    """Ark lists tasks with their ``created_at`` and ``seed`` (§7.3): see the module docstring."""

    def get_capabilities(self) -> Capabilities:
        model = MODELS[self.settings.model]
        rate = self._rate()
        spec = ModeSpec(
            model=self.settings.model,
            durations=model.durations,
            sizes=tuple(size_labels(self.settings.resolutions)),
            cost_per_megapixel_usd=round(rate / TOKEN_PIXELS, 8),
        )
        return Capabilities(
            text=spec,
            image=spec,
            prompt_max_chars=PROMPT_MAX_CHARS,
            image_inputs=frozenset({ImageInput.PUBLIC_URL, ImageInput.DATA_URI}),
        )

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        headers = {"Authorization": f"Bearer {self.api_key()}", "Accept": "application/json"}
        return send(
            self._client, self.name, method, self.base_url + path, headers=headers, **kwargs
        )

    def payload(self, request: GenerationRequest, key: str | None = None) -> dict[str, Any]:
        """The create body; ``key`` draws the seed of a scene that has none (the lookup's)."""
        resolution, ratio = size_labels(self.settings.resolutions)[request.size]
        content: list[dict[str, Any]] = [{"type": "text", "text": request.prompt}]
        if request.mode is Mode.IMAGE_TO_VIDEO:
            image = {"url": self._image_url(request.image or "")}
            content.append({"type": "image_url", "image_url": image, "role": "first_frame"})
        body: dict[str, Any] = {
            "model": request.model,
            "content": content,
            "resolution": resolution,
            "ratio": ratio,
            "duration": int(request.duration),
            "generate_audio": self.settings.generate_audio,
            "watermark": self.settings.watermark,
        }
        seed = request.seed if request.seed is not None else (seed_for(key) if key else None)
        if seed is not None:
            body["seed"] = seed
        return body

    def _image_url(self, ref: str) -> str:
        """URLs go as they are (Ark fetches them); files are inlined as a data URI."""
        if ref.startswith(("https://", "http://", "data:")):
            return ref
        return data_uri(load_image(self._client, self.name, ref))

    def submit(self, request: GenerationRequest, *, key: str | None = None) -> VendorJob:
        body = self.payload(request, key)
        response = self._call("POST", TASKS, json=body, creates_job=True)
        answer = json_object(self.name, response, creates_job=True)
        return VendorJob(backend=self.name, job_id=field(self.name, answer, "id", creates_job=True))

    def find_submitted(
        self, request: GenerationRequest, key: str, sent_at: float
    ) -> VendorJob | None:
        """The one task of this model created within [sent_at - skew, sent_at +
        request_timeout + skew] with the seed, resolution, ratio and duration we sent.

        Raises:
            AmbiguousSubmitError: the scene has its own seed (another scene may share it), two
                tasks match, or the window lies beyond the pages read.
        """
        if request.seed is not None:
            raise AmbiguousSubmitError(
                self.name, "the scene's own seed cannot tell its task from another scene's"
            )
        wanted = fingerprint(self.payload(request, key))
        start = sent_at - CLOCK_SKEW
        end = sent_at + self.settings.request_timeout + CLOCK_SKEW
        found: list[str] = []
        for number in range(1, LIST_PAGES + 1):
            page, total = self._list_page(number, request.model)
            found += [
                str(field(self.name, t, "id"))
                for t in page
                if start <= created_time(self.name, t) <= end and fingerprint(t) == wanted
            ]
            if (
                not page
                or number * LIST_LIMIT >= total
                or created_time(self.name, page[-1]) < start
            ):
                return self._one(found)
        raise AmbiguousSubmitError(
            self.name, f"more than {LIST_PAGES * LIST_LIMIT} tasks since the create"
        )

    def _list_page(self, number: int, model: str) -> tuple[list[dict[str, Any]], int]:
        params = {"page_num": number, "page_size": LIST_LIMIT, "filter.model": model}
        body = json_object(self.name, self._call("GET", TASKS, params=params))
        items, total = body.get("items"), body.get("total")
        if not isinstance(items, list) or not all(isinstance(t, dict) for t in items):
            raise MalformedResponseError(self.name, "task list has no items")
        return items, total if isinstance(total, int) else 0

    def _one(self, found: list[str]) -> VendorJob | None:
        if len(found) > 1:
            raise AmbiguousSubmitError(
                self.name, f"{len(found)} tasks match the lost create ({', '.join(found)})"
            )
        return VendorJob(backend=self.name, job_id=found[0]) if found else None

    def poll(self, job: VendorJob) -> JobStatus:
        try:
            answer = self._call("GET", f"{TASKS}/{job.job_id}")
        except RejectedInputError as error:
            if error.status_code == 404:  # a finished task's record was deleted
                return JobStatus(state=JobState.CANCELLED, vendor_state="deleted")
            raise
        return parse_task(self.name, json_object(self.name, answer))

    def failure_class(self, status: JobStatus) -> type[BackendError]:
        return failure_class(status.failure_code)

    def billed_usd(self, status: JobStatus) -> float | None:
        """Ark's billed ``completion_tokens`` at the model's list rate (only successful tasks
        are billed); ``None`` (the estimate settles) when ``pricing`` overrides the list."""
        tokens = status.usage.get("completion_tokens")
        if tokens is None or self.settings.pricing.overrides_list:
            return None
        return round(tokens * self._rate() / 1e6, 6)

    def _rate(self) -> float:
        """USD per million video tokens for this model, with or without sound."""
        model = MODELS[self.settings.model]
        if self.settings.generate_audio:
            return model.audio_usd_per_million_tokens
        return model.usd_per_million_tokens

    def cancel(self, job: VendorJob) -> None:
        """DELETE: cancels a queued task, deletes a finished one's record; a refusal for a
        running task is raised (it runs on, and is billed)."""
        with refused_unless_ended(self, job):
            self._call("DELETE", f"{TASKS}/{job.job_id}")

    def probe(self) -> dict[str, Any]:
        body = json_object(self.name, self._call("GET", TASKS, params={"page_size": 1}))
        return {"tasks": body.get("total")}


FINGERPRINT = ("seed", "resolution", "ratio", "duration")
"""The fields a task echoes from its create that make it ours."""


def fingerprint(body: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(body.get(key) for key in FINGERPRINT)


def created_time(backend: str, task: dict[str, Any]) -> float:
    """A task's ``created_at`` (Unix seconds)."""
    return float(field(backend, task, "created_at", (int, float)))
