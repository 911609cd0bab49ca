"""The vendors' official SDKs against the sandboxes: if an SDK cannot use one, the sandbox drifted.

Each SDK is built with ``max_retries=0`` where it has the option, so that a refusal shows up at
once. The fal SDK builds ``https://`` URLs, so its sandbox is served over TLS with a throwaway CA
(see ``conftest.py``).
"""

from __future__ import annotations

import base64
import io
import time
from collections.abc import Callable
from typing import Any

import av
import fal_client
import fal_client.client
import httpx
import lumaai
import pytest
import runwayml

from tests.helpers import png_bytes
from videogen.sandbox import DEFAULT_KEYS, SandboxServer

PNG_URI = "data:image/png;base64," + base64.b64encode(png_bytes()).decode()


def _until(fetch: Callable[[], Any], done: Callable[[Any], bool], timeout: float = 5.0) -> Any:
    """Poll quickly (the SDKs' own waiters sleep about 6 s between polls)."""
    deadline = time.monotonic() + timeout
    while True:
        value = fetch()
        if done(value) or time.monotonic() > deadline:
            return value
        time.sleep(0.02)


def _assert_video(data: bytes, duration: float) -> None:
    with av.open(io.BytesIO(data), mode="r") as container:
        assert len(list(container.decode(video=0))) > 0
        assert (container.duration or 0) / 1_000_000 == pytest.approx(duration, abs=0.15)


# -- Runway ----------------------------------------------------------------------------------------
@pytest.fixture
def runway_sdk(servers: dict[str, SandboxServer]) -> runwayml.RunwayML:
    key = DEFAULT_KEYS["runway"]
    return runwayml.RunwayML(api_key=key, base_url=servers["runway"].base_url, max_retries=0)


def test_runway_image_to_video(runway_sdk: runwayml.RunwayML) -> None:
    created = runway_sdk.image_to_video.create(
        model="gen4_turbo", prompt_image=PNG_URI, ratio="1280:720", duration=5, prompt_text="a fox"
    )
    assert created.to_dict()["estimatedCost"] == {"credits": 25}
    task = _until(lambda: runway_sdk.tasks.retrieve(created.id), lambda t: t.status == "SUCCEEDED")
    assert task.status == "SUCCEEDED" and task.cost.credits == 25
    _assert_video(httpx.get(task.output[0]).content, 5.0)


def test_runway_text_to_video_and_delete(runway_sdk: runwayml.RunwayML, servers) -> None:
    servers["runway"].state.set_knobs(never_finish=True)
    created = runway_sdk.text_to_video.create(
        model="gen4.5", prompt_text="a drone shot over a valley", ratio="720:1280", duration=4
    )
    task = _until(lambda: runway_sdk.tasks.retrieve(created.id), lambda t: t.status == "RUNNING")
    assert task.status == "RUNNING" and 0 <= task.progress < 1
    runway_sdk.tasks.delete(created.id)
    assert runway_sdk.tasks.retrieve(created.id).status == "CANCELLED"
    runway_sdk.tasks.delete(created.id)
    with pytest.raises(runwayml.NotFoundError):
        runway_sdk.tasks.retrieve(created.id)


def test_runway_failures_and_refusals(runway_sdk: runwayml.RunwayML, servers) -> None:
    servers["runway"].state.set_knobs(fail_prompts={"forbidden": "SAFETY.INPUT.TEXT"})
    created = runway_sdk.text_to_video.create(
        model="gen4.5", prompt_text="something forbidden", ratio="1280:720", duration=5
    )
    task = _until(lambda: runway_sdk.tasks.retrieve(created.id), lambda t: t.status == "FAILED")
    assert (task.status, task.failure_code) == ("FAILED", "SAFETY.INPUT.TEXT")
    with pytest.raises(runwayml.BadRequestError, match="Only HTTPS URLs are allowed"):
        runway_sdk.image_to_video.create(
            model="gen4_turbo", prompt_image="http://example.com/a.png", ratio="1280:720"
        )
    wrong = runwayml.RunwayML(api_key="key_" + "0" * 128, base_url=str(runway_sdk.base_url))
    with pytest.raises(runwayml.AuthenticationError):
        wrong.with_options(max_retries=0).organization.retrieve()


def test_runway_organization(runway_sdk: runwayml.RunwayML) -> None:
    organization = runway_sdk.organization.retrieve()
    assert organization.credit_balance > 0
    assert organization.tier.models["gen4_turbo"].max_daily_generations == 1000


# -- Luma ------------------------------------------------------------------------------------------
@pytest.fixture
def luma_sdk(servers: dict[str, SandboxServer]) -> lumaai.LumaAI:
    key = DEFAULT_KEYS["luma"]
    return lumaai.LumaAI(auth_token=key, base_url=servers["luma"].base_url, max_retries=0)


def test_luma_generation_lifecycle(luma_sdk: lumaai.LumaAI) -> None:
    generation = luma_sdk.generations.video.create(
        model="ray-2",
        prompt="a tiger in snow",
        duration="9s",
        resolution="540p",
        aspect_ratio="1:1",
    )
    generation_id = str(generation.id)
    assert generation.state == "queued"
    assert isinstance(generation.request, lumaai.types.generation.RequestGenerationRequest)
    assert generation.request.duration == "9s"
    done = _until(lambda: luma_sdk.generations.get(generation_id), lambda g: g.state == "completed")
    assert done.state == "completed" and done.assets.video
    _assert_video(httpx.get(done.assets.video).content, 9.0)
    luma_sdk.generations.delete(generation_id)
    with pytest.raises(lumaai.NotFoundError):
        luma_sdk.generations.get(generation_id)


