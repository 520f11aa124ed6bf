"""The queue rules, called directly with explicit times (no IO)."""

from __future__ import annotations

import itertools
import re
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hub.rules import (
    CALLED,
    DONE,
    EXPIRED,
    SKIPPED,
    VOIDED,
    WAITING,
    Queue,
    Refused,
    Sound,
    complaint_alert_id,
    duration,
)
from hub.states import counter_state, service_state, site_state
from protocol import messages as m
from protocol.site import Site
from tests.conftest import example_text, make_site

_tokens = itertools.count()


def at(site: Site, text: str) -> float:
    """Epoch seconds of a local wall-clock time at the site, e.g. '2026-11-23 09:00'."""
    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(site.site.timezone)).timestamp()


def issue(q: Queue, service: str, now: float, priority: str | None = None, device: str = "kiosk-1"):
    return q.issue(service, priority=priority, device=device, now=now, token=f"t{next(_tokens)}")


@pytest.fixture
def site() -> Site:
    return make_site()


@pytest.fixture
def q(site: Site) -> Queue:
    queue = Queue(site)
    for number in (1, 2, 3, 4, 5, 13):
        queue.open_counter(number, f"officer-{number}", at(site, "2026-11-23 07:30"))
    queue.take_changes()
    return queue


MON_9 = "2026-11-23 09:00"


def test_numbers_are_prefix_and_three_digits_per_service(site: Site, q: Queue) -> None:
    now = at(site, MON_9)
    labels = [issue(q, "ktp", now + i).label for i in range(3)] + [issue(q, "skck", now).label]
    assert labels == ["A001", "A002", "A003", "H001"]


@pytest.mark.parametrize("zone", ["Asia/Jakarta", "Asia/Makassar", "Asia/Jayapura"])
def test_numbering_resets_at_local_midnight(zone: str) -> None:
    text = example_text().replace('timezone = "Asia/Makassar"', f'timezone = "{zone}"')
    site = make_site(text=text, always_open=True)
    q = Queue(site)
    late = at(site, "2026-11-23 23:59:30")
    assert issue(q, "ktp", late).label == "A001"
    waiting = issue(q, "ktp", late + 10)
    assert waiting.label == "A002" and q.day == "2026-11-23"
    after = issue(q, "ktp", at(site, "2026-11-24 00:00:05"))
    assert after.label == "A001" and q.day == "2026-11-24"
    assert waiting.status == EXPIRED
    changes = q.take_changes()
    assert waiting.id in changes.tickets  # the expiry is persisted too
    # One second before local midnight in another zone is already the next day here.
    assert site.business_day(at(site, "2026-11-24 00:00:00") - 1) == "2026-11-23"


@pytest.mark.parametrize(
    ("when", "service", "code", "text_id"),
    [
        (
            "2026-11-29 10:00",
            "ktp",
            "service_closed",
            "Layanan Perekaman dan Cetak KTP-el sedang tutup",
        ),
        (
            "2026-11-23 07:00",
            "ktp",
            "service_closed",
            "Layanan Perekaman dan Cetak KTP-el buka pukul 07:30",
        ),
        (
            "2026-11-23 14:00",
            "ktp",
            "cutoff_passed",
            "Pengambilan antrian Perekaman dan Cetak KTP-el ditutup pukul 14:00",
        ),
        ("2026-11-28 11:59", "info", "service_closed", None),  # Saturday open 08-12
        (
            "2026-11-28 12:00",
            "info",
            "cutoff_passed",
            "Pengambilan antrian Informasi dan Pengaduan ditutup pukul 12:00",
        ),
    ],
)
def test_refusals_give_citizen_text_and_change_nothing(
    site: Site, q: Queue, when: str, service: str, code: str, text_id: str | None
) -> None:
    if text_id is None:  # open: the control case
        assert issue(q, service, at(site, when)).label == "X001"
        return
    with pytest.raises(Refused) as caught:
        issue(q, service, at(site, when))
    assert caught.value.code == code
    assert caught.value.text["id"] == text_id and caught.value.text["en"]
    assert not q.tickets


