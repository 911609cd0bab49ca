"""Starting and stopping sandboxes, their URLs and keys, the control endpoints and the CLI."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading

import httpx
import pytest

from videogen.sandbox import DEFAULT_KEYS, SANDBOX_NAMES, SandboxServer, start_sandboxes


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _port_base(ports_used: int) -> int:
    """A ``--port-base`` whose next ``ports_used`` ports are free now. Checking the base alone
    (which the command does not bind when SVD is left out) let a busy base+1 fail the test."""
    for _ in range(50):
        base = _free_port()
        if all(_bindable(base + i) for i in range(1, ports_used + 1)):
            return base
    raise RuntimeError("no run of free ports found")


def test_names_and_key_shapes() -> None:
    assert SANDBOX_NAMES == (
        "svd", "runway", "luma", "pika", "veo", "replicate", "wan", "seedance", "fal", "kling",
        "minimax",
    )  # fmt: skip
    assert DEFAULT_KEYS["svd"] is None
    assert re.fullmatch(r"key_[0-9a-f]{128}", DEFAULT_KEYS["runway"] or "")
    assert re.fullmatch(r"luma-[0-9a-f-]{36}-[0-9a-f]+", DEFAULT_KEYS["luma"] or "")
    assert re.fullmatch(r"[0-9a-f-]{36}:[0-9a-f]{32}", DEFAULT_KEYS["pika"] or "")
    assert re.fullmatch(r"AIza[0-9A-Za-z_-]{35}", DEFAULT_KEYS["veo"] or "")
    assert re.fullmatch(r"r8_[0-9A-Za-z]{37}", DEFAULT_KEYS["replicate"] or "")
    assert re.fullmatch(r"sk-[0-9a-f]{32}", DEFAULT_KEYS["wan"] or "")
    assert re.fullmatch(
        r"[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}", DEFAULT_KEYS["seedance"] or ""
    )
    assert re.fullmatch(r"[0-9a-f-]{36}:[0-9a-f]{32}", DEFAULT_KEYS["fal"] or "")
    assert re.fullmatch(r"[0-9a-f]{32}:[0-9a-f]{32}", DEFAULT_KEYS["kling"] or "")
    assert re.fullmatch(r"sk-api-[0-9a-f]{64}", DEFAULT_KEYS["minimax"] or "")


def test_base_urls(servers: dict[str, SandboxServer]) -> None:
    for name, server in servers.items():
        assert server.root_url == f"http://127.0.0.1:{server.port}"
        prefixes = {"luma": "/dream-machine/v1", "wan": "/api/v1", "seedance": "/api/v3"}
        suffix = prefixes.get(name, "")
        assert server.base_url == server.root_url + suffix
        health = httpx.get(server.root_url + "/__sandbox__/health").json()
        assert health == {"status": "ok", "backend": name}


def test_a_server_stops_for_good() -> None:
    with SandboxServer("runway") as server:
        assert httpx.get(server.root_url + "/__sandbox__/health").status_code == 200
    with pytest.raises(httpx.ConnectError):
        httpx.get(server.root_url + "/__sandbox__/health")


def test_unknown_names_are_refused() -> None:
    with pytest.raises(ValueError, match="svd, runway, luma, pika"):
        SandboxServer("sora")


def test_custom_keys_and_ports() -> None:
    port = _free_port()
    started = start_sandboxes(["luma"], ports={"luma": port}, keys={"luma": "luma-mine"})
    try:
        server = started["luma"]
        assert server.port == port
        ping = server.base_url + "/ping"
        assert httpx.get(ping, headers={"Authorization": "Bearer luma-mine"}).status_code == 200
        default = {"Authorization": f"Bearer {DEFAULT_KEYS['luma']}"}
        assert httpx.get(ping, headers=default).status_code == 401
    finally:
        started["luma"].stop()


def _sandbox_threads() -> int:
    return sum(1 for thread in threading.enumerate() if thread.name.startswith("sandbox-"))


def test_a_failed_start_stops_the_others() -> None:
    before = _sandbox_threads()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(OSError):
            start_sandboxes(["runway", "luma"], ports={"luma": port})
    assert _sandbox_threads() == before  # the runway sandbox started first was stopped again


def test_control_endpoints(servers: dict[str, SandboxServer]) -> None:
    root = servers["runway"].root_url
    changed = httpx.post(root + "/__sandbox__/knobs", json={"concurrency_limit": 2})
    assert changed.json()["concurrency_limit"] == 2 and changed.json()["run_seconds"] == 0.15
    assert httpx.get(root + "/__sandbox__/knobs").json()["concurrency_limit"] == 2
    refused = httpx.post(root + "/__sandbox__/knobs", json={"run_seconds": "soon"})
    assert refused.status_code == 422 and refused.json()["detail"][0]["loc"] == ["run_seconds"]
    assert httpx.post(root + "/__sandbox__/knobs", content=b"[1]").status_code == 400
    assert httpx.post(root + "/__sandbox__/reset").json() == {"reset": True}
    assert servers["runway"].state.knobs.concurrency_limit is None
    records = httpx.get(root + "/__sandbox__/records").json()
    assert records["requests"] == []  # control calls are not recorded
    assert set(records) >= {"jobs", "peak_active", "peak_running", "active_now"}


def test_the_cli_serves_until_interrupted() -> None:
    port = _port_base(2)  # runway and luma: base + 1, base + 2
    command = [
        sys.executable,
        "-c",
        "from videogen.sandbox.cli import sandbox_command; sandbox_command()",
    ]
    process = subprocess.Popen(
        [*command, "--only", "runway", "--only", "luma", "--port-base", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        lines: list[str] = []
        assert process.stdout is not None
        while not lines or "Ctrl-C" not in lines[-1]:
            lines.append(process.stdout.readline())
            assert lines[-1], "".join(lines)
        output = "".join(lines)
        runway_url = f"http://127.0.0.1:{port + 1}"  # runway is second in SANDBOX_NAMES
        assert runway_url in output and f"http://127.0.0.1:{port + 2}/dream-machine/v1" in output
        assert str(DEFAULT_KEYS["runway"]) in output and "svd" not in output.split("\n")[0]
        headers = {
            "Authorization": f"Bearer {DEFAULT_KEYS['runway']}",
            "X-Runway-Version": "2024-11-06",
        }
        assert httpx.get(runway_url + "/v1/organization", headers=headers).status_code == 200
        process.send_signal(signal.SIGINT)
        rest, _ = process.communicate(timeout=10)
        assert process.returncode == 0 and "Stopping" in rest
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
