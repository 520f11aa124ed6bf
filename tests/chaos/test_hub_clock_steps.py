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
from tests.chaos.conftest import CommandTap, HubProcess, retained_dump, wait_hub
from tests.chaos.faketime import FakeClock, at
from tests.conftest import write_site
from tests.timing import wait_until

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


def _site_state(rig: Rig) -> m.SiteState:
    topic = rig.tap.topics.site_state()
    return m.decode(m.SiteState, retained_dump(rig.site)[topic])


def _stored(rig: Rig) -> list[tuple[str, str, str]]:
    conn = rig.db()
    try:
        return [
            tuple(r) for r in conn.execute("SELECT day, label, status FROM tickets ORDER BY id")
        ]
    finally:
        conn.close()


@pytest.mark.chaos
def test_a_hub_booted_slow_after_midnight_issues_nothing_on_the_wrong_day(rig: Rig) -> None:
    """Item 4. The hub issued A001-A003 late in the evening, and restarts after midnight with
    its clock 3 h slow (a Pi without a battery clock, before NTP). Invariant: nothing is issued
    while the clock reads earlier than the hub's last record (kiosks are told why, the retained
    site state says so); once the clock is right, numbering starts on the new day; no number
    is held by two citizens."""
    start(rig, "2026-12-08 23:50:00")
    evening = [rig.issue("ktp").number for _ in range(3)]
    assert rig.hub.stop() == 0
    rig.clock.set(at(rig.site, "2026-12-08 21:20:00"))  # really 00:20 on the 9th
    rig.hub.start()
    wait_hub(rig.tap)
    slow = [rig.send(m.IssueTicket(device="kiosk-1", service="ktp")) for _ in range(3)]
    wrong_day = [r.result["ticket"]["number"] for r in slow if r.ok and r.result]
    figure("hub booted 3 h slow after midnight: tickets issued on the wrong day",
           len(wrong_day), "tickets", "0")  # fmt: skip
    assert wrong_day == [], f"issued on yesterday's numbering: {wrong_day}"
    assert {r.error.code for r in slow if r.error} == {"clock_unsynced"}
    assert slow[0].error is not None and slow[0].error.text is not None
    assert slow[0].error.text.id.startswith("Jam sistem antrian belum sinkron")
    assert not _site_state(rig).clock_ok

    rig.clock.set(at(rig.site, "2026-12-09 00:20:30"))  # NTP sets the clock right
    assert wait_until(lambda: _site_state(rig).clock_ok, 15), "the state never said ok again"
    morning = rig.issue("ktp")
    assert morning.number == "A001"
    stored = _stored(rig)
    assert [(d, label) for d, label, _ in stored] == [
        *[("2026-12-08", n) for n in evening],
        ("2026-12-09", "A001"),
    ]


@pytest.mark.chaos
def test_a_clock_stepped_back_across_midnight_keeps_the_new_day(rig: Rig) -> None:
    """Item 4. Five minutes after midnight the hub's clock is stepped back seven minutes.
    Invariant: the day does not go back (the new day's tickets stay waiting, numbering is not
    restarted); no ticket is issued while the clock is behind the last record; after the clock
    passes it again, numbering goes on where it was."""
    start(rig, "2026-12-09 00:05:00")
    a1, a2 = rig.issue("ktp"), rig.issue("ktp")
    rig.clock.step(-420)  # 23:58 on the 8th
    back = rig.send(m.IssueTicket(device="kiosk-1", service="ktp"))
    assert not back.ok and back.error is not None and back.error.code == "clock_unsynced", back
    assert rig.next(3) == a1.number  # still waiting on the 9th, not expired
    rig.clock.step(+600)  # 00:08 on the 9th
    assert wait_until(lambda: rig.send(m.IssueTicket(device="kiosk-1", service="ktp")).ok, 10)
    stored = _stored(rig)
    assert [(d, label) for d, label, _ in stored] == [
        ("2026-12-09", "A001"),
        ("2026-12-09", "A002"),
        ("2026-12-09", "A003"),
    ]
    assert all(status != "expired" for _, _, status in stored) and a2.number == "A002"