def test_quota_and_voided_tickets_give_quota_back(site: Site) -> None:
    text = example_text().replace("daily_quota = 30\n", "daily_quota = 2\n")  # haji
    q = Queue(make_site(text=text))
    now = at(q.site, MON_9)
    first = issue(q, "haji", now)
    issue(q, "haji", now)
    with pytest.raises(Refused) as caught:
        issue(q, "haji", now)
    assert caught.value.code == "quota_reached"
    assert caught.value.text["id"] == "Kuota antrian Pendaftaran Haji hari ini sudah habis"
    q.void(first.id, "kiosk-1", now)
    assert first.status == VOIDED
    third = issue(q, "haji", now)
    assert third.label == "V003"  # a number is never reused, even after a void


def test_unknown_service_and_counter(site: Site, q: Queue) -> None:
    with pytest.raises(Refused, match="unknown_service"):
        issue(q, "sim", at(site, MON_9))
    with pytest.raises(Refused, match="unknown_counter"):
        q.call_next(99, at(site, MON_9))


def test_oldest_first_across_services(site: Site, q: Queue) -> None:
    now = at(site, MON_9)
    kk = issue(q, "kk", now)
    ktp = issue(q, "ktp", now + 1)
    assert q.call_next(1, now + 5) is kk  # counter 1 serves ktp and kk; kk is older
    assert q.call_next(1, now + 6) is ktp
    assert kk.status == DONE


def test_counter_order_policy(site: Site) -> None:
    text = example_text().replace('call_policy = "oldest_first"', 'call_policy = "counter_order"')
    q = Queue(make_site(text=text))
    now = at(q.site, MON_9)
    q.open_counter(1, "x", now)
    issue(q, "kk", now)
    ktp = issue(q, "ktp", now + 1)
    assert q.call_next(1, now + 5) is ktp  # counter 1 lists ktp first


def test_priority_is_served_first_but_regular_never_starves(site: Site, q: Queue) -> None:
    now = at(site, MON_9)
    regular = [issue(q, "skck", now + i) for i in range(3)]
    priority = [issue(q, "skck", now + 10 + i, priority="elderly") for i in range(5)]
    order = [q.call_next(13, now + 100 + i).label for i in range(8)]
    # priority_ratio = 2: at most two priority calls in a row while regular tickets wait
    p, r = [t.label for t in priority], [t.label for t in regular]
    assert order == [p[0], p[1], r[0], p[2], p[3], r[1], p[4], r[2]]
    events = [e for e in q.take_changes().events if e.kind == "priority_granted"]
    assert len(events) == 5 and events[0].detail == "elderly by kiosk-1"


def test_a_counter_offers_its_newest_no_shows_and_its_state_stays_within_the_limit(
    site: Site, q: Queue
) -> None:
    now = at(site, MON_9)
    for i in range(60):
        issue(q, "ktp", now + i)
    for i in range(60):
        q.call_next(3, now + 100 + 2 * i)
        q.skip(3, now + 101 + 2 * i)
    state = counter_state(q, 3, 1, now + 300)
    assert len(q.skipped(("ktp",))) == 60
    assert state.skipped == tuple(f"A{n:03d}" for n in range(11, 61))  # the newest 50
    assert len(m.encode(state)) < m.MAX_PAYLOAD_BYTES
    assert m.decode(m.CounterState, m.encode(state)) == state  # a screen takes it


def test_recall_skip_and_call_back(site: Site, q: Queue) -> None:
    now = at(site, MON_9)
    a1, a2 = issue(q, "ktp", now), issue(q, "ktp", now + 1)
    q.call_next(3, now + 10)
    seq = q.counters[3].call_seq
    assert q.recall(3, now + 20) is a1 and q.counters[3].call_seq == seq + 1
    assert q.skip(3, now + 30) is a1 and a1.status == SKIPPED and q.counters[3].current is None
    assert [t.label for t in q.skipped(("ktp",))] == ["A001"]
    assert q.call_next(3, now + 40) is a2
    assert q.call_skipped(3, "A001", now + 50) is a1
    assert a1.status == CALLED and a2.status == DONE and q.counters[3].call_seq == seq + 3
    with pytest.raises(Refused, match="bad_state"):
        q.call_skipped(3, "A002", now + 60)


