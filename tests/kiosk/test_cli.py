"""`mpp kiosk preview` and `mpp kiosk run` as a technician uses them."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner
from PIL import Image

from protocol import messages as m
from protocol.cli import main
from protocol.mqtt import Bus
from tests.conftest import EXAMPLE, ROOT, example_text
from tests.timing import wait_until


def test_preview_writes_the_ticket_png(tmp_path: Path) -> None:
    out = tmp_path / "ticket.png"
    args = ["kiosk", "preview", "--site", str(EXAMPLE), "--service", "skck", "--lang", "en"]
    result = CliRunner().invoke(main, [*args, "--device", "kiosk-3", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "ticket H012 (skck, en)" in result.output
    with Image.open(out) as image:
        assert image.width == 464  # kiosk-3 prints on 58 mm paper (384 dots printed)
        assert 1000 < image.height < 1800


def test_preview_of_an_unknown_service_says_which_exist(tmp_path: Path) -> None:
    out = tmp_path / "ticket.png"
    args = ["kiosk", "preview", "--site", str(EXAMPLE), "--service", "ktpp", "--out", str(out)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1
    assert "no service 'ktpp'" in result.output and "ktp, kk" in result.output
    assert not out.exists()


def test_run_refuses_a_device_that_is_not_a_kiosk() -> None:
    args = ["kiosk", "run", "--site", str(EXAMPLE), "--device", "caller-03"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1
    assert "'caller-03' is not a kiosk" in result.output and "kiosk-1" in result.output


def test_run_connects_reports_health_and_stops_on_sigterm(broker, tmp_path: Path) -> None:
    site_id = f"cli-kiosk-{os.getpid()}"
    text = example_text().replace('id = "mpp-banjarbaru"', f'id = "{site_id}"', 1)
    text = re.sub(r"(?m)^port = 1883$", f"port = {broker.port}", text, count=1)
    site_file = tmp_path / "site.toml"
    site_file.write_text(text)
    watcher = Bus(site_id, "watcher", "hub", port=broker.port)
    seen: list[m.DeviceStatus] = []
    watcher.subscribe(
        watcher.topics.status("kiosk-3"),
        lambda incoming: seen.append(m.decode(m.DeviceStatus, incoming.payload)),
    )
    assert watcher.start(wait=5)
    env = {**os.environ, "GPIOZERO_PIN_FACTORY": "mock", "SDL_VIDEODRIVER": "dummy"}
    command = [sys.executable, "-m", "protocol.cli", "kiosk", "run", "--site", str(site_file)]
    log = tmp_path / "kiosk.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [*command, "--device", "kiosk-3", "--printer-file", str(tmp_path / "lp0")],
            cwd=ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        assert wait_until(lambda: any(s.online and s.health.printer for s in seen), timeout=20), (
            log.read_text()
        )
        online = next(s for s in seen if s.online and s.health.printer)
        assert online.role == "kiosk" and online.health.printer in ("ok", "unknown")
        process.send_signal(signal.SIGTERM)
        assert process.wait(15) == 0
        assert wait_until(lambda: not seen[-1].online, timeout=5)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(5)
        watcher.stop()
