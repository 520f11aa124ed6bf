"""Issue 23 items 4-5: the hub's wall clock stepped under it (libfaketime), as NTP, a
technician or a Pi without a real-time clock would do.

The hub runs as its own process (`mpp hub`) with libfaketime preloaded: its wall clock reads
a file the test rewrites, its monotonic clock is left alone (as a real step leaves it).
Devices are played by a raw command client on the real broker; invariants are read back from
the hub's answers, its retained state and its SQLite file.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest

from bench.figures import figure
from hub import reports
from protocol import messages as m
from protocol.brokers import Mosquitto
from protocol.site import Site, load_site
from tests.chaos.conftest import CommandTap, HubProcess, retained_dump, wait_hub, wait_until
from tests.chaos.faketime import FakeClock, at
from tests.conftest import write_site

HOLD_S = 8.0  # the hold on unprinted kiosk tickets in these scenarios


@dataclass
class Rig:
    """A hub process on a fake wall clock, and a client speaking for the devices."""

    site: Site
    clock: FakeClock
    hub: HubProcess
    tap: CommandTap

    def send(self, command: m.Command) -> m.Reply:
        """Send `command` as its device; the hub's reply (AssertionError: none in 10 s)."""
        answer = self.tap.ask(command.device, command.kind, m.encode(command), timeout=10)
        assert answer is not None, f"no reply to {command.kind} from {command.device}"
        return answer.reply

    def issue(self, service: str, printed: bool = True) -> m.TicketInfo:
        """kiosk-1 issues a ticket (and reports it printed)."""
        reply = self.send(m.IssueTicket(device="kiosk-1", service=service))
        assert reply.ok, reply.error
        ticket = m.IssueResult.model_validate(reply.result).ticket
        if printed:
            assert self.send(m.TicketPrinted(device="kiosk-1", ticket_id=ticket.id)).ok
        return ticket

    def next(self, counter: int) -> str:
        """NEXT at `counter`: the number called, or the refusal's code."""
        reply = self.send(m.CallNext(device=f"caller-{counter:02d}", counter=counter))
        if not reply.ok:
            assert reply.error is not None
            return reply.error.code
        call = m.CounterResult.model_validate(reply.result).call
        return call.ticket if call else "none"

    def restart(self) -> None:
        """Stop the hub (SIGTERM) and start it again on the same clock."""
        assert self.hub.stop() == 0, self.hub.log_text()[-2000:]
        self.hub.start()
        wait_hub(self.tap)

    def db(self) -> sqlite3.Connection:
        """A read-only connection to the hub's database."""
        conn = sqlite3.connect(f"file:{self.site.hub.database}?mode=ro", uri=True, timeout=10)
        conn.row_factory = sqlite3.Row
        return conn


@pytest.fixture
def rig(broker: Mosquitto, tmp_path: Path) -> Iterator[Rig]:
    site_file = write_site(
        tmp_path / "site.toml",
        broker.port,
        always_open=True,
        database=tmp_path / "hub.sqlite",
        unprinted_hold_s=HOLD_S,
    )
    site = load_site(site_file)
    clock = FakeClock(tmp_path / "faketime.rc")
    hub = HubProcess(site_file, tmp_path / "hub.log", env=clock.env())
    tap = CommandTap(site).start()
    made = Rig(site, clock, hub, tap)
    try:
        yield made
    finally:
        tap.stop()
        hub.stop()


def start(rig: Rig, local: str) -> None:
    """Set the hub's clock to local time `local` at the site and start the hub."""
    rig.clock.set(at(rig.site, local))
    rig.hub.start()
    wait_hub(rig.tap)
    for counter in (3, 4):
        opened = rig.send(m.OpenCounter(device=f"caller-{counter:02d}", counter=counter))
        assert opened.ok, opened.error


@pytest.mark.chaos
def test_a_clock_stepped_back_within_the_day_changes_no_order_duration_or_hold(rig: Rig) -> None:
    """Item 5. The hub's clock goes back an hour in the middle of the morning. Invariant: the
    queue is called in the order tickets were placed (a ticket transferred after its first
    call goes behind those issued before that call, also after a restart); no waiting time or
    service time is negative, in the retained state or in the reports; an unprinted ticket is
    held for the hold's length of real time, not for the hour the clock went back."""
    start(rig, "2026-12-08 10:00:00")
    a1 = rig.issue("ktp")
    b1 = rig.issue("kk")
    a2 = rig.issue("ktp", printed=False)  # its kiosk has not said it printed: held
    a3 = rig.issue("ktp")
    issued_steady = time.monotonic()
    rig.clock.step(-3600)

    assert rig.next(3) == a1.number  # called at 09:00 by the wall clock, issued at 10:00
    moved = rig.send(m.Transfer(device="caller-03", counter=3, service="kk"))
    assert moved.ok, moved.error
    assert rig.next(3) == a3.number  # A002 is held: not reported printed
    if time.monotonic() - issued_steady < HOLD_S - 1:
        assert rig.next(3) == "none"  # A003 finished; A002 still held: nobody called
        services = {
            state.service: state
            for payload in retained_dump(rig.site).values()
            if (state := _service_state(payload)) is not None
        }
        assert services["ktp"].waiting == 1 and services["ktp"].longest_wait_s >= 0
    # The hold ends after HOLD_S of real time, not an hour of wall clock later.
    assert wait_until(lambda: rig.next(3) == a2.number, HOLD_S + 10), "the hold never ended"
    figure("clock stepped back 1 h: unprinted ticket callable after",
           round(time.monotonic() - issued_steady, 1), "s", f"hold {HOLD_S:g} s")  # fmt: skip

    rig.restart()  # the order is the database's, not the wall clock's
    assert [rig.next(4), rig.next(4)] == [b1.number, a1.number]

    conn = rig.db()
    try:
        rows = reports.load_tickets(conn, reports.Period(date(2026, 12, 8), date(2026, 12, 8)))
    finally:
        conn.close()
    total, _ = reports.summarise(rows, rig.site, "service")
    assert total.waits and min(total.waits) >= 0
    assert total.service_times and min(total.service_times) >= 0
    called_before_issue = [r for r in rows if r.first_called_at and r.first_called_at < r.issued_at]
    figure("clock stepped back 1 h: tickets recorded called before issued",
           len(called_before_issue), "tickets", "waits counted as 0")  # fmt: skip


def _service_state(payload: bytes) -> m.ServiceState | None:
    try:
        return m.decode(m.ServiceState, payload)
    except Exception:
        return None
