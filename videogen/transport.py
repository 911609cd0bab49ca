"""The one HTTP edge: every httpx call of every adapter goes through :func:`send`.

It maps transport errors and HTTP statuses to the error tree once (as httpx maps httpcore's,
and the Stainless SDKs map statuses), parses ``Retry-After``, and extracts the vendor's own
error text and code from whichever body shape the vendor uses. Nothing above this module sees
an ``httpx`` exception.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import httpx

from .constants import ERROR_TEXT_MAX_CHARS, HTTP_CONNECT_TIMEOUT_SECONDS
from .errors import (
    AmbiguousSubmitError,
    AuthError,
    BackendError,
    BackendUnavailableError,
    ContentPolicyError,
    MalformedResponseError,
    RateLimitedError,
    RejectedInputError,
)
from .retry import parse_retry_after

T = TypeVar("T")

POLICY_CODES = frozenset(
    {
        "content_policy_violation",
        "content_moderation",
        "content_moderated",
        "DataInspectionFailed",  # DashScope's content filter (Wan)
    }
)
"""Vendor error types that mean the scene's content was refused."""
POLICY_MARKERS = ("SensitiveContentDetected",)
"""Parts of vendor error codes that mean the same (Ark's ``InputTextSensitiveContentDetected``,
``OutputVideoSensitiveContentDetected.PolicyViolation``...)."""
ACCOUNT_CODES = frozenset(
    {"Arrearage", "AccessDenied.Unpurchased", "ModelNotOpen", "QuotaExceeded"}
)
"""Vendor codes that mean the account cannot use the model until someone acts (DashScope's
overdue account or unpurchased model, Ark's model not activated or free quota spent), whatever
the status (Ark sends ``QuotaExceeded`` as a 429): the backend is unusable, not busy."""

_NEVER_SENT = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.UnsupportedProtocol,
)
"""Errors raised before any byte of the request left: always safe to try again."""

Codes = Mapping[str, type[BackendError]]
"""A vendor's own error codes and the error each stands for, whatever the HTTP status says
(Kling answers 429 both for a rate limit and for an unpaid bill, told apart by the code)."""


def make_client(timeout: float, *, verify: bool = True) -> httpx.Client:
    """An httpx client with our timeouts; redirects are not followed unless a caller asks."""
    return httpx.Client(
        timeout=httpx.Timeout(timeout, connect=min(timeout, HTTP_CONNECT_TIMEOUT_SECONDS)),
        follow_redirects=False,
        verify=verify,
    )


def send(
    client: httpx.Client,
    backend: str,
    method: str,
    url: str,
    *,
    creates_job: bool = False,
    codes: Codes | None = None,
    **kwargs: Any,
) -> httpx.Response:
    """One attempt at one request; HTTP errors (>= 400) and transport errors are raised as ours.

    Args:
        creates_job: the request may start a paid job, so a lost answer is ambiguous
            (:class:`AmbiguousSubmitError`) rather than simply retryable.
        codes: the vendor's error codes that decide the error's class (:data:`Codes`).
    """
    try:
        response = client.request(method, url, **kwargs)
    except httpx.HTTPError as error:
        raise transport_error(backend, error, creates_job=creates_job) from None
    if response.status_code >= 400:
        secrets = credentials(kwargs.get("headers"))
        raise status_error(backend, response, secrets=secrets, codes=codes)
    return response


_CREDENTIAL_HEADERS = ("authorization", "x-api-key", "x-goog-api-key", "api-key")


def credentials(headers: Any) -> tuple[str, ...]:
    """The secret parts of our own request headers, to scrub from anything a vendor echoes."""
    found = []
    for name, value in dict(headers or {}).items():
        if name.lower() in _CREDENTIAL_HEADERS and value:
            found.append(str(value))
            found.append(str(value).split(" ", 1)[-1])  # the token after "Bearer"/"Key"
    return tuple(s for s in found if len(s) >= 8)


def redact(text: str, secrets: tuple[str, ...]) -> str:
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