def test_transfer_keeps_number_and_goes_ahead_of_later_tickets(site: Site, q: Queue) -> None:
    now = at(site, MON_9)
    early_kk = issue(q, "kk", now)
    a1 = issue(q, "ktp", now + 1)
    q.call_next(3, now + 100)  # counter 3 serves ktp only -> A001, first called at +100
    late_kk = issue(q, "kk", now + 200)
    moved = q.transfer(3, "kk", now + 300)
    assert moved is a1 and a1.label == "A001" and a1.service == "kk" and a1.status == WAITING
    assert [t.label for t in q.waiting("kk")] == [early_kk.label, "A001", late_kk.label]
    with pytest.raises(Refused, match="no_ticket"):
        q.transfer(3, "kk", now + 301)


def test_transfer_only_to_listed_services(site: Site, q: Queue) -> None:
    now = at(site, MON_9)
    issue(q, "ktp", now)
    q.call_next(3, now + 1)
    with pytest.raises(Refused) as caught:
        q.transfer(3, "paspor", now + 2)
    assert caught.value.code == "not_transferable"
    assert q.tickets[q.counters[3].current].status == CALLED


def test_closed_counter_gets_no_calls(site: Site, q: Queue) -> None:
    now = at(site, MON_9)
    ticket = issue(q, "ktp", now)
    q.call_next(3, now + 1)
    q.close_counter(3, now + 2)
    assert ticket.status == DONE and not q.counters[3].open
    issue(q, "ktp", now + 3)
    with pytest.raises(Refused) as caught:
        q.call_next(3, now + 4)
    assert caught.value.code == "counter_closed"
    assert caught.value.text["id"] == "Loket 3 tutup. Tekan BUKA dahulu."


def test_next_with_empty_queue(site: Site, q: Queue) -> None:
    now = at(site, MON_9)
    with pytest.raises(Refused, match="queue_empty"):
        q.call_next(3, now)
    ticket = issue(q, "ktp", now)
    q.call_next(3, now + 1)
    assert q.call_next(3, now + 2) is None  # finishes A001, nobody else waits
    assert ticket.status == DONE and q.counters[3].current is None


def test_estimates_learn_from_service_times(site: Site, q: Queue) -> None:
    now = at(site, MON_9)
    assert q.avg_service_s["skck"] == 600  # avg_minutes = 10 in the inventory
    tickets = [issue(q, "skck", now + i) for i in range(4)]
    assert q.people_ahead(tickets[3]) == 3
    assert q.estimate("skck", 3, now) == 3 * 600  # one open counter (13) serves skck
    q.open_counter(14, "y", now)
    assert q.estimate("skck", 3, now) == 900  # two counters now
    q.call_next(13, now + 10)
    q.call_next(13, now + 10 + 120)  # first one took 2 minutes
    assert q.avg_service_s["skck"] < 600


def test_void_only_own_and_waiting_tickets(site: Site, q: Queue) -> None:
    now = at(site, MON_9)
    ticket = issue(q, "ktp", now, device="kiosk-1")
    with pytest.raises(Refused, match="forbidden"):
        q.void(ticket.id, "kiosk-2", now)
    q.call_next(3, now + 1)
    with pytest.raises(Refused, match="bad_state"):
        q.void(ticket.id, "kiosk-1", now + 2)


