"""Images in, videos out: loading first frames, downloading and validating output files.

A file counts as a video only if it opens as one (a video stream, decodable frames,
duration > 0); a 0-byte or HTML "video" is a failure, never a success. Downloads stream to
disk under a size cap and only from allowed places.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import os
import tempfile
from pathlib import Path
from typing import IO, NamedTuple
from urllib.parse import urljoin, urlsplit

import av
import httpx

from .constants import DOWNLOAD_CHUNK_BYTES, MAX_IMAGE_BYTES
from .errors import InvalidOutputError, RejectedInputError, SceneValidationError
from .models import VideoInfo
from .transport import credentials, send, status_error, transport_error

_IMAGE_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "image/png", "png"),
    (b"\xff\xd8\xff", "image/jpeg", "jpg"),
    (b"GIF87a", "image/gif", "gif"),
    (b"GIF89a", "image/gif", "gif"),
)
_MAX_REDIRECTS = 3


class ImageData(NamedTuple):
    data: bytes
    mime: str
    filename: str


def sniff_image(data: bytes) -> tuple[str, str] | None:
    """``(mime, extension)`` when the bytes start like a PNG, JPEG, GIF or WEBP image."""
    for magic, mime, ext in _IMAGE_MAGIC:
        if data.startswith(magic):
            return mime, ext
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp", "webp"
    return None


def _image(data: bytes, where: str, stem: str = "frame") -> ImageData:
    kind = sniff_image(data)
    if kind is None:
        raise SceneValidationError([("scene", "image", f"{where} is not a PNG, JPEG, GIF or WEBP")])
    return ImageData(data, kind[0], f"{stem}.{kind[1]}")


def read_image_file(path: Path) -> ImageData:
    """A local first frame, checked to be an image and not too big."""
    try:
        size = path.stat().st_size
        if size > MAX_IMAGE_BYTES:
            raise SceneValidationError(
                [("scene", "image", f"{path} is {size} bytes, over the cap")]
            )
        data = path.read_bytes()
    except OSError as error:
        problem = f"cannot read {path}: {error.strerror}"
        raise SceneValidationError([("scene", "image", problem)]) from None
    return _image(data, str(path), path.stem or "frame")


def decode_data_uri(uri: str) -> ImageData:
    """Bytes of a ``data:image/...;base64,`` URI."""
    head, _, payload = uri.partition(",")
    if not head.startswith("data:image/") or not head.endswith(";base64"):
        raise SceneValidationError([("scene", "image", "data URI is not base64 image data")])
    try:
        data = base64.b64decode(payload, validate=True)
    except binascii.Error:
        raise SceneValidationError([("scene", "image", "data URI is not valid base64")]) from None
    return _image(data, "data URI")


def fetch_image(client: httpx.Client, backend: str, url: str) -> ImageData:
    """Download a first frame from an http(s) URL (for vendors that cannot fetch it)."""
    response = send(client, backend, "GET", url, follow_redirects=True)
    if len(response.content) > MAX_IMAGE_BYTES:
        raise RejectedInputError(backend, f"image at {_safe(url)} is over {MAX_IMAGE_BYTES} bytes")
    stem = Path(urlsplit(url).path).stem or "frame"
    return _image(response.content, f"image at {_safe(url)}", stem)


def load_image(client: httpx.Client, backend: str, ref: str) -> ImageData:
    """The first frame's bytes, wherever the scene points: file, URL or data URI."""
    if ref.startswith("data:"):
        return decode_data_uri(ref)
    if ref.startswith(("http://", "https://")):
        return fetch_image(client, backend, ref)
    return read_image_file(Path(ref))


def data_uri(image: ImageData) -> str:
    return f"data:{image.mime};base64,{base64.b64encode(image.data).decode('ascii')}"


def _safe(url: str) -> str:
    """A URL for messages: scheme, host and path only (query strings may carry tokens)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"[:200]


def _is_private_host(host: str) -> bool:
    if host in ("localhost", "localhost.localdomain") or host.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return not address.is_global


def check_output_url(backend: str, url: str, base_url: str) -> None:
    """Refuse output URLs that are not http(s), or that point at a private or loopback address
    other than the backend's own host (a sandbox or a self-hosted ComfyUI serves its own files).
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise InvalidOutputError(backend, f"output URL scheme {parts.scheme!r} is not http(s)")
    host = parts.hostname or ""
    if not host:
        raise InvalidOutputError(backend, "output URL has no host")
    own = urlsplit(base_url)
    if host == own.hostname and (parts.port or 0) == (own.port or 0):
        return
    if _is_private_host(host):
        raise InvalidOutputError(
            backend, f"output URL {_safe(url)} points at a private address, not the vendor"
        )