def transport_error(backend: str, error: httpx.HTTPError, *, creates_job: bool) -> BackendError:
    """Map an httpx transport error; the URL is named but never a header (keys live there)."""
    kind = type(error).__name__
    if isinstance(error, _NEVER_SENT) or not creates_job:
        return BackendUnavailableError(backend, f"{kind} talking to the backend")
    return AmbiguousSubmitError(
        backend, f"{kind} after the create request was sent: a vendor job may exist"
    )


def status_error(
    backend: str,
    response: httpx.Response,
    *,
    secrets: tuple[str, ...] = (),
    codes: Codes | None = None,
) -> BackendError:
    """The error for an HTTP status >= 400, with the vendor's text, code and Retry-After.

    A vendor that echoes our request back (some proxies do) would put our key in the text:
    ``secrets`` are scrubbed from it. ``codes``: the vendor's codes that decide the class.
    """
    message, code = error_detail(response)
    message = redact(message, secrets)
    retry_after = _retry_after(response)
    cls = (codes or {}).get(code or "") or classify_status(
        response.status_code, code, response.headers.get("x-fal-retryable")
    )
    text = f"HTTP {response.status_code}: {message}" if message else f"HTTP {response.status_code}"
    if codes is not None and code:
        text += f" (code {code})"
    return cls(
        backend,
        text,
        status_code=response.status_code,
        retry_after=retry_after,
        vendor_code=code,
    )


def send_coded(
    client: httpx.Client,
    backend: str,
    method: str,
    url: str,
    *,
    codes: Codes,
    refusal: Callable[[dict[str, Any]], tuple[str, str] | None],
    creates_job: bool = False,
    **kwargs: Any,
) -> dict[str, Any]:
    """One request to a vendor that speaks in codes (Kling, MiniMax): the answer's JSON object.
    An HTTP error is classed by ``codes``; so is a successful answer in which ``refusal`` finds
    a code and its message (it says the request was refused all the same)."""
    response = send(client, backend, method, url, creates_job=creates_job, codes=codes, **kwargs)
    body = json_object(backend, response, creates_job=creates_job)
    refused = refusal(body)
    if refused is not None:
        code, message = refused
        secrets = credentials(kwargs.get("headers"))
        raise answer_error(backend, response, code, message, codes, secrets=secrets)
    return body


def answer_error(
    backend: str,
    response: httpx.Response,
    code: str,
    message: str,
    codes: Codes,
    *,
    secrets: tuple[str, ...] = (),
) -> BackendError:
    """The error a vendor reports inside an answer whose HTTP status says success (MiniMax's
    ``base_resp``, Kling's ``code``): classed by ``codes`` (an unknown code: the request was
    refused), with the answer's Retry-After. It carries no HTTP status: there was none."""
    cls = codes.get(code, RejectedInputError)
    text = f"{redact(_cut(message), secrets) or 'refused'} (code {code})"
    return cls(backend, text, retry_after=_retry_after(response), vendor_code=code)


def _retry_after(response: httpx.Response) -> float | None:
    return parse_retry_after(
        response.headers.get("retry-after"), milliseconds=response.headers.get("retry-after-ms")
    )


def classify_status(
    status: int, vendor_code: str | None = None, retryable_header: str | None = None
) -> type[BackendError]:
    """The error class for an HTTP status (pure; tested as a table)."""
    if vendor_code and is_policy_code(vendor_code):
        return ContentPolicyError
    if vendor_code in ACCOUNT_CODES:
        return AuthError
    if status == 429:
        return RateLimitedError
    if status in (401, 403):
        return AuthError
    if status == 408 or status >= 500 or retryable_header == "true":
        return BackendUnavailableError
    return RejectedInputError


def is_policy_code(code: str) -> bool:
    """Whether a vendor error code means the content was refused (pure)."""
    return (
        code in POLICY_CODES
        or code.startswith("SAFETY")
        or any(marker in code for marker in POLICY_MARKERS)
    )