def test_rating_attaches_to_current_then_last_finished(site: Site, q: Queue) -> None:
    now = at(site, MON_9)
    a1, a2 = issue(q, "ktp", now), issue(q, "ktp", now)
    q.call_next(3, now + 10)
    rating = q.rate(3, 4, now + 20)
    assert (rating.label, rating.officer, rating.score) == ("A001", "officer-3", 4)
    with pytest.raises(Refused) as caught:
        q.rate(3, 1, now + 21)
    assert caught.value.code == "already_rated"
    q.call_next(3, now + 30)  # A001 done, A002 called
    q.finish(3, now + 40)
    assert q.rate(3, 3, now + 50).label == a2.label
    with pytest.raises(Refused, match="rating_closed"):
        q.rate(3, 2, now + 40 + site.hub.rating_window_s + 1)
    assert a1.status == DONE


def test_three_lowest_ratings_in_a_row_raise_one_alert(site: Site, q: Queue) -> None:
    now = at(site, MON_9)
    for i in range(7):
        issue(q, "ktp", now + i)
    scores = [1, 1, 4, 1, 1, 1, 1]  # the 4 breaks the streak
    alerts = []
    for i, score in enumerate(scores):
        q.call_next(3, now + 100 + i * 10)
        q.rate(3, score, now + 105 + i * 10)
        alerts += q.take_changes().alerts
    assert len(alerts) == 1
    assert alerts[0].officer == "officer-3" and alerts[0].count == 3 and alerts[0].counter == 3


def test_revoke_priority(site: Site, q: Queue) -> None:
    now = at(site, MON_9)
    regular = issue(q, "skck", now)
    flagged = issue(q, "skck", now + 1, priority="pregnant")
    q.revoke_priority(flagged.id, "supervisor", now + 2)
    assert q.call_next(13, now + 3) is regular
    assert [e.kind for e in q.take_changes().events][-2:] == ["priority_revoked", "called"]
    granted = issue(q, "skck", now + 4, priority="elderly")
    assert q.call_next(13, now + 5) is granted
    with pytest.raises(Refused, match="only a waiting one") as refused:  # history stays as it was
        q.revoke_priority(granted.id, "supervisor", now + 6)
    assert refused.value.code == "bad_state" and granted.priority == "elderly"


def test_unprinted_kiosk_tickets_are_held_for_a_while() -> None:
    q = Queue(make_site(unprinted_hold_s=20))
    now = at(q.site, MON_9)
    q.open_counter(3, "Siti", now)
    waiting = issue(q, "ktp", now, device="kiosk-1")
    with pytest.raises(Refused, match="queue_empty"):  # its kiosk may still cancel it
        q.call_next(3, now + 1)
    q.printed(waiting.id)
    assert q.call_next(3, now + 2) is waiting  # printed: callable at once
    late = issue(q, "ktp", now + 3, device="kiosk-1")
    assert q.call_next(3, now + 3 + 20) is late  # never reported printed: called after the hold
    from_the_hub = q.issue("ktp", priority=None, device="hub", now=now + 30, token="web")
    assert q.call_next(3, now + 31) is from_the_hub  # not a kiosk ticket: nothing to wait for


def test_staff_reassign_a_counter_and_change_it_back(site: Site, q: Queue) -> None:
    now = at(site, MON_9)
    skck = issue(q, "skck", now)
    q.take_changes()
    assert q.open_counters("skck") == 1  # counter 13 only
    q.assign(3, ("skck", "ktp"), now, by="Kepala")
    changes = q.take_changes()
    assert changes.settings and changes.counters == {3}
    assert changes.services == {"ktp", "skck"}
    assert [e.kind for e in changes.events] == ["assigned"]
    assert q.services_of(3) == ("skck", "ktp") and q.open_counters("skck") == 2
    assert q.call_next(3, now + 5) is skck
    q.assign(3, site.counters[3].services, now + 10)
    assert q.assigned == {} and q.open_counters("skck") == 1
    later = issue(q, "skck", now + 20)
    assert q.call_next(3, now + 30) is None  # finishes skck; serves ktp again: nobody waits
    assert skck.status == DONE and later.status == WAITING
    with pytest.raises(Refused) as caught:
        q.call_next(3, now + 40)
    assert caught.value.code == "queue_empty"


