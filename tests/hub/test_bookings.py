"""Bookings at the site: the region's messages applied once each, in order; kiosk check-in with
every refusal; a repeat scan gives the same ticket; no-shows expire; walk-in quota untouched."""

from __future__ import annotations

import contextlib
import queue
import sqlite3
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from hub import bookings
from hub.service import HubService
from hub.store import Store
from protocol import messages as m
from protocol.brokers import Mosquitto
from protocol.mqtt import Bus, Incoming
from protocol.site import Site
from tests.region.sites import clear_retained_uplink, region_site
from tests.timing import wait_until

# A Monday 07:50 in Banjarbaru (WITA): the 08:00-10:00 KTP session's check-in window is open
# from 07:30 to 08:15.
MONDAY = "2026-12-07"
T0 = datetime.fromisoformat(f"{MONDAY}T07:50:00+08:00").timestamp()


class Clock:
    """The hub's wall clock, moved by the test."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def booking_site(broker: Mosquitto, tmp_path: Path) -> Site:
    return region_site(broker.port, tmp_path / "hub.sqlite", f"bk-{tmp_path.name[-12:]}")


@pytest.fixture
def clock() -> Clock:
    return Clock(T0)


@pytest.fixture
def hub(booking_site: Site, clock: Clock) -> Iterator[HubService]:
    service = HubService(
        booking_site, clock=clock, clock_synced=lambda: True, first_start=True
    ).start()
    yield service
    service.stop()
    clear_retained_uplink(booking_site)


class Region:
    """The region's side of down/: sends batches, collects the hub's acknowledgements."""

    def __init__(self, site: Site) -> None:
        self.bus = Bus(site.site.id, "region-test", "region", port=site.broker.port, presence=False)
        self.acks: queue.Queue[m.DownAck] = queue.Queue()
        self.bus.subscribe(self.bus.topics.down_ack(), self._on_ack)
        assert self.bus.start(wait=10)

    def _on_ack(self, incoming: Incoming) -> None:
        self.acks.put(m.decode(m.DownAck, incoming.payload))

    def send(self, site: Site, after: int, bodies: list, at: float = T0) -> m.DownAck:
        messages = tuple(
            m.DownMessage(id=after + i + 1, at=at, body=body) for i, body in enumerate(bodies)
        )
        batch = m.DownBatch(
            site=site.site.id, after=after, last=after + len(messages), messages=messages
        )
        while not self.acks.empty():
            self.acks.get()
        self.bus.publish(self.bus.topics.down_messages(), batch)
        # The answer, and any acknowledgement crossing it (the hub's greeting on connect):
        # acknowledgements only grow, so the highest is the answer.
        answers = [self.acks.get(timeout=10)]
        with contextlib.suppress(queue.Empty):
            while True:
                answers.append(self.acks.get(timeout=0.3))
        return max(answers, key=lambda ack: ack.applied)


@pytest.fixture
def region(booking_site: Site, hub: HubService) -> Iterator[Region]:
    made = Region(booking_site)
    yield made
    made.bus.stop()


def booked(code: str, day: str = MONDAY, start: str = "08:00", end: str = "10:00"):
    return m.BookingMade(code=code, service="ktp", day=day, start=start, end=end)


def check_in(hub: HubService, code: str, site: str | None = None) -> m.Reply:
    return hub.submit(m.CheckIn(device="hub", code=code, site=site))


def rows(hub: HubService, sql: str, *args: object) -> list[tuple]:
    """Committed rows of the hub's database (a connection of the test's own)."""
    conn = sqlite3.connect(f"file:{hub.database}?mode=ro", uri=True)
    try:
        return [tuple(r) for r in conn.execute(sql, args).fetchall()]
    finally:
        conn.close()


def bookings_of(hub: HubService) -> dict[str, tuple]:
    return {r[0]: (r[1], r[2]) for r in rows(hub, "SELECT code, status, ticket FROM bookings")}


def test_region_messages_apply_once_in_order_and_a_gap_waits(hub, region, booking_site):
    ack = region.send(booking_site, 0, [booked("AAAA2222"), booked("BBBB3333")])
    assert ack.applied == 2
    # The same batch again (a resend after a lost acknowledgement): nothing applied twice.
    assert region.send(booking_site, 0, [booked("AAAA2222"), booked("BBBB3333")]).applied == 2
    # A batch beyond a gap waits: the acknowledgement stays where it was.
    assert region.send(booking_site, 3, [m.BookingCancelled(code="AAAA2222")]).applied == 2
    assert bookings_of(hub)["AAAA2222"][0] == "active"
    # The missing message and the one after it, as the region sends them again.
    ack = region.send(booking_site, 2, [booked("CCCC4444"), m.BookingCancelled(code="AAAA2222")])
    assert ack.applied == 4
    assert bookings_of(hub) == {
        "AAAA2222": ("cancelled", None),
        "BBBB3333": ("active", None),
        "CCCC4444": ("active", None),
    }
    kinds = rows(hub, "SELECT id, kind FROM region_messages ORDER BY id")
    assert kinds == [(1, "booking"), (2, "booking"), (3, "booking"), (4, "cancel")]


def test_a_malformed_batch_changes_nothing(hub, region, booking_site):
    region.send(booking_site, 0, [booked("AAAA2222")])
    region.bus.publish(region.bus.topics.down_messages(), b'{"v": 1, "site": "x"}')
    region.bus.publish(region.bus.topics.down_messages(), b"not json")
    # The next good batch is answered; the bad ones changed nothing.
    assert region.send(booking_site, 1, [booked("BBBB3333")]).applied == 2
    assert set(bookings_of(hub)) == {"AAAA2222", "BBBB3333"}


def test_check_in_issues_an_ordinary_ticket_and_a_repeat_scan_gives_the_same(
    hub, region, booking_site, clock
):
    region.send(booking_site, 0, [booked("AAAA2222"), booked("BBBB3333")])
    walk_in = hub.submit(m.IssueTicket(device="hub", service="ktp"))
    assert walk_in.ok
    quota_before = hub.queue.quota_left("ktp")
    first = check_in(hub, "AAAA2222", site=booking_site.site.id)
    assert first.ok, first.error
    ticket = m.IssueResult.model_validate(first.result).ticket
    assert ticket.booking == "AAAA2222" and not ticket.reprint
    assert ticket.number == "A002" and ticket.priority is None
    assert ticket.people_ahead == 1  # joins the queue at check-in time, behind the walk-in
    assert hub.queue.quota_left("ktp") == quota_before  # the walk-in quota is not its
    clock.now += 60
    again = check_in(hub, "AAAA2222")
    assert again.ok
    repeat = m.IssueResult.model_validate(again.result).ticket
    assert repeat.reprint and (repeat.id, repeat.number, repeat.token) == (
        ticket.id,
        ticket.number,
        ticket.token,
    )
    assert len(hub.queue.tickets) == 2  # never a second ticket
    assert bookings_of(hub)["AAAA2222"] == ("checked_in", ticket.id)
    kinds = [r[0] for r in rows(hub, "SELECT kind FROM events WHERE ticket = ?", ticket.id)]
    assert kinds == ["issued", "checked_in"]


REFUSALS = [  # (clock, code, site named by the QR, error, words of the citizen's text)
    (T0, "ZZZZ9999", None, "unknown_booking", "tidak ditemukan"),
    (T0, "CCCC4444", None, "booking_cancelled", "dibatalkan"),
    (T0 + 30 * 60, "AAAA2222", None, "booking_expired", "sudah lewat"),  # 08:20
    (T0 - 30 * 60, "AAAA2222", None, "too_early", "07:30"),  # 07:20
    (T0, "DDDD5555", None, "wrong_day", "Selasa"),
    (T0, "EEEE6666", None, "booking_expired", "sudah lewat"),  # yesterday's
    (T0, "AAAA2222", "mpp-lain", "other_site", "MPP lain"),
]


def test_every_refused_code_says_why_and_issues_nothing(hub, region, booking_site, clock):
    region.send(
        booking_site,
        0,
        [
            booked("AAAA2222"),
            booked("CCCC4444"),
            booked("DDDD5555", day="2026-12-08"),
            booked("EEEE6666", day="2026-12-06"),
        ],
    )
    region.send(booking_site, 4, [m.BookingCancelled(code="CCCC4444")])
    for now, code, site, error, words in REFUSALS:
        clock.now = now
        reply = check_in(hub, code, site=site)
        assert not reply.ok and reply.error.code == error, (code, reply)
        assert words in reply.error.text.id and reply.error.text.en, (code, reply.error.text)
    assert hub.queue.tickets == {}


def test_no_shows_expire_at_the_end_of_their_window_and_free_no_seat(
    hub, region, booking_site, clock
):
    later = booked("BBBB3333", start="10:00", end="12:00")
    region.send(booking_site, 0, [booked("AAAA2222"), later])
    clock.now = T0 + 26 * 60  # 08:16: the 08:00 session's window closed at 08:15
    # The hub's periodic tick (every 5 s) expires it.
    assert wait_until(lambda: bookings_of(hub)["AAAA2222"][0] == "expired", 15)
    assert bookings_of(hub)["BBBB3333"][0] == "active"
    assert check_in(hub, "AAAA2222").error.code == "booking_expired"
    events = rows(hub, "SELECT detail FROM events WHERE kind = 'booking_expired'")
    assert events == [("AAAA2222",)]


def test_bookings_past_the_retention_are_deleted(booking_site, tmp_path):
    store = Store(tmp_path / "alone.sqlite", first_start=True)
    bookings.create_schema(store.conn)
    with store.transaction():
        for code, day in (("OLDD2222", "2026-09-01"), ("KEEP3333", "2026-11-01")):
            store.conn.execute(
                'INSERT INTO bookings (code, service, day, start, "end", status, received_at, '
                "changed_at) VALUES (?, 'ktp', ?, '08:00', '10:00', 'expired', 0, 0)",
                (code, day),
            )
        bookings.expire_no_shows(store, booking_site, T0)
    left = [r[0] for r in store.conn.execute("SELECT code FROM bookings")]
    store.close()
    assert left == ["KEEP3333"]  # 90 days are kept


def test_a_survey_answered_on_the_region_is_recorded_once_by_the_hub(hub, region, booking_site):
    hub.submit(m.OpenCounter(device="hub", counter=1, officer="Siti"))
    issued = m.IssueResult.model_validate(
        hub.submit(m.IssueTicket(device="hub", service="ktp")).result
    ).ticket
    hub.submit(m.CallNext(device="hub", counter=1))
    hub.submit(m.Finish(device="hub", counter=1))
    scores = (4, 3, 4, 4, 3, 2, 4, 4, 3)
    good = m.SurveyAnswered(
        ticket=issued.id, token_sha256=m.token_sha256(issued.token), scores=scores
    )
    forged = m.SurveyAnswered(ticket=issued.id, token_sha256="0" * 64, scores=scores)
    assert region.send(booking_site, 0, [forged, good, good]).applied == 3
    assert rows(hub, "SELECT ticket, u1, u6 FROM survey_responses") == [(issued.id, 4, 2)]
    results = [r[0] for r in rows(hub, "SELECT result FROM region_messages ORDER BY id")]
    assert results == ["refused: unknown ticket", "recorded", "refused: already_answered"]


def test_the_sites_report_counts_booked_checked_in_called_served_and_walk_ins(
    hub, region, booking_site, clock
):
    region.send(booking_site, 0, [booked("AAAA2222"), booked("BBBB3333"), booked("CCCC4444")])
    region.send(booking_site, 3, [m.BookingCancelled(code="CCCC4444")])
    hub.submit(m.IssueTicket(device="hub", service="ktp"))  # a walk-in, A001
    assert check_in(hub, "AAAA2222").ok  # A002
    hub.submit(m.OpenCounter(device="hub", counter=1, officer="Siti"))
    hub.submit(m.CallNext(device="hub", counter=1))  # A001
    hub.submit(m.CallNext(device="hub", counter=1))  # A001 served, A002 called
    hub.submit(m.Finish(device="hub", counter=1))
    clock.now = T0 + 26 * 60  # BBBB3333 never came: a no-show at the next tick
    assert wait_until(lambda: bookings_of(hub)["BBBB3333"][0] == "expired", 15)
    conn = sqlite3.connect(f"file:{hub.database}?mode=ro", uri=True)
    try:
        [row] = bookings.funnel(conn, MONDAY, MONDAY)
    finally:
        conn.close()
    assert (row.day, row.service) == (MONDAY, "ktp")
    assert (row.booked, row.checked_in, row.called, row.served, row.no_shows) == (2, 1, 1, 1, 1)
    assert (row.walk_ins, row.walk_ins_called, row.walk_ins_served) == (1, 1, 1)
