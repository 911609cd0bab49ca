"""Error classification and vendor status mapping: tables over plain values.

The HTTP side builds real ``httpx.Response`` objects in memory (one edge, no network).
"""

from __future__ import annotations

import httpx
import pytest

from videogen.backends import kling, luma, minimax, pika, replicate, runway, svd, veo
from videogen.errors import (
    Action,
    AmbiguousSubmitError,
    AuthError,
    BackendUnavailableError,
    ContentPolicyError,
    GenerationFailedError,
    MalformedResponseError,
    ModelUnavailableError,
    RateLimitedError,
    RejectedInputError,
)
from videogen.models import JobState
from videogen.transport import (
    answer_error,
    classify_status,
    error_detail,
    status_error,
    transport_error,
)


@pytest.mark.parametrize(
    ("status", "code", "retryable", "expected"),
    [
        (400, None, None, RejectedInputError),
        (401, None, None, AuthError),
        (403, None, None, AuthError),
        (404, None, None, RejectedInputError),
        (408, None, None, BackendUnavailableError),
        (422, None, "false", RejectedInputError),
        (422, None, "true", BackendUnavailableError),
        (422, "content_policy_violation", "false", ContentPolicyError),
        (400, "SAFETY.INPUT.TEXT", None, ContentPolicyError),
        (429, None, None, RateLimitedError),
        (500, None, None, BackendUnavailableError),
        (502, None, None, BackendUnavailableError),
        (503, "runner_scheduling_failure", None, BackendUnavailableError),
        (504, None, None, BackendUnavailableError),
    ],
)
def test_classify_status(status, code, retryable, expected):
    assert classify_status(status, code, retryable) is expected


def _response(status, body=None, *, headers=None, text=None):
    request = httpx.Request("POST", "https://vendor.invalid/v1/x")
    if text is not None:
        return httpx.Response(status, text=text, headers=headers, request=request)
    return httpx.Response(status, json=body, headers=headers, request=request)


@pytest.mark.parametrize(
    ("response", "message", "code"),
    [
        (_response(400, {"error": "Invalid parameter 'promptText'"}), "Invalid parameter", None),
        (_response(400, {"detail": "400: concepts are not supported"}), "concepts are not", None),
        (
            _response(
                422,
                {
                    "detail": [
                        {
                            "loc": ["body", "prompt"],
                            "msg": "bad",
                            "type": "content_policy_violation",
                        }
                    ]
                },
            ),
            "body.prompt: bad",
            "content_policy_violation",
        ),
        (
            _response(504, {"detail": "Request timed out", "error_type": "request_timeout"}),
            "Request timed out",
            "request_timeout",
        ),
        (
            _response(500, text="oops", headers={"X-Fal-Error-Type": "runner_server_error"}),
            "oops",
            "runner_server_error",
        ),
        (
            _response(
                400,
                {
                    "error": {
                        "type": "invalid_prompt",
                        "message": "Cannot execute",
                        "details": "Node X not found",
                    },
                    "node_errors": {},
                },
            ),
            "Cannot execute Node X not found",
            "invalid_prompt",
        ),
        (_response(502, text="<html><body>Bad gateway</body></html>"), "Bad gateway", None),
    ],
)
def test_error_detail_reads_every_vendor_shape(response, message, code):
    text, found = error_detail(response)
    assert message in text
    assert found == code


def test_status_error_carries_retry_after_and_status():
    error = status_error(
        "runway", _response(429, {"error": "slow down"}, headers={"Retry-After": "7"})
    )
    assert isinstance(error, RateLimitedError)
    assert (error.status_code, error.retry_after, error.retryable) == (429, 7.0, True)
    assert error.action is Action.RETRY_SAME
    assert "slow down" in str(error)


def test_error_text_is_cut():
    error = status_error("luma", _response(500, {"detail": "x" * 5000}))
    assert len(str(error)) < 400


@pytest.mark.parametrize(
    ("exc", "creates_job", "expected"),
    [
        (httpx.ConnectError("refused"), True, BackendUnavailableError),
        (httpx.ConnectTimeout("slow"), True, BackendUnavailableError),
        (httpx.ReadTimeout("no answer"), True, AmbiguousSubmitError),
        (httpx.RemoteProtocolError("dropped"), True, AmbiguousSubmitError),
        (httpx.ReadTimeout("no answer"), False, BackendUnavailableError),
        (httpx.RemoteProtocolError("dropped"), False, BackendUnavailableError),
    ],
)
def test_transport_errors(exc, creates_job, expected):
    error = transport_error("pika", exc, creates_job=creates_job)
    assert type(error) is expected
    if expected is AmbiguousSubmitError:
        assert error.action is Action.RESOLVE


