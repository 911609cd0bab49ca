"""Errors as HTTP answers: one table from error class to status, one JSON shape.

The body is ``{"error": <class name>, "message": <the CLI's message>}``, plus ``problems``
(scene, field, message) for invalid scenes. Anything not a :class:`VideoGenError` is a 500
that says nothing of its cause (the log has it).
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from ..errors import (
    APIAuthError,
    APIScopeError,
    ConfigError,
    FilmError,
    InvalidPriorityError,
    InvalidRequestError,
    JobControlError,
    NoVideoError,
    SceneValidationError,
    StoreUnavailableError,
    UnknownJobError,
    UnknownSceneError,
    VideoGenError,
)

log = logging.getLogger(__name__)

STATUS: list[tuple[type[VideoGenError], int]] = [
    (SceneValidationError, 422),
    (InvalidRequestError, 422),
    (InvalidPriorityError, 422),
    (ConfigError, 422),  # a job's options (``job_options``): the request's fault
    (UnknownJobError, 404),
    (UnknownSceneError, 404),
    (NoVideoError, 409),
    (JobControlError, 409),
    (FilmError, 409),
    (APIAuthError, 401),
    (APIScopeError, 403),
    (StoreUnavailableError, 503),
]
"""Error class -> HTTP status; the first match wins, anything else is 500."""


def status_of(error: VideoGenError) -> int:
    return next((status for cls, status in STATUS if isinstance(error, cls)), 500)


def body_of(error: VideoGenError) -> dict[str, Any]:
    body: dict[str, Any] = {"error": type(error).__name__, "message": str(error)}
    if isinstance(error, SceneValidationError):
        body["problems"] = [
            {"scene": scene, "field": field, "message": message}
            for scene, field, message in error.problems
        ]
    return body


def error_response(error: VideoGenError) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if isinstance(error, APIAuthError) else None
    return JSONResponse(body_of(error), status_code=status_of(error), headers=headers)


def request_error(error: RequestValidationError) -> InvalidRequestError:
    """FastAPI's validation of a request (outside the scenes, which are checked by the same
    code as the CLI's) as one of ours, naming each field."""
    parts = []
    for item in error.errors():
        where = ".".join(str(p) for p in item["loc"] if p != "body") or "(body)"
        parts.append(f"{where}: {item['msg']}")
    return InvalidRequestError("invalid request: " + "; ".join(parts))


def install(app: FastAPI) -> None:
    """Answer every error in the one JSON shape."""

    async def ours(_: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, VideoGenError)
        return error_response(error)

    async def invalid(_: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, RequestValidationError)
        return error_response(request_error(error))

    async def http(_: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, HTTPException)
        body = {"error": "HTTPError", "message": str(error.detail)}
        return JSONResponse(body, status_code=error.status_code)

    async def unexpected(_: Request, error: Exception) -> JSONResponse:
        log.error("API request failed: %s", type(error).__name__, exc_info=error)
        body = {"error": "InternalError", "message": "internal error; see the API's log"}
        return JSONResponse(body, status_code=500)

    app.add_exception_handler(VideoGenError, ours)
    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(HTTPException, http)
    app.add_exception_handler(Exception, unexpected)
