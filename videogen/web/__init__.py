"""The versioned HTTP API (``videogen api``): FastAPI over :class:`videogen.api.VideoGenerator`.

A thin edge: each route authorises, calls the Python API, and shapes the answer; errors are
the CLI's (same class names, same messages) as JSON. The modules:

- :mod:`.app`: :func:`create_app` (the routes under ``/v1``, the OpenAPI document);
- :mod:`.auth`: bearer tokens, scopes, and the refusal to listen beyond loopback without them;
- :mod:`.problems`: which error answers with which status;
- :mod:`.schemas`: request and response models (what the OpenAPI document shows);
- :mod:`.events`: the server-sent-events stream of a job's scene events.

Needs the ``api`` extra (FastAPI, sse-starlette, uvicorn); nothing else imports this package.
"""

from .app import create_app

__all__ = ["create_app"]