@pytest.mark.parametrize(
    ("services", "code"),
    [(("ktp", "nope"), "unknown_service"), (("ktp", "ktp"), "invalid"), ((), "invalid")],
)
def test_bad_reassignments_change_nothing(
    site: Site, q: Queue, services: tuple[str, ...], code: str
) -> None:
    with pytest.raises(Refused) as caught:
        q.assign(3, services, at(site, MON_9))
    assert caught.value.code == code
    assert q.assigned == {} and q.services_of(3) == ("ktp",)
    assert q.take_changes() == type(q.changes)()
    with pytest.raises(Refused) as unknown:
        q.assign(99, ("ktp",), at(site, MON_9))
    assert unknown.value.code == "unknown_counter"


def test_staff_change_quota_and_cutoff(site: Site, q: Queue) -> None:
    now = at(site, MON_9)
    q.set_limits("paspor", 1, "09:30", now, by="Kepala")
    assert q.take_changes().settings
    issue(q, "paspor", now)
    with pytest.raises(Refused) as full:
        issue(q, "paspor", now + 1)
    assert full.value.code == "quota_reached" and q.quota_left("paspor") == 0
    q.set_limits("paspor", 5, "09:30", now + 2)
    issue(q, "paspor", now + 3)
    with pytest.raises(Refused) as late:
        issue(q, "paspor", at(site, "2026-11-23 09:31"))
    assert late.value.code == "cutoff_passed" and "09:30" in late.value.text["id"]
    q.set_limits("paspor", 60, "12:00", now)  # the inventory's values clear the change
    assert q.limits == {} and q.daily_quota("paspor") == 60
    q.set_limits("paspor", 60, None, now)  # no cut-off: until closing time
    assert q.cutoff("paspor") is None
    with pytest.raises(Refused) as bad:
        q.set_limits("paspor", 1000, None, now)
    assert bad.value.code == "invalid" and q.limits == {"paspor": (60, None)}


def test_staff_changes_the_inventory_no_longer_allows_are_left_out(site: Site) -> None:
    q = Queue(site)
    quiet = Sound(False, 0.0, "digits")
    dropped = q.restore_settings(
        {3: ("skck",), 4: ("gone",), 999: ("ktp",)},
        {"paspor": (5, None), "gone": (1, None)},
        {"lobby": quiet, "gone": quiet},
    )
    assert q.assigned == {3: ("skck",)} and q.limits == {"paspor": (5, None)}
    assert q.sound == {"lobby": quiet}
    assert len(dropped) == 4 and 3 in q.serving["skck"]


def test_staff_change_how_a_zone_speaks(site: Site, q: Queue) -> None:
    spec = site.zones["canteen"]
    assert q.sound_of("canteen") == Sound(spec.speech, spec.volume, spec.number_reading)
    q.set_sound("canteen", Sound(False, 0.3, "digits"), at(site, MON_9), by="Kepala")
    changes = q.take_changes()
    assert changes.settings and changes.zones == {"canteen"}
    assert changes.events[0].detail == "canteen:off,0.30,digits"
    assert q.sound_of("canteen") == Sound(False, 0.3, "digits")
    q.set_sound("canteen", Sound(spec.speech, spec.volume, spec.number_reading), 0.0)
    assert q.sound == {}
    with pytest.raises(Refused) as caught:
        q.set_sound("atap", Sound(True, 1.0, "words"), 0.0)
    assert caught.value.code == "unknown_zone" and q.take_changes().zones == {"canteen"}


def test_a_clock_stepped_back_within_the_day_keeps_queue_order() -> None:
    """Issue 23 item 5: tickets issued after the wall clock stepped back an hour are still
    behind the earlier ones (order by the queue's own sequence, not by issue time)."""
    q = Queue(make_site(always_open=True))
    now = at(q.site, "2026-11-23 10:00")
    q.open_counter(3, "Siti", now)
    first = [issue(q, "ktp", now + i) for i in range(2)]
    later = [issue(q, "ktp", now - 3600 + i) for i in range(2)]  # the clock went back 1 h
    assert [t.label for t in q.waiting("ktp")] == ["A001", "A002", "A003", "A004"]
    assert q.people_ahead(later[0]) == 2
    called = [q.call_next(3, now - 3500 + i) for i in range(4)]
    assert called == [*first, *later]


