"""The web process's server (gevent): streams unbuffered, slow request heads cut at their
deadline without delaying anyone, TLS from the site CA, and `mpp web` itself starting up."""

from __future__ import annotations

import itertools
import json
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from broker_config.tls import make_ca, make_server_cert
from hub.service import HubService
from protocol.brokers import free_port
from protocol.site import load_site
from tests.conftest import ROOT, write_site
from tests.timing import wait_until


def _get(port: int, path: str = "/healthz", timeout: float = 5.0) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := sock.recv(4096):
            data += chunk
    return data


@pytest.fixture
def tiny(tmp_path: Path) -> Iterator[tuple[int, int, Path]]:
    """The tiny app on an http and an https port (certificate from a site CA)."""
    ca = make_ca("test-site")
    server = make_server_cert(ca, ["127.0.0.1"])
    (tmp_path / "ca.crt").write_bytes(ca.cert_pem)
    (tmp_path / "web.crt").write_bytes(server.cert_pem)
    (tmp_path / "web.key").write_bytes(server.key_pem)
    http_port, https_port = free_port(), free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.web.tiny_app", str(http_port), str(https_port),
         str(tmp_path / "web.crt"), str(tmp_path / "web.key")],
        cwd=ROOT, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        yield http_port, https_port, tmp_path / "ca.crt"
    finally:
        proc.terminate()
        proc.communicate(timeout=10)


def test_events_arrive_as_they_are_sent(tiny) -> None:
    port = tiny[0]
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"GET /events HTTP/1.1\r\nHost: x\r\n\r\n")
        arrivals, data = [], b""
        while len(arrivals) < 4:
            chunk = sock.recv(4096)
            assert chunk
            data += chunk
            if b"event: tick" in chunk:
                arrivals.append(time.monotonic())
    gaps = [b - a for a, b in itertools.pairwise(arrivals)]
    # Sent every 0.2 s: buffering would deliver them together (gaps near 0) or late.
    assert all(0.1 < gap < 0.6 for gap in gaps), gaps


def test_slow_request_heads_are_cut_and_delay_nobody(tiny) -> None:
    port = tiny[0]
    slow = []
    for _ in range(100):
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # the head never ends
        slow.append(sock)
    started = time.monotonic()
    for _ in range(20):
        assert _get(port).endswith(b"http")
    assert time.monotonic() - started < 2.0  # 20 requests beside 100 stalled heads
    # The head deadline is 1 s: every slow connection is closed by the server soon after.
    for sock in slow:
        sock.settimeout(3)
        answer = b""
        while chunk := sock.recv(100):
            answer += chunk
        assert answer.startswith(b"HTTP/1.1 408 "), answer
        sock.close()


def test_tls_listener_serves_https_with_the_site_ca(tiny) -> None:
    _http, https_port, ca_file = tiny
    context = ssl.create_default_context(cafile=str(ca_file))
    with urllib.request.urlopen(
        f"https://127.0.0.1:{https_port}/healthz", context=context, timeout=5
    ) as response:
        assert response.read() == b"https"
    other = ssl.create_default_context(cadata=make_ca("another").cert_pem.decode())
    with pytest.raises(urllib.error.URLError) as refused:  # another site's CA refuses it
        urllib.request.urlopen(f"https://127.0.0.1:{https_port}/healthz", context=other, timeout=5)
    assert isinstance(refused.value.reason, ssl.SSLCertVerificationError)


def test_mpp_web_starts_and_answers_its_health_check(broker, tmp_path: Path) -> None:
    port = free_port()
    site_file = write_site(tmp_path / "site.toml", broker.port, database=tmp_path / "hub.sqlite")
    site_file.write_text(site_file.read_text().replace("port = 8080 ", f"port = {port} ", 1))
    hub = HubService(load_site(site_file), first_start=True).start()
    proc = subprocess.Popen(
        [sys.executable, "-m", "protocol.cli", "web", "--site", str(site_file)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:

        def healthy() -> bool:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                    return json.load(r)["ok"] is True
            except OSError:
                return False

        up = wait_until(healthy, 30)
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=15)
        hub.stop()
    assert up, out
    assert proc.returncode == 0, out
    assert f"http://127.0.0.1:{port}" in out
