"""Disk full (issue 23, item 1): the hub's database on a real 2 MB tmpfs, a kiosk issuing until
the disk is full, the hub restarted on the full disk, then space freed.

Invariant: every `ok` names a ticket that is in the database (and every stored ticket was
confirmed); once the disk is full every command gets `storage_full` with its own request id;
the hub process stays up and answers; a restart on the full disk confirms nothing either; the
retained `storage` alert and the hub's health say the disk is full; when space returns the hub
resumes by itself, numbering on from the last stored ticket, with the fault kept as a record.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from protocol import messages as m
from protocol.mqtt import Bus, Incoming
from protocol.site import Site, parse_site
from tests.chaos.conftest import CommandTap, HubProcess, SmallDisk, open_db
from tests.conftest import write_site
from tests.timing import wait_until

MAX_PRESSES = 400  # 2 MB fill up after a few dozen tickets; the loop ends at the first refusals


class HubWatch:
    """The hub's retained presence and alerts, as a dashboard would follow them."""

    def __init__(self, site: Site) -> None:
        self.bus = Bus(site.site.id, "chaos-watch", "hub", port=site.broker.port)
        self.health: m.Health | None = None
        self.alerts: dict[str, m.Alert] = {}
        self._lock = threading.Lock()
        self.bus.subscribe(self.bus.topics.status("hub"), self._on_status)
        self.bus.subscribe(self.bus.topics.all_of("alert"), self._on_alert)
        assert self.bus.start(wait=10)

    def _on_status(self, incoming: Incoming) -> None:
        if incoming.payload:
            status = m.decode(m.DeviceStatus, incoming.payload)
            with self._lock:
                self.health = status.health if status.online else None

    def _on_alert(self, incoming: Incoming) -> None:
        alert_id = incoming.topic.rsplit("/", 1)[1]
        with self._lock:
            if incoming.payload:
                self.alerts[alert_id] = m.decode(m.Alert, incoming.payload)
            else:
                self.alerts.pop(alert_id, None)

    def storage(self) -> str | None:
        """The hub's health.storage now."""
        with self._lock:
            return self.health.storage if self.health else None


def issue(tap: CommandTap, timeout: float = 5.0) -> m.Reply:
    """One kiosk press; the hub's answer (AssertionError when none comes, or the answer
    does not echo the request id)."""
    request_id = m.new_request_id()
    payload = {"v": 1, "request_id": request_id, "device": "kiosk-1", "service": "ktp"}
    answer = tap.ask("kiosk-1", "issue", json.dumps(payload).encode(), timeout=timeout)
    assert answer is not None, "the hub gave no answer"
    assert answer.reply.request_id == request_id
    return answer.reply


def stored(database: Path) -> dict[str, str]:
    """The stored tickets: number -> token."""
    conn = open_db(database)
    try:
        return {
            row["label"]: row["token"] for row in conn.execute("SELECT label, token FROM tickets")
        }
    finally:
        conn.close()


@pytest.mark.chaos
def test_a_full_disk_confirms_nothing_it_did_not_store(
    small_disk: SmallDisk, broker, tmp_path: Path
) -> None:
    database = small_disk.path / "hub.sqlite"
    site_file = write_site(tmp_path / "site.toml", broker.port, always_open=True, database=database)
    site = parse_site(site_file.read_text(), str(site_file))
    hub = HubProcess(site_file, tmp_path / "hub.log").start()
    tap = CommandTap(site).start()
    watch = HubWatch(site)
    confirmed: dict[str, str] = {}
    try:
        assert wait_until(lambda: tap.ask("kiosk-1", "issue", b"?", timeout=0.5), 30)
        refused = 0
        for _ in range(MAX_PRESSES):
            reply = issue(tap)
            if reply.ok:
                ticket = m.IssueResult.model_validate(reply.result).ticket
                confirmed[ticket.number] = ticket.token
                continue
            assert reply.error is not None and reply.error.code == "storage_full", reply.error
            assert reply.error.text is not None and "penuh" in reply.error.text.id
            refused += 1
            if refused == 5:
                break
        assert refused == 5, f"the 2 MB disk never filled in {MAX_PRESSES} presses"
        assert hub.alive(), hub.log_text()
        assert stored(database) == confirmed  # nothing confirmed unstored, nothing unconfirmed
        assert wait_until(lambda: watch.storage() == "full", 5)
        assert wait_until(lambda: "storage" in watch.alerts, 5)
        assert "penuh" in watch.alerts["storage"].text.id

        # Restarted on the still-full disk: it starts, and confirms nothing.
        assert hub.stop() == 0, hub.log_text()
        hub.start()
        assert wait_until(lambda: tap.ask("kiosk-1", "issue", b"?", timeout=0.5), 30)
        for _ in range(3):
            reply = issue(tap)
            assert not reply.ok and reply.error is not None
            assert reply.error.code == "storage_full"
        assert stored(database) == confirmed
        assert wait_until(lambda: watch.storage() == "full", 5)

        # Space returns: the hub resumes by itself; numbering goes on, nothing repeated.
        small_disk.resize("16m")
        assert wait_until(lambda: watch.storage() == "ok", 15), "no recovery without a command"
        reply = issue(tap)
        assert reply.ok, reply.error
        ticket = m.IssueResult.model_validate(reply.result).ticket
        assert int(ticket.number[1:]) == len(confirmed) + 1
        confirmed[ticket.number] = ticket.token
        assert stored(database) == confirmed
        assert wait_until(lambda: "storage" not in watch.alerts, 5)
        records = [a for a in watch.alerts.values() if a.kind == "storage"]
        assert len(records) == 1 and "ditolak" in records[0].text.id, watch.alerts
        assert hub.alive()
        print(f"disk full after {len(confirmed) - 1} tickets; 8 presses refused; recovered")
    finally:
        watch.bus.stop()
        tap.stop()
        hub.stop()