@pytest.mark.parametrize(
    ("body", "state", "extra"),
    [
        ({"id": "t", "status": "PENDING"}, JobState.QUEUED, {}),
        ({"id": "t", "status": "THROTTLED"}, JobState.QUEUED, {}),
        ({"id": "t", "status": "RUNNING", "progress": 0.4}, JobState.RUNNING, {"progress": 0.4}),
        (
            {"id": "t", "status": "SUCCEEDED", "output": ["https://cdn/x.mp4"]},
            JobState.SUCCEEDED,
            {"output_url": "https://cdn/x.mp4"},
        ),
        (
            {
                "id": "t",
                "status": "FAILED",
                "failure": "oops",
                "failureCode": "INTERNAL.BAD_OUTPUT.CODE01",
            },
            JobState.FAILED,
            {"failure_code": "INTERNAL.BAD_OUTPUT.CODE01", "failure_reason": "oops"},
        ),
        ({"id": "t", "status": "CANCELLED"}, JobState.CANCELLED, {}),
    ],
)
def test_runway_task_states(body, state, extra):
    status = runway.parse_task("runway", body)
    assert status.state is state
    assert status.vendor_state == body["status"]
    for key, value in extra.items():
        assert getattr(status, key) == value


@pytest.mark.parametrize(
    "body",
    [
        {"id": "t"},
        {"id": "t", "status": "EXPLODED"},
        {"id": "t", "status": "SUCCEEDED", "output": []},
    ],
)
def test_runway_malformed_tasks(body):
    with pytest.raises(MalformedResponseError):
        runway.parse_task("runway", body)


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("SAFETY.INPUT.TEXT", ContentPolicyError),
        ("SAFETY.OUTPUT.VIDEO", ContentPolicyError),
        ("INPUT_PREPROCESSING.SAFETY.TEXT", ContentPolicyError),
        ("INPUT_PREPROCESSING.INTERNAL", GenerationFailedError),
        ("INTERNAL.BAD_OUTPUT.CODE01", GenerationFailedError),
        ("ASSET.INVALID", RejectedInputError),
        (None, GenerationFailedError),
    ],
)
def test_runway_failure_codes(code, expected):
    assert runway.failure_class(code) is expected


@pytest.mark.parametrize(
    ("state", "expected"),
    [("queued", JobState.QUEUED), ("dreaming", JobState.RUNNING), ("failed", JobState.FAILED)],
)
def test_luma_states(state, expected):
    body = {"id": "g", "state": state, "failure_reason": "x" if state == "failed" else None}
    assert luma.parse_generation("luma", body).state is expected


def test_luma_completed_needs_a_video():
    body = {"id": "g", "state": "completed", "assets": {"video": "https://cdn/v.mp4"}}
    assert luma.parse_generation("luma", body).output_url == "https://cdn/v.mp4"
    with pytest.raises(MalformedResponseError):
        luma.parse_generation("luma", {"id": "g", "state": "completed", "assets": None})


@pytest.mark.parametrize(
    ("reason", "expected"),
    [
        ("Advanced moderation failed", ContentPolicyError),
        ("Prompt violates our content policy", ContentPolicyError),
        ("Internal server error", GenerationFailedError),
        (None, GenerationFailedError),
    ],
)
def test_luma_failure_reasons(reason, expected):
    assert luma.failure_class(reason) is expected


@pytest.mark.parametrize(
    ("status", "error_type", "expected"),
    [
        (422, "content_policy_violation", ContentPolicyError),
        (422, "image_too_large", RejectedInputError),
        (500, "runner_server_error", GenerationFailedError),
        (503, "runner_disconnected", GenerationFailedError),
    ],
)
def test_pika_result_failures(status, error_type, expected):
    assert pika.failure_class(status, error_type, None) is expected


def test_fal_app_path_drops_the_model_sub_path():
    assert pika.app_path("fal-ai/pika/v2.2") == "fal-ai/pika"
    assert pika.app_path("/fal-ai/pika/v2/turbo/") == "fal-ai/pika"


def _history(status_str, messages, outputs=None):
    return {"status": {"status_str": status_str, "messages": messages}, "outputs": outputs or {}}


