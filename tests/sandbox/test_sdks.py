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
import dashscope
import fal_client
import fal_client.client
import httpx
import lumaai
import pytest
import replicate
import replicate.exceptions
import runwayml
from byteplussdkarkruntime import Ark
from byteplussdkarkruntime._exceptions import (  # the SDK exports them from nowhere else
    ArkAuthenticationError,
    ArkBadRequestError,
    ArkNotFoundError,
)
from google import genai
from google.genai import errors as genai_errors
from google.genai import types as genai_types

from tests.helpers import png_bytes
from videogen.sandbox import DEFAULT_KEYS, SandboxServer
from videogen.sandbox import replicate as replicate_sandbox

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


# -- Veo, Vertex AI express mode -------------------------------------------------------------------
VEO = "veo-3.1-fast-generate-001"


@pytest.fixture
def veo_sdk(servers: dict[str, SandboxServer]) -> genai.Client:
    """google-genai in Vertex express mode (an API key, no project), pointed at the sandbox."""
    options = genai_types.HttpOptions(base_url=servers["veo"].base_url)
    return genai.Client(vertexai=True, api_key=DEFAULT_KEYS["veo"], http_options=options)


def test_veo_generate_poll_and_inline_video(veo_sdk: genai.Client, servers) -> None:
    config = genai_types.GenerateVideosConfig(
        duration_seconds=4, aspect_ratio="9:16", seed=3, negative_prompt="blur",
        generate_audio=False,
    )  # fmt: skip
    source = genai_types.GenerateVideosSource(
        prompt="a kite in a storm",
        image=genai_types.Image(image_bytes=png_bytes(), mime_type="image/png"),
    )
    operation = veo_sdk.models.generate_videos(model=VEO, source=source, config=config)
    assert operation.name and "/operations/" in operation.name and not operation.done
    operation = _until(lambda: veo_sdk.operations.get(operation), lambda o: o.done)
    assert operation.done and operation.error is None and operation.response is not None
    [generated] = operation.response.generated_videos or []
    assert generated.video is not None and generated.video.mime_type == "video/mp4"
    _assert_video(generated.video.video_bytes or b"", 4.0)
    [create] = [r for r in servers["veo"].state.records()["requests"] if r["op"] == "create"]
    assert create["body"]["parameters"]["seed"] == 3  # Vertex takes a seed (Gemini API: no)


def test_veo_failures_and_a_retired_model(veo_sdk: genai.Client, servers) -> None:
    servers["veo"].state.set_knobs(fail_prompts={"forbidden": "SAFETY"})
    source = genai_types.GenerateVideosSource(prompt="something forbidden")
    operation = veo_sdk.models.generate_videos(model=VEO, source=source)
    operation = _until(lambda: veo_sdk.operations.get(operation), lambda o: o.done)
    assert operation.response is not None and not operation.response.generated_videos
    assert operation.response.rai_media_filtered_count == 1
    assert "usage guidelines" in (operation.response.rai_media_filtered_reasons or [""])[0]
    with pytest.raises(genai_errors.ClientError) as retired:
        veo_sdk.models.generate_videos(
            model="veo-3.0-generate-001", source=genai_types.GenerateVideosSource(prompt="x")
        )
    assert retired.value.code == 404 and "no longer available" in str(retired.value.message)
    wrong = genai.Client(
        vertexai=True,
        api_key="AIza" + "0" * 35,
        http_options=genai_types.HttpOptions(base_url=servers["veo"].base_url),
    )
    with pytest.raises(genai_errors.ClientError) as refused:
        wrong.models.generate_videos(model=VEO, source=genai_types.GenerateVideosSource(prompt="x"))
    assert refused.value.code == 401
    assert len(servers["veo"].state.records()["jobs"]) == 1


# -- Replicate -------------------------------------------------------------------------------------
@pytest.fixture
def replicate_sdk(servers: dict[str, SandboxServer]) -> replicate.Client:
    return replicate.Client(
        api_token=DEFAULT_KEYS["replicate"], base_url=servers["replicate"].base_url
    )


def test_replicate_create_poll_download(replicate_sdk: replicate.Client) -> None:
    prediction = replicate_sdk.predictions.create(
        model="google/veo-3", input={"prompt": "a red panda", "aspect_ratio": "9:16"}
    )
    assert prediction.status == "starting" and prediction.urls["cancel"].endswith("/cancel")
    done = _until(
        lambda: replicate_sdk.predictions.get(prediction.id), lambda p: p.status == "succeeded"
    )
    assert done.status == "succeeded" and isinstance(done.output, str)
    assert done.metrics and done.metrics["predict_time"] > 0
    _assert_video(httpx.get(done.output).content, 8.0)
    hailuo = next(v for v, m in replicate_sandbox.VERSIONS.items() if m == "minimax/hailuo-02")
    by_version = replicate_sdk.predictions.create(
        version=hailuo, input={"prompt": "by version", "duration": 6}
    )
    assert by_version.model == "minimax/hailuo-02"
    deployed = replicate_sdk.predictions.create(
        deployment="videogen/veo", input={"prompt": "by deployment"}
    )
    assert deployed.model == "google/veo-3"


