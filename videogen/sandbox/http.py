"""HTTP plumbing shared by every vendor sandbox: auth, faults, records, errors, files, control.

A vendor module describes itself with a :class:`Vendor` (auth scheme, error body shape, extra header
checks) and writes short handlers that take a :class:`Call`. :func:`vendor_route` wraps each handler
so that every vendor request goes through the same steps, in the order a real API applies them::

    outage (503) -> auth (401) -> vendor precheck (Runway's version header) -> injected HttpFault
    -> body must be JSON -> the handler -> maybe a malformed answer -> record the request

Control routes (``/__sandbox__/...``) bypass all of it: tests and the demo drive them without vendor
keys.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import math
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from json import JSONDecodeError
from typing import Any
from urllib.parse import urlparse

from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from videogen.sandbox.state import HttpFault, Job, Phase, SandboxState

CONTROL_PREFIX = "/__sandbox__"
FILES_PATH = CONTROL_PREFIX + "/files/{job_id}.mp4"

# Runway's documented limit for data URIs; the sandbox applies it to every vendor.
MAX_DATA_URI_BYTES = 5 * 1024 * 1024
_DATA_URI = re.compile(r"^data:image/(png|jpeg|jpg|webp|gif);base64,(.+)$", re.DOTALL)
_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
_STATUS_MESSAGES = {
    429: "Too many requests. Please slow down.",
    500: "Internal server error.",
    502: "Bad gateway.",
    503: "Service unavailable: the sandbox is shedding load.",
    504: "Gateway timeout.",
}
_FAKE_VIDEO_PAGE = (
    "<!doctype html><html><head><title>Access denied</title></head><body>Denied</body></html>"
)

ErrorFactory = Callable[[int, str], Response]
CodedErrorFactory = Callable[[int, str, str], Response]
AuthCheck = Callable[[Request, SandboxState], str | None]


@dataclass(frozen=True)
class Vendor:
    """How one vendor authenticates and shapes its errors."""

    name: str
    error: ErrorFactory
    """Builds the vendor's error response for a status and a human-readable message."""
    auth_scheme: str | None = None
    """``Bearer`` or ``Key``: expects ``Authorization: <scheme> <key>``; ``None``: no auth;
    ``""``: the bare key in :attr:`auth_header` (Google's ``x-goog-api-key``)."""
    auth_header: str = "authorization"
    """The header carrying the key."""
    auth: AuthCheck | None = None
    """A check of its own instead (Kling's signed token): why the request's credentials are
    refused, or ``None`` when they are good."""
    precheck: Callable[[Request], Response | None] | None = None
    """An extra check after auth (Runway refuses requests without its version header)."""
    coded_error: CodedErrorFactory | None = None
    """Builds the error for a status, a message and one of the vendor's own codes, for a fault
    that names one (:attr:`HttpFault.code`: Kling's 429 with 1102, a bill, not a rate limit)."""

    @property
    def checks_auth(self) -> bool:
        return self.auth is not None or self.auth_scheme is not None

    def without_auth(self) -> Vendor:
        """The same vendor for its file host, which needs no key (like a pre-signed CDN URL)."""
        return replace(self, auth_scheme=None, auth=None, precheck=None)


@dataclass
class Call:
    """One vendor request as a handler sees it."""

    request: Request
    state: SandboxState
    body: Any = None
    """The parsed JSON body, or ``None``."""
    record_body: Any = None
    """What the records keep of the body; handlers of non-JSON bodies set a summary here."""

    @property
    def root(self) -> str:
        """The sandbox's own origin as the client addressed it, e.g. ``https://127.0.0.1:8443``."""
        return f"{self.request.url.scheme}://{self.request.url.netloc}"

    def param(self, name: str) -> str:
        return str(self.request.path_params[name])

    def file_url(self, job_id: str) -> str:
        return self.root + FILES_PATH.format(job_id=job_id)


Handler = Callable[[Call], Awaitable[Response]]
OpChooser = str | Callable[[Call], str]


