"""The one error tree of videogen.

Every failure a caller can act on is one of these; foreign errors (httpx, redis, pydantic,
PyAV) are translated once, at the edge that meets them, and never reach the core::

    VideoGenError
    ├── ConfigError                  config file or environment is wrong (names the key)
    ├── SceneValidationError         a scene is invalid (names the scene and the field)
    ├── CapabilityError              a backend can never take this scene (raised before any HTTP)
    ├── NoBackendAvailableError      no enabled, healthy, capable backend is left for a scene
    ├── StoreUnavailableError        Redis cannot be reached (names the URL, never a password)
    ├── StackError                   ``videogen up`` cannot start or keep one of its processes
    ├── MissingExtraError            an optional part is not installed (names the pip line)
    ├── WebhookSignatureError        a webhook's signature does not verify (for receivers)
    ├── UnknownJobError              no job has this id (names it)
    ├── JobControlError              a cancel or retry cannot be done as asked (names the scene)
    ├── UnknownSceneError            a job has no scene with this id (names both)
    ├── NoVideoError                 a scene has no video to fetch (not succeeded, or gone)
    ├── InvalidRequestError          an HTTP API request is malformed (names the field)
    ├── APIAccessError               the HTTP API refused the caller
    │   ├── APIAuthError             no token, or not a known one (401)
    │   └── APIScopeError            a read-only token asked for a write (403)
    ├── FilmError                    a job's film cannot be made (bad options, a part or the
    │   │                            result is not a usable video)
    │   └── MissingScenesError       scenes did not succeed (lists index, id, state, reason)
    └── BackendError                 something went wrong talking to one backend
        ├── TransientBackendError    retry on the same backend, with backoff
        │   ├── RateLimitedError         429; carries ``retry_after``
        │   └── BackendUnavailableError  5xx, connection refused, timeouts on safe requests
        ├── AuthError                401/403: this backend is unusable until its key is fixed
        ├── RejectedInputError       the vendor refused the request (400/404/422, not policy)
        │   └── ModelUnavailableError    the vendor no longer serves the configured model
        ├── ContentPolicyError       moderation refused the scene: never retried elsewhere
        ├── GenerationFailedError    the vendor ran the job and it failed on its side
        ├── JobCancelledError        the vendor job was cancelled
        ├── MalformedResponseError   the vendor answered something we cannot parse
        ├── InvalidOutputError       the output is not a video, too large, or at a refused URL
        ├── VendorUnknownError       the vendor did not answer about a job for its grace
        └── AmbiguousSubmitError     a create request left and no answer came back

Each ``BackendError`` says what the caller should do next through :attr:`BackendError.action`,
so the failover policy reads one attribute instead of matching classes.
"""

from __future__ import annotations

from enum import StrEnum


class Action(StrEnum):
    """What the pipeline should do after a backend error."""

    RETRY_SAME = "retry_same"
    """Transient: try the same backend again after a backoff."""
    FAILOVER = "failover"
    """This backend failed the scene: re-route to the next backend not yet tried."""
    FAIL_SCENE = "fail_scene"
    """The scene itself is at fault: no backend should be tried."""
    RESOLVE = "resolve"
    """The outcome is unknown: never resubmit blindly, look for the vendor job first."""


class VideoGenError(Exception):
    """Root of every error videogen raises on purpose."""


class ConfigError(VideoGenError):
    """The configuration is invalid; the message names the key at fault."""


class SceneValidationError(VideoGenError):
    """A scene is invalid; nothing of its file was enqueued.

    Attributes:
        problems: ``(scene label, field, message)`` for every problem found.
    """

    def __init__(self, problems: list[tuple[str, str, str]]) -> None:
        self.problems = problems
        lines = [f"{scene}: {field}: {message}" for scene, field, message in problems]
        super().__init__("invalid scenes:\n  " + "\n  ".join(lines))


class InvalidPriorityError(VideoGenError, ValueError):
    """A job's priority is outside the allowed range; nothing was enqueued."""


class CapabilityError(VideoGenError):
    """A backend can never take this scene (wrong mode, prompt too long, needs a public URL)."""

    def __init__(self, backend: str, reason: str) -> None:
        self.backend = backend
        self.reason = reason
        super().__init__(f"{backend} cannot take this scene: {reason}")


class NoBackendAvailableError(VideoGenError):
    """No enabled, healthy, capable backend remains for a scene."""


class StoreUnavailableError(VideoGenError):
    """Redis cannot be reached; the message names the URL (without its password) and why."""


class JobControlError(VideoGenError):
    """A cancel or retry that cannot be done as asked (unknown job or scene, wrong state)."""


class StackError(VideoGenError):
    """``videogen up`` could not start a process, or one kept crashing; names it and its log."""


class MissingExtraError(VideoGenError):
    """An optional part of videogen is used but its extra is not installed.

    Attributes:
        extra: the extra to install (``sandbox``).
    """

    def __init__(self, extra: str, needed_by: str, missing: str) -> None:
        super().__init__(
            f"{needed_by} need {missing}, which is not installed: pip install 'videogen[{extra}]'"
        )
        self.extra = extra


class WebhookSignatureError(VideoGenError):
    """A webhook delivery's ``Videogen-Signature`` does not verify: malformed, outside the
    replay window, or no match for the body (:func:`videogen.webhooks.verify`)."""