def download_video(
    client: httpx.Client,
    backend: str,
    url: str,
    dest: Path,
    *,
    base_url: str,
    max_bytes: int,
    headers: dict[str, str] | None = None,
) -> VideoInfo:
    """Stream ``url`` to ``dest`` (atomically, under ``max_bytes``) and check it is a video."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            _stream(client, backend, url, out, base_url, max_bytes, headers or {})
        info = probe_video(backend, tmp)
        tmp.replace(dest)
    finally:
        tmp.unlink(missing_ok=True)
    return info.model_copy(update={"path": dest})


def _stream(
    client: httpx.Client,
    backend: str,
    url: str,
    out: IO[bytes],
    base_url: str,
    max_bytes: int,
    headers: dict[str, str],
) -> None:
    for _ in range(_MAX_REDIRECTS + 1):
        check_output_url(backend, url, base_url)
        location = _stream_once(client, backend, url, out, max_bytes, headers)
        if location is None:
            return
        url = urljoin(url, location)
    raise InvalidOutputError(backend, f"output URL redirected more than {_MAX_REDIRECTS} times")


def _stream_once(
    client: httpx.Client,
    backend: str,
    url: str,
    out: IO[bytes],
    max_bytes: int,
    headers: dict[str, str],
) -> str | None:
    """Write the body to ``out``; return a redirect's Location instead when there is one."""
    try:
        with client.stream("GET", url, headers=headers) as response:
            if response.is_redirect:
                return str(response.headers.get("location", "")) or None
            if response.status_code >= 400:
                response.read()
                raise status_error(backend, response, secrets=credentials(headers))
            _check_headers(backend, response, max_bytes)
            _copy(backend, response, out, max_bytes)
    except httpx.HTTPError as error:
        raise transport_error(backend, error, creates_job=False) from None
    return None


def _check_headers(backend: str, response: httpx.Response, max_bytes: int) -> None:
    kind = response.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind.startswith("text/") or kind in ("application/json", "application/xml"):
        raise InvalidOutputError(backend, f"output is {kind}, not a video")
    length = response.headers.get("content-length")
    if length and length.isdigit() and int(length) > max_bytes:
        raise InvalidOutputError(backend, f"output is {length} bytes, over the {max_bytes} cap")


def _copy(backend: str, response: httpx.Response, out: IO[bytes], max_bytes: int) -> None:
    written = 0
    for chunk in response.iter_bytes(DOWNLOAD_CHUNK_BYTES):
        written += len(chunk)
        if written > max_bytes:
            raise InvalidOutputError(backend, f"output is over the {max_bytes}-byte cap")
        out.write(chunk)


def probe_video(backend: str, path: Path) -> VideoInfo:
    """Open ``path`` as a video: it needs a video stream whose every frame is in the file,
    a first frame that decodes, and duration > 0.

    Every packet is read (a file cut short, or whose index promises frames it lacks, is
    refused), but only the first frame is decoded: decoding them all cost a 5-s 720p clip
    26 ms of CPU on the worker's thread, and a minute of 1080p costs seconds, for no check
    the reading does not already make of a file the vendor encoded.
    """
    size = path.stat().st_size
    if size == 0:
        raise InvalidOutputError(backend, "output file is empty (0 bytes)")
    try:
        with av.open(str(path)) as container:
            return _inspect(backend, path, size, container)
    except av.FFmpegError as error:
        raise InvalidOutputError(backend, f"output does not open as a video ({error})") from None


def _inspect(
    backend: str, path: Path, size: int, container: av.container.InputContainer
) -> VideoInfo:
    if not container.streams.video:
        raise InvalidOutputError(backend, "output has no video stream")
    stream = container.streams.video[0]
    frames = _read_frames(backend, container, stream)
    duration = _duration(stream, container)
    if frames == 0 or duration <= 0:
        raise InvalidOutputError(backend, f"output has {frames} frames and {duration:.2f} s")
    return VideoInfo(
        path=path,
        size_bytes=size,
        width=stream.codec_context.width,
        height=stream.codec_context.height,
        frames=frames,
        duration=round(duration, 3),
        codec=stream.codec_context.name,
    )


def _read_frames(
    backend: str, container: av.container.InputContainer, stream: av.video.stream.VideoStream
) -> int:
    """Read every packet of ``stream`` and decode until the first frame comes out; returns
    the number of frames (one per packet with data)."""
    frames, decoded = 0, False
    # one decoding thread: the first frame is all it decodes, and the default (a thread per
    # core, started for each file) doubles what that costs the worker
    stream.codec_context.thread_count = 1
    for packet in container.demux(stream):
        if packet.size == 0:
            continue  # the demuxer's end-of-stream marker
        if packet.is_corrupt:
            raise InvalidOutputError(
                backend, f"output is cut short: frame {frames + 1}'s data is incomplete"
            )
        frames += 1
        if not decoded:
            decoded = bool(stream.decode(packet))
    if frames and not decoded:
        decoded = bool(stream.decode(None))  # a decoder that holds frames back gives them now
    promised = stream.frames
    if promised and frames < promised:
        raise InvalidOutputError(
            backend, f"output is cut short: {frames} of the {promised} frames it lists"
        )
    if frames and not decoded:
        raise InvalidOutputError(backend, "output's first frame does not decode")
    return frames


def _duration(stream: av.video.stream.VideoStream, container: av.container.InputContainer) -> float:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / av.time_base
    return 0.0