def test_transfers_are_placed_by_the_queue_sequence_whatever_the_clock() -> None:
    for placement, expected in (
        ("after_first_call", ["B001", "A001", "B002"]),
        ("back", ["B001", "B002", "A001"]),
        ("front", ["A001", "B001", "B002"]),
    ):
        q = Queue(make_site(always_open=True, transfer_placement=placement))
        now = at(q.site, "2026-11-23 10:00")
        q.open_counter(3, "Siti", now)
        issue(q, "kk", now)
        issue(q, "ktp", now + 1)
        q.call_next(3, now + 2)  # A001 at counter 3 (ktp only)
        issue(q, "kk", now - 7200)  # the wall clock stepped back 2 h meanwhile
        q.transfer(3, "kk", now - 7100)
        assert [t.label for t in q.waiting("kk")] == expected, placement


def test_durations_never_go_below_zero_when_the_clock_steps_back() -> None:
    q = Queue(make_site(always_open=True))
    now = at(q.site, "2026-11-23 10:00")
    q.open_counter(3, "Siti", now)
    ticket = issue(q, "ktp", now)
    before = q.avg_service_s["ktp"]
    q.call_next(3, now - 600)  # called "before" it was issued: the clock went back 10 min
    q.finish(3, now - 3000)  # and served in "negative" time
    assert duration(ticket.issued_at, ticket.first_called_at) == 0.0
    assert duration(ticket.started_at, ticket.finished_at) == 0.0
    assert q.avg_service_s["ktp"] < before  # learnt as a short service, not a 40-minute one
    waiting = issue(q, "ktp", now)
    assert waiting.label == "A002"
    assert service_state(q, "ktp", 1, now - 900).longest_wait_s == 0


def test_the_unprinted_hold_runs_on_the_steady_clock() -> None:
    """A wall clock stepped back an hour does not hide an unprinted ticket for an hour; a
    clock stepped forward does not end the hold early."""
    q = Queue(make_site(unprinted_hold_s=20, always_open=True))
    now = at(q.site, "2026-11-23 10:00")
    q.open_counter(3, "Siti", now)
    held = q.issue("ktp", priority=None, device="kiosk-1", now=now, token="a", steady=100.0)
    with pytest.raises(Refused, match="queue_empty"):
        q.call_next(3, now + 3600, steady=105.0)  # the wall clock jumped ahead: still held
    assert q.call_next(3, now - 3600, steady=121.0) is held  # 21 s on the steady clock


def test_a_restart_resumes_what_was_left_of_the_hold() -> None:
    q = Queue(make_site(unprinted_hold_s=20, always_open=True))
    now = at(q.site, "2026-11-23 10:00")
    q.open_counter(3, "Siti", now)
    ticket = q.issue("ktp", priority=None, device="kiosk-1", now=now, token="a", steady=5.0)
    ticket.issued_steady = None  # as loaded from the database after a restart
    q.resume_holds(now + 12, steady=1000.0)  # 12 s old: 8 s of hold left
    with pytest.raises(Refused, match="queue_empty"):
        q.call_next(3, now + 13, steady=1007.0)
    assert q.call_next(3, now + 14, steady=1008.0) is ticket
    q.finish(3, now + 15)
    back = q.issue("ktp", priority=None, device="kiosk-1", now=now, token="b", steady=5.0)
    back.issued_steady = None
    q.resume_holds(now - 3600, steady=2000.0)  # the wall clock is behind its issue: full hold
    with pytest.raises(Refused, match="queue_empty"):
        q.call_next(3, now, steady=2019.0)
    assert q.call_next(3, now, steady=2020.0) is back