def vendor_route(
    vendor: Vendor,
    state: SandboxState,
    path: str,
    handler: Handler,
    *,
    methods: list[str],
    op: OpChooser,
) -> Route:
    """A route that applies auth, faults, malformed answers and records around ``handler``.

    Args:
        vendor: Auth and error shape.
        state: The sandbox's state.
        path: Starlette path pattern.
        handler: Builds the vendor's answer.
        methods: HTTP methods.
        op: The request's kind for faults (``create``, ``poll``...), or a function of the call.
    """

    async def endpoint(request: Request) -> Response:
        at = state.now()
        body, json_ok = await _read_json(request)
        call = Call(request=request, state=state, body=body, record_body=body)
        problem = _auth_problem(vendor, state, request)
        auth_ok = problem is None if vendor.checks_auth else None
        kind = op(call) if callable(op) else op
        response = await _answer(vendor, call, kind, handler, auth=problem, json_ok=json_ok)
        state.record_request(
            at=at,
            method=request.method,
            path=request.url.path,
            query=dict(request.query_params),
            auth_ok=auth_ok,
            body=call.record_body,
            status=response.status_code,
            op=kind,
        )
        return response

    return Route(path, endpoint, methods=methods)


async def _read_json(request: Request) -> tuple[Any, bool]:
    """The body parsed as JSON (unless multipart or empty); ``(None, False)`` if unparsable."""
    content_type = request.headers.get("content-type", "")
    if request.method in ("GET", "HEAD") or "multipart/" in content_type:
        return None, True
    raw = await request.body()
    if not raw.strip():
        return None, True
    try:
        return await request.json(), True
    except (JSONDecodeError, UnicodeDecodeError):
        return None, False


def _auth_problem(vendor: Vendor, state: SandboxState, request: Request) -> str | None:
    """Why the request's credentials are refused; ``None``: accepted (or none are needed)."""
    if vendor.auth is not None:
        return vendor.auth(request, state)
    if vendor.auth_scheme is None:
        return None
    scheme = vendor.auth_scheme
    expected = (f"{scheme} {state.api_key}" if scheme else str(state.api_key)).encode()
    if hmac.compare_digest(request.headers.get(vendor.auth_header, "").encode(), expected):
        return None
    return "Invalid or missing API key."


async def _answer(
    vendor: Vendor, call: Call, op: str, handler: Handler, *, auth: str | None, json_ok: bool
) -> Response:
    refusal = _refusal(vendor, call, op, auth=auth, json_ok=json_ok)
    if refusal is not None:
        return refusal
    response = await handler(call)
    if call.state.take_malformed(op):
        return _malformed(response)
    return response


def _refusal(
    vendor: Vendor, call: Call, op: str, *, auth: str | None, json_ok: bool
) -> Response | None:
    """The answer that pre-empts the handler, if any, in the order a real API applies them
    (``auth``: why the credentials are refused, if they are)."""
    state = call.state
    if state.knobs.outage:
        return vendor.error(503, _STATUS_MESSAGES[503])
    if auth is not None:
        return vendor.error(401, auth)
    if vendor.precheck is not None and (refused := vendor.precheck(call.request)) is not None:
        return refused
    fault = state.take_fault(op)
    if fault is not None:
        return _fault_response(vendor, fault)
    if not json_ok:
        return vendor.error(400, "Request body is not valid JSON.")
    return None


def _fault_response(vendor: Vendor, fault: HttpFault) -> Response:
    """The vendor's error for an injected fault (with its own code, where the fault names one
    and the vendor has codes), with ``Retry-After`` in whole seconds if set."""
    message = _STATUS_MESSAGES.get(fault.status, "Injected sandbox fault.")
    if fault.code is not None and vendor.coded_error is not None:
        response = vendor.coded_error(fault.status, message, fault.code)
    else:
        response = vendor.error(fault.status, message)
    if fault.retry_after is not None:
        response.headers["Retry-After"] = str(math.ceil(fault.retry_after))
    return response


