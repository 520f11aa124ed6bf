"""`mpp demo`: the whole site on one machine, through the same code paths as real devices."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from demo.run import DemoSite, port_or_free
from demo.site import EXAMPLE, demo_inventory
from demo.traffic import Traffic
from protocol.brokers import free_port
from protocol.site import parse_site
from tests.conftest import ROOT
from tests.timing import wait_until


def test_demo_inventory_is_valid_and_local(tmp_path: Path) -> None:
    text = demo_inventory(
        EXAMPLE.read_text(), tmp_path, broker_port=4321, mqtt_version=3, web_port=9090
    )
    site = parse_site(text)
    assert site.broker.port == 4321 and site.broker.mqtt_version == 3
    assert site.site.public_url == "http://127.0.0.1:9090"
    printers = [d.printer for d in site.devices.values() if d.role == "kiosk"]
    assert len(printers) == 4 and all(p.connection == "file" for p in printers)
    assert all(Path(p.path).parent == tmp_path / "tickets" for p in printers)
    assert site.site.hours.sun == "00:00-24:00" and site.services["ktp"].cutoff is None


@pytest.mark.slow
def test_a_press_prints_a_ticket_and_a_next_calls_it(tmp_path: Path) -> None:
    site = DemoSite(tmp_path, traffic=False, web_port=18080).start()
    try:
        caller = next(c for c in site.callers if c.counter == 3)
        assert wait_until(lambda: caller.box.state is not None, 10)
        assert site.press("kiosk-3", "ktp") == "pressed"  # a GPIO button on kiosk-3
        png = wait_until(lambda: list(site.tickets.glob("*-A001.png")), 10)
        assert png and (site.tickets / "kiosk-3.escpos").read_bytes().count(b"A001") >= 1
        # The control page links the printed ticket to the citizen's page its QR code opens.
        with sqlite3.connect(site.workdir / "hub.sqlite") as db:
            [(token,)] = db.execute("SELECT token FROM tickets").fetchall()
        page = f"{site.site.site.public_url}/t/{token}"
        control = site.urls["control"]
        with urllib.request.urlopen(f"{control}/state.json", timeout=10) as response:
            state = json.load(response)
        assert state["tickets"] == [{"png": png[0].name, "page": page}]
        with urllib.request.urlopen(page, timeout=10) as response:
            assert response.status == 200 and "A001" in response.read().decode()
        caller.press("open_close")
        assert wait_until(lambda: caller.is_open, 10)
        time.sleep(0.7)  # past the box's debounce window
        caller.press("next")
        assert wait_until(
            lambda: caller.box.state is not None and caller.box.state.ticket == "A001", 10
        )
        assert any("A001" in line for line in caller.lcd.lines)
        with sqlite3.connect(site.workdir / "hub.sqlite") as db:
            assert db.execute("SELECT label, status, counter FROM tickets").fetchall() == [
                ("A001", "called", 3)
            ]
        # An officer's break as the demo's officers take it (OPEN/CLOSE twice, NEXT): the
        # lobby TV shows it.
        Traffic([], [caller])._take_break(caller)
        assert wait_until(lambda: caller.box.state.on_break is not None, 10)
        assert caller.box.state.on_break.reason == "istirahat"

        def lobby() -> str:
            with urllib.request.urlopen(site.urls["lobby screen"], timeout=10) as response:
                return response.read().decode()

        assert wait_until(lambda: "Loket 3 - istirahat" in lobby(), 10)
    finally:
        site.stop()


@pytest.mark.slow
def test_mpp_demo_prints_where_to_look_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "protocol.cli",
            "demo",
            "--out",
            str(tmp_path),
            "--port",
            "18180",
            "--no-window",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines = []
    try:
        for line in process.stdout:
            lines.append(line)
            if "Ctrl-C stops everything" in line:
                break
        output = "".join(lines)
        assert re.search(r"broker: (Mosquitto|embedded)", output)
        assert "http://127.0.0.1:" in output and "printed tickets" in output
        assert wait_until(lambda: list((tmp_path / "tickets").glob("*.png")), 30)
        process.send_signal(signal.SIGINT)
        rest = process.communicate(timeout=30)[0]
        assert "stopped." in rest
        assert process.returncode == 0
    finally:
        process.kill()
        process.wait()


def listener_pid(port: int) -> int | None:
    """The process listening on 127.0.0.1:`port`, if any (iproute2's ss)."""
    out = subprocess.run(
        ["ss", "-ltnpH", f"sport = :{port}"], capture_output=True, text=True, check=False
    ).stdout
    found = re.search(r"pid=(\d+)", out)
    return int(found[1]) if found else None


@pytest.mark.slow
@pytest.mark.parametrize(
    ("how", "close_stdout"),
    [(signal.SIGINT, True), (signal.SIGHUP, False)],
    ids=["ctrl-c-with-stdout-gone", "sighup"],
)
def test_the_demo_stops_its_broker_however_it_is_stopped(
    tmp_path: Path, how: signal.Signals, close_stdout: bool
) -> None:
    """Ctrl-C after the reader of its output went away (`mpp demo | head`), or the terminal
    closing (SIGHUP): the demo's Mosquitto, in a session of its own, must not outlive it."""
    process = subprocess.Popen(
        [sys.executable, "-m", "protocol.cli", "demo", "--out", str(tmp_path),
         "--port", str(free_port()), "--no-window", "--quiet-site"],
        cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    port = broker_pid = None
    try:
        lines = []
        for line in process.stdout:
            lines.append(line)
            if "Ctrl-C stops everything" in line:
                break
        found = re.search(r"broker: Mosquitto on 127\.0\.0\.1:(\d+)", "".join(lines))
        assert found, "".join(lines) + process.stderr.read()
        port = int(found[1])
        broker_pid = listener_pid(port)
        assert broker_pid is not None
        if close_stdout:
            process.stdout.close()
        process.send_signal(how)
        assert process.wait(30) == 0
        assert "Traceback" not in process.stderr.read()
        assert wait_until(lambda: listener_pid(port) is None, 5), "the demo's broker still runs"
    finally:
        process.kill()
        process.wait()
        process.stdout.close()
        process.stderr.close()
        if port is not None and broker_pid is not None and listener_pid(port) == broker_pid:
            os.kill(broker_pid, signal.SIGKILL)  # the broker this test's demo started


def test_a_port_in_time_wait_is_still_the_demos(tmp_path: Path) -> None:
    """The previous demo's connections linger in TIME_WAIT for a minute; the web servers bind
    there anyway (SO_REUSEADDR), so the demo keeps its port rather than moving to a random one."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        client = socket.create_connection(("127.0.0.1", port))
        accepted, _ = server.accept()
        accepted.close()  # the server side closes first: its end waits in TIME_WAIT
        client.close()
    assert port_or_free(port) == port
    with socket.create_server(("127.0.0.1", 0)) as busy:  # a program listens there
        taken = busy.getsockname()[1]
        assert port_or_free(taken) != taken
