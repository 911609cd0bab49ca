"""Luma Dream Machine (api.lumalabs.ai/dream-machine/v1).

``POST /generations/video`` → Generation; ``GET /generations/{id}`` (queued, dreaming,
completed, failed; ``assets.video``); ``DELETE /generations/{id}``; health from
``GET /credits``. Bearer auth, no version header. A create whose answer was lost is looked
for in ``GET /generations?limit=&offset=`` (newest first): a generation created around the
send time whose echoed ``request`` is the body we sent. Contract: shared/vendor-apis.md §B.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from pydantic import field_validator

from ..capabilities import Capabilities, ImageInput, ModeSpec
from ..config import BackendSettings
from ..constants import LUMA_BASE_URL
from ..errors import (
    AmbiguousSubmitError,
    BackendError,
    ContentPolicyError,
    GenerationFailedError,
    MalformedResponseError,
    RejectedInputError,
)
from ..models import GenerationRequest, JobState, JobStatus, Mode, Size, VendorJob, parse_ratio
from ..transport import field, json_object, mapped_state, send
from .base import BaseVideoBackend, Lookup, tolerate
from .options import all_among, one_of

MODELS = {
    # model: (durations offered, USD per million output pixels at 24 fps). Published prices
    # as of 2026-11-29 (Comfy's pricing table for Luma, shared/vendor-apis.md §B.8 and
    # vendor-apis-2.md §8.1: ray-2 720p ~ $0.142/s); override with backends.luma.pricing.
    "ray-2": ((5.0, 9.0), 0.0064),
    "ray-flash-2": ((5.0, 9.0), 0.0022),
    "ray-1-6": ((5.0,), 0.0032),
}
ASPECT_RATIOS = ("16:9", "9:16", "1:1", "4:3", "3:4", "21:9", "9:21")
RESOLUTIONS = {"540p": 540, "720p": 720, "1080p": 1080, "4k": 2160}

STATES = {
    "queued": JobState.QUEUED,
    "dreaming": JobState.RUNNING,
    "completed": JobState.SUCCEEDED,
    "failed": JobState.FAILED,
}
PROMPT_MAX_CHARS = 5000
CLOCK_SKEW = 10.0
"""Seconds our clock and Luma's may disagree (and a create may wait before Luma stamps it):
the margin around the send time when a lost create is looked for. Wider would catch an
earlier identical generation of the same scene (a retry) and make the lookup ambiguous."""
LIST_LIMIT = 100
"""Generations per list page."""
LIST_PAGES = 5
"""Pages read at most: more generations than that since the send time and we cannot tell."""
FINGERPRINT = {
    # The create fields that make two generations the same request, with Luma's defaults
    # (an echo may fill in or leave out a default: both mean the same request).
    "generation_type": "video",
    "model": None,
    "prompt": "",
    "aspect_ratio": "16:9",
    "resolution": "720p",
    "duration": "5s",
    "loop": False,
    "keyframes": None,
}
_POLICY_WORDS = ("moderation", "policy", "safety", "nsfw")


class LumaSettings(BackendSettings):
    default_base_url: ClassVar[str] = LUMA_BASE_URL
    key_env: ClassVar[tuple[str, ...]] = ("LUMAAI_API_KEY",)

    model: str = "ray-2"
    resolutions: tuple[str, ...] = ("720p", "540p", "1080p")
    """Resolutions offered to scenes, the first being the default (4k costs ~9x 720p)."""

    @field_validator("model")
    @classmethod
    def _model(cls, value: str) -> str:
        return str(one_of("model", value, MODELS))

    @field_validator("resolutions")
    @classmethod
    def _resolutions(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return all_among("resolutions", value, RESOLUTIONS)


def frame_size(aspect: str, resolution: str) -> Size:
    """Pixels of a Luma output: the resolution names the short side."""
    short = RESOLUTIONS[resolution]
    ratio = parse_ratio(aspect)
    long = int(round(short * max(ratio, 1 / ratio) / 2) * 2)
    return Size(long, short) if ratio >= 1 else Size(short, long)


def size_labels(resolutions: tuple[str, ...]) -> dict[Size, tuple[str, str]]:
    """Every offered size → (aspect_ratio, resolution) as Luma names them; defaults first."""
    return {frame_size(a, r): (a, r) for r in resolutions for a in ASPECT_RATIOS}


def failure_class(reason: str | None) -> type[BackendError]:
    """Luma gives no failure code, only ``failure_reason`` text: moderation is the scene's fault."""
    text = (reason or "").lower()
    if any(word in text for word in _POLICY_WORDS):
        return ContentPolicyError
    return GenerationFailedError


def parse_generation(backend: str, body: dict[str, Any]) -> JobStatus:
    """A Generation object → :class:`JobStatus`."""
    vendor_state, state = mapped_state(backend, body, "state", STATES, "generation state")
    assets = body.get("assets") or {}
    video = assets.get("video") if isinstance(assets, dict) else None
    if state is JobState.SUCCEEDED and not isinstance(video, str):
        raise MalformedResponseError(backend, "completed generation has no assets.video")
    return JobStatus(
        state=state,
        vendor_state=vendor_state,
        output_url=video if state is JobState.SUCCEEDED else None,
        failure_code=body.get("failure_code"),
        failure_reason=body.get("failure_reason"),
    )


