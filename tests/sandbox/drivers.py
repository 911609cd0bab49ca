"""Minimal raw-HTTP clients, one per vendor sandbox, so contract tests can run against them all.

Each driver speaks its vendor's wire format directly with httpx (no videogen code, no SDK) and maps
the vendor's words to one vocabulary: queued, running, succeeded, failed, cancelled.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from abc import ABC, abstractmethod
from typing import Any

import httpx

from tests.helpers import png_bytes
from videogen.sandbox import DEFAULT_KEYS, SandboxServer

TERMINAL = ("succeeded", "failed", "cancelled")


def svd_graph(
    *,
    image: str | None = None,
    prompt: str | None = None,
    frames: int = 25,
    fps: int = 6,
    width: int = 1024,
    height: int = 576,
    seed: int = 42,
    save: str = "SaveVideo",
    checkpoint: str = "svd_xt_1_1.safetensors",
) -> dict[str, Any]:
    """An API-format SVD graph: image-to-video from an uploaded ``image``, or text-to-video."""
    graph: dict[str, Any] = {
        "1": {"class_type": "ImageOnlyCheckpointLoader", "inputs": {"ckpt_name": checkpoint}},
        "3": {
            "class_type": "SVD_img2vid_Conditioning",
            "inputs": {
                "clip_vision": ["1", 1],
                "init_image": ["2", 0],
                "vae": ["1", 2],
                "width": width,
                "height": height,
                "video_frames": frames,
                "motion_bucket_id": 127,
                "fps": fps,
                "augmentation_level": 0.0,
            },
        },
        "4": {
            "class_type": "VideoLinearCFGGuidance",
            "inputs": {"model": ["1", 0], "min_cfg": 1.0},
        },
        "5": {
            "class_type": "KSampler",
            "inputs": {
                "model": ["4", 0],
                "positive": ["3", 0],
                "negative": ["3", 1],
                "latent_image": ["3", 2],
                "seed": seed,
                "steps": 20,
                "cfg": 2.5,
                "sampler_name": "euler",
                "scheduler": "karras",
                "denoise": 1.0,
            },
        },
        "6": {"class_type": "VAEDecode", "inputs": {"samples": ["5", 0], "vae": ["1", 2]}},
    }
    if prompt is None:
        graph["2"] = {"class_type": "LoadImage", "inputs": {"image": image or "frame.png"}}
    else:
        graph.update(_text_to_image_stage(prompt, width, height))
    graph.update(_save_stage(save, fps))
    return graph


def _text_to_image_stage(prompt: str, width: int, height: int) -> dict[str, Any]:
    sampler = {
        "model": ["10", 0],
        "positive": ["11", 0],
        "negative": ["12", 0],
        "latent_image": ["13", 0],
        "seed": 7,
        "steps": 25,
        "cfg": 7.0,
        "sampler_name": "euler",
        "scheduler": "normal",
        "denoise": 1.0,
    }
    return {
        "10": {
            "class_type": "CheckpointLoaderSimple",
            "inputs": {"ckpt_name": "sd_xl_base_1.0.safetensors"},
        },
        "11": {"class_type": "CLIPTextEncode", "inputs": {"clip": ["10", 1], "text": prompt}},
        "12": {"class_type": "CLIPTextEncode", "inputs": {"clip": ["10", 1], "text": "blurry"}},
        "13": {
            "class_type": "EmptyLatentImage",
            "inputs": {"width": width, "height": height, "batch_size": 1},
        },
        "14": {"class_type": "KSampler", "inputs": sampler},
        "2": {"class_type": "VAEDecode", "inputs": {"samples": ["14", 0], "vae": ["10", 2]}},
    }


def _save_stage(save: str, fps: int) -> dict[str, Any]:
    if save == "VHS_VideoCombine":
        inputs = {
            "images": ["6", 0],
            "frame_rate": fps,
            "loop_count": 0,
            "filename_prefix": "svd",
            "format": "video/h264-mp4",
            "pingpong": False,
            "save_output": True,
        }
        return {"8": {"class_type": "VHS_VideoCombine", "inputs": inputs}}
    if save == "SaveAnimatedWEBP":
        inputs = {"images": ["6", 0], "filename_prefix": "svd", "fps": fps, "lossless": False}
        return {"8": {"class_type": "SaveAnimatedWEBP", "inputs": {**inputs, "quality": 85}}}
    video = {"video": ["7", 0], "filename_prefix": "video/svd", "format": "mp4", "codec": "h264"}
    return {
        "7": {"class_type": "CreateVideo", "inputs": {"images": ["6", 0], "fps": fps}},
        "8": {"class_type": "SaveVideo", "inputs": video},
    }


class Driver(ABC):
    """One vendor's wire format, spoken with plain httpx."""

    name = ""
    health_status = 200
    """The status a healthy probe answers with (fal's probe is a 404 on an unknown id)."""
    expected_duration = 5.0
    auth_header = "Authorization"
    """The header that carries the key."""
    states = ["queued", "running", "succeeded"]
    """The states a job shows, in order (Veo shows no queue)."""
    waiting_word = "queued"
    """What a job waiting for a vendor slot looks like."""
    cancels: str | None = "running"
    """The latest state a job can be cancelled in (DashScope and Ark: only while queued);
    ``None``: the vendor has no cancel (Veo)."""
    inline_output = False
    """The video comes inside the poll's answer: there is no download request (Veo)."""
    queues = True
    """Jobs over the vendor's concurrency limit wait their turn (Kling refuses them instead)."""

    def __init__(self, server: SandboxServer) -> None:
        self.server = server
        self.state = server.state
        self.key = DEFAULT_KEYS[self.name]
        self.http = httpx.Client(base_url=server.base_url, headers=self.headers(), timeout=5)

    def headers(self, key: str | None = None) -> dict[str, str]:
        return {}

    def close(self) -> None:
        self.http.close()

    # vendor specifics
    @abstractmethod
    def create(self, prompt: str = "a red fox in the snow", **params: Any) -> httpx.Response: ...

    @abstractmethod
    def job_id(self, created: httpx.Response) -> str: ...

    @abstractmethod
    def poll(self, job_id: str) -> httpx.Response: ...

    @abstractmethod
    def status(self, job_id: str) -> str: ...

    @abstractmethod
    def video_url(self, job_id: str) -> str: ...

    @abstractmethod
    def cancel(self, job_id: str) -> None: ...

    @abstractmethod
    def health(self) -> httpx.Response: ...

    @staticmethod
    @abstractmethod
    def error_text(response: httpx.Response) -> str: ...

    def status_of(self, response: httpx.Response) -> int:
        """The HTTP status the vendor means (MiniMax says most errors inside a 200)."""
        return response.status_code

    # shared
    def submit(self, prompt: str = "a red fox in the snow", **params: Any) -> str:
        created = self.create(prompt, **params)
        assert created.is_success, created.text
        return self.job_id(created)

    def watch(self, job_id: str, timeout: float = 5.0) -> list[str]:
        """Poll every 10 ms until the job ends; returns the distinct states seen, in order."""
        seen: list[str] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = self.status(job_id)
            if not seen or seen[-1] != state:
                seen.append(state)
            if state in TERMINAL:
                return seen
            time.sleep(0.01)
        raise AssertionError(f"{self.name} job {job_id} did not end; saw {seen}")

    def download(self, job_id: str) -> httpx.Response:
        return httpx.get(self.video_url(job_id), timeout=5)


