"""Names and defaults defined once, each with the reason for its value."""

from __future__ import annotations

from pathlib import Path

BACKEND_NAMES = ("svd", "runway", "pika", "luma")
"""The backends of the original design, in its default priority order."""

DEFAULT_CONFIG_PATH = "config/config.json"
DATA_DIR = Path(__file__).resolve().parent / "data"
"""Files shipped inside the package (workflow templates, the demo scenes): an installed
videogen finds them wherever it runs, never through the current folder."""
DEFAULT_SVD_WORKFLOW = DATA_DIR / "svd_workflow.json"
SVD_TEXT_WORKFLOW = DATA_DIR / "svd_text_workflow.json"
"""A text-to-image stage before SVD; opt in with ``svd.text_workflow``."""
DEMO_SCENES = DATA_DIR / "examples" / "scenes.json"
CONFIG_ENV = "VIDEOGEN_CONFIG"

RUNWAY_BASE_URL = "https://api.dev.runwayml.com"
"""Runway's docs: use api.dev.runwayml.com, not api.runwayml.com."""
RUNWAY_API_VERSION = "2024-11-06"
"""Sent as X-Runway-Version; the SDK's current value, required on every request."""
LUMA_BASE_URL = "https://api.lumalabs.ai/dream-machine/v1"
FAL_QUEUE_URL = "https://queue.fal.run"
COMFYUI_BASE_URL = "http://127.0.0.1:8188"
VEO_BASE_URL = "https://aiplatform.googleapis.com"
"""Vertex AI's global endpoint: the one express mode (an API key, no project) uses."""
VERTEX_API_VERSION = "v1beta1"
"""google-genai's default for Vertex; the Veo paths live under it."""
REPLICATE_BASE_URL = "https://api.replicate.com"
"""Paths start with ``/v1``, as in Replicate's SDK."""
WAN_BASE_URL = "https://dashscope-intl.aliyuncs.com/api/v1"
"""DashScope's Singapore (international) gateway; model, endpoint and key must share a region."""
SEEDANCE_BASE_URL = "https://ark.ap-southeast.bytepluses.com/api/v3"
"""BytePlus ModelArk (international); Volcengine Ark in China is ark.cn-beijing.volces.com."""
KLING_BASE_URL = "https://api-singapore.klingai.com"
"""Kling's global host ("changed from https://api.klingai.com"); mainland China keys work only
on https://api-beijing.klingai.com (``shared/vendor-apis-2.md`` §2.1)."""
KLING_TOKEN_SECONDS = 1800
"""Lifetime of the JWT signed for each Kling request (Kling's documented example: 30 min)."""
KLING_TOKEN_SKEW_SECONDS = 5
"""The token is valid from this long before it is signed: a vendor clock a little behind ours
must not refuse it as "not yet valid" (code 1003)."""
MINIMAX_BASE_URL = "https://api.minimax.io"
"""MiniMax's international host; mainland keys use https://api.minimaxi.com."""

HTTP_TIMEOUT_SECONDS = 30.0
"""One HTTP request; a whole generation has its own, much longer, per-backend ``timeout``."""
HTTP_CONNECT_TIMEOUT_SECONDS = 5.0

MAX_VIDEO_BYTES = 512 * 1024 * 1024
"""A 10 s 4K clip is ~100 MB; five times that is not a video we asked for."""
MAX_IMAGE_BYTES = 20 * 1024 * 1024
RUNWAY_DATA_URI_MAX_BYTES = 5 * 1024 * 1024
"""Runway refuses data URIs over 5 MB (assets/inputs)."""

DOWNLOAD_CHUNK_BYTES = 256 * 1024
ERROR_TEXT_MAX_CHARS = 300
"""Vendor error texts are cut to this so one answer cannot flood logs or results."""

DEFAULT_REDIS_URL = "redis://127.0.0.1:6399/0"
"""The embedded Redis that `videogen up` starts when no URL is configured."""
SENTINEL_TIMEOUT = 2.0
"""Seconds one sentinel may take to connect or answer before the next one is asked."""
ROUTER_QUEUE = "router"
BACKEND_QUEUE_PREFIX = "backend."
"""Each backend's own queue is ``backend.<name>``, consumed only by that backend's workers."""
EMBEDDED_REDIS_PORT = 6399
"""Not 6379, so an embedded Redis never collides with a system one."""
WORKER_ROLE_ENV = "VIDEOGEN_WORKER_ROLE"
"""Set by ``videogen worker`` (``router`` or a backend name): what the worker publishes."""
SANDBOX_HOST_ENV = "VIDEOGEN_SANDBOX_HOST"
"""When set (docker compose does), backends without a key talk to the sandboxes there."""
SANDBOX_PORT_BASE = 9100


def backend_queue(name: str) -> str:
    """The Celery queue a backend's workers consume."""
    return f"{BACKEND_QUEUE_PREFIX}{name}"
