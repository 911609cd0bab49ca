"""The dashboard's edges without a stack: login and the cookie, where a login may send you,
the submit form's scenes, the charts' arithmetic, and how figures are written."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from videogen.errors import SceneValidationError
from videogen.loading import build_settings
from videogen.web import create_app, display, history
from videogen.web.auth import COOKIE
from videogen.web.pages import safe_next, scenes_from_form

FULL = "full-" + "f" * 32
READ = "read-" + "r" * 32
UNREACHABLE = "redis://127.0.0.1:1/0"  # nothing listens: these tests never reach Redis


@pytest.fixture
def client():
    env = {"VIDEOGEN_API_TOKEN": FULL, "VIDEOGEN_API_READ_TOKEN": READ}
    settings = build_settings({"redis_url": UNREACHABLE}, env=env)
    app = create_app(settings, dashboard=True)
    with TestClient(app, raise_server_exceptions=False, follow_redirects=False) as test_client:
        yield test_client


def test_tokens_from_the_environment_alone():
    env = {"VIDEOGEN_API_TOKEN": FULL, "VIDEOGEN_API_READ_TOKEN": READ}
    tokens = build_settings({}, env=env).video_generation.api.tokens
    assert [(t.name, t.scope.value) for t in tokens] == [
        ("VIDEOGEN_API_TOKEN", "full"),
        ("VIDEOGEN_API_READ_TOKEN", "read"),
    ]
    assert tokens[0].token is not None and tokens[0].token.get_secret_value() == FULL
    assert FULL not in repr(tokens)
    assert build_settings({}, env={"VIDEOGEN_API_TOKEN": " "}).video_generation.api.tokens == []


@pytest.mark.parametrize("path", ["/jobs", "/jobs/abc", "/backends", "/submit", "/"])
def test_every_page_asks_for_a_login_first(client, path):
    answer = client.get(path)
    assert answer.status_code == 303
    assert answer.headers["location"] == f"/login?next={path}"


def test_a_wrong_token_is_refused_and_no_cookie_is_set(client):
    answer = client.post("/login", data={"token": FULL + "x", "next": "/backends"})
    assert answer.status_code == 401
    assert "not valid" in answer.text and COOKIE not in answer.headers.get("set-cookie", "")
    assert FULL not in answer.text


def test_a_login_sets_an_httponly_strict_cookie_and_goes_where_asked(client):
    answer = client.post("/login", data={"token": READ, "next": "/backends"})
    assert answer.status_code == 303 and answer.headers["location"] == "/backends"
    cookie = answer.headers["set-cookie"].lower()
    assert cookie.startswith(f"{COOKIE}=") and "httponly" in cookie
    assert "samesite=strict" in cookie


def test_the_api_takes_the_dashboard_cookie_and_its_scope(client):
    client.cookies.set(COOKIE, READ)
    answer = client.post("/v1/jobs", json={"scenes": [{"prompt": "x"}]})
    assert answer.status_code == 403 and answer.json()["error"] == "APIScopeError"
    client.cookies.set(COOKIE, "nope-" + "n" * 30)
    assert client.get("/v1/jobs").status_code == 401


def test_a_read_token_cannot_submit_from_the_page(client):
    client.cookies.set(COOKIE, READ)
    answer = client.post("/submit", data={"prompt": "a quiet street"})
    assert answer.status_code == 422 and "read-only" in answer.text


def test_the_submit_page_names_the_scene_and_field(client):
    client.cookies.set(COOKIE, FULL)
    answer = client.post("/submit", data={"scenes_json": '[{"prompt": "a"}, {"duration": -1}]'})
    assert answer.status_code == 422
    assert "scene 2" in answer.text and "duration" in answer.text
    answer = client.post("/submit", data={"scenes_json": "[{"})
    assert answer.status_code == 422 and "not valid JSON (line 1" in answer.text


def test_the_page_refuses_a_path_on_the_server(client):
    client.cookies.set(COOKIE, FULL)
    answer = client.post("/submit", data={"prompt": "p", "image_name": "/etc/passwd"})
    assert answer.status_code == 422 and "neither a URL nor an upload" in answer.text


@pytest.mark.parametrize(
    ("target", "safe"),
    [
        ("/jobs/abc", "/jobs/abc"),
        ("//evil.example/x", "/jobs"),
        ("https://evil.example/", "/jobs"),
        ("", "/jobs"),
        (None, "/jobs"),
    ],
)
def test_a_login_only_goes_back_to_this_site(target, safe):
    assert safe_next(target) == safe


def test_scenes_from_a_file_or_from_the_form():
    text = '{"scenes": [{"prompt": "a"}, {"prompt": "b", "duration": 3}]}'
    assert scenes_from_form({}, text) == [{"prompt": "a"}, {"prompt": "b", "duration": 3}]
    form = {"prompt": " a fox ", "duration": "2.5", "seed": "7", "style": "", "image_name": "f.png"}
    assert scenes_from_form(form, "") == [
        {"prompt": "a fox", "duration": 2.5, "seed": 7, "image": "f.png"}
    ]
    assert scenes_from_form({"seed": "seven"}, "") == [
        {"seed": "seven"}
    ]  # the scene check names it
    with pytest.raises(SceneValidationError) as caught:
        scenes_from_form({}, "[1,")
    assert caught.value.problems[0][:2] == ("scene file", "(file)")


def _sample(t, succeeded, failed, latency_sum, in_flight=1):
    row = {
        "in_flight": in_flight,
        "queued": 0,
        "succeeded": succeeded,
        "failed": failed,
        "latency_sum": latency_sum,
        "settled": 0.0,
    }
    return {"t": t, "backends": {"runway": row}}


def test_charts_per_slot_from_running_totals():
    samples = [_sample(0, 10, 1, 20.0), _sample(15, 13, 2, 29.0, in_flight=3)]
    in_flight, finished, latency = history.series(samples, "runway")
    assert in_flight.points == [(0, 1.0), (15, 3.0)]
    assert finished.points == [(15, 16.0)]  # 4 scenes in 15 s
    assert latency.points == [(15, 3.0)]  # 9 s over 3 successes
    assert history.series(samples, "luma")[0].points == []


def test_a_sample_reads_the_statistics():
    stats = {
        "backends": {
            "pika": {
                "in_flight": 2, "queued": 1, "succeeded": 4, "failed": 1,
                "average_latency_s": 2.5,
            }
        },
        "spend": {"backends": {"pika": {"total": {"settled": 1.25}}}},
    }  # fmt: skip
    row = history.sample(stats, 100.0)["backends"]["pika"]
    assert row == {
        "in_flight": 2, "queued": 1, "succeeded": 4, "failed": 1, "latency_sum": 10.0,
        "settled": 1.25,
    }  # fmt: skip


def test_a_line_ends_at_the_right_edge_and_fits_the_box():
    points = [(0.0, 0.0), (30.0, 5.0), (60.0, 10.0)]
    coords = [
        tuple(map(float, p.split(","))) for p in history.polyline(points, 120, 28, 3600).split()
    ]
    assert coords[-1] == (120.0, 1.0)  # newest: right edge, tallest: top
    assert coords[0] == (0.0, 27.0)  # the samples' own span when shorter than the hour
    assert history.polyline([], 120, 28, 3600) == ""


def test_figures_for_people():
    assert display.usd(0.0123) == "$0.0123" and display.usd(12.5) == "$12.50"
    assert display.usd(None) == "–"
    assert display.when(95.0, 100.0) == "5 s ago"
    assert display.eta(160.0, 100.0) == "in 60 s" and display.eta(90.0, 100.0) == "now"
    assert "no backend" in display.eta(None, 100.0)
    assert display.percent(0.875) == "88 %" and display.seconds(None) == "–"
