"""sd_notify over a real unix datagram socket, watchdog pacing and service credentials."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from protocol import systemd


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    path = str(tmp_path / "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(2)
    yield sock, path
    sock.close()


def test_notify_sends_the_state_as_one_datagram(notify_socket) -> None:
    sock, path = notify_socket
    assert systemd.notify("READY=1", {"NOTIFY_SOCKET": path})
    assert sock.recv(100) == b"READY=1"
    assert systemd.watchdog_ping({"NOTIFY_SOCKET": path})
    assert sock.recv(100) == b"WATCHDOG=1"


def test_abstract_namespace_socket() -> None:
    name = f"mpp-test-{uuid.uuid4().hex}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(2)
        assert systemd.notify("STATUS=siap", {"NOTIFY_SOCKET": "@" + name})
        assert sock.recv(100) == b"STATUS=siap"


def test_outside_systemd_everything_is_a_no_op(tmp_path: Path) -> None:
    assert systemd.notify("READY=1", {}) is False
    assert systemd.notify("READY=1", {"NOTIFY_SOCKET": "relative/path"}) is False
    # A socket path nobody listens on: no exception, just False.
    assert systemd.notify("READY=1", {"NOTIFY_SOCKET": str(tmp_path / "gone")}) is False
    assert systemd.watchdog_interval({}) is None
    assert systemd.WatchdogPacer({}).ping(0.0) is False
    assert systemd.credential("x", {}) is None
    assert systemd.broker_login("caller-03", {}) == {}


def test_watchdog_interval_only_for_this_process() -> None:
    env = {"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid())}
    assert systemd.watchdog_interval(env) == 30.0
    assert systemd.watchdog_interval({**env, "WATCHDOG_PID": str(os.getpid() + 1)}) is None
    assert systemd.watchdog_interval({"WATCHDOG_USEC": "garbage"}) is None


def test_pacer_pings_at_half_the_interval(notify_socket) -> None:
    sock, path = notify_socket
    env = {"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "10000000"}
    pacer = systemd.WatchdogPacer(env)
    sent = [t for t in (0.0, 1.0, 4.9, 5.0, 6.0, 10.0, 10.1) if pacer.ping(t)]
    assert sent == [0.0, 5.0, 10.0]
    assert [sock.recv(100) for _ in sent] == [b"WATCHDOG=1"] * 3


def test_broker_login_reads_the_loaded_credential(tmp_path: Path) -> None:
    (tmp_path / systemd.BROKER_PASSWORD_CREDENTIAL).write_text("s3cret-token\n")
    env = {"CREDENTIALS_DIRECTORY": str(tmp_path)}
    assert systemd.broker_login("caller-03", env) == {
        "username": "caller-03",
        "password": "s3cret-token",
    }
