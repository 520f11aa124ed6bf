"""`mpp-provision apply`: one inventory edit reaches the running broker and hub.

A real Mosquitto from `broker`'s files and a real `mpp hub` process running the hub's slice of
the inventory, as on the site server; apply signals them (SIGHUP) as systemd's reload would.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from broker_config.local import site_broker
from demo.site import always_open
from protocol import messages as m
from protocol.systemd import BROKER_PASSWORD_CREDENTIAL
from provisioning.bundle import device_site_toml
from provisioning.fleet import Connection, FleetWatcher
from provisioning.inventory import Inventory
from tests.provisioning.conftest import Provisioned, provision
from tests.provisioning.test_cli import device_bus

INDEX = "http://127.0.0.1:9/simple"
NEW_KIOSK = """
[devices.kiosk-5]
role = "kiosk"
zone = "lobby"
buttons = { ktp = 5, kk = 6 }
printer = { connection = "network", host = "192.168.10.55" }
"""


class SiteServer:
    """The provisioned site with its broker and a hub process, as on the site server."""

    def __init__(self, p: Provisioned, hub_site: Path, hub: subprocess.Popen[bytes]) -> None:
        self.p, self.hub_site, self.hub = p, hub_site, hub

    def apply(self, *extra: str):
        assert self.p.broker is not None and self.p.broker.process is not None
        return self.p.run(
            "apply", "--hub-site", str(self.hub_site), "--web-unit", "", "--timeout", "30",
            "--hub-pid", str(self.hub.pid), "--broker-pid", str(self.p.broker.process.pid),
            *extra,
        )  # fmt: skip


@pytest.fixture
def server() -> Iterator[SiteServer]:
    top = Path(tempfile.mkdtemp(prefix="mpp-apply-test-"))
    p = provision(top, "prov-apply")
    # Open all day, every day: the tests issue tickets at whatever hour CI runs them.
    p.site_file.write_text(always_open(p.site_file.read_text()))
    hub_dir = top / "hub"
    hub_dir.mkdir()
    inventory = Inventory.parse(p.site_file.read_text(), str(p.site_file))
    hub_site = hub_dir / "site.toml"
    hub_site.write_text(device_site_toml(inventory, p.store, "hub"))
    credentials = top / "credentials"
    credentials.mkdir()
    (credentials / BROKER_PASSWORD_CREDENTIAL).write_text(p.store.password("hub") + "\n")
    env = {**os.environ, "CREDENTIALS_DIRECTORY": str(credentials)}
    with site_broker(p.broker_dir, p.loopback_port) as broker, (top / "hub.log").open("wb") as log:
        p.broker = broker
        hub = subprocess.Popen(
            [str(Path(sys.executable).parent / "mpp"), "hub", "--site", str(hub_site),
             "--first-start",
             "--log-level", "WARNING"],
            cwd=hub_dir, env=env, stdout=subprocess.DEVNULL, stderr=log,
        )  # fmt: skip
        try:
            # The hub is up once its site state is out (a SIGHUP before would end it).
            monitor = Connection(
                "127.0.0.1", p.loopback_port, "monitor", p.store.password("monitor")
            )
            with FleetWatcher(p.site, monitor) as watcher:
                deadline = time.monotonic() + 30
                while watcher.site_state is None:
                    assert time.monotonic() < deadline and hub.poll() is None, "hub not up"
                    time.sleep(0.05)
            yield SiteServer(p, hub_site, hub)
        finally:
            hub.terminate()
            hub.wait(15)
    shutil.rmtree(top, ignore_errors=True)


def test_a_new_kiosk_takes_one_edit_and_one_command(server: SiteServer) -> None:
    p = server.p
    # Every device has its bundle (an index install here: no wheels needed for this test).
    made = p.run("bundle", "--all", "--out", str(p.top / "bundles"), "--pip-index", INDEX)
    assert made.exit_code == 0, made.output
    first = server.apply()  # the hub already runs this inventory: nothing to change
    assert first.exit_code == 0, first.output
    assert "hub: runs inventory version" in first.output
    assert "every device's bundle is up to date" in first.output
    # The technician adds the kiosk to the inventory, then: apply (and write-boot kiosk-5).
    p.site_file.write_text(p.site_file.read_text() + NEW_KIOSK)
    result = server.apply()
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "kiosk-5: new broker account" in lines
    assert "broker: reloaded (passwords and ACL)" in lines
    assert any(line.startswith("hub: runs inventory version ") for line in lines)
    # Only the new kiosk: the others' part of the inventory did not change.
    assert [line for line in lines if line.startswith("bundle to make again")] == [
        "bundle to make again: kiosk-5 (no bundle made yet): mpp-provision write-boot kiosk-5"
    ]
    # The running hub (no restart) accepts the new kiosk over TLS with its own password.
    kiosk = device_bus(p, "kiosk-5")
    try:
        assert kiosk.start(wait=10)
        reply = kiosk.request(m.IssueTicket(device="kiosk-5", service="ktp"), timeout=10)
        assert reply["ticket"]["number"] == "A001"
    finally:
        kiosk.stop()
    assert server.hub.poll() is None  # the same process all along


def test_an_inventory_the_hub_cannot_take_is_refused_with_the_reason(server: SiteServer) -> None:
    p = server.p
    assert server.apply().exit_code == 0
    kiosk = device_bus(p, "kiosk-1")
    try:
        assert kiosk.start(wait=10)
        kiosk.request(m.IssueTicket(device="kiosk-1", service="skck"), timeout=10)
        text = p.site_file.read_text()
        without = re.sub(r"(?ms)^\[services\.skck\]\n.*?(?=^\[)", "", text)
        without = without.replace('services = ["skck"]', 'services = ["ktp"]')
        without = re.sub(r"skck = \d+, ", "", re.sub(r'"skck", ?|, ?"skck"', "", without))
        p.site_file.write_text(without)
        result = server.apply()
        assert result.exit_code == 1, result.output
        assert "hub: kept its inventory, refused " in result.output
        assert "services.skck (1 tickets): has tickets today" in result.output
        # The queue goes on under the inventory it had.
        reply = kiosk.request(m.IssueTicket(device="kiosk-1", service="skck"), timeout=10)
        assert reply["ticket"]["people_ahead"] == 1
    finally:
        kiosk.stop()


def test_an_inventory_with_errors_changes_nothing(server: SiteServer) -> None:
    p = server.p
    before, text = server.hub_site.read_text(), p.site_file.read_text()
    p.site_file.write_text(text + NEW_KIOSK.replace('"lobby"', '"roof"'))
    broken = server.apply()
    assert broken.exit_code == 1
    assert "devices.kiosk-5.zone: 'roof' is not in [zones]" in broken.output
    no_printer = "\n".join(x for x in NEW_KIOSK.splitlines() if not x.startswith("printer"))
    p.site_file.write_text(text + no_printer + "\n")
    unready = server.apply()
    assert unready.exit_code == 1
    assert "devices.kiosk-5.printer: a kiosk without a printer" in unready.output
    assert "is not ready: nothing was changed" in unready.output
    assert server.hub_site.read_text() == before
    assert "kiosk-5" not in p.store.accounts