def test_the_day_never_rolls_back() -> None:
    """Issue 23 item 4: a clock stepped back across midnight does not bring yesterday back
    (before, the new day's tickets expired and numbering restarted)."""
    q = Queue(make_site(always_open=True))
    after_midnight = at(q.site, "2026-11-24 00:05")
    q.open_counter(3, "Siti", after_midnight)
    first = issue(q, "ktp", after_midnight)
    q.take_changes()
    before_midnight = at(q.site, "2026-11-23 23:58")
    second = issue(q, "ktp", before_midnight)
    assert (q.day, second.label, second.day) == ("2026-11-24", "A002", "2026-11-24")
    assert q.call_next(3, before_midnight + 1) is first and first.status == CALLED
    assert not q.take_changes().day  # no new day was started


@given(counter=st.integers(1, 999), officer=st.text(max_size=60), at=st.floats(0, 4e9))
def test_a_complaints_alert_id_fits_the_protocol_for_any_officer(
    counter: int, officer: str, at: float
) -> None:
    alert_id = complaint_alert_id(counter, officer, at)
    assert re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,39}", alert_id), alert_id
    assert complaint_alert_id(counter, officer + "x", at) != alert_id  # one per officer


# -- breaks, pauses, honest estimates (issue 22; issue 18 item 4) ------------------------------
FRI = "2026-11-27"  # a Friday: the example's Friday prayer pause runs 11:30-13:00


def test_a_break_finishes_the_current_ticket_and_the_next_press_ends_it(
    site: Site, q: Queue
) -> None:
    now = at(site, MON_9)
    first, second = issue(q, "skck", now), issue(q, "skck", now + 1)
    q.call_next(13, now + 10)
    q.take_changes()
    q.start_break(13, "istirahat", now + 60)
    counter = q.counters[13]
    assert first.status == DONE and counter.current is None
    assert (counter.break_reason, counter.break_since) == ("istirahat", now + 60)
    assert counter.break_until == now + 60 + 30 * 60  # the inventory's break_minutes
    changes = q.take_changes()
    assert [(e.kind, e.detail) for e in changes.events if e.kind.startswith("break")] == [
        ("break_started", "istirahat,30")
    ]
    assert "skck" in changes.services  # its counters serving now changed
    assert q.serving_counters("skck") == 0 and q.on_break("skck") == 1
    with pytest.raises(Refused, match="no_ticket"):
        q.recall(13, now + 70)
    called = q.call_next(13, now + 600)  # NEXT: the officer is back, and calls
    assert called is second and not counter.on_break
    assert next((e.kind, e.detail) for e in q.take_changes().events) == (
        "break_ended",
        "istirahat,540",
    )


def test_a_break_ends_explicitly_on_open_and_close_and_never_twice(site: Site, q: Queue) -> None:
    now = at(site, MON_9)
    q.start_break(13, "rapat", now, minutes=45)
    assert q.counters[13].break_until == now + 45 * 60
    q.end_break(13, now + 300)
    with pytest.raises(Refused, match="bad_state"):
        q.end_break(13, now + 301)
    q.start_break(13, "lainnya", now + 400)
    assert q.counters[13].break_until is None  # no inventory length for "lainnya"
    q.open_counter(13, "officer-13", now + 500)  # logging in again: back at the counter
    assert not q.counters[13].on_break
    q.start_break(13, "sholat", now + 600)
    q.take_changes()
    q.close_counter(13, now + 700)
    kinds = [e.kind for e in q.take_changes().events]
    assert kinds == ["break_ended", "closed"] and not q.counters[13].on_break
    with pytest.raises(Refused, match="counter_closed"):
        q.start_break(13, "istirahat", now + 800)


def test_a_break_at_midnight_ends_with_the_day(site: Site, q: Queue) -> None:
    q.start_break(13, "istirahat", at(site, "2026-11-23 23:50"))
    q.take_changes()
    q.roll_day(at(site, "2026-11-24 00:00"))
    assert not q.counters[13].on_break
    assert "break_ended" in [e.kind for e in q.take_changes().events]


