"""The sandboxes' names and keys: what a config or a client needs to know about them, without
the web stack that serves them (no starlette, no uvicorn)."""

from __future__ import annotations

import hashlib

SANDBOX_NAMES: tuple[str, ...] = (
    "svd", "runway", "luma", "pika", "veo", "replicate", "wan", "seedance", "fal", "kling",
    "minimax",
)  # fmt: skip
"""Backend names, exactly as videogen's config names them; ``--port-base N`` gives the i-th
one port N + i (new ones go at the end, so the others keep their ports)."""

# Fixed keys in each vendor's own key shape, so configs and validators treat them like real ones.
DEFAULT_KEYS: dict[str, str | None] = {
    "svd": None,
    # Runway: "key_" + 128 hex characters.
    "runway": "key_" + hashlib.sha512(b"videogen sandbox runway").hexdigest(),
    # Luma: "luma-" + a UUID + a hex tail.
    "luma": "luma-5a3d2b8e-1c4f-4e7a-9b6d-0f2e8c7a1d34-"
    + hashlib.sha1(b"videogen sandbox luma").hexdigest(),
    # fal: "<key id>:<key secret>".
    "pika": "7c9e6679-7425-40de-944b-e07fc1f90ae7:"
    + hashlib.md5(b"videogen sandbox fal").hexdigest(),
    # Google API key: "AIza" + 35 URL-safe characters.
    "veo": "AIza" + hashlib.sha256(b"videogen sandbox veo").hexdigest()[:35],
    # Replicate: "r8_" + 37 characters.
    "replicate": "r8_" + hashlib.sha256(b"videogen sandbox replicate").hexdigest()[:37],
    # DashScope: "sk-" + 32 hex characters.
    "wan": "sk-" + hashlib.md5(b"videogen sandbox dashscope").hexdigest(),
    # Ark: a UUID.
    "seedance": "3f1c9a52-7d4e-4b8a-9e61-" + hashlib.md5(b"videogen sandbox ark").hexdigest()[:12],
    # fal again, for the generic fal backend (any endpoint on the same queue).
    "fal": "3b8f1c2e-6d4a-4f1b-9e7c-5a2d8c0b4e61:"
    + hashlib.md5(b"videogen sandbox fal generic").hexdigest(),
    # Kling: "<access key>:<secret key>", each 32 characters; the secret signs the JWT.
    "kling": hashlib.md5(b"videogen sandbox kling access").hexdigest()
    + ":"
    + hashlib.md5(b"videogen sandbox kling secret").hexdigest(),
    # MiniMax: "sk-api-" + a long random tail.
    "minimax": "sk-api-" + hashlib.sha256(b"videogen sandbox minimax").hexdigest(),
}