class UnknownJobError(VideoGenError):
    """No job has this id (never submitted, or its keys are gone).

    Attributes:
        job_id: the id asked for.
    """

    def __init__(self, job_id: str) -> None:
        self.job_id = job_id
        super().__init__(f"no job {job_id!r}")


class UnknownSceneError(VideoGenError):
    """A job has no scene with this id.

    Attributes:
        job_id: the job asked about.
        scene_id: the scene asked for.
    """

    def __init__(self, job_id: str, scene_id: str) -> None:
        self.job_id = job_id
        self.scene_id = scene_id
        super().__init__(f"job {job_id} has no scene {scene_id!r}")


class NoVideoError(VideoGenError):
    """A scene has no video to fetch: it has not succeeded, or its file is gone."""


class InvalidRequestError(VideoGenError):
    """An HTTP API request is malformed outside its scenes (a bad option, a body that is not
    JSON); the message names the field. Nothing was enqueued."""


class APIAccessError(VideoGenError):
    """The HTTP API refused the caller; the message never repeats the token presented."""


class APIAuthError(APIAccessError):
    """No bearer token, or one that matches no configured token."""


class APIScopeError(APIAccessError):
    """The token is valid but read-only, and the request would change something."""


class FilmError(VideoGenError):
    """A job's film cannot be made: an option does not fit its parts (a crossfade longer than
    half a part), a part is not a usable video, or the result failed its check.

    Attributes:
        job_id: the job whose film it was.
    """

    def __init__(self, job_id: str, message: str) -> None:
        self.job_id = job_id
        super().__init__(f"film of job {job_id}: {message}")


class MissingScenesError(FilmError):
    """Scenes of the job did not succeed (failed, cancelled or not finished yet), and the film
    was asked for without ``skip_failed`` (or none succeeded at all).

    Attributes:
        missing: ``(index, scene id, state, reason)`` of every scene left out.
        none_left: True when no scene succeeded, so not even ``skip_failed`` helps.
    """

    def __init__(
        self, job_id: str, missing: list[tuple[int, str, str, str]], none_left: bool
    ) -> None:
        self.missing = missing
        self.none_left = none_left
        lines = "\n  ".join(f"#{i} {sid} {state}: {why}" for i, sid, state, why in missing)
        hint = (
            "no scene succeeded, so there is nothing to stitch"
            if none_left
            else f"make it of the others with `videogen film {job_id} -o OUT --skip-failed`"
        )
        count = f"{len(missing)} scene{'' if len(missing) == 1 else 's'}"
        super().__init__(job_id, f"{count} did not succeed:\n  {lines}\n{hint}")


class BackendError(VideoGenError):
    """A failure talking to one backend.

    Attributes:
        backend: the backend's name (``runway``, ``luma``...).
        status_code: the HTTP status, when there was an answer.
        retry_after: seconds the vendor asked us to wait, when it said so.
        vendor_code: the vendor's own failure code (``SAFETY.INPUT.TEXT``...).
    """

    action: Action = Action.FAILOVER

    def __init__(
        self,
        backend: str,
        message: str,
        *,
        status_code: int | None = None,
        retry_after: float | None = None,
        vendor_code: str | None = None,
    ) -> None:
        self.backend = backend
        self.message = message
        self.status_code = status_code
        self.retry_after = retry_after
        self.vendor_code = vendor_code
        super().__init__(f"{backend}: {message}")

    @property
    def retryable(self) -> bool:
        """True when the same backend may be tried again."""
        return self.action is Action.RETRY_SAME


class TransientBackendError(BackendError):
    """Retry on the same backend with backoff."""

    action = Action.RETRY_SAME


class RateLimitedError(TransientBackendError):
    """HTTP 429: wait ``retry_after`` seconds (or a backoff) before the next request."""


class BackendUnavailableError(TransientBackendError):
    """5xx, refused connection or timed-out safe request."""


class AuthError(BackendError):
    """The key was refused (401/403)."""


class RejectedInputError(BackendError):
    """The vendor refused the request as invalid: another backend may accept it."""


class ModelUnavailableError(RejectedInputError):
    """The vendor answers that the configured model does not exist (Veo: a 404 on create for
    a retired model id). Final for this backend until its config names another model: the
    scene goes elsewhere and is never retried here."""


class ContentPolicyError(BackendError):
    """The vendor's moderation refused the scene; never retried on another backend."""

    action = Action.FAIL_SCENE


class GenerationFailedError(BackendError):
    """The vendor ran the job and failed it on its side."""


class JobCancelledError(BackendError):
    """The vendor job was cancelled."""


class MalformedResponseError(BackendError):
    """The vendor's answer could not be parsed."""


class InvalidOutputError(BackendError):
    """The output is not a playable video, too large, or at a refused URL."""


class VendorUnknownError(BackendError):
    """A running vendor job went unanswered for the backend's ``unknown_grace``: its scene
    fails over, and the job is kept as an orphan (it may still run, and be billed)."""


class AmbiguousSubmitError(BackendError):
    """The create request was sent but no answer came back: a vendor job may exist."""

    action = Action.RESOLVE


class CrashLoopError(BackendError):
    """A scene's generate task kept starting without ending (it kills its worker): the
    pipeline stops running it there."""


class UnfitBackendError(BackendError):
    """At generate time the backend can no longer take the scene (its config changed since
    routing): another backend may."""


class LeaseLostError(VideoGenError):
    """Another worker took over this scene's slot (ours had expired): this worker leaves the
    scene alone. Internal to the generation step."""
