"""`fleet` against a live broker: presence, last wills, exit codes for monitoring."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from protocol.errors import BrokerUnavailable
from protocol.mqtt import Bus
from provisioning.fleet import Connection, FleetEntry, FleetWatcher, down, render_table
from tests.conftest import ROOT
from tests.provisioning.conftest import Provisioned
from tests.timing import wait_until


def watcher_for(p: Provisioned, **kwargs) -> FleetWatcher:
    store = p.store
    connection = Connection(
        "127.0.0.1", p.device_port, "monitor", store.password("monitor"), str(p.secrets / "ca.crt")
    )
    return FleetWatcher(p.site, connection, **kwargs)


def bundle_of(p: Provisioned, device: str) -> Path:
    result = p.run("bundle", device, "--out", str(p.top / "bundles"))
    assert result.exit_code == 0, result.output
    return p.top / "bundles" / device


@pytest.fixture
def device_process(provisioned: Provisioned) -> Iterator:
    started: list[subprocess.Popen] = []

    def start(device: str, *extra: str) -> subprocess.Popen:
        process = subprocess.Popen(
            [sys.executable, "-m", "tests.provisioning.device_process",
             str(bundle_of(provisioned, device)), device, *extra],
            cwd=ROOT, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        started.append(process)
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "up"
        return process

    yield start
    for process in started:
        process.kill()
        process.wait(5)
        if process.stdout is not None:
            process.stdout.close()


def wait_for(watcher: FleetWatcher, device: str, online: bool, limit: float = 10) -> FleetEntry:
    def entry() -> FleetEntry:
        return next(e for e in watcher.entries() if e.device == device)

    if not wait_until(lambda: entry().online is online, limit, step=0.05):
        pytest.fail(f"{device} never became online={online}")
    return entry()


def test_device_goes_offline_when_its_last_will_fires(
    provisioned: Provisioned, device_process, tmp_path: Path
) -> None:
    with watcher_for(provisioned, state_file=tmp_path / "seen.json") as watcher:
        before = {e.device: e for e in watcher.entries()}
        assert before["kiosk-3"].online is None  # never seen yet
        process = device_process("kiosk-3", "paper_low")
        entry = wait_for(watcher, "kiosk-3", True)
        assert (entry.role, entry.where, entry.sw) == ("kiosk", "zona entrance", "0.1.0")
        deadline = time.monotonic() + 5
        while entry.printer != "paper_low" and time.monotonic() < deadline:
            entry = next(e for e in watcher.entries() if e.device == "kiosk-3")
        assert entry.printer == "paper_low"
        process.send_signal(signal.SIGKILL)  # the Pi loses power: no goodbye, the will fires
        process.wait(5)
        killed_at = time.time()
        entry = wait_for(watcher, "kiosk-3", False)
        assert entry.last_seen is not None and abs(entry.last_seen - killed_at) < 5
        table = render_table(provisioned.site, watcher.entries(), time.time())
        row = next(line for line in table.splitlines() if line.startswith("kiosk-3 "))
        assert "OFFLINE" in row and "paper_low" in row and "unknown" not in row
        assert "kiosk-3" in down(watcher.entries())
    # A later run still knows when kiosk-3 was last seen online.
    with watcher_for(provisioned, state_file=tmp_path / "seen.json") as later:
        entry = next(e for e in later.entries() if e.device == "kiosk-3")
        assert entry.online is False and entry.last_seen is not None


def test_cli_exit_status_follows_the_fleet(provisioned: Provisioned) -> None:
    store = provisioned.store
    ca = str(provisioned.secrets / "ca.crt")
    buses = []
    try:
        for device in ["hub", *provisioned.site.devices]:
            bus = Bus.for_device(
                provisioned.site, device,
                host="127.0.0.1", port=provisioned.device_port, tls_ca=ca,
                username=device, password=store.password(device),
            )  # fmt: skip
            buses.append(bus)
            bus.start()
        assert all(bus.wait_connected(10) for bus in buses)
        for bus in buses:
            assert bus.flush(5)
        args = ["fleet", "--host", "127.0.0.1", "--port", str(provisioned.device_port)]
        result = provisioned.run(*args)
        assert result.exit_code == 0, result.output
        assert "41/41 inventory devices online" in result.output
        buses[-1].stop()  # tv-canteen-2 shuts down cleanly: retained offline
        result = provisioned.run(*args, "--watch", "0.5", "--count", "2")
        assert result.exit_code == 1
        assert result.output.count("40/41 inventory devices online") == 2  # two tables
        assert "OFFLINE: tv-canteen-2" in result.output
        result = provisioned.run(*args, "--optional", "tv-canteen-2")
        assert result.exit_code == 0, result.output
        # From the site server itself, over the loopback listener without TLS.
        result = provisioned.run("fleet", "--plain", "--port", str(provisioned.loopback_port),
                                 "--optional", "tv-canteen-2")  # fmt: skip
        assert result.exit_code == 0, result.output
    finally:
        for bus in buses:
            bus.stop()


def test_unreachable_or_refused_broker(provisioned: Provisioned) -> None:
    from protocol.brokers import free_port

    result = provisioned.run("fleet", "--plain", "--port", str(free_port()), "--timeout", "1")
    assert result.exit_code == 3
    assert "cannot reach the broker" in result.output
    wrong = Connection("127.0.0.1", provisioned.loopback_port, "monitor", "not-the-password")
    with pytest.raises(BrokerUnavailable, match="refused monitor"):
        FleetWatcher(provisioned.site, wrong).start(timeout=3)
    result = provisioned.run("fleet", "--optional", "nope")
    assert result.exit_code == 2 and "not in the inventory: nope" in result.output