@pytest.mark.parametrize(
    ("entry", "state", "reason"),
    [
        (
            _history("success", [["execution_success", {}]], {"8": {"images": []}}),
            JobState.SUCCEEDED,
            None,
        ),
        (
            _history(
                "error",
                [
                    [
                        "execution_error",
                        {
                            "exception_type": "OutOfMemoryError",
                            "exception_message": "CUDA out of memory",
                        },
                    ]
                ],
            ),
            JobState.FAILED,
            "OutOfMemoryError: CUDA out of memory",
        ),
        (_history("error", [["execution_interrupted", {}]]), JobState.CANCELLED, None),
        ({"status": None, "outputs": {"8": {"gifs": []}}}, JobState.SUCCEEDED, None),
    ],
)
def test_comfyui_history_states(entry, state, reason):
    found_state, _, found_reason = svd.history_status("svd", entry)
    assert (found_state, found_reason) == (state, reason)


def test_comfyui_history_without_status_or_outputs_is_malformed():
    with pytest.raises(MalformedResponseError):
        svd.history_status("svd", {"status": None, "outputs": {}})


@pytest.mark.parametrize(
    ("outputs", "filename"),
    [
        (
            {
                "8": {
                    "images": [{"filename": "v_00001.mp4", "subfolder": "", "type": "output"}],
                    "animated": [True],
                }
            },
            "v_00001.mp4",
        ),
        ({"9": {"gifs": [{"filename": "a.webm"}, {"filename": "a.mp4"}]}}, "a.mp4"),
        (
            {
                "3": {"images": [{"filename": "preview.png"}]},
                "8": {"gifs": [{"filename": "x.webp"}]},
            },
            "x.webp",
        ),
        ({"3": {"images": [{"filename": "still.png"}]}}, None),
    ],
)
def test_comfyui_output_file(outputs, filename):
    found = svd.output_file(outputs)
    assert (found["filename"] if found else None) == filename


def test_workflow_fill_keeps_types_and_refuses_unknown_placeholders():
    template = {"a": {"inputs": {"seed": "{{seed}}", "links": ["1", 0], "text": "{{prompt}}"}}}
    filled = svd.fill(template, {"seed": 7, "prompt": "cat"})
    assert filled == {"a": {"inputs": {"seed": 7, "links": ["1", 0], "text": "cat"}}}
    assert svd.placeholders(template) == {"seed", "prompt"}
    with pytest.raises(Exception, match="unknown"):
        svd.fill({"x": "{{nope}}"}, {})


OP = "projects/p/locations/l/publishers/google/models/veo-3.1-fast-generate-001/operations/o"
_MP4 = {"bytesBase64Encoded": "AAAA", "mimeType": "video/mp4"}


@pytest.mark.parametrize(
    ("body", "state", "code"),
    [
        ({"name": OP}, JobState.RUNNING, None),
        ({"name": OP, "done": False}, JobState.RUNNING, None),
        ({"name": OP, "done": True, "response": {"videos": [_MP4]}}, JobState.SUCCEEDED, None),
        ({"name": OP, "done": True, "error": {"code": 13, "message": "x"}}, JobState.FAILED, "13"),
        (
            {"name": OP, "done": True, "response": {"raiMediaFilteredCount": 1, "videos": []}},
            JobState.FAILED,
            "RAI_FILTERED",
        ),
    ],
)
def test_veo_operations(body, state, code):
    status = veo.parse_operation("veo", body)
    assert (status.state, status.failure_code) == (state, code)
    if state is JobState.SUCCEEDED:
        assert status.output_url == veo.INLINE + OP


@pytest.mark.parametrize(
    "body",
    [
        {"done": True},
        {"name": OP, "done": True},
        {"name": OP, "done": True, "response": {"videos": []}},
        {"name": OP, "done": True, "response": {"videos": [{"mimeType": "video/mp4"}]}},
    ],
)
def test_veo_malformed_operations(body):
    with pytest.raises(MalformedResponseError):
        veo.parse_operation("veo", body)


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("RAI_FILTERED", ContentPolicyError),
        ("3", RejectedInputError),
        ("13", GenerationFailedError),
        (None, GenerationFailedError),
    ],
)
def test_veo_failure_codes(code, expected):
    assert veo.failure_class(code) is expected


def test_veo_operation_resource_is_the_model():
    assert veo.operation_resource(OP).endswith("/models/veo-3.1-fast-generate-001")


