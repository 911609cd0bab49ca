"""The web dashboard: server-rendered pages (Jinja2) over the same :class:`VideoGenerator`
as the API, with a little JavaScript (``static/live.js``) for the live parts.

Pages log in with an API token kept in an HttpOnly, SameSite=Strict cookie (so another site
can neither read it nor make the browser send it with a form); the API accepts that cookie
too, so the page's event stream and video player need no token in their URLs. Every form
that changes something needs a full token, as in the API. Nothing is fetched from elsewhere:
the CSS and script are served by this process.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from ..api import VideoGenerator
from ..errors import APIAuthError, SceneValidationError, UnknownJobError, VideoGenError
from . import display, history
from .auth import COOKIE, Token, authorize
from .problems import body_of, status_of
from .uploads import MAX_UPLOAD_BYTES, refuse_server_paths, save_uploads, upload_name

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")
templates.env.filters.update(
    usd=display.usd,
    when=display.when,
    eta=display.eta,
    seconds=display.seconds,
    percent=display.percent,
)
MAX_JOBS_SHOWN = 30
LIVE = ("pending", "routed", "running")


class LoginRequired(Exception):  # noqa: N818 - a redirect, not an error
    """A page asked for without a valid token: answered with a redirect to the login page."""

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.path = path


def viewer(request: Request) -> Token | None:
    """A dependency: the token of the cookie, or a redirect to the login page."""
    try:
        return authorize(request.app.state.tokens, request.cookies.get(COOKIE), write=False)
    except APIAuthError:
        raise LoginRequired(request.url.path) from None


SEE = Depends(viewer)
pages = APIRouter(include_in_schema=False)


def _generator(request: Request) -> VideoGenerator:
    generator: VideoGenerator = request.app.state.generator
    return generator


def render(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
    context.setdefault("auth", bool(request.app.state.tokens))
    context.setdefault("now", time.time())
    return templates.TemplateResponse(request, name, context, status_code=status)


def error_page(request: Request, error: VideoGenError) -> HTMLResponse:
    return render(request, "error.html", status_of(error), error=body_of(error))


def login_redirect(_: Request, error: Exception) -> Response:
    assert isinstance(error, LoginRequired)
    return RedirectResponse(f"/login?next={quote(error.path)}", status_code=303)


def safe_next(target: str | None) -> str:
    """Only a path on this site (``/jobs``), never ``//elsewhere`` or a full URL."""
    if target and target.startswith("/") and not target.startswith("//"):
        return target
    return "/jobs"


# -- login -----------------------------------------------------------------------------------


@pages.get("/login", response_class=HTMLResponse)
def login_page(request: Request, next: str = "/jobs") -> HTMLResponse:  # noqa: A002
    return render(request, "login.html", next=safe_next(next))


@pages.post("/login", response_model=None)
def log_in(
    request: Request,
    token: Annotated[str, Form()],
    next: Annotated[str, Form()] = "/jobs",  # noqa: A002
) -> Response:
    try:
        authorize(request.app.state.tokens, token.strip(), write=False)
    except APIAuthError as error:
        return render(request, "login.html", 401, next=safe_next(next), error=str(error))
    response = RedirectResponse(safe_next(next), status_code=303)
    response.set_cookie(
        COOKIE,
        token.strip(),
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        max_age=7 * 86400,
    )
    return response


@pages.post("/logout")
def log_out() -> RedirectResponse:
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE)
    return response


# -- jobs ------------------------------------------------------------------------------------


@pages.get("/", dependencies=[SEE])
def home() -> RedirectResponse:
    return RedirectResponse("/jobs", status_code=303)


@pages.get("/jobs", response_class=HTMLResponse, dependencies=[SEE])
def jobs_page(request: Request) -> HTMLResponse:
    generator = _generator(request)
    jobs = [generator.job_forecast(j) for j in generator.store.recent_jobs(MAX_JOBS_SHOWN)]
    return render(request, "jobs.html", page="jobs", jobs=jobs, live=LIVE)


def _job(request: Request, job_id: str) -> dict[str, Any]:
    generator = _generator(request)
    records = generator.records(job_id)
    if not records and generator.store.job(job_id) is None:
        raise UnknownJobError(job_id)
    summary = generator.job_forecast(job_id, records)  # the records read once per refresh
    scenes = [
        {**record.as_dict(), **eta, "attempts": generator.store.attempts(record.id)}
        for record, eta in zip(records, summary["scenes"], strict=True)
    ]
    return {"job": summary, "scenes": scenes, "live": LIVE, "page": "jobs"}


@pages.get("/jobs/{job_id}", response_class=HTMLResponse, dependencies=[SEE])
def job_page(request: Request, job_id: str) -> HTMLResponse:
    try:
        return render(request, "job.html", **_job(request, job_id))
    except VideoGenError as error:
        return error_page(request, error)


@pages.get("/jobs/{job_id}/live", response_class=HTMLResponse, dependencies=[SEE])
def job_fragment(request: Request, job_id: str) -> HTMLResponse:
    """The job page's changing parts, for ``live.js`` to swap in."""
    try:
        return render(request, "job_live.html", **_job(request, job_id))
    except VideoGenError as error:
        return error_page(request, error)


