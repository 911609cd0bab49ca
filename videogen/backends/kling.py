"""Kling (api-singapore.klingai.com), the official ``/v1/videos`` API.

``POST /v1/videos/text2video`` or ``/v1/videos/image2video`` → ``{"code": 0, "data":
{"task_id", "task_status"}}``; ``GET /v1/videos/{route}/{task_id}`` (submitted, processing,
succeed, failed; ``task_result.videos[0].url``, and ``final_unit_deduction``, the units
charged); health from ``GET /account/costs``. Every request carries ``Authorization: Bearer
<JWT>``: an HS256 token signed afresh from the key, ``ACCESS_KEY:SECRET_KEY`` (``iss`` the
access key, valid 30 min); the secret key itself never leaves this process. Errors are the HTTP
status plus the body's ``code``, and the code decides: a 429 is a rate limit (1302, 1303:
retried) or an unpaid bill (1101 arrears, 1102 resource pack used up: the account is unusable
until someone pays, so the scene fails over and the circuit counts it). Kling has no cancel.
Our create key goes as ``external_task_id``, by which a lost create answer is looked up.
Contract: shared/vendor-apis-2.md §2.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any, ClassVar, NamedTuple

from pydantic import Field, field_validator, model_validator

from ..capabilities import Capabilities, ImageInput, ModeSpec, frame_size
from ..config import BackendSettings
from ..constants import KLING_BASE_URL, KLING_TOKEN_SECONDS, KLING_TOKEN_SKEW_SECONDS
from ..errors import (
    AmbiguousSubmitError,
    AuthError,
    BackendError,
    BackendUnavailableError,
    ConfigError,
    ContentPolicyError,
    GenerationFailedError,
    MalformedResponseError,
    RateLimitedError,
    RejectedInputError,
)
from ..media import load_image
from ..models import GenerationRequest, JobState, JobStatus, Mode, Size, VendorJob
from ..transport import Codes, field, mapped_state, send_coded
from .base import BaseVideoBackend, Lookup


class KlingModel(NamedTuple):
    usd_per_second: dict[str, float]
    """USD per output second by mode, without sound: Kling's published unit prices at $0.14 a
    unit (kling.ai/document-api/pricing, via cluely/unmodel ``pricing.ts`` verified 2026-08-13;
    ``shared/vendor-apis-2.md`` §2.6). Override with ``backends.kling.pricing``."""
    durations: tuple[float, ...]


FIVE_TEN = (5.0, 10.0)
MODELS = {
    "kling-v3": KlingModel(
        {"std": 0.084, "pro": 0.112, "4k": 0.42}, tuple(map(float, range(3, 16)))
    ),
    "kling-v2-6": KlingModel({"std": 0.042, "pro": 0.07}, tuple(map(float, range(3, 11)))),
    "kling-v2-5-turbo": KlingModel({"std": 0.042, "pro": 0.07}, FIVE_TEN),
    "kling-v2-1": KlingModel({"std": 0.056, "pro": 0.098}, FIVE_TEN),
    "kling-v2-1-master": KlingModel({"pro": 0.28}, FIVE_TEN),
    "kling-v2-master": KlingModel({"pro": 0.28}, FIVE_TEN),
    "kling-v1-6": KlingModel({"std": 0.056, "pro": 0.098}, FIVE_TEN),
    "kling-v1-5": KlingModel({"std": 0.056, "pro": 0.098}, FIVE_TEN),
    "kling-v1": KlingModel({"std": 0.028, "pro": 0.098}, FIVE_TEN),
}
"""Every model of the ``/v1/videos`` routes, with its modes and durations (the capability map:
kling-v3 3–15 s, kling-v2-6 3–10 s, the rest 5 or 10 s; the master models are 1080p only)."""
IMAGE_ONLY = frozenset({"kling-v2-1", "kling-v1-5"})
TEXT_MODELS = {name: model for name, model in MODELS.items() if name not in IMAGE_ONLY}
MODES = {"std": 720, "pro": 1080, "4k": 2160}
"""Kling's ``mode`` and the short side of the frame it makes."""
ASPECT_RATIOS = ("16:9", "9:16", "1:1")
ROUTES = {Mode.TEXT_TO_VIDEO: "text2video", Mode.IMAGE_TO_VIDEO: "image2video"}
STATES = {
    "submitted": JobState.QUEUED,
    "processing": JobState.RUNNING,
    "succeed": JobState.SUCCEEDED,
    "failed": JobState.FAILED,
}
PROMPT_MAX_CHARS = 2500
IMAGE_MAX_BYTES = 10 * 1024 * 1024
"""Kling's documented cap on a first frame (newer pages say 50 MB; the older, lower one holds
for both)."""
PROBE_WINDOW_MS = 30 * 24 * 3600 * 1000
"""``GET /account/costs`` asks for a time range: the resource packs of the last 30 days."""
CODES: Codes = {
    **dict.fromkeys(("1000", "1001", "1002", "1003", "1004"), AuthError),
    # 1100 account exception, 1101 arrears, 1102 resource pack used up or expired, 1103 no
    # access (a model outside the plan), 1304 IP not allowed: no retry helps.
    **dict.fromkeys(("1100", "1101", "1102", "1103", "1304"), AuthError),
    **dict.fromkeys(("1200", "1201", "1202", "1203"), RejectedInputError),
    **dict.fromkeys(("1300", "1301"), ContentPolicyError),
    **dict.fromkeys(("1302", "1303"), RateLimitedError),
    **dict.fromkeys(("5000", "5001", "5002"), BackendUnavailableError),
}
"""Kling's error codes (the body's ``code``), which decide over the HTTP status (§2.4)."""
NOT_FOUND = "1203"
_POLICY_WORDS = ("risk control", "moderation", "policy", "safety", "sensitive", "violat")