class RunwayDriver(Driver):
    name = "runway"
    _WORDS = {
        "THROTTLED": "queued",
        "PENDING": "queued",
        "RUNNING": "running",
        "SUCCEEDED": "succeeded",
        "FAILED": "failed",
        "CANCELLED": "cancelled",
    }

    def headers(self, key: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {key or self.key}", "X-Runway-Version": "2024-11-06"}

    def create(self, prompt: str = "a red fox in the snow", **params: Any) -> httpx.Response:
        body = {"model": "gen4.5", "promptText": prompt, "ratio": "1280:720", "duration": 5}
        return self.http.post("/v1/text_to_video", json={**body, **params})

    def job_id(self, created: httpx.Response) -> str:
        return str(created.json()["id"])

    def poll(self, job_id: str) -> httpx.Response:
        return self.http.get(f"/v1/tasks/{job_id}")

    def status(self, job_id: str) -> str:
        return self._WORDS[self.poll(job_id).json()["status"]]

    def video_url(self, job_id: str) -> str:
        return str(self.poll(job_id).json()["output"][0])

    def cancel(self, job_id: str) -> None:
        assert self.http.delete(f"/v1/tasks/{job_id}").status_code == 204

    def health(self) -> httpx.Response:
        return self.http.get("/v1/organization")

    @staticmethod
    def error_text(response: httpx.Response) -> str:
        return str(response.json()["error"])


class LumaDriver(Driver):
    name = "luma"
    _WORDS = {
        "queued": "queued",
        "dreaming": "running",
        "completed": "succeeded",
        "failed": "failed",
    }

    def headers(self, key: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {key or self.key}"}

    def create(self, prompt: str = "a red fox in the snow", **params: Any) -> httpx.Response:
        body = {"model": "ray-2", "prompt": prompt, "duration": "5s", "resolution": "540p"}
        return self.http.post("/generations/video", json={**body, **params})

    def job_id(self, created: httpx.Response) -> str:
        return str(created.json()["id"])

    def poll(self, job_id: str) -> httpx.Response:
        return self.http.get(f"/generations/{job_id}")

    def status(self, job_id: str) -> str:
        response = self.poll(job_id)
        # Luma has no "cancelled": deleting is the only way to stop a generation, and it 404s after.
        return "cancelled" if response.status_code == 404 else self._WORDS[response.json()["state"]]

    def video_url(self, job_id: str) -> str:
        return str(self.poll(job_id).json()["assets"]["video"])

    def cancel(self, job_id: str) -> None:
        assert self.http.delete(f"/generations/{job_id}").status_code == 204

    def health(self) -> httpx.Response:
        return self.http.get("/ping")

    @staticmethod
    def error_text(response: httpx.Response) -> str:
        return str(response.json()["detail"])


class FalDriver(Driver):
    name = "pika"
    health_status = 404
    endpoint = "fal-ai/pika/v2.2/text-to-video"
    app = "fal-ai/pika"
    body: dict[str, Any] = {"duration": 5, "aspect_ratio": "16:9"}
    _WORDS = {"IN_QUEUE": "queued", "IN_PROGRESS": "running"}

    def headers(self, key: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Key {key or self.key}"}

    def create(self, prompt: str = "a red fox in the snow", **params: Any) -> httpx.Response:
        return self.http.post(f"/{self.endpoint}", json={"prompt": prompt, **self.body, **params})

    def job_id(self, created: httpx.Response) -> str:
        return str(created.json()["request_id"])

    def poll(self, job_id: str) -> httpx.Response:
        return self.http.get(f"/{self.app}/requests/{job_id}/status", params={"logs": 1})

    def result(self, job_id: str) -> httpx.Response:
        return self.http.get(f"/{self.app}/requests/{job_id}")

    def status(self, job_id: str) -> str:
        word = self.poll(job_id).json()["status"]
        if word != "COMPLETED":
            return self._WORDS[word]
        result = self.result(job_id)
        if result.status_code == 200:
            return "succeeded"
        cancelled = result.json().get("error_type") == "client_cancelled"
        return "cancelled" if cancelled else "failed"

    def video_url(self, job_id: str) -> str:
        return str(self.result(job_id).json()["video"]["url"])

    def cancel(self, job_id: str) -> None:
        assert self.http.put(f"/{self.app}/requests/{job_id}/cancel").status_code == 202

    def health(self) -> httpx.Response:
        return self.http.get(f"/{self.app}/requests/{uuid.uuid4()}/status")

    @staticmethod
    def error_text(response: httpx.Response) -> str:
        return str(response.json()["detail"])


class FalGenericDriver(FalDriver):
    """Another model on the same queue: Kling 2.5 turbo, whose ``duration`` is a string."""

    name = "fal"
    endpoint = "fal-ai/kling-video/v2.5-turbo/pro/text-to-video"
    app = "fal-ai/kling-video"
    body = {"duration": "5", "aspect_ratio": "16:9"}


class ComfyDriver(Driver):
    name = "svd"
    expected_duration = 25 / 6

    def create(self, prompt: str = "a red fox in the snow", **params: Any) -> httpx.Response:
        return self.http.post("/prompt", json={"prompt": svd_graph(prompt=prompt, **params)})

    def upload(self, name: str = "frame.png", data: bytes | None = None) -> httpx.Response:
        files = {"image": (name, data if data is not None else png_bytes(), "image/png")}
        return self.http.post("/upload/image", files=files, data={"type": "input"})

    def job_id(self, created: httpx.Response) -> str:
        return str(created.json()["prompt_id"])

    def poll(self, job_id: str) -> httpx.Response:
        return self.http.get(f"/history/{job_id}")

    def status(self, job_id: str) -> str:
        finished = self._finished_status(job_id)
        if finished is not None:
            return finished
        queue = self.http.get("/queue").json()
        if any(item[1] == job_id for item in queue["queue_running"]):
            return "running"
        if any(item[1] == job_id for item in queue["queue_pending"]):
            return "queued"
        # It may have finished between the two calls; a deleted pending prompt is simply gone.
        return self._finished_status(job_id) or "gone"

    def _finished_status(self, job_id: str) -> str | None:
        entry = self.poll(job_id).json().get(job_id)
        if entry is None:
            return None
        if entry["status"]["status_str"] == "success":
            return "succeeded"
        messages = [message[0] for message in entry["status"]["messages"]]
        return "cancelled" if "execution_interrupted" in messages else "failed"

    def video_url(self, job_id: str) -> str:
        outputs = self.poll(job_id).json()[job_id]["outputs"]
        files = next(iter(outputs.values()))
        found = (files.get("images") or files.get("gifs"))[0]
        query = f"filename={found['filename']}&subfolder={found['subfolder']}&type={found['type']}"
        return f"{self.server.base_url}/view?{query}"

    def cancel(self, job_id: str) -> None:
        self.http.post("/queue", json={"delete": [job_id]})
        self.http.post("/interrupt", json={"prompt_id": job_id})

    def health(self) -> httpx.Response:
        return self.http.get("/system_stats")

    @staticmethod
    def error_text(response: httpx.Response) -> str:
        error = response.json()["error"]
        return str(error["message"] if isinstance(error, dict) else error)


class VeoDriver(Driver):
    """Vertex express mode: ``x-goog-api-key``, operations fetched by name, videos inline."""

    name = "veo"
    expected_duration = 4.0
    auth_header = "x-goog-api-key"
    states = ["running", "succeeded"]
    waiting_word = "running"
    cancels = None
    inline_output = True
    MODEL = "publishers/google/models/veo-3.1-fast-generate-001"

    def headers(self, key: str | None = None) -> dict[str, str]:
        return {"x-goog-api-key": key or self.key or ""}

    def create(self, prompt: str = "a red fox in the snow", **params: Any) -> httpx.Response:
        parameters = {"durationSeconds": 4, "aspectRatio": "16:9", **params}
        body = {"instances": [{"prompt": prompt}], "parameters": parameters}
        return self.http.post(f"/v1beta1/{self.MODEL}:predictLongRunning", json=body)

    def job_id(self, created: httpx.Response) -> str:
        return str(created.json()["name"])

    def poll(self, job_id: str) -> httpx.Response:
        resource = job_id.rpartition("/operations/")[0]
        body = {"operationName": job_id}
        return self.http.post(f"/v1beta1/{resource}:fetchPredictOperation", json=body)

    def status(self, job_id: str) -> str:
        operation = self.poll(job_id).json()
        if not operation.get("done"):
            return "running"
        if "error" in operation:
            return "cancelled" if operation["error"]["code"] == 1 else "failed"
        return "succeeded" if operation["response"].get("videos") else "failed"

    def video_url(self, job_id: str) -> str:
        raise AssertionError("Veo has no video URL: the video comes inline")

    def download(self, job_id: str) -> httpx.Response:
        """The inline video as if it had been fetched (its bytes and its mime type)."""
        [video] = self.poll(job_id).json()["response"]["videos"]
        data = base64.b64decode(video["bytesBase64Encoded"])
        return httpx.Response(200, content=data, headers={"content-type": video["mimeType"]})

    def cancel(self, job_id: str) -> None:
        """Google's generic ``{operation}:cancel`` does not exist for Veo's operations."""
        assert self.http.post(f"/v1beta1/{job_id}:cancel").status_code == 404

    def health(self) -> httpx.Response:
        return self.http.get(f"/v1beta1/{self.MODEL}")

    @staticmethod
    def error_text(response: httpx.Response) -> str:
        return str(response.json()["error"]["message"])


class ReplicateDriver(Driver):
    name = "replicate"
    expected_duration = 8.0
    _WORDS = {
        "starting": "queued",
        "processing": "running",
        "succeeded": "succeeded",
        "failed": "failed",
        "canceled": "cancelled",
        "aborted": "cancelled",
    }

    def headers(self, key: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {key or self.key}"}

    def create(self, prompt: str = "a red fox in the snow", **params: Any) -> httpx.Response:
        body = {"input": {"prompt": prompt, "duration": 8, **params}}
        return self.http.post("/v1/models/google/veo-3/predictions", json=body)

    def job_id(self, created: httpx.Response) -> str:
        return str(created.json()["id"])

    def poll(self, job_id: str) -> httpx.Response:
        return self.http.get(f"/v1/predictions/{job_id}")

    def status(self, job_id: str) -> str:
        return self._WORDS[self.poll(job_id).json()["status"]]

    def video_url(self, job_id: str) -> str:
        return str(self.poll(job_id).json()["output"])

    def cancel(self, job_id: str) -> None:
        assert self.http.post(f"/v1/predictions/{job_id}/cancel").status_code == 200

    def health(self) -> httpx.Response:
        return self.http.get("/v1/account")

    @staticmethod
    def error_text(response: httpx.Response) -> str:
        return str(response.json()["detail"])


class WanDriver(Driver):
    name = "wan"
    cancels = "queued"
    _WORDS = {
        "PENDING": "queued",
        "SUSPENDED": "queued",
        "RUNNING": "running",
        "SUCCEEDED": "succeeded",
        "FAILED": "failed",
        "CANCELED": "cancelled",
    }

    def headers(self, key: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {key or self.key}"}

    def create(self, prompt: str = "a red fox in the snow", **params: Any) -> httpx.Response:
        body = {
            "model": "wan2.7-t2v",
            "input": {"prompt": prompt},
            "parameters": {"resolution": "720P", "ratio": "16:9", "duration": 5, **params},
        }
        path = "/services/aigc/video-generation/video-synthesis"
        return self.http.post(path, json=body, headers={"X-DashScope-Async": "enable"})

    def job_id(self, created: httpx.Response) -> str:
        return str(created.json()["output"]["task_id"])

    def poll(self, job_id: str) -> httpx.Response:
        return self.http.get(f"/tasks/{job_id}")

    def status(self, job_id: str) -> str:
        return self._WORDS[self.poll(job_id).json()["output"]["task_status"]]

    def video_url(self, job_id: str) -> str:
        return str(self.poll(job_id).json()["output"]["video_url"])

    def cancel(self, job_id: str) -> None:
        assert self.http.post(f"/tasks/{job_id}/cancel").status_code == 200

    def health(self) -> httpx.Response:
        return self.http.get(f"/tasks/{uuid.uuid4()}")

    @staticmethod
    def error_text(response: httpx.Response) -> str:
        return str(response.json()["message"])


class SeedanceDriver(Driver):
    name = "seedance"
    cancels = "queued"
    _WORDS = {"expired": "failed"}

    def headers(self, key: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {key or self.key}"}

    def create(self, prompt: str = "a red fox in the snow", **params: Any) -> httpx.Response:
        body = {
            "model": "seedance-1-5-pro-251215",
            "content": [{"type": "text", "text": prompt}],
            "resolution": "480p",
            "ratio": "16:9",
            "duration": 5,
        }
        return self.http.post("/contents/generations/tasks", json={**body, **params})

    def job_id(self, created: httpx.Response) -> str:
        return str(created.json()["id"])

    def poll(self, job_id: str) -> httpx.Response:
        return self.http.get(f"/contents/generations/tasks/{job_id}")

    def status(self, job_id: str) -> str:
        word = str(self.poll(job_id).json()["status"])
        return self._WORDS.get(word, word)

    def video_url(self, job_id: str) -> str:
        return str(self.poll(job_id).json()["content"]["video_url"])

    def cancel(self, job_id: str) -> None:
        assert self.http.delete(f"/contents/generations/tasks/{job_id}").status_code == 200

    def health(self) -> httpx.Response:
        return self.http.get("/contents/generations/tasks", params={"page_size": 1})

    @staticmethod
    def error_text(response: httpx.Response) -> str:
        return str(response.json()["error"]["message"])


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def kling_token(key: str, *, expires_in: float = 1800, valid_in: float = -5) -> str:
    """A Kling JWT for ``ACCESS:SECRET`` (a key without a colon signs with itself)."""
    access, _, secret = key.partition(":")
    now = time.time()
    claims = {"iss": access, "exp": int(now + expires_in), "nbf": int(now + valid_in)}
    head = _b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = _b64url(json.dumps(claims).encode())
    mac = hmac.new((secret or access).encode(), f"{head}.{body}".encode(), hashlib.sha256)
    return f"{head}.{body}.{_b64url(mac.digest())}"


class KlingDriver(Driver):
    name = "kling"
    queues = False
    cancels = None
    _WORDS = {
        "submitted": "queued",
        "processing": "running",
        "succeed": "succeeded",
        "failed": "failed",
    }

    def headers(self, key: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {kling_token(key or self.key or '')}"}

    def create(self, prompt: str = "a red fox in the snow", **params: Any) -> httpx.Response:
        body = {"model_name": "kling-v2-5-turbo", "prompt": prompt, "duration": "5", "mode": "std"}
        return self.http.post("/v1/videos/text2video", json={**body, **params})

    def job_id(self, created: httpx.Response) -> str:
        return str(created.json()["data"]["task_id"])

    def poll(self, job_id: str) -> httpx.Response:
        return self.http.get(f"/v1/videos/text2video/{job_id}")

    def task(self, job_id: str) -> dict[str, Any]:
        answer = self.poll(job_id).json()
        assert answer["code"] == 0, answer
        task: dict[str, Any] = answer["data"]
        return task

    def status(self, job_id: str) -> str:
        return self._WORDS[self.task(job_id)["task_status"]]

    def video_url(self, job_id: str) -> str:
        return str(self.task(job_id)["task_result"]["videos"][0]["url"])

    def cancel(self, job_id: str) -> None:
        """Kling has no cancel: no route of it takes a DELETE."""
        assert self.http.delete(f"/v1/videos/text2video/{job_id}").status_code == 405

    def health(self) -> httpx.Response:
        return self.http.get("/account/costs", params={"start_time": 0, "end_time": 10**13})

    @staticmethod
    def error_text(response: httpx.Response) -> str:
        return str(response.json()["message"])


class MiniMaxDriver(Driver):
    """MiniMax's V1 API: task, then file id, then download URL."""

    name = "minimax"
    expected_duration = 6.0
    cancels = None
    _WORDS = {
        "Preparing": "queued",
        "Queueing": "queued",
        "Processing": "running",
        "Success": "succeeded",
        "Fail": "failed",
    }
    _STATUS_FOR_CODE = {1002: 429, 1004: 401, 2049: 401, 2013: 400, 1008: 402}

    def headers(self, key: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {key or self.key}"}

    def create(self, prompt: str = "a red fox in the snow", **params: Any) -> httpx.Response:
        body = {"model": "MiniMax-Hailuo-2.3", "prompt": prompt, "duration": 6}
        return self.http.post("/v1/video_generation", json={**body, **params})

    def job_id(self, created: httpx.Response) -> str:
        return str(created.json()["task_id"])

    def poll(self, job_id: str) -> httpx.Response:
        return self.http.get("/v1/query/video_generation", params={"task_id": job_id})

    def status(self, job_id: str) -> str:
        return self._WORDS[self.poll(job_id).json()["status"]]

    def video_url(self, job_id: str) -> str:
        file_id = self.poll(job_id).json()["file_id"]
        found = self.http.get("/v1/files/retrieve", params={"file_id": file_id}).json()
        return str(found["file"]["download_url"])

    def cancel(self, job_id: str) -> None:
        """V1 has no cancel, and V2's does not see V1 tasks."""
        refused = self.http.delete(f"/v2/video_generation/{job_id}")
        assert refused.json()["base_resp"]["status_msg"] == "record not found"

    def health(self) -> httpx.Response:
        return self.http.get("/v1/files/list", params={"purpose": "video_generation"})

    @staticmethod
    def error_text(response: httpx.Response) -> str:
        return str(response.json()["base_resp"]["status_msg"])

    def status_of(self, response: httpx.Response) -> int:
        try:
            code = response.json()["base_resp"]["status_code"]
        except (ValueError, KeyError, TypeError):
            return response.status_code
        if response.status_code != 200 or code == 0:
            return response.status_code
        return self._STATUS_FOR_CODE.get(code, 500)


class MiniMaxV2Driver(MiniMaxDriver):
    """MiniMax's V2 API (MiniMax-H3): a content list, ``{"task": ...}``, and a cancel."""

    expected_duration = 5.0
    cancels = "running"
    _V2_WORDS = {
        "queued": "queued",
        "running": "running",
        "succeeded": "succeeded",
        "failed": "failed",
        "cancelled": "cancelled",
    }

    def create(self, prompt: str = "a red fox in the snow", **params: Any) -> httpx.Response:
        body = {
            "model": "MiniMax-H3",
            "content": [{"type": "text", "text": prompt}],
            "duration": 5,
            "resolution": "768P",
        }
        return self.http.post("/v2/video_generation", json={**body, **params})

    def poll(self, job_id: str) -> httpx.Response:
        return self.http.get(f"/v2/query/video_generation/{job_id}")

    def status(self, job_id: str) -> str:
        return self._V2_WORDS[self.poll(job_id).json()["task"]["status"]]

    def video_url(self, job_id: str) -> str:
        return str(self.poll(job_id).json()["task"]["content"]["url"])

    def cancel(self, job_id: str) -> None:
        assert self.http.delete(f"/v2/video_generation/{job_id}").status_code == 200

    def health(self) -> httpx.Response:
        return self.http.get("/v2/query/video_generation", params={"page_size": 1})


DRIVERS: dict[str, type[Driver]] = {
    "runway": RunwayDriver,
    "luma": LumaDriver,
    "pika": FalDriver,
    "svd": ComfyDriver,
    "veo": VeoDriver,
    "replicate": ReplicateDriver,
    "wan": WanDriver,
    "seedance": SeedanceDriver,
    "fal": FalGenericDriver,
    "kling": KlingDriver,
    "minimax": MiniMaxDriver,
    "minimax-v2": MiniMaxV2Driver,
}
