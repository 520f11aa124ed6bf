"""Service-level alert conditions and the book that raises each once, on an injected clock."""

from __future__ import annotations

import re

from hub.alerts import AlertBook, alert_id, conditions
from hub.rules import Queue
from protocol.messages import CONDITION_ALERTS
from tests.conftest import example_text, make_site
from tests.hub.test_rules import at, issue

MON = "2026-11-23"


def _kinds(q: Queue, now: float) -> set[tuple[str, str | None, int | None]]:
    return {c.key for c in conditions(q, now)}


def test_no_counter_open_holds_while_citizens_wait_and_a_counter_opening_ends_it() -> None:
    q = Queue(make_site())
    now = at(q.site, f"{MON} 09:00")
    assert _kinds(q, now) == set()
    issue(q, "paspor", now)
    found = conditions(q, now)
    assert [c.key for c in found] == [("no_counter", "paspor", None)]
    assert found[0].text["id"] == "Paspor RI: 1 warga menunggu, tidak ada loket yang buka"
    q.open_counter(19, "Rina", now + 5)
    assert _kinds(q, now + 5) == set()


def test_a_wait_beyond_the_target_holds_until_that_citizen_is_called() -> None:
    q = Queue(make_site())
    now = at(q.site, f"{MON} 08:00")
    q.open_counter(13, "Budi", now)
    issue(q, "skck", now)
    q.call_next(13, now + 1)  # busy with the first citizen for a long time
    issue(q, "skck", now + 60)
    assert _kinds(q, now + 60 + 30 * 60) == set()  # exactly the target: not beyond it
    late = now + 60 + 30 * 60 + 1
    found = conditions(q, late)
    assert [c.key for c in found] == [("long_wait", "skck", None)]
    assert "lebih dari 30 menit" in found[0].text["id"]
    q.call_next(13, late + 10)
    assert _kinds(q, late + 10) == set()


def test_a_service_may_set_its_own_waiting_target() -> None:
    text = example_text().replace('prefix = "H"\n', 'prefix = "H"\nwait_target_minutes = 5\n', 1)
    q = Queue(make_site(text=text))
    now = at(q.site, f"{MON} 08:00")
    q.open_counter(13, "Budi", now)
    issue(q, "skck", now)
    q.call_next(13, now)
    issue(q, "skck", now)
    assert ("long_wait", "skck", None) in _kinds(q, now + 5 * 60 + 1)


def test_an_idle_open_counter_with_its_queue_waiting_holds_and_not_on_a_break() -> None:
    q = Queue(make_site())
    now = at(q.site, f"{MON} 09:00")
    q.open_counter(13, "Budi", now)
    issue(q, "skck", now + 60)
    assert _kinds(q, now + 60 + 10 * 60) == set()  # idle since 09:00, waiting since 09:01
    found = conditions(q, now + 60 + 10 * 60 + 1)
    assert [c.key for c in found] == [("idle_counter", None, 13)]
    assert found[0].text["id"].startswith("Loket 13 (Budi) buka tanpa memanggil")
    q.start_break(13, "sholat", now + 700)  # on a break: not idle
    idle = ("idle_counter", None, 13)
    assert idle not in _kinds(q, now + 2000)
    q.end_break(13, now + 2000)  # back: idle again from its return
    assert idle not in _kinds(q, now + 2000 + 10 * 60)
    assert idle in _kinds(q, now + 2000 + 10 * 60 + 1)
    q.call_next(13, now + 3000)
    assert idle not in _kinds(q, now + 3000)


def test_quota_nearly_used_raises_only_before_noon_but_holds_after() -> None:
    q = Queue(make_site())
    morning = at(q.site, f"{MON} 10:00")
    q.set_limits("skck", 10, None, morning)
    for i in range(8):
        issue(q, "skck", morning + i)
    assert not any(c.kind == "quota_nearly_used" for c in conditions(q, morning + 10))
    issue(q, "skck", morning + 11)  # 9 of 10 = 90 %
    (found,) = [c for c in conditions(q, morning + 12) if c.kind == "quota_nearly_used"]
    assert found.may_raise and found.text["en"].startswith("Police clearance certificate (SKCK):")
    assert "90%" in found.text["id"] and "sebelum pukul 12:00" in found.text["id"]
    noon = at(q.site, f"{MON} 12:00")
    (after,) = [c for c in conditions(q, noon) if c.kind == "quota_nearly_used"]
    assert not after.may_raise  # reached after noon: no alert, an open one stays


def test_the_book_raises_each_condition_once_and_clears_it_when_it_ends() -> None:
    q = Queue(make_site())
    now = at(q.site, f"{MON} 09:00")
    book = AlertBook()
    issue(q, "paspor", now)
    raised, cleared = book.update(conditions(q, now), now)
    assert [c.kind for _, c in raised] == ["no_counter"] and cleared == []
    first_id = raised[0][0]
    for later in (now + 5, now + 60):
        assert book.update(conditions(q, later), later) == ([], [])  # raised once
    q.open_counter(19, "Rina", now + 70)
    assert book.update(conditions(q, now + 70), now + 70) == ([], [first_id])
    q.close_counter(19, now + 80)  # the condition again: a new alert
    raised, _ = book.update(conditions(q, now + 80), now + 80)
    assert len(raised) == 1 and raised[0][0] != first_id


def test_a_condition_that_may_not_raise_keeps_an_open_alert_only() -> None:
    q = Queue(make_site())
    noon = at(q.site, f"{MON} 12:30")
    q.set_limits("skck", 10, None, noon)
    for i in range(9):
        issue(q, "skck", noon + i)
    q.open_counter(13, "Budi", noon)
    book = AlertBook()
    assert book.update(conditions(q, noon + 10), noon + 10) == ([], [])
    book = AlertBook({("quota_nearly_used", "skck", None): "quota-1-abc"})
    assert book.update(conditions(q, noon + 10), noon + 10) == ([], [])  # kept, not cleared


def test_alert_ids_fit_the_protocol_for_any_subject() -> None:
    for kind in CONDITION_ALERTS:
        for subject in ("ktp", "x" * 40, "counter-999", "Sangat panjang nama layanan"):
            made = alert_id(kind, subject, 1795420862.5)
            assert re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,39}", made), made


def test_the_friday_pause_is_not_counted_as_waiting_or_idle_time() -> None:
    q = Queue(make_site())
    fri = "2026-11-27"
    start = at(q.site, f"{fri} 11:20")
    q.open_counter(13, "Budi", start)
    issue(q, "skck", start)
    issue(q, "skck", start)
    q.call_next(13, start)  # busy with the first; the second waits from 11:20
    q.finish(13, at(q.site, f"{fri} 11:29"))  # idle from 11:29; then the pause at 11:30
    after = at(q.site, f"{fri} 13:05")  # 15 min of waiting and 6 of idleness, net of it
    assert _kinds(q, after) == set()
    late = at(q.site, f"{fri} 13:16")  # 26 min of waiting net; idle 11 + 1 min > 10 min
    assert _kinds(q, late) == {("idle_counter", None, 13)}
    assert ("long_wait", "skck", None) in _kinds(q, at(q.site, f"{fri} 13:21"))
