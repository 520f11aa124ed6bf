"""Issue 23 item 6: devices and the hub disagree about the time (libfaketime).

Invariant: a device is never refused for clock disagreement alone. A freshly started kiosk
whose clock lags the hub's, and a kiosk that learnt the hub's clock before the hub's clock was
stepped ahead (NTP after boot), print the tickets their citizens asked for, each issued once.
Real parts: Mosquitto, the hub (in-process or as its own process), the real KioskApp (in its
own process, or in-process on MockFactory pins) with escpos Dummy printers.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from escpos.printer import Dummy

from bench.figures import figure
from hub.service import HubService
from protocol.brokers import Mosquitto
from protocol.site import load_site
from tests.chaos.conftest import (
    KIOSK_COMMAND,
    CommandTap,
    HubProcess,
    chaos_kiosk_id,
    chaos_site_text,
    stop_all,
    tickets,
    wait_hub,
)
from tests.chaos.device_rigs import kiosk_rig
from tests.chaos.faketime import FakeClock
from tests.conftest import ROOT, write_site
from tests.kiosk.conftest import dummy_printer
from tests.timing import wait_until

LAG_S = 6.0  # beyond a kiosk's whole deadline (2 s x 2 tries + 0.5 s)
PRESSES = 4


@pytest.mark.chaos
def test_a_fresh_kiosk_whose_clock_lags_the_hub_prints_its_first_ticket(
    broker: Mosquitto, tmp_path: Path
) -> None:
    site_file = tmp_path / "site.toml"
    site_file.write_text(
        chaos_site_text(broker.port, tmp_path / "hub.sqlite", tmp_path / "printers", 1, "dummy"),
        encoding="utf-8",
    )
    site = load_site(site_file)
    device = chaos_kiosk_id(0)
    hub = HubService(site, first_start=True).start()
    clock = FakeClock(tmp_path / "kiosk-faketime.rc")
    clock.step(-LAG_S)  # the kiosk's clock is behind the hub's
    result = tmp_path / "kiosk.json"
    log = (tmp_path / "kiosk.log").open("wb")
    kiosk = subprocess.Popen(
        [*KIOSK_COMMAND, str(site_file), device, str(PRESSES), str(result), "60"],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
        env=clock.env(),
    )
    try:
        assert kiosk.stdout is not None and kiosk.stdin is not None
        assert kiosk.stdout.readline().strip() == "ready"
        kiosk.stdin.write("go\n")
        kiosk.stdin.flush()
        assert kiosk.stdout.readline().strip() == "done"
    finally:
        stop_all([kiosk])
        for pipe in (kiosk.stdin, kiosk.stdout, log):
            if pipe is not None:
                pipe.close()
        hub.stop()
    outcomes = json.loads(result.read_text())["outcomes"]
    figure(f"fresh kiosk {LAG_S:g} s behind the hub: presses refused as stale",
           outcomes.get("refused:stale", 0), "presses", "0")  # fmt: skip
    assert outcomes == {"printed": PRESSES}, outcomes
    stored = tickets(site.hub.database)
    assert len(stored) == PRESSES and all(t["printed"] for t in stored)


@pytest.mark.chaos
def test_a_kiosk_prints_after_the_hubs_clock_stepped_ahead(
    broker: Mosquitto, tmp_path: Path
) -> None:
    site_file = write_site(
        tmp_path / "site.toml", broker.port, always_open=True, database=tmp_path / "hub.sqlite"
    )
    site = load_site(site_file)
    clock = FakeClock(tmp_path / "hub-faketime.rc")
    clock.step(-3 * 3600)  # booted 3 h slow; NTP will put it right while kiosks run
    hub = HubProcess(site_file, tmp_path / "hub.log", env=clock.env()).start()
    tap = CommandTap(site).start()
    wait_hub(tap)
    device = Dummy(profile="TM-T20II")
    rig = kiosk_rig(site, "kiosk-3", dummy_printer(site, "kiosk-3", device))
    try:
        rig.press("ktp")
        assert rig.app.wait_idle(15) and rig.app.notices[-1].kind == "printed"
        clock.step(3 * 3600)  # NTP sets the hub's clock: three hours ahead at once
        told = []
        for _ in range(3):
            rig.press("ktp")
            assert rig.app.wait_idle(15)
            told.append(rig.app.notices[-1].code or rig.app.notices[-1].kind)
        figure("kiosk after the hub's clock stepped 3 h ahead: presses refused as stale",
               told.count("stale"), "presses", "0")  # fmt: skip
        assert told == ["printed"] * 3, told
        assert wait_until(lambda: all(t["printed"] for t in tickets(site.hub.database)), 10)
        assert [t["label"] for t in tickets(site.hub.database)] == ["A001", "A002", "A003", "A004"]
    finally:
        rig.close()
        tap.stop()
        hub.stop()