def test_a_model_unavailable_is_a_rejection_never_retried():
    error = ModelUnavailableError("veo", "gone", status_code=404)
    assert isinstance(error, RejectedInputError)
    assert error.action is Action.FAILOVER and not error.retryable


@pytest.mark.parametrize(
    ("status", "state"),
    [
        ("starting", JobState.QUEUED),
        ("processing", JobState.RUNNING),
        ("failed", JobState.FAILED),
        ("canceled", JobState.CANCELLED),
        ("aborted", JobState.CANCELLED),
    ],
)
def test_replicate_states(status, state):
    assert replicate.parse_prediction("replicate", {"id": "p", "status": status}).state is state


@pytest.mark.parametrize(
    ("output", "url"),
    [
        ("https://replicate.delivery/a.mp4", "https://replicate.delivery/a.mp4"),
        (["https://replicate.delivery/b.mp4"], "https://replicate.delivery/b.mp4"),
        ({"video": "https://replicate.delivery/c.mp4"}, "https://replicate.delivery/c.mp4"),
        (None, None),
        ([], None),
    ],
)
def test_replicate_outputs(output, url):
    assert replicate.output_url(output) == url


def test_replicate_success_without_output():
    removed = {"id": "p", "status": "succeeded", "output": None, "data_removed": True}
    status = replicate.parse_prediction("replicate", removed)
    assert status.state is JobState.FAILED and status.failure_code == "data_removed"
    with pytest.raises(MalformedResponseError):
        replicate.parse_prediction("replicate", {"id": "p", "status": "succeeded"})
    with pytest.raises(MalformedResponseError):
        replicate.parse_prediction("replicate", {"id": "p", "status": "exploded"})


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        ("The input or output was flagged as sensitive. (E005)", ContentPolicyError),
        ("NSFW content detected", ContentPolicyError),
        ("CUDA out of memory", GenerationFailedError),
        (None, GenerationFailedError),
    ],
)
def test_replicate_failures(error, expected):
    assert replicate.failure_class(error) is expected


# -- Kling and MiniMax: a vendor's own codes decide, whatever the HTTP status ----------------------
@pytest.mark.parametrize(
    ("body", "message", "code"),
    [
        ({"code": 1102, "message": "pack used up", "request_id": "r"}, "pack used up", "1102"),
        ({"base_resp": {"status_code": 1004, "status_msg": "login fail"}}, "login fail", "1004"),
    ],
)
def test_error_detail_reads_coded_bodies(body, message, code):
    assert error_detail(_response(429, body)) == (message, code)


@pytest.mark.parametrize(
    ("status", "code", "expected"),
    [
        (429, 1302, RateLimitedError),  # too many requests
        (429, 1303, RateLimitedError),  # too many tasks at once
        (429, 1100, AuthError),  # the account is in trouble
        (429, 1101, AuthError),  # arrears: a 429 that is a bill
        (429, 1102, AuthError),  # resource pack used up
        (429, 1304, AuthError),  # IP not allowed
        (401, 1004, AuthError),
        (403, 1103, AuthError),
        (400, 1201, RejectedInputError),
        (404, 1203, RejectedInputError),
        (400, 1301, ContentPolicyError),
        (500, 5000, BackendUnavailableError),
        (504, 5002, BackendUnavailableError),
        (429, 9999, RateLimitedError),  # an unknown code: the status decides
    ],
)
def test_kling_codes_decide_over_the_status(status, code, expected):
    body = {"code": code, "message": "m", "request_id": "r"}
    error = status_error("kling", _response(status, body), codes=kling.CODES)
    assert type(error) is expected
    assert error.vendor_code == str(code) and error.status_code == status
    assert f"(code {code})" in str(error)


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("1002", RateLimitedError),
        ("1041", RateLimitedError),
        ("2045", RateLimitedError),
        ("1000", BackendUnavailableError),
        ("1033", BackendUnavailableError),
        ("1004", AuthError),
        ("2049", AuthError),
        ("1008", AuthError),  # insufficient balance
        ("2056", AuthError),  # the plan's quota
        ("1026", ContentPolicyError),
        ("1027", ContentPolicyError),
        ("2013", RejectedInputError),
        ("4242", RejectedInputError),  # unknown: the request was refused
    ],
)
def test_minimax_codes_inside_a_200(code, expected):
    response = _response(200, {}, headers={"Retry-After": "3"})
    error = answer_error("minimax", response, code, "m", minimax.CODES)
    assert type(error) is expected
    assert (error.status_code, error.retry_after, error.vendor_code) == (None, 3.0, code)


