"""The running hub takes an edited inventory without dropping the queue, or refuses it with
the reason (hub/service.py `reload_site`, hub/states.py `inventory_change_problem`)."""

from __future__ import annotations

import re

import pytest

from hub.service import HubService
from protocol import messages as m
from protocol.errors import CommandRejected
from protocol.mqtt import Bus
from protocol.site import Site, parse_site
from tests.hub.test_service import Watcher

NEW_KIOSK = """
[devices.kiosk-5]
role = "kiosk"
zone = "lobby"
buttons = { ktp = 5, kk = 6 }
printer = { connection = "dummy" }
"""


@pytest.fixture
def text(site: Site) -> str:
    """The inventory text of the `site` fixture (same id, broker port, database)."""
    from tests.conftest import site_text

    return site_text(
        site.broker.port, site_id=site.site.id, always_open=True, database=site.hub.database
    )


def kiosk_bus(site: Site, device: str) -> Bus:
    bus = Bus.for_device(site, device)
    assert bus.start(wait=10)
    return bus


def test_a_new_kiosk_is_accepted_after_reload_and_the_queue_stays(
    hub: HubService, site: Site, text: str
) -> None:
    old_kiosk = kiosk_bus(site, "kiosk-1")
    new_site = parse_site(text + NEW_KIOSK, "edited.toml")
    new_kiosk = kiosk_bus(new_site, "kiosk-5")
    watch = Watcher(new_kiosk, "site_state", m.SiteState)
    try:
        first = old_kiosk.request(m.IssueTicket(device="kiosk-1", service="ktp"), timeout=5)
        with pytest.raises(CommandRejected, match="'kiosk-5' is not a device of this site"):
            new_kiosk.request(m.IssueTicket(device="kiosk-5", service="ktp"), timeout=5)
        assert hub.reload_site(new_site) is None
        second = new_kiosk.request(m.IssueTicket(device="kiosk-5", service="ktp"), timeout=5)
        # The day goes on: the next number, the first ticket still waiting ahead of it.
        assert first["ticket"]["number"] == "A001" and second["ticket"]["number"] == "A002"
        assert second["ticket"]["people_ahead"] == 1
        state = watch.until(lambda s: s.config_version == new_site.version and s.waiting == 2)
        assert state.config_refused is None and state.issued == 2
    finally:
        old_kiosk.stop()
        new_kiosk.stop()


def test_a_service_with_tickets_today_cannot_be_removed(
    hub: HubService, site: Site, text: str
) -> None:
    kiosk = kiosk_bus(site, "kiosk-1")
    watch = Watcher(kiosk, "site_state", m.SiteState)
    try:
        kiosk.request(m.IssueTicket(device="kiosk-1", service="skck"), timeout=5)
        # Remove the skck service (and what refers to it) from the inventory.
        without = re.sub(r"(?ms)^\[services\.skck\]\n.*?(?=^\[)", "", text)
        without = without.replace('services = ["skck"]', 'services = ["ktp"]')
        without = re.sub(r'"skck", ?|, ?"skck"', "", without)
        without = re.sub(r"(?m)^(buttons = \{.*?)skck = \d+, ", r"\1", without)
        smaller = parse_site(without, "edited.toml")
        assert "skck" not in smaller.services
        reason = hub.reload_site(smaller)
        assert (
            reason == "services.skck (1 tickets): has tickets today; remove it after closing time"
        )
        state = watch.until(lambda s: s.config_refused is not None)
        assert state.config_version == site.version  # the running inventory stays
        assert state.config_refused == f"{smaller.version}: {reason}"
        # And the queue works on.
        reply = kiosk.request(m.IssueTicket(device="kiosk-1", service="skck"), timeout=5)
        assert reply["ticket"]["people_ahead"] == 1
    finally:
        kiosk.stop()


def test_another_site_is_refused(hub: HubService, text: str) -> None:
    other = parse_site(re.sub(r'(?m)^id = "[^"]+"', 'id = "elsewhere"', text, count=1), "x.toml")
    assert "that is another site" in (hub.reload_site(other) or "")
