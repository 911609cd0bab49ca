"""The HTTP API's edges without a stack: tokens and scopes, where it may listen, which error
answers with which status, the OpenAPI document, and refusals made before anything runs."""

from __future__ import annotations

import json
import secrets

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from openapi_spec_validator import validate

from videogen.cli import cli
from videogen.config import TokenScope
from videogen.errors import (
    APIAuthError,
    APIScopeError,
    ConfigError,
    InvalidRequestError,
    JobControlError,
    NoVideoError,
    SceneValidationError,
    StoreUnavailableError,
    UnknownJobError,
    UnknownSceneError,
    VideoGenError,
)
from videogen.loading import build_settings
from videogen.web import create_app
from videogen.web.auth import Token, authorize, check_bind, tokens_of
from videogen.web.problems import body_of, status_of
from videogen.web.uploads import upload_name

FULL = "full-" + "f" * 32
READ = "read-" + "r" * 32
TOKENS = [Token("ops", FULL, TokenScope.FULL), Token("viewer", READ, TokenScope.READ)]
UNREACHABLE = "redis://127.0.0.1:1/0"  # nothing listens: these tests never reach Redis


def settings_with(tokens, env=None):
    raw = {"redis_url": UNREACHABLE, "video_generation": {"api": {"tokens": tokens}}}
    return build_settings(raw, env=env or {})


@pytest.fixture
def client():
    settings = settings_with(
        [
            {"name": "ops", "token_env": "VG_FULL", "scope": "full"},
            {"name": "viewer", "token_env": "VG_READ"},
        ],
        env={"VG_FULL": FULL, "VG_READ": READ},
    )
    with TestClient(create_app(settings), raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.mark.parametrize(
    ("presented", "write", "outcome"),
    [
        (FULL, True, "ops"),
        (FULL, False, "ops"),
        (READ, False, "viewer"),
        (READ, True, APIScopeError),
        (None, False, APIAuthError),
        ("", True, APIAuthError),
        (FULL + "x", False, APIAuthError),
        (FULL[:-1], False, APIAuthError),
    ],
)
def test_authorize(presented, write, outcome):
    if isinstance(outcome, str):
        token = authorize(TOKENS, presented, write)
        assert token is not None and token.name == outcome
    else:
        with pytest.raises(outcome) as caught:
            authorize(TOKENS, presented, write)
        assert FULL not in str(caught.value) and READ not in str(caught.value)


def test_without_tokens_everyone_may_do_everything():
    assert authorize([], None, write=True) is None


def test_every_token_is_compared_in_constant_time(monkeypatch):
    calls = []
    real = secrets.compare_digest

    def recording(a, b):
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr("videogen.web.auth.secrets.compare_digest", recording)
    assert authorize(TOKENS, FULL, write=True) is not None  # the first one matches...
    assert len(calls) == len(TOKENS)  # ...and the others are compared all the same


@pytest.mark.parametrize(
    ("host", "tokens", "allowed"),
    [
        ("127.0.0.1", [], True),
        ("127.0.0.2", [], True),
        ("::1", [], True),
        ("localhost", [], True),
        ("0.0.0.0", [], False),
        ("::", [], False),
        ("10.0.0.5", [], False),
        ("api.example.org", [], False),
        ("0.0.0.0", TOKENS, True),
    ],
)
def test_listening_beyond_loopback_needs_tokens(host, tokens, allowed):
    if allowed:
        check_bind(host, tokens)
    else:
        with pytest.raises(ConfigError, match="refusing to serve the API on"):
            check_bind(host, tokens)


def test_the_command_refuses_to_listen_beyond_loopback_without_tokens(tmp_path):
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"redis_url": UNREACHABLE}))
    result = CliRunner().invoke(cli, ["--config", str(config), "api", "--host", "0.0.0.0"])
    assert result.exit_code == 1
    assert "refusing to serve the API on 0.0.0.0 without auth" in result.output


def test_a_token_comes_from_its_variable_and_a_missing_or_short_one_is_named():
    settings = settings_with([{"name": "ops", "token_env": "VG_T", "scope": "full"}],
                             env={"VG_T": FULL})  # fmt: skip
    assert tokens_of(settings.video_generation.api) == [Token("ops", FULL, TokenScope.FULL)]
    unset = settings_with([{"name": "ops", "token_env": "VG_T"}])
    with pytest.raises(ConfigError, match=r"API token 'ops': \$VG_T is not set"):
        tokens_of(unset.video_generation.api)
    short = settings_with([{"name": "ops", "token": "abc123"}])
    with pytest.raises(ConfigError, match="shorter than 16") as caught:
        tokens_of(short.video_generation.api)
    assert "abc123" not in str(caught.value)
    assert "abc123" not in repr(short)  # a SecretStr