class KlingSettings(BackendSettings):
    default_base_url: ClassVar[str] = KLING_BASE_URL
    key_pair_env: ClassVar[tuple[str, str] | None] = ("KLING_ACCESS_KEY", "KLING_SECRET_KEY")

    text_model: str | None = "kling-v2-5-turbo"
    """Model for text-only scenes; ``null`` disables text-to-video."""
    image_model: str | None = "kling-v2-5-turbo"
    """Model for scenes with a first frame; ``null`` disables image-to-video."""
    modes: tuple[str, ...] = ("std", "pro")
    """Modes offered to scenes, the first the default: ``std`` 720p, ``pro`` 1080p, ``4k``
    (kling-v3 only); a model gets those of them it has."""
    usd_per_unit: float = Field(default=0.14, gt=0)
    """What one Kling unit costs you: a finished task's own count of units charged
    (``final_unit_deduction``) times this is what is settled."""

    @classmethod
    def key_problem(cls, key: str) -> str | None:
        access, _, secret = key.partition(":")
        return None if access and secret else "a Kling key is ACCESS_KEY:SECRET_KEY"

    @field_validator("text_model")
    @classmethod
    def _text_model(cls, value: str | None) -> str | None:
        if value is not None and value not in TEXT_MODELS:
            raise ValueError(f"text_model {value!r} is not one of {', '.join(TEXT_MODELS)}")
        return value

    @field_validator("image_model")
    @classmethod
    def _image_model(cls, value: str | None) -> str | None:
        if value is not None and value not in MODELS:
            raise ValueError(f"image_model {value!r} is not one of {', '.join(MODELS)}")
        return value

    @field_validator("modes")
    @classmethod
    def _modes(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value or any(mode not in MODES for mode in value):
            raise ValueError(f"modes must be among {', '.join(MODES)}")
        return value

    @model_validator(mode="after")
    def _usable(self) -> KlingSettings:
        models = [m for m in (self.text_model, self.image_model) if m is not None]
        if not models:
            raise ValueError("text_model and image_model are both null: nothing to generate")
        for model in models:
            if not model_modes(model, self.modes):
                offered = ", ".join(MODELS[model].usd_per_second)
                raise ValueError(f"{model} has none of the modes {self.modes} (it has {offered})")
        return self


def model_modes(model: str, modes: tuple[str, ...]) -> tuple[str, ...]:
    """The configured modes this model has, in the configured order."""
    return tuple(mode for mode in modes if mode in MODELS[model].usd_per_second)


def size_labels(model: str, modes: tuple[str, ...]) -> dict[Size, tuple[str, str]]:
    """Every size offered with ``model`` → (aspect_ratio, mode), the default first: the mode
    names the short side."""
    offered = model_modes(model, modes)
    return {frame_size(a, MODES[m]): (a, m) for m in offered for a in ASPECT_RATIOS}


def mode_spec(model: str, modes: tuple[str, ...]) -> ModeSpec:
    spec = MODELS[model]
    offered = model_modes(model, modes)
    prices = tuple(
        (seconds, MODES[mode], round(spec.usd_per_second[mode] * seconds, 6))
        for mode in offered
        for seconds in spec.durations
    )
    return ModeSpec(
        model=model,
        durations=spec.durations,
        sizes=tuple(size_labels(model, modes)),
        price_table=prices,
    )


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64json(value: dict[str, Any]) -> str:
    return _b64url(json.dumps(value, separators=(",", ":")).encode())


def jwt_token(access_key: str, secret_key: str, now: float) -> str:
    """The HS256 JWT Kling wants, signed with the secret key (pure). Built on the standard
    library's HMAC: PyJWT is not among videogen's dependencies, and three base64 parts and one
    HMAC-SHA256 are all a JWT is."""
    header = _b64json({"alg": "HS256", "typ": "JWT"})
    issued = int(now)
    claims = {
        "iss": access_key,
        "exp": issued + KLING_TOKEN_SECONDS,
        "nbf": issued - KLING_TOKEN_SKEW_SECONDS,
    }
    signing = f"{header}.{_b64json(claims)}"
    signature = hmac.new(secret_key.encode(), signing.encode("ascii"), hashlib.sha256).digest()
    return f"{signing}.{_b64url(signature)}"


def split_key(key: str) -> tuple[str, str]:
    """``ACCESS_KEY:SECRET_KEY`` → both parts (the message never repeats the key; a loaded
    config already counts a key without them as none: :meth:`KlingSettings.key_problem`)."""
    problem = KlingSettings.key_problem(key)
    if problem is not None:
        raise ConfigError(f"kling: {problem} (or set KLING_ACCESS_KEY and KLING_SECRET_KEY)")
    access, _, secret = key.partition(":")
    return access, secret


def failure_class(reason: str | None) -> type[BackendError]:
    """Kling gives a failed task no code, only ``task_status_msg`` text: a refusal by its risk
    control or moderation is the scene's fault."""
    text = (reason or "").lower()
    if any(word in text for word in _POLICY_WORDS):
        return ContentPolicyError
    return GenerationFailedError


def _units(value: Any) -> float | None:
    """``final_unit_deduction`` (a string of a number, by the docs) as a number."""
    try:
        return None if value is None or value == "" else float(value)
    except (TypeError, ValueError):
        return None


def parse_task(backend: str, data: dict[str, Any]) -> JobStatus:
    """A task object (the ``data`` of a query answer) → :class:`JobStatus`."""
    vendor_state, state = mapped_state(backend, data, "task_status", STATES, "task status")
    url = None
    if state is JobState.SUCCEEDED:
        videos = (data.get("task_result") or {}).get("videos")
        if not (isinstance(videos, list) and videos and isinstance(videos[0], dict)):
            raise MalformedResponseError(backend, "succeeded task has no task_result.videos")
        url = field(backend, videos[0], "url")
    return JobStatus(
        state=state,
        vendor_state=vendor_state,
        output_url=url,
        failure_reason=(data.get("task_status_msg") or None) if state is JobState.FAILED else None,
        billed_units=_units(data.get("final_unit_deduction")),
    )


def refusal(body: dict[str, Any]) -> tuple[str, str] | None:
    """The code and message of an answer whose ``code`` is not 0 (a refusal)."""
    code = body.get("code")
    return None if code in (None, 0, "0") else (str(code), str(body.get("message") or ""))


def _not_found(error: BackendError) -> bool:
    return error.status_code == 404 or error.vendor_code == NOT_FOUND


class KlingBackend(BaseVideoBackend):
    name = "kling"
    settings_model = KlingSettings
    settings: KlingSettings
    lookup = Lookup.CLIENT_ID
    """The create carries our key as ``external_task_id``, unique per account, and a task can be
    queried by it (§2.3; the query's exact form is UNCONFIRMED: ``?external_task_id=``)."""

    def get_capabilities(self) -> Capabilities:
        text, image, modes = (
            self.settings.text_model,
            self.settings.image_model,
            self.settings.modes,
        )
        return Capabilities(
            text=mode_spec(text, modes) if text else None,
            image=mode_spec(image, modes) if image else None,
            prompt_max_chars=PROMPT_MAX_CHARS,
            image_inputs=frozenset({ImageInput.PUBLIC_URL, ImageInput.DATA_URI}),
            negative_prompt=True,
            seed=False,
        )

    def _token(self) -> str:
        access, secret = split_key(self.api_key())
        return jwt_token(access, secret, time.time())  # JWT times are wall-clock times

    def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        """One request; an answer whose ``code`` is not 0 is raised as the error it names."""
        headers = {"Authorization": f"Bearer {self._token()}", "Accept": "application/json"}
        url = self.base_url + path
        return send_coded(
            self._client, self.name, method, url,
            codes=CODES, refusal=refusal, headers=headers, **kwargs,
        )  # fmt: skip

    def payload(self, request: GenerationRequest, key: str | None = None) -> dict[str, Any]:
        """The create body (``duration`` a string of whole seconds; no seed exists)."""
        aspect, mode = size_labels(request.model, self.settings.modes)[request.size]
        body: dict[str, Any] = {
            "model_name": request.model,
            "mode": mode,
            "duration": str(int(request.duration)),
        }
        if request.prompt:
            body["prompt"] = request.prompt
        if request.negative_prompt:
            body["negative_prompt"] = request.negative_prompt
        if key is not None:
            body["external_task_id"] = key
        if request.mode is Mode.IMAGE_TO_VIDEO:
            body["image"] = self._image(request.image or "")
        else:
            body["aspect_ratio"] = aspect  # an image sets its own frame
        return body

    def _image(self, ref: str) -> str:
        """HTTPS URLs go as they are; anything else is sent inline as plain base64 (Kling
        refuses a ``data:`` prefix), PNG or JPEG only, 10 MB at most."""
        if ref.startswith("https://"):
            return ref
        image = load_image(self._client, self.name, ref)
        if image.mime not in ("image/png", "image/jpeg"):
            raise RejectedInputError(self.name, f"Kling takes PNG or JPEG frames, not {image.mime}")
        if len(image.data) > IMAGE_MAX_BYTES:
            raise RejectedInputError(self.name, "the first frame is over Kling's 10 MB limit")
        return base64.b64encode(image.data).decode("ascii")

    def submit(self, request: GenerationRequest, *, key: str | None = None) -> VendorJob:
        route = ROUTES[request.mode]
        body = self.payload(request, key)
        try:
            answer = self._call("POST", f"/v1/videos/{route}", json=body, creates_job=True)
        except RejectedInputError as error:
            raise self._taken(request, key, error) from None
        data = field(self.name, answer, "data", dict, creates_job=True)
        task_id = field(self.name, data, "task_id", creates_job=True)
        return VendorJob(backend=self.name, job_id=task_id, urls={"route": route})

    def _taken(
        self, request: GenerationRequest, key: str | None, error: RejectedInputError
    ) -> RejectedInputError:
        """A refused create, as a 409 when Kling already has a task with our key (an earlier
        send of this create arrived after all): the pipeline then resumes that task. How Kling
        words the refusal of an id it has is UNCONFIRMED, so the task is looked for."""
        if key is None or error.status_code not in (400, None):
            return error
        try:
            found = self.find_submitted(request, key, 0.0)
        except BackendError:
            return error
        if found is None:
            return error
        message = f"a task with external_task_id {key} exists ({error.message})"
        return RejectedInputError(
            self.name, message, status_code=409, vendor_code=error.vendor_code
        )

    def find_submitted(
        self, request: GenerationRequest, key: str, sent_at: float
    ) -> VendorJob | None:
        """The task whose ``external_task_id`` is ``key``, or ``None`` when Kling has none."""
        route = ROUTES[request.mode]
        try:
            answer = self._call("GET", f"/v1/videos/{route}", params={"external_task_id": key})
        except RejectedInputError as error:
            if _not_found(error):
                return None
            raise
        data = answer.get("data")
        tasks = data if isinstance(data, list) else [data]
        ours = [
            task
            for task in tasks
            if isinstance(task, dict)
            and (task.get("task_info") or {}).get("external_task_id") == key
        ]
        if len(ours) > 1:
            raise AmbiguousSubmitError(self.name, f"{len(ours)} tasks carry the key {key}")
        if not ours:
            return None
        task_id = field(self.name, ours[0], "task_id")
        return VendorJob(backend=self.name, job_id=task_id, urls={"route": route})

    def poll(self, job: VendorJob) -> JobStatus:
        return parse_task(self.name, self._task(job))

    def _task(self, job: VendorJob) -> dict[str, Any]:
        """The task's object; a handle without its route (a bare id) tries both routes."""
        routes = [job.urls["route"]] if "route" in job.urls else list(ROUTES.values())
        for route in routes:
            try:
                answer = self._call("GET", f"/v1/videos/{route}/{job.job_id}")
            except RejectedInputError as error:
                if route == routes[-1] or not _not_found(error):
                    raise
                continue
            data: dict[str, Any] = field(self.name, answer, "data", dict)
            return data
        raise AssertionError("unreachable: the last route returns or raises")

    def failure_class(self, status: JobStatus) -> type[BackendError]:
        return failure_class(status.failure_reason)

    def billed_usd(self, status: JobStatus) -> float | None:
        """The units Kling says it charged for a finished task, at ``usd_per_unit``."""
        if status.state is not JobState.SUCCEEDED or status.billed_units is None:
            return None
        return round(status.billed_units * self.settings.usd_per_unit, 6)

    def cancellable(self, job: VendorJob) -> bool:
        return False

    def cancel(self, job: VendorJob) -> None:
        raise RejectedInputError(self.name, "Kling has no way to cancel a task: it runs to its end")

    def probe(self) -> dict[str, Any]:
        """The account's resource packs (Kling asks for at most one such query a second; the
        beat probes every ``health_check_interval``)."""
        now = int(time.time() * 1000)
        params = {"start_time": now - PROBE_WINDOW_MS, "end_time": now}
        data = self._call("GET", "/account/costs", params=params).get("data")
        packs = data.get("resource_pack_subscribe_infos") if isinstance(data, dict) else None
        packs = [p for p in packs or [] if isinstance(p, dict)]
        left = sum(
            _units(p.get("remaining_quantity")) or 0.0 for p in packs if p.get("status") == "online"
        )
        return {"resource_packs": len(packs), "remaining_units": left}