@pages.post("/jobs/{job_id}/cancel", response_model=None)
def cancel_from_page(
    request: Request, job_id: str, scene_id: Annotated[str | None, Form()] = None
) -> Response:
    def act(generator: VideoGenerator) -> None:
        generator.cancel(
            job_id, [scene_id] if scene_id else None, reason="cancelled on the dashboard"
        )

    return _change(request, job_id, act)


@pages.post("/jobs/{job_id}/retry", response_model=None)
def retry_from_page(request: Request, job_id: str) -> Response:
    return _change(request, job_id, lambda generator: generator.retry(job_id))


def _change(request: Request, job_id: str, act: Any) -> Response:
    try:
        authorize(request.app.state.tokens, request.cookies.get(COOKIE), write=True)
        act(_generator(request))
    except APIAuthError:
        raise LoginRequired(f"/jobs/{job_id}") from None
    except VideoGenError as error:
        return error_page(request, error)
    return RedirectResponse(f"/jobs/{quote(job_id)}", status_code=303)


# -- submit ----------------------------------------------------------------------------------


@pages.get("/submit", response_class=HTMLResponse, dependencies=[SEE])
def submit_page(request: Request) -> HTMLResponse:
    return render(request, "submit.html", page="submit", form={}, problems=None)


@pages.post("/submit", response_model=None)
async def submit_from_page(
    request: Request,
    scene_file: Annotated[UploadFile | None, File()] = None,
    images: Annotated[list[UploadFile] | None, File()] = None,
) -> Response:
    form = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
    try:
        authorize(request.app.state.tokens, request.cookies.get(COOKIE), write=True)
        file_text = (await scene_file.read(MAX_UPLOAD_BYTES)).decode("utf-8") if scene_file else ""
        uploads = {
            u.filename: await u.read(MAX_UPLOAD_BYTES + 1) for u in images or [] if u.filename
        }
        job_id = _submit(request, form, file_text, uploads)
    except APIAuthError:
        raise LoginRequired("/submit") from None
    except SceneValidationError as error:
        return render(
            request, "submit.html", 422, page="submit", form=form, problems=error.problems
        )
    except (VideoGenError, UnicodeDecodeError) as error:
        problems = [("job", "(form)", str(error))]
        return render(request, "submit.html", 422, page="submit", form=form, problems=problems)
    return RedirectResponse(f"/jobs/{quote(job_id)}", status_code=303)


def _submit(request: Request, form: dict[str, str], text: str, uploads: dict[str, bytes]) -> str:
    generator = _generator(request)
    scenes = scenes_from_form(form, text or form.get("scenes_json", ""))
    refuse_server_paths(scenes, uploaded={upload_name(name) for name in uploads})
    folder, names = save_uploads(generator.settings.outputs, uploads)
    scenes = [
        {**s, "image": str(folder / s["image"])} if s.get("image") in names else s for s in scenes
    ]
    priority = int(form.get("priority") or 0)
    return generator.submit(scenes, priority=priority)


def scenes_from_form(form: dict[str, str], text: str) -> list[dict[str, Any]]:
    """The scenes of a scene file's text (JSON, as ``videogen submit`` reads), else the one
    scene of the form's fields."""
    if text.strip():
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            where = f"line {error.lineno}, column {error.colno}: {error.msg}"
            raise SceneValidationError(
                [("scene file", "(file)", f"not valid JSON ({where})")]
            ) from None
        items = data.get("scenes", data) if isinstance(data, dict) else data
        return items if isinstance(items, list) else [items]
    fields = (
        "prompt",
        "duration",
        "resolution",
        "aspect_ratio",
        "seed",
        "negative_prompt",
        "style",
    )
    scene: dict[str, Any] = {f: form[f].strip() for f in fields if form.get(f, "").strip()}
    for number in ("duration", "seed"):
        if number in scene:
            scene[number] = _number(scene[number])
    if form.get("image_name", "").strip():
        scene["image"] = form["image_name"].strip()
    return [scene]


def _number(text: str) -> Any:
    try:
        return float(text) if "." in text else int(text)
    except ValueError:
        return text  # the scene's own check names the field


# -- backends --------------------------------------------------------------------------------


def _backends(request: Request) -> dict[str, Any]:
    generator = _generator(request)
    stats = generator.get_statistics()
    status = generator.get_backend_status()
    samples = history.recent(generator)
    rows = []
    for name, row in status.items():
        charts = history.series(samples, name)
        rows.append({"name": name, **row, **stats["backends"][name], "charts": charts})
    return {
        "page": "backends",
        "backends": rows,
        "spend": stats["spend"],
        "stats": stats,
        "span": history.KEEP * history.SLOT_SECONDS,
        "polyline": history.polyline,
    }


@pages.get("/backends", response_class=HTMLResponse, dependencies=[SEE])
def backends_page(request: Request) -> HTMLResponse:
    return render(request, "backends.html", **_backends(request))


@pages.get("/backends/live", response_class=HTMLResponse, dependencies=[SEE])
def backends_fragment(request: Request) -> HTMLResponse:
    return render(request, "backends_live.html", **_backends(request))


@pages.post("/backends/probe", response_model=None)
def probe_from_page(request: Request) -> Response:
    """Ask the router to check every backend now (as ``videogen health``)."""
    try:
        authorize(request.app.state.tokens, request.cookies.get(COOKIE), write=False)
    except APIAuthError:
        raise LoginRequired("/backends") from None
    _generator(request).request_probe()
    return RedirectResponse("/backends", status_code=303)