def test_luma_older_create_and_cheap_calls(luma_sdk: lumaai.LumaAI) -> None:
    generation = luma_sdk.generations.create(model="ray-flash-2", prompt="a heron", duration="5s")
    listed = luma_sdk.generations.list(limit=10)
    assert [g.id for g in listed.generations] == [generation.id]
    assert luma_sdk.credits.get().credit_balance > 0
    assert luma_sdk.ping.check().message == "pong"
    with pytest.raises(lumaai.BadRequestError):
        luma_sdk.generations.video.create(model="ray-2", prompt="x", duration="7s")


def test_luma_failure_reason(luma_sdk: lumaai.LumaAI, servers) -> None:
    servers["luma"].state.set_knobs(fail_prompts={"forbidden": "SAFETY.INPUT.TEXT"})
    generation = luma_sdk.generations.video.create(model="ray-2", prompt="something forbidden")
    generation_id = str(generation.id)
    failed = _until(lambda: luma_sdk.generations.get(generation_id), lambda g: g.state == "failed")
    assert failed.failure_reason == "Advanced moderation failed"


# -- fal, over TLS ---------------------------------------------------------------------------------
@pytest.fixture
def fal_sdk(
    fal_tls: SandboxServer, tls_ca, monkeypatch: pytest.MonkeyPatch
) -> fal_client.SyncClient:
    """fal's own client, unmodified except for where the queue host is and which CA it trusts.

    httpx 0.28 still honours ``SSL_CERT_FILE`` (``httpx._config.create_ssl_context`` with
    ``trust_env``), read when fal's client builds its transport; the queue URL is a module global
    that fal computes at import from ``FAL_QUEUE_RUN_HOST``, so it is patched after import.
    """
    monkeypatch.setenv("SSL_CERT_FILE", str(tls_ca[1]))
    monkeypatch.setattr(fal_client.client, "QUEUE_URL_FORMAT", fal_tls.root_url + "/")
    return fal_client.SyncClient(key=DEFAULT_KEYS["pika"])


APP = "fal-ai/pika/v2.2/text-to-video"


def test_fal_submit_status_result(fal_sdk: fal_client.SyncClient, fal_tls, tls_client) -> None:
    fal_tls.state.set_knobs(run_seconds=0.3)
    handle = fal_sdk.submit(APP, arguments={"prompt": "a red panda", "duration": 5})
    assert handle.status_url.startswith("https://127.0.0.1:")
    assert "/v2.2/" not in handle.status_url
    seen: list[fal_client.Status] = []

    def status_now() -> fal_client.Status:
        seen.append(handle.status(with_logs=True))
        return seen[-1]

    status = _until(status_now, lambda s: isinstance(s, fal_client.Completed))
    assert any(isinstance(s, fal_client.InProgress) and s.logs for s in seen)
    assert isinstance(status, fal_client.Completed) and status.error is None
    result = handle.get()
    _assert_video(tls_client.get(result["video"]["url"]).content, 5.0)
    by_id = fal_sdk.status(APP, handle.request_id, with_logs=False)
    assert isinstance(by_id, fal_client.Completed)
    assert fal_sdk.result(APP, handle.request_id) == result


def test_fal_cancel_and_failures(fal_sdk: fal_client.SyncClient, fal_tls) -> None:
    fal_tls.state.set_knobs(never_finish=True)
    handle = fal_sdk.submit(APP, arguments={"prompt": "wait forever"})
    assert isinstance(handle.status(), fal_client.Queued | fal_client.InProgress)
    handle.cancel()
    with pytest.raises(fal_client.client.FalClientHTTPError) as cancelled:
        handle.get()
    assert cancelled.value.error_type == "client_cancelled"
    fal_tls.state.set_knobs(never_finish=False, fail_prompts={"forbidden": "content_policy"})
    doomed = fal_sdk.submit(APP, arguments={"prompt": "something forbidden"})
    with pytest.raises(fal_client.client.FalClientHTTPError) as refused:
        doomed.get()
    assert refused.value.status_code == 422


def test_fal_wrong_key_and_bad_input(fal_sdk: fal_client.SyncClient, fal_tls) -> None:
    with pytest.raises(fal_client.client.FalClientHTTPError) as invalid:
        fal_sdk.submit(APP, arguments={"duration": 5})
    assert invalid.value.status_code == 422
    wrong = fal_client.SyncClient(key="someone:else")
    with pytest.raises(fal_client.client.FalClientHTTPError) as refused:
        wrong.submit(APP, arguments={"prompt": "x"})
    assert refused.value.status_code == 401
    assert fal_tls.state.records()["jobs"] == []


KLING = "fal-ai/kling-video/v2.5-turbo/pro/image-to-video"
"""A model other than Pika on the same queue: its own inputs (a string ``duration``), and
request URLs under ``fal-ai/kling-video``."""


def test_fal_generic_endpoint(fal_sdk: fal_client.SyncClient, fal_tls, tls_client) -> None:
    arguments = {"prompt": "a koi pond", "image_url": PNG_URI, "duration": "10"}
    handle = fal_sdk.submit(KLING, arguments=arguments)
    assert "/fal-ai/kling-video/requests/" in handle.status_url
    status = _until(handle.status, lambda s: isinstance(s, fal_client.Completed))
    assert isinstance(status, fal_client.Completed) and status.error is None
    result = fal_sdk.result(KLING, handle.request_id)
    _assert_video(tls_client.get(result["video"]["url"]).content, 10.0)
    [job] = fal_tls.state.records()["jobs"]
    assert job["kind"] == KLING and job["duration_s"] == 10.0
    with pytest.raises(fal_client.client.FalClientHTTPError) as refused:
        fal_sdk.submit(KLING, arguments={**arguments, "duration": 10})  # not "10"
    assert refused.value.status_code == 422