def test_with_no_counter_serving_there_is_no_estimate_and_a_return_time_gives_one(
    site: Site, q: Queue
) -> None:
    now = at(site, MON_9)
    for i in range(4):
        issue(q, "paspor", now + i)  # counters 19 and 20: both closed
    assert q.open_counters("paspor") == 0
    assert q.estimate("paspor", 4, now) is None
    state = service_state(q, "paspor", 1, now)
    assert state.est_wait_s is None and state.serving_counters == 0
    q.open_counter(19, "Rina", now)
    assert q.estimate("paspor", 4, now) == 4 * 15 * 60
    q.start_break(19, "lainnya", now)  # away, no return time: nobody serves it now
    assert q.estimate("paspor", 4, now) is None
    q.start_break(19, "istirahat", now, minutes=20)
    assert q.estimate("paspor", 4, now) == 20 * 60 + 4 * 15 * 60  # from her return
    state = service_state(q, "paspor", 2, now)
    assert (state.resumes_at, state.on_break, state.open_counters) == (now + 1200, 1, 1)


def test_counters_take_no_calls_during_the_friday_pause_and_kiosks_go_on_issuing(
    site: Site, q: Queue
) -> None:
    before = at(site, f"{FRI} 11:20")
    issue(q, "skck", before)
    issue(q, "skck", before + 1)
    q.call_next(13, before + 2)
    assert q.update_pauses(before + 3) is False
    q.take_changes()
    during = at(site, f"{FRI} 11:45")
    assert q.update_pauses(during) is True
    changes = q.take_changes()
    assert [(e.kind, e.detail) for e in changes.events] == [("pause_started", "jumat")]
    assert {13, 14} <= changes.counters and "skck" in changes.services
    ticket = issue(q, "skck", during)  # keep_issuing = true
    assert ticket.label == "H003"
    assert q.call_next(13, during) is None  # finishes the citizen being served, calls nobody
    with pytest.raises(Refused, match="paused") as refused:
        q.call_next(13, during + 60)
    assert "13:00" in refused.value.text["id"] and "sholat Jumat" in refused.value.text["id"]
    state = service_state(q, "skck", 5, during)
    assert state.open and state.pause is not None and state.pause.id == "jumat"
    assert state.pause.until == at(site, f"{FRI} 13:00")
    assert counter_state(q, 13, 5, during).pause.id == "jumat"
    assert [p.id for p in site_state(q, 5, during).pauses] == ["jumat"]
    after = at(site, f"{FRI} 13:00")
    q.take_changes()
    assert q.update_pauses(after) is True
    assert [e.kind for e in q.take_changes().events] == ["pause_ended"]
    assert q.call_next(13, after).label == "H002"
    assert counter_state(q, 13, 6, after).pause is None


def test_estimates_count_the_pause(site: Site, q: Queue) -> None:
    start = at(site, f"{FRI} 11:20")
    # 2 ahead x 10 min at one counter: 10 min before the pause, 10 after it ends at 13:00
    assert q.estimate("skck", 2, start) == 10 * 60 + 90 * 60 + 10 * 60
    during = at(site, f"{FRI} 12:00")
    assert q.estimate("skck", 0, during) == 60 * 60  # called when the pause ends
    assert q.estimate("skck", 1, at(site, MON_9)) == 600  # no pause on Mondays


def test_a_pause_that_stops_issuing_refuses_tickets_with_the_time_service_resumes() -> None:
    text = example_text().replace("keep_issuing = true ", 'keep_issuing = ["ktp"] ')
    site = make_site(text=text)
    q = Queue(site)
    during = at(site, f"{FRI} 12:00")
    assert issue(q, "ktp", during).label == "A001"
    with pytest.raises(Refused, match="paused") as refused:
        issue(q, "skck", during)
    assert refused.value.text["en"] == (
        "Friday prayer break: Police clearance certificate (SKCK) resumes at 13:00"
    )
    assert service_state(q, "skck", 1, during).open is False
    assert issue(q, "skck", at(site, f"{FRI} 13:00")).label == "H001"
