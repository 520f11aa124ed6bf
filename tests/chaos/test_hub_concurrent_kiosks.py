"""Scenario 1: ten kiosks press 1,000 times each, at once, each in its own process."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pytest

from bench.figures import figure
from protocol.site import parse_site
from tests.chaos.conftest import (
    CommandTap,
    HubProcess,
    KioskFleet,
    chaos_kiosk_id,
    chaos_site_text,
    integrity,
    printed_tickets,
    scaled,
    tickets,
    wait_hub,
)

KIOSKS = 10
PRESSES = scaled(1000)
DEADLINE_S = 300.0


@pytest.mark.chaos
@pytest.mark.slow
def test_ten_kiosks_press_at_once(broker, tmp_path: Path) -> None:
    """Invariant: 10 kiosks x PRESSES presses, concurrently, over separate MQTT clients, give
    10 x PRESSES distinct numbers; each service's numbers run 1..n without a gap or repeat; every
    number a printer printed is in the database with the token its QR code carries, confirmed
    printed; and the database holds no ticket that no printer printed."""
    db, printers, site_file = tmp_path / "hub.sqlite", tmp_path / "printers", tmp_path / "site.toml"
    site_file.write_text(chaos_site_text(broker.port, db, printers, KIOSKS), encoding="utf-8")
    site = parse_site(site_file.read_text(encoding="utf-8"), str(site_file))
    hub = HubProcess(site_file, tmp_path / "hub.log").start()
    devices = [chaos_kiosk_id(i) for i in range(KIOSKS)]
    fleet = KioskFleet(site_file, devices, PRESSES, tmp_path)
    try:
        tap = CommandTap(site).start()
        wait_hub(tap)
        tap.stop()
        fleet.start(DEADLINE_S)
        fleet.wait(DEADLINE_S + 60)
        assert hub.alive(), "the hub died under load"
    finally:
        fleet.close()
        code = hub.stop()
    assert code == 0, hub.log_text()

    stored = tickets(db)
    by_token = {t["token"]: t for t in stored}
    numbers = []
    for device, result in fleet.results().items():
        # what the kiosk did: every press printed, nothing voided or left unreported
        assert result["presses"] == PRESSES, (device, result["presses"])
        assert result["outcomes"] == {"printed": PRESSES}, (device, result["outcomes"])
        assert len(result["printed"]) == PRESSES
        assert result["voided"] == [] and result["pending_reports"] == 0, result
        # what its printer printed: exactly the tickets the hub confirmed, in order
        paper = printed_tickets((printers / f"{device}.escpos").read_bytes())
        assert [(p.number, p.token) for p in paper] == [
            (t["number"], t["token"]) for t in result["printed"]
        ]
        for p in paper:
            row = by_token.get(p.token)
            assert row is not None, f"{device} printed {p.number}, unknown to the database"
            got = (row["label"], row["source"], row["status"], row["printed"])
            assert got == (p.number, device, "waiting", 1), row
        numbers += [p.number for p in paper]
    assert len(numbers) == len(set(numbers)) == KIOSKS * PRESSES
    assert len(stored) == KIOSKS * PRESSES, "the database holds tickets no printer printed"
    per_service: dict[str, list[int]] = defaultdict(list)
    for row in stored:
        per_service[row["issued_service"]].append(row["number"])
    for service, issued in per_service.items():
        assert sorted(issued) == list(range(1, len(issued) + 1)), f"gap or repeat in {service}"
    assert integrity(db) == "ok"
    figure("hub, 10 kiosks at once: presses", KIOSKS * PRESSES, "presses")
    figure("hub, 10 kiosks at once: distinct numbers printed", len(set(numbers)), "tickets")
    figure("hub, 10 kiosks at once: lost, repeated or unconfirmed", 0, "tickets", "0")
    figure("hub, 10 kiosks at once: tickets per second", len(numbers) / fleet.seconds, "/s")