def test_an_answer_error_scrubs_our_credentials():
    error = answer_error(
        "minimax",
        _response(200, {}),
        "1004",
        "bad key sk-api-0123456789",
        {},
        secrets=("sk-api-0123456789",),
    )
    assert "sk-api" not in str(error) and "***" in str(error)


@pytest.mark.parametrize(
    ("data", "state", "extra"),
    [
        ({"task_status": "submitted"}, JobState.QUEUED, {}),
        ({"task_status": "processing"}, JobState.RUNNING, {}),
        (
            {
                "task_status": "succeed",
                "final_unit_deduction": "2.5",
                "task_result": {"videos": [{"id": "v", "url": "https://cdn/k.mp4"}]},
            },
            JobState.SUCCEEDED,
            {"output_url": "https://cdn/k.mp4", "billed_units": 2.5},
        ),
        (
            {"task_status": "failed", "task_status_msg": "Failure to pass the risk control system"},
            JobState.FAILED,
            {"failure_reason": "Failure to pass the risk control system", "billed_units": None},
        ),
    ],
)
def test_kling_task_states(data, state, extra):
    status = kling.parse_task("kling", {"task_id": "t", **data})
    assert status.state is state and status.vendor_state == data["task_status"]
    for key, value in extra.items():
        assert getattr(status, key) == value


@pytest.mark.parametrize(
    "data",
    [
        {"task_id": "t"},
        {"task_id": "t", "task_status": "cancelled"},
        {"task_id": "t", "task_status": "succeed", "task_result": {"videos": []}},
        {"task_id": "t", "task_status": "succeed", "task_result": None},
    ],
)
def test_kling_malformed_tasks(data):
    with pytest.raises(MalformedResponseError):
        kling.parse_task("kling", data)


@pytest.mark.parametrize(
    ("reason", "expected"),
    [
        ("Failure to pass the risk control system", ContentPolicyError),
        ("content moderation review failed", ContentPolicyError),
        ("Task failed due to an internal error", GenerationFailedError),
        (None, GenerationFailedError),
    ],
)
def test_kling_failure_reasons(reason, expected):
    assert kling.failure_class(reason) is expected


@pytest.mark.parametrize(
    ("task", "state", "extra"),
    [
        ({"status": "queued"}, JobState.QUEUED, {}),
        ({"status": "running"}, JobState.RUNNING, {}),
        (
            {"status": "succeeded", "content": {"url": "https://cdn/h3.mp4"}},
            JobState.SUCCEEDED,
            {"output_url": "https://cdn/h3.mp4"},
        ),
        (
            {"status": "failed", "error": {"code": 1027, "message": "output new_sensitive"}},
            JobState.FAILED,
            {"failure_code": "1027", "failure_reason": "output new_sensitive"},
        ),
        ({"status": "cancelled"}, JobState.CANCELLED, {}),
    ],
)
def test_minimax_v2_task_states(task, state, extra):
    status = minimax.parse_v2_task("minimax", {"task": {"id": "t", **task}})
    assert status.state is state
    for key, value in extra.items():
        assert getattr(status, key) == value


@pytest.mark.parametrize(
    "body",
    [{}, {"task": {"id": "t", "status": "paused"}}, {"task": {"status": "succeeded"}}],
)
def test_minimax_v2_malformed_tasks(body):
    with pytest.raises(MalformedResponseError):
        minimax.parse_v2_task("minimax", body)


@pytest.mark.parametrize(
    ("code", "reason", "expected"),
    [
        ("1026", None, ContentPolicyError),
        ("1027", "output new_sensitive", ContentPolicyError),
        (None, "input new_sensitive", ContentPolicyError),
        ("1024", "internal error", GenerationFailedError),
        (None, None, GenerationFailedError),
    ],
)
def test_minimax_failures(code, reason, expected):
    assert minimax.failure_class(code, reason) is expected


@pytest.mark.parametrize(
    ("body", "found"),
    [
        ({"base_resp": {"status_code": 0, "status_msg": "success"}}, None),
        ({"task_id": "1"}, None),
        ({"base_resp": {"status_code": 1002, "status_msg": "rate limit"}}, ("1002", "rate limit")),
    ],
)
def test_minimax_base_resp(body, found):
    assert minimax.base_resp(body) == found