def test_a_token_needs_a_value_or_a_variable():
    with pytest.raises(ConfigError, match="needs token_env"):
        settings_with([{"name": "ops"}])


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (SceneValidationError([("scene 1", "duration", "too long")]), 422),
        (InvalidRequestError("priority: bad"), 422),
        (ConfigError("invalid job options"), 422),
        (UnknownJobError("j1"), 404),
        (UnknownSceneError("j1", "s9"), 404),
        (NoVideoError("not yet"), 409),
        (JobControlError("only failed scenes"), 409),
        (APIAuthError("no token"), 401),
        (APIScopeError("read-only"), 403),
        (StoreUnavailableError("cannot reach Redis"), 503),
        (VideoGenError("something else"), 500),
    ],
)
def test_error_status(error, status):
    assert status_of(error) == status
    assert body_of(error)["error"] == type(error).__name__
    assert body_of(error)["message"] == str(error)


def test_invalid_scenes_list_each_problem():
    body = body_of(SceneValidationError([("scene 2", "duration", "too long")]))
    assert body["problems"] == [{"scene": "scene 2", "field": "duration", "message": "too long"}]


def test_the_openapi_document_validates(client):
    response = client.get("/v1/openapi.json")  # served without a token: it holds no data
    assert response.status_code == 200
    document = response.json()
    validate(document)
    assert document["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    assert "/v1/jobs/{job_id}/events" in document["paths"]
    submit = document["paths"]["/v1/jobs"]["post"]
    assert {"401", "403", "422"} <= set(submit["responses"])


@pytest.mark.parametrize(
    ("method", "path", "headers", "status", "error"),
    [
        ("get", "/v1/jobs", {}, 401, "APIAuthError"),
        ("get", "/v1/jobs", {"Authorization": "Bearer wrong-token-wrong-token"}, 401,
         "APIAuthError"),
        ("get", "/v1/jobs", {"Authorization": f"Basic {FULL}"}, 401, "APIAuthError"),
        ("post", "/v1/jobs", {"Authorization": f"Bearer {READ}"}, 403, "APIScopeError"),
        ("post", "/v1/jobs/j1/cancel", {"Authorization": f"Bearer {READ}"}, 403,
         "APIScopeError"),
    ],
)  # fmt: skip
def test_refused_callers_get_a_json_error(client, method, path, headers, status, error):
    response = client.request(method, path, headers=headers, json={"scenes": [{"prompt": "x"}]})
    assert response.status_code == status
    assert response.json()["error"] == error and response.json()["message"]
    assert FULL not in response.text and READ not in response.text
    if status == 401:
        assert response.headers["WWW-Authenticate"] == "Bearer"


def test_bad_scenes_are_refused_before_redis_is_touched(client):
    auth = {"Authorization": f"Bearer {FULL}"}
    scenes = [{"prompt": "fine"}, {"prompt": "too long", "duration": -3}]
    response = client.post("/v1/jobs", headers=auth, json={"scenes": scenes})
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["error"] == "SceneValidationError"
    assert [(p["scene"], p["field"]) for p in body["problems"]] == [("scene 2", "duration")]


def test_a_scene_may_not_name_a_file_on_the_server(client):
    auth = {"Authorization": f"Bearer {FULL}"}
    scenes = [{"prompt": "a", "image": "/etc/passwd"}]
    response = client.post("/v1/jobs", headers=auth, json={"scenes": scenes})
    assert response.status_code == 422
    assert response.json()["problems"][0]["field"] == "image"


def test_a_malformed_request_names_the_field(client):
    auth = {"Authorization": f"Bearer {FULL}"}
    response = client.post("/v1/jobs", headers=auth, json={"scenes": [], "priority": "high"})
    assert response.status_code == 422
    assert response.json()["error"] == "InvalidRequestError"
    assert "priority" in response.json()["message"]


@pytest.mark.parametrize(
    ("filename", "stored"),
    [("frame.png", "frame.png"), ("../../etc/cron.d/x", "x"), ("a/b.png", "b.png"),
     ("..", None), ("", None), (None, None)],
)  # fmt: skip
def test_an_upload_is_stored_under_its_bare_name(filename, stored):
    if stored is None:
        with pytest.raises(InvalidRequestError):
            upload_name(filename)
    else:
        assert upload_name(filename) == stored
