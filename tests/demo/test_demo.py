"""`mpp demo`: the whole site on one machine, through the same code paths as real devices."""

from __future__ import annotations

import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from demo.run import DemoSite
from demo.site import EXAMPLE, demo_inventory
from protocol.site import parse_site
from tests.conftest import ROOT


def wait_for(check, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


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
        wait_for(lambda: caller.box.state is not None)
        assert site.press("kiosk-3", "ktp") == "pressed"  # a GPIO button on kiosk-3
        png = wait_for(lambda: list(site.tickets.glob("*-A001.png")))
        assert png and (site.tickets / "kiosk-3.escpos").read_bytes().count(b"A001") >= 1
        caller.press("open_close")
        wait_for(lambda: caller.is_open)
        time.sleep(0.7)  # past the box's debounce window
        caller.press("next")
        wait_for(lambda: caller.box.state is not None and caller.box.state.ticket == "A001")
        assert any("A001" in line for line in caller.lcd.lines)
        with sqlite3.connect(site.workdir / "hub.sqlite") as db:
            assert db.execute("SELECT label, status, counter FROM tickets").fetchall() == [
                ("A001", "called", 3)
            ]
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
        assert wait_for(lambda: list((tmp_path / "tickets").glob("*.png")), timeout=30)
        process.send_signal(signal.SIGINT)
        rest = process.communicate(timeout=30)[0]
        assert "stopped." in rest
        assert process.returncode == 0
    finally:
        process.kill()
        process.wait()