def _malformed(response: Response) -> Response:
    """Status 200 and the first half of the real answer: valid-looking, unparsable JSON."""
    body = bytes(response.body)
    cut = body[: max(2, len(body) // 2)] if len(body) >= 4 else b'{"'
    return Response(cut, status_code=200, media_type="application/json")


# -- shared answers --------------------------------------------------------------------------------
def json_error(
    status: int, body: dict[str, Any], headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(body, status_code=status, headers=headers)


def empty(status: int = 204) -> Response:
    return Response(status_code=status)


async def create_delay(state: SandboxState) -> None:
    """Hold a create's answer back for ``Knobs.create_delay`` seconds (the job already exists)."""
    if state.knobs.create_delay > 0:
        await asyncio.sleep(state.knobs.create_delay)


def iso_timestamp(state: SandboxState, clock_time: float) -> str:
    """``2026-01-01T12:00:00.000Z`` for a time on the state's clock."""
    return state.wall_time(clock_time).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


async def video_response(
    state: SandboxState,
    job: Job,
    render: Callable[[], bytes] | None = None,
    media_type: str = "video/mp4",
) -> Response:
    """The job's video (encoded off the event loop), or the fake ``Knobs.fake_video`` asks for."""
    fake = state.knobs.fake_video
    if fake == "html":
        return HTMLResponse(_FAKE_VIDEO_PAGE)
    if fake == "empty":
        return Response(b"", media_type=media_type)
    data = await run_in_threadpool(render or (lambda: state.video_bytes(job)))
    return Response(data, media_type=media_type, headers={"X-Content-Type-Options": "nosniff"})


def file_route(vendor: Vendor, state: SandboxState) -> Route:
    """``GET /__sandbox__/files/{job_id}.mp4``: where Runway, Luma and fal outputs download from."""

    async def serve(call: Call) -> Response:
        job = state.get_job(call.param("job_id"))
        if job is None or job.phase(state.now()) is not Phase.SUCCEEDED:
            return vendor.error(404, "File not found.")
        return await video_response(state, job)

    return vendor_route(
        vendor.without_auth(), state, FILES_PATH, serve, methods=["GET"], op="download"
    )


def image_ref_problem(value: Any, *, extra_schemes: tuple[str, ...] = ()) -> str | None:
    """Why an image reference (URL or data URI) is unacceptable, or ``None`` if it is fine.

    HTTPS URLs and ``data:image/...;base64,`` URIs are accepted as the vendors do; plain HTTP only
    for loopback hosts, so that tests can serve images locally.
    """
    if not isinstance(value, str) or not value:
        return "Expected a non-empty string."
    if value.startswith("data:"):
        return _data_uri_problem(value)
    parsed = urlparse(value)
    if parsed.scheme in extra_schemes or parsed.scheme == "https":
        return None if parsed.netloc or parsed.scheme in extra_schemes else "Invalid URL."
    if parsed.scheme == "http":
        return None if parsed.hostname in _LOOPBACK_HOSTS else "Only HTTPS URLs are allowed."
    return "Invalid URL."


def _data_uri_problem(value: str) -> str | None:
    if len(value) > MAX_DATA_URI_BYTES:
        return "Data URI is too large (max 5 MB)."
    match = _DATA_URI.match(value)
    if match is None:
        return "Invalid data URI."
    try:
        base64.b64decode(match.group(2), validate=True)
    except (binascii.Error, ValueError):
        return "Invalid data URI."
    return None


# -- control routes --------------------------------------------------------------------------------
def control_routes(state: SandboxState) -> list[Route]:
    """``/__sandbox__/records|knobs|reset|health``: no auth, never faulted, never recorded."""

    async def records(request: Request) -> Response:
        return JSONResponse(state.records())

    async def knobs(request: Request) -> Response:
        if request.method == "GET":
            return JSONResponse(state.knobs.model_dump(mode="json"))
        try:
            partial = await request.json()
            updated = state.set_knobs(**partial)
        except (JSONDecodeError, TypeError) as exc:
            return JSONResponse({"detail": f"Expected a JSON object: {exc}"}, status_code=400)
        except ValidationError as exc:
            return JSONResponse(
                {"detail": exc.errors(include_url=False, include_context=False)}, status_code=422
            )
        return JSONResponse(updated.model_dump(mode="json"))

    async def reset(request: Request) -> Response:
        state.reset()
        return JSONResponse({"reset": True})

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok", "backend": state.name})

    return [
        Route(CONTROL_PREFIX + "/records", records, methods=["GET"]),
        Route(CONTROL_PREFIX + "/knobs", knobs, methods=["GET", "POST"]),
        Route(CONTROL_PREFIX + "/reset", reset, methods=["POST"]),
        Route(CONTROL_PREFIX + "/health", health, methods=["GET"]),
    ]