def error_detail(response: httpx.Response) -> tuple[str, str | None]:
    """The vendor's error text and machine code, from any of the body shapes vendors use.

    Runway ``{"error": "..."}``; Luma ``{"detail": "..."}``; fal ``{"detail": [{"msg", "type"}]}``
    or ``{"detail": "...", "error_type": ...}`` (also ``X-Fal-Error-Type``); ComfyUI
    ``{"error": {"type", "message", "details"}}``; Kling ``{"code": 1102, "message": "..."}``;
    MiniMax ``{"base_resp": {"status_code": 1004, "status_msg": "..."}}``.
    """
    code = response.headers.get("x-fal-error-type")
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return _cut(response.text), code
    if not isinstance(body, dict):
        return _cut(str(body)), code
    message, body_code = _detail_from(body)
    return _cut(message), body_code or code


def _detail_from(body: dict[str, Any]) -> tuple[str, str | None]:
    code = body.get("error_type") or body.get("failure_code")
    error = body.get("error")
    if isinstance(error, dict):
        text = " ".join(str(error.get(k, "")) for k in ("message", "details")).strip()
        # Google's is {"code": 429, "status": "RESOURCE_EXHAUSTED"}: the status is the word.
        found = code or error.get("status") or error.get("code") or error.get("type")
        return text, None if found is None else str(found)
    if isinstance(error, str):
        return error, code
    if isinstance(body.get("message"), str) and isinstance(body.get("code"), str):
        return body["message"], code or body["code"]
    detail = body.get("detail")
    if isinstance(detail, list) and detail and isinstance(detail[0], dict):
        first = detail[0]
        where = ".".join(str(p) for p in first.get("loc", []))
        return f"{where}: {first.get('msg', '')}".strip(": "), code or first.get("type")
    if detail is not None:
        return str(detail), code
    coded = _coded(body)
    if coded is not None:
        return coded[0], code or coded[1]
    return json.dumps(body)[:ERROR_TEXT_MAX_CHARS], code


def _coded(body: dict[str, Any]) -> tuple[str, str] | None:
    """``(message, code)`` of a vendor that answers with a numeric code and its text."""
    base = body.get("base_resp")
    if isinstance(base, dict) and base.get("status_code") is not None:  # MiniMax
        return str(base.get("status_msg") or ""), str(base["status_code"])
    if body.get("code") is not None and isinstance(body.get("message"), str):  # Kling
        return body["message"], str(body["code"])
    return None


def _cut(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= ERROR_TEXT_MAX_CHARS else text[: ERROR_TEXT_MAX_CHARS - 1] + "…"


def _malformed(backend: str, message: str, creates_job: bool) -> BackendError:
    """An unreadable answer; to a create request it is ambiguous: the job may exist."""
    if creates_job:
        return AmbiguousSubmitError(backend, f"{message}, after the create request was sent")
    return MalformedResponseError(backend, message)


def json_object(
    backend: str, response: httpx.Response, *, creates_job: bool = False
) -> dict[str, Any]:
    """The body as a JSON object, or :class:`MalformedResponseError`."""
    where = f"{response.request.method} {response.url.path}"
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise _malformed(backend, f"answer to {where} is not JSON", creates_job) from None
    if not isinstance(body, dict):
        raise _malformed(backend, f"answer to {where} is not an object", creates_job)
    return body


def mapped_state(
    backend: str, body: dict[str, Any], key: str, states: Mapping[str, T], what: str
) -> tuple[str, T]:
    """The vendor's word at ``body[key]`` and ours for it (``states``), or
    :class:`MalformedResponseError` naming the unknown ``what`` (``task status``...)."""
    word = field(backend, body, key)
    state = states.get(word)
    if state is None:
        raise MalformedResponseError(backend, f"unknown {what} {word!r}")
    return word, state


def field(
    backend: str,
    body: dict[str, Any],
    key: str,
    kind: type | tuple[type, ...] = str,
    *,
    creates_job: bool = False,
) -> Any:
    """``body[key]`` checked for type, or :class:`MalformedResponseError` naming the key."""
    value = body.get(key)
    if not isinstance(value, kind) or value == "":
        raise _malformed(backend, f"answer has no valid {key!r}", creates_job)
    return value


Sleep = Callable[[float], None]
Clock = Callable[[], float]
