"""`mpp caller`: clear errors for wrong input; a dry run on mock pins joins the site."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from protocol import messages as m
from protocol.brokers import Mosquitto
from protocol.cli import main
from protocol.mqtt import Bus
from tests.conftest import EXAMPLE, ROOT, example_text


def test_wrong_device_or_site_is_a_clear_error(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(main, ["caller", "--site", str(EXAMPLE), "--device", "kiosk-2"])
    assert result.exit_code == 1
    assert "'kiosk-2' is a kiosk" in result.output and "not a caller box" in result.output
    result = runner.invoke(main, ["caller", "--site", str(EXAMPLE), "--device", "caller-7"])
    assert result.exit_code == 1 and "did you mean 'caller-07'?" in result.output
    bad = tmp_path / "site.toml"
    bad.write_text(example_text().replace("counter = 3\n", "counter = 99\n"))
    result = runner.invoke(main, ["caller", "--site", str(bad), "--device", "caller-03"])
    assert result.exit_code == 1
    assert "devices.caller-03.counter: 99 is not in [counters]" in result.output


def test_dry_run_on_mock_pins_says_online_then_offline(broker: Mosquitto, tmp_path: Path) -> None:
    site_id = f"caller-cli-{os.getpid()}"
    text = re.sub(r'(?m)^id = "mpp-banjarbaru"', f'id = "{site_id}"', example_text(), count=1)
    text = re.sub(r"(?m)^port = 1883$", f"port = {broker.port}", text, count=1)
    site_file = tmp_path / "site.toml"
    site_file.write_text(text)
    watcher = Bus(site_id, "hub", "hub", port=broker.port)
    statuses: queue.Queue[m.DeviceStatus] = queue.Queue()
    watcher.subscribe(
        watcher.topics.status("caller-03"),
        lambda i: statuses.put(m.decode(m.DeviceStatus, i.payload)) if i.payload else None,
    )
    assert watcher.start(wait=5)
    env = {**os.environ, "GPIOZERO_PIN_FACTORY": "mock"}
    code = "from protocol.cli import main; main()"
    args = ["caller", "--site", str(site_file), "--device", "caller-03"]
    child = subprocess.Popen(
        [sys.executable, "-c", code, *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        online = statuses.get(timeout=10)
        assert (online.device, online.role, online.online) == ("caller-03", "caller", True)
        child.send_signal(signal.SIGTERM)
        out, _err = child.communicate(timeout=10)
        assert child.returncode == 0
        assert "caller box caller-03 for Loket 3" in out
        assert statuses.get(timeout=5).online is False
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate()
        watcher.stop()