def fingerprint(body: dict[str, Any]) -> dict[str, Any]:
    """What identifies a create request (ours, or a generation's echoed ``request``)."""
    return {
        key: default if body.get(key) is None else body[key] for key, default in FINGERPRINT.items()
    }


def created_time(backend: str, generation: dict[str, Any]) -> float:
    """A generation's ``created_at`` (ISO 8601, UTC when no zone is given) as epoch seconds."""
    try:
        when = datetime.fromisoformat(str(field(backend, generation, "created_at")))
    except ValueError:
        raise MalformedResponseError(backend, "a generation's created_at is not a time") from None
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()


def matching(
    backend: str, page: list[dict[str, Any]], wanted: dict[str, Any], start: float, end: float
) -> list[str]:
    """Ids of the generations on a list page created in [start, end] from the request
    ``wanted`` (a :func:`fingerprint`)."""
    return [
        str(field(backend, g, "id"))
        for g in page
        if start <= created_time(backend, g) <= end
        and fingerprint(g.get("request") or {}) == wanted
    ]


class LumaBackend(BaseVideoBackend):
    name = "luma"
    settings_model = LumaSettings
    settings: LumaSettings
    lookup = Lookup.LIST
    """Luma takes no client id but lists generations with their time and request (§B.5)."""

    def get_capabilities(self) -> Capabilities:
        durations, per_mpx = MODELS[self.settings.model]
        spec = ModeSpec(
            model=self.settings.model,
            durations=durations,
            sizes=tuple(size_labels(self.settings.resolutions)),
            cost_per_megapixel_usd=per_mpx,
        )
        return Capabilities(
            text=spec,
            image=spec,
            prompt_max_chars=PROMPT_MAX_CHARS,
            image_inputs=frozenset({ImageInput.PUBLIC_URL}),
            seed=False,
        )

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        headers = {"Authorization": f"Bearer {self.api_key()}", "Accept": "application/json"}
        return send(
            self._client, self.name, method, self.base_url + path, headers=headers, **kwargs
        )

    def payload(self, request: GenerationRequest) -> dict[str, Any]:
        aspect, resolution = size_labels(self.settings.resolutions)[request.size]
        body: dict[str, Any] = {
            "generation_type": "video",
            "model": request.model,
            "prompt": request.prompt,
            "aspect_ratio": aspect,
            "resolution": resolution,
            "duration": f"{int(request.duration)}s",
            "loop": False,
        }
        if request.mode is Mode.IMAGE_TO_VIDEO:
            body["keyframes"] = {"frame0": {"type": "image", "url": request.image}}
        return body

    def submit(self, request: GenerationRequest, *, key: str | None = None) -> VendorJob:
        body = self.payload(request)
        response = self._call("POST", "/generations/video", json=body, creates_job=True)
        answer = json_object(self.name, response, creates_job=True)
        return VendorJob(backend=self.name, job_id=field(self.name, answer, "id", creates_job=True))

    def find_submitted(
        self, request: GenerationRequest, key: str, sent_at: float
    ) -> VendorJob | None:
        """The one generation created from this request within [sent_at - skew, sent_at +
        request_timeout + skew], paging back through the list (newest first) to the window's
        start.

        Raises:
            AmbiguousSubmitError: two or more match (an identical scene sent at the same
                time), or the window lies beyond the pages read.
        """
        wanted = fingerprint(self.payload(request))
        start = sent_at - CLOCK_SKEW
        end = sent_at + self.settings.request_timeout + CLOCK_SKEW
        found: list[str] = []
        for number in range(LIST_PAGES):
            page, more = self._list_page(number * LIST_LIMIT)
            found += matching(self.name, page, wanted, start, end)
            if not more or not page or created_time(self.name, page[-1]) < start:
                return self._one(found)
        raise AmbiguousSubmitError(
            self.name, f"more than {LIST_PAGES * LIST_LIMIT} generations since the create"
        )

    def _list_page(self, offset: int) -> tuple[list[dict[str, Any]], bool]:
        params = {"limit": LIST_LIMIT, "offset": offset}
        body = json_object(self.name, self._call("GET", "/generations", params=params))
        page = body.get("generations")
        if not isinstance(page, list) or not all(isinstance(g, dict) for g in page):
            raise MalformedResponseError(self.name, "generation list has no generations")
        return page, bool(body.get("has_more"))

    def _one(self, found: list[str]) -> VendorJob | None:
        if len(found) > 1:
            raise AmbiguousSubmitError(
                self.name,
                f"{len(found)} generations match the lost create ({', '.join(found)}): "
                "cannot tell which is ours",
            )
        return VendorJob(backend=self.name, job_id=found[0]) if found else None

    def poll(self, job: VendorJob) -> JobStatus:
        try:
            answer = self._call("GET", f"/generations/{job.job_id}")
        except RejectedInputError as error:
            if error.status_code == 404:  # Luma has no cancel: a deleted generation is gone
                return JobStatus(state=JobState.CANCELLED, vendor_state="deleted")
            raise
        return parse_generation(self.name, json_object(self.name, answer))

    def failure_class(self, status: JobStatus) -> type[BackendError]:
        return failure_class(status.failure_reason)

    def cancel(self, job: VendorJob) -> None:
        with tolerate(404):  # Luma has no cancel; deleting is the only way to stop one
            self._call("DELETE", f"/generations/{job.job_id}")

    def probe(self) -> dict[str, Any]:
        body = json_object(self.name, self._call("GET", "/credits"))
        return {"credit_balance_usd_cents": body.get("credit_balance")}
