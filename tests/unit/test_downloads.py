"""Output downloads: only http(s), only allowed places, under the cap, and only real videos.

A real loopback server plays the vendor's file host; each refusal names what was wrong.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import av
import httpx
import pytest

from videogen.errors import InvalidOutputError, RejectedInputError
from videogen.media import check_output_url, download_video, probe_video
from videogen.sandbox.mp4 import make_test_pattern_mp4
from videogen.transport import send

VIDEO = make_test_pattern_mp4(1.0, 64, 36, 8)


class Host(BaseHTTPRequestHandler):
    routes: dict[str, tuple[int, dict[str, str], bytes]] = {}

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        status, headers, body = self.routes.get(self.path, (404, {}, b"missing"))
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        if "Content-Length" not in headers and "Transfer-Encoding" not in headers:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


@pytest.fixture(scope="module")
def host() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Host)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    Host.routes = {
        "/ok.mp4": (200, {"Content-Type": "video/mp4"}, VIDEO),
        "/page.mp4": (200, {"Content-Type": "text/html"}, b"<html>denied</html>"),
        "/noise.mp4": (200, {"Content-Type": "application/octet-stream"}, b"\x00" * 5000),
        "/empty.mp4": (200, {"Content-Type": "video/mp4"}, b""),
        "/big.mp4": (200, {"Content-Type": "video/mp4", "Content-Length": "99999999"}, VIDEO),
        "/hop.mp4": (302, {"Location": "/ok.mp4"}, b""),
        "/away.mp4": (302, {"Location": "http://127.0.0.1:9/x.mp4"}, b""),
        "/inside.mp4": (302, {"Location": "http://10.1.2.3/x.mp4"}, b""),
        "/metadata.mp4": (302, {"Location": "http://169.254.169.254/latest"}, b""),
        "/loop.mp4": (302, {"Location": "/loop.mp4"}, b""),
    }
    yield base
    server.shutdown()


def fetch(base: str, path: str, tmp_path, *, max_bytes: int = 10_000_000):
    with httpx.Client() as client:
        return download_video(
            client,
            "vendor",
            f"{base}{path}",
            tmp_path / "out.mp4",
            base_url=base,
            max_bytes=max_bytes,
        )


def test_a_real_video_downloads(host, tmp_path):
    info = fetch(host, "/ok.mp4", tmp_path)
    assert info.frames == 8 and info.duration == pytest.approx(1.0, abs=0.2)
    assert (tmp_path / "out.mp4").read_bytes() == VIDEO


def test_a_same_host_redirect_is_followed(host, tmp_path):
    assert fetch(host, "/hop.mp4", tmp_path).frames == 8


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("/page.mp4", "text/html, not a video"),
        ("/noise.mp4", "does not open as a video"),
        ("/empty.mp4", "empty (0 bytes)"),
        ("/big.mp4", "over the 10000000 cap"),
        ("/away.mp4", "private address"),  # loopback, but not the vendor's own host
        ("/inside.mp4", "private address"),
        ("/metadata.mp4", "private address"),
        ("/loop.mp4", "redirected more than"),
    ],
)
def test_refused_outputs_say_why_and_leave_nothing(host, tmp_path, path, reason):
    with pytest.raises(InvalidOutputError) as caught:
        fetch(host, path, tmp_path)
    assert reason in str(caught.value)
    assert list(tmp_path.iterdir()) == []


def test_streamed_body_over_the_cap_is_cut_off(host, tmp_path):
    with pytest.raises(InvalidOutputError, match="cap"):
        fetch(host, "/ok.mp4", tmp_path, max_bytes=len(VIDEO) // 2)
    assert list(tmp_path.iterdir()) == []


def _faststart(video: bytes, tmp_path) -> bytes:
    """``video`` remuxed with its index before its frames (as vendors' CDNs serve it): a cut
    leaves a file that still opens, and lists frames it no longer has."""
    src, dst = tmp_path / "src.mp4", tmp_path / "fast.mp4"
    src.write_bytes(video)
    with av.open(str(src)) as inp, av.open(str(dst), "w", options={"movflags": "faststart"}) as out:
        stream = out.add_stream_from_template(inp.streams.video[0])
        for packet in inp.demux(inp.streams.video[0]):
            if packet.dts is not None:
                packet.stream = stream
                out.mux(packet)
    return dst.read_bytes()


@pytest.mark.parametrize("keep", [0.5, 0.99])
def test_a_video_cut_short_is_refused_though_it_opens(tmp_path, keep):
    whole = _faststart(make_test_pattern_mp4(2.0, 320, 180, 12), tmp_path)
    path = tmp_path / "cut.mp4"
    path.write_bytes(whole)
    assert probe_video("vendor", path).frames == 24
    path.write_bytes(whole[: int(len(whole) * keep)])
    with av.open(str(path)) as container:
        assert container.streams.video[0].frames == 24  # it still opens, listing 24 frames
    with pytest.raises(InvalidOutputError, match="cut short"):
        probe_video("vendor", path)


def test_a_first_frame_that_does_not_decode_is_refused(tmp_path):
    whole = bytearray(_faststart(VIDEO, tmp_path))
    with av.open(str(tmp_path / "fast.mp4")) as container:
        first = next(container.demux(container.streams.video[0]))
        start, size = first.pos, first.size
    whole[start : start + size] = bytes(size)  # the key frame's bytes zeroed
    path = tmp_path / "garbled.mp4"
    path.write_bytes(bytes(whole))
    with pytest.raises(InvalidOutputError, match="first frame does not decode|does not open"):
        probe_video("vendor", path)


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://cdn.example.com/v.mp4", True),
        ("http://cdn.example.com/v.mp4", True),
        ("file:///etc/passwd", False),
        ("ftp://cdn.example.com/v.mp4", False),
        ("data:video/mp4;base64,AAAA", False),
        ("http://127.0.0.1:8188/view?filename=x.mp4", True),  # the backend's own host
        ("http://127.0.0.1:8189/x.mp4", False),
        ("http://localhost/x.mp4", False),
        ("http://[::1]/x.mp4", False),
        ("http://192.168.1.10/x.mp4", False),
    ],
)
def test_output_url_policy(url, allowed):
    if allowed:
        check_output_url("svd", url, "http://127.0.0.1:8188")
    else:
        with pytest.raises(InvalidOutputError):
            check_output_url("svd", url, "http://127.0.0.1:8188")


def test_a_vendor_echoing_our_key_never_puts_it_in_an_error():
    key = "key_" + "c0ffee" * 21

    def echo(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, json={"error": f"bad header {request.headers['authorization']}"})

    with httpx.Client(transport=httpx.MockTransport(echo)) as client:
        with pytest.raises(RejectedInputError) as caught:
            send(
                client,
                "runway",
                "GET",
                "https://vendor.invalid/x",
                headers={"Authorization": f"Bearer {key}"},
            )
    assert key not in str(caught.value) and "***" in str(caught.value)