def test_replicate_cancel_failure_and_refusals(replicate_sdk: replicate.Client, servers) -> None:
    servers["replicate"].state.set_knobs(never_finish=True)
    running = replicate_sdk.predictions.create(model="google/veo-3", input={"prompt": "wait"})
    assert replicate_sdk.predictions.cancel(running.id).status == "canceled"
    assert replicate_sdk.predictions.get(running.id).status == "canceled"
    servers["replicate"].state.set_knobs(never_finish=False, fail_prompts={"forbidden": "SAFETY"})
    doomed = replicate_sdk.predictions.create(
        model="google/veo-3", input={"prompt": "something forbidden"}
    )
    failed = _until(
        lambda: replicate_sdk.predictions.get(doomed.id), lambda p: p.status == "failed"
    )
    assert "flagged as sensitive" in str(failed.error)
    with pytest.raises(replicate.exceptions.ReplicateError) as invalid:
        replicate_sdk.predictions.create(model="google/veo-3", input={"prompt": "x", "fps": 24})
    assert invalid.value.status == 422 and "fps" in str(invalid.value.detail)
    wrong = replicate.Client(api_token="r8_" + "0" * 37, base_url=str(replicate_sdk._base_url))
    with pytest.raises(replicate.exceptions.ReplicateError) as refused:
        wrong.predictions.create(model="google/veo-3", input={"prompt": "x"})
    assert refused.value.status == 401
    assert len(servers["replicate"].state.records()["jobs"]) == 2


# -- DashScope (Wan) -------------------------------------------------------------------------------
@pytest.fixture
def dashscope_sdk(servers: dict[str, SandboxServer], monkeypatch: pytest.MonkeyPatch) -> Any:
    """DashScope's 1.x-style API, unmodified: its base URL is the module setting it documents."""
    monkeypatch.setattr(dashscope, "base_http_api_url", servers["wan"].base_url)
    return dashscope.VideoSynthesis


def test_dashscope_video_synthesis(dashscope_sdk: Any) -> None:
    key = DEFAULT_KEYS["wan"]
    created = dashscope_sdk.async_call(
        model="wan2.7-t2v", prompt="a lighthouse at dusk", api_key=key,
        resolution="720P", ratio="9:16", duration=5, seed=7, prompt_extend=False,
    )  # fmt: skip
    assert created.status_code == 200 and created.output.task_status == "PENDING"
    done = _until(
        lambda: dashscope_sdk.fetch(created, api_key=key),
        lambda r: r.output.task_status == "SUCCEEDED",
    )
    assert done.output.task_status == "SUCCEEDED" and done.usage.duration == 5.0
    _assert_video(httpx.get(done.output.video_url).content, 5.0)
    unknown = dashscope_sdk.fetch("no-such-task", api_key=key)
    assert (unknown.status_code, unknown.output.task_status) == (200, "UNKNOWN")


def test_dashscope_cancel_and_refusals(dashscope_sdk: Any, servers) -> None:
    key = DEFAULT_KEYS["wan"]
    servers["wan"].state.set_knobs(never_finish=True, queue_seconds=60)
    pending = dashscope_sdk.async_call(
        model="wan2.7-t2v", prompt="stop", api_key=key, resolution="720P", duration=5
    )
    assert dashscope_sdk.cancel(pending, api_key=key).status_code == 200
    assert dashscope_sdk.fetch(pending, api_key=key).output.task_status == "CANCELED"
    again = dashscope_sdk.cancel(pending, api_key=key)  # PENDING only
    assert (again.status_code, again.code) == (400, "UnsupportedOperation")
    bad = dashscope_sdk.async_call(model="wan2.7-t2v", prompt="x", api_key=key, duration="5")
    assert (bad.status_code, bad.code) == (400, "InvalidParameter")
    wrong = dashscope_sdk.async_call(model="wan2.7-t2v", prompt="x", api_key="sk-" + "0" * 32)
    assert (wrong.status_code, wrong.code) == (401, "InvalidApiKey")
    assert len(servers["wan"].state.records()["jobs"]) == 1


# -- Ark (Seedance) --------------------------------------------------------------------------------
SEEDANCE = "seedance-1-5-pro-251215"


@pytest.fixture
def ark_sdk(servers: dict[str, SandboxServer]) -> Ark:
    return Ark(
        base_url=servers["seedance"].base_url, api_key=DEFAULT_KEYS["seedance"], max_retries=0
    )


def test_ark_content_generation_task(ark_sdk: Ark) -> None:
    tasks = ark_sdk.content_generation.tasks
    created = tasks.create(
        model=SEEDANCE,
        content=[
            {"type": "text", "text": "a red fox runs through snow"},
            {"type": "image_url", "image_url": {"url": PNG_URI}, "role": "first_frame"},
        ],
        resolution="480p", ratio="16:9", duration=5, seed=7,
    )  # fmt: skip
    assert created.id.startswith("cgt-")
    done = _until(lambda: tasks.get(task_id=created.id), lambda t: t.status == "succeeded")
    assert done.status == "succeeded" and done.seed == 7 and done.usage.completion_tokens > 0
    _assert_video(httpx.get(done.content.video_url).content, 5.0)
    listed = tasks.list(page_size=1, status="succeeded", model=SEEDANCE)
    assert listed.total == 1 and listed.items[0].id == created.id


def test_ark_cancel_delete_and_errors(ark_sdk: Ark, servers) -> None:
    tasks = ark_sdk.content_generation.tasks
    servers["seedance"].state.set_knobs(never_finish=True, queue_seconds=60)
    queued = tasks.create(model=SEEDANCE, content=[{"type": "text", "text": "stop"}])
    tasks.delete(queued.id)
    assert tasks.get(task_id=queued.id).status == "cancelled"
    tasks.delete(queued.id)  # a finished task's record goes
    with pytest.raises(ArkNotFoundError):
        tasks.get(task_id=queued.id)
    with pytest.raises(ArkBadRequestError) as refused:
        tasks.create(model=SEEDANCE, content=[{"type": "text", "text": "x"}], ratio="2:1")
    assert refused.value.code == "InvalidParameter"
    base_url = servers["seedance"].base_url
    wrong = Ark(base_url=base_url, api_key="0" * 36, max_retries=0)
    with pytest.raises(ArkAuthenticationError):
        wrong.content_generation.tasks.list(page_size=1)


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
