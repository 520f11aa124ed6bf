"""The screen's model: which state is newer, which call is new and must be spoken."""

from __future__ import annotations

import json

import pytest

from display.state import ScreenModel
from protocol import messages as m
from protocol.errors import BadMessage
from protocol.topics import Topics
from tests.conftest import make_site

site = make_site()
topics = Topics(site.site.id)
NOW = 1_795_420_800.0  # 2026-11-23 15:20 WITA


def counter(seq: int, call_seq: int, ticket: str | None = "A012", called_at: float = NOW,
            number: int = 3, **kw) -> m.CounterState:  # fmt: skip
    return m.CounterState(
        seq=seq,
        counter=number,
        open=True,
        call_seq=call_seq,
        ticket=ticket,
        service="ktp" if ticket else None,
        called_at=called_at if ticket else None,
        waiting=2,
        **kw,
    )


def test_a_fresh_call_is_new_once() -> None:
    model = ScreenModel(site)
    update = model.apply(counter(10, 1), NOW + 0.2)
    assert [c.ticket for c in update.new_calls] == ["A012"]
    assert update.new_calls[0].key == (3, 1)
    # The same state again (a replay, a QoS 1 redelivery): not applied, nothing new.
    again = model.apply(counter(10, 1), NOW + 1)
    assert not again.applied and not again.new_calls
    # A newer state of the same call (waiting count changed): shown, not spoken.
    newer = model.apply(counter(11, 1).model_copy(update={"waiting": 5}), NOW + 2)
    assert newer.applied and not newer.new_calls and model.counters[3].waiting == 5


def test_a_recall_is_spoken_again_and_an_older_seq_is_ignored() -> None:
    model = ScreenModel(site)
    model.apply(counter(10, 1), NOW)
    recall = model.apply(counter(12, 2, called_at=NOW + 20), NOW + 20)
    assert [c.key for c in recall.new_calls] == [(3, 2)]
    late = model.apply(counter(11, 3, ticket="A013", called_at=NOW + 21), NOW + 21)
    assert not late.applied and "seq 11 <= 12" in late.note
    assert model.counters[3].ticket == "A012"


def test_old_retained_call_is_shown_but_not_spoken_after_boot() -> None:
    model = ScreenModel(site, max_age_s=30)
    update = model.apply(counter(10, 4, called_at=NOW - 31), NOW)
    assert update.applied and not update.new_calls and "not spoken" in update.note
    assert model.shown_ticket(3, NOW) == "A012"
    assert model.newest(NOW).ticket == "A012"  # type: ignore[union-attr]
    # ... whereas a call 29 s old that reaches a new screen live (not retained) is announced.
    fresh = ScreenModel(site, max_age_s=30).apply(counter(10, 4, called_at=NOW - 29), NOW)
    assert len(fresh.new_calls) == 1


def test_a_retained_call_found_at_start_is_shown_but_never_spoken() -> None:
    # A display restarted a second after a call gets that call as the retained state.
    model = ScreenModel(site, max_age_s=30)
    update = model.apply(counter(10, 4, called_at=NOW - 1), NOW, retained=True)
    assert update.applied and not update.new_calls and "before this screen started" in update.note
    assert model.shown_ticket(3, NOW) == "A012" and model.newest(NOW).ticket == "A012"  # type: ignore[union-attr]
    # A call it missed while disconnected from the broker (a counter it knew) is spoken.
    missed = model.apply(counter(12, 5, "A013", called_at=NOW + 5), NOW + 6, retained=True)
    assert [c.key for c in missed.new_calls] == [(3, 5)]


def test_max_age_is_configurable() -> None:
    model = ScreenModel(site, max_age_s=5)
    assert not model.apply(counter(10, 1, called_at=NOW - 6), NOW).new_calls
    assert model.apply(counter(11, 2, called_at=NOW - 4), NOW).new_calls


def test_idle_counter_and_call_sequence_reset() -> None:
    model = ScreenModel(site)
    model.apply(counter(10, 7), NOW)
    idle = model.apply(counter(11, 7, ticket=None), NOW + 1)
    assert idle.applied and not idle.new_calls and model.shown_ticket(3, NOW) is None
    # The hub's database was replaced: call_seq starts again, in a newer state.
    reset = model.apply(counter(12, 1, ticket="A001", called_at=NOW + 2), NOW + 2)
    assert [c.ticket for c in reset.new_calls] == ["A001"]


def test_counters_not_followed_are_kept_but_not_announced() -> None:
    model = ScreenModel(site, counters=[1, 2])
    update = model.apply(counter(10, 1), NOW)
    assert update.applied and not update.new_calls and model.recent(NOW) == ()
    assert model.apply(counter(11, 1, number=2), NOW).new_calls


def test_recent_calls_newest_first_one_per_ticket() -> None:
    model = ScreenModel(site, recent_limit=3)
    for i, number in enumerate((1, 2, 3, 4)):
        model.apply(counter(10 + i, 1, f"A00{i + 1}", NOW + i, number), NOW + i)
    assert [c.ticket for c in model.recent(NOW + 5)] == ["A004", "A003", "A002"]
    model.apply(counter(20, 2, "A002", NOW + 9, 2), NOW + 9)  # recall of A002
    assert [c.ticket for c in model.recent(NOW + 9)] == ["A002", "A004", "A003"]


def test_a_live_call_is_the_newest_even_if_the_hubs_clock_stepped_back() -> None:
    model = ScreenModel(site, recent_limit=3)
    model.apply(counter(10, 1, "A001", NOW, 1), NOW)
    model.apply(counter(11, 1, "A002", NOW + 60, 2), NOW + 60)
    stepped = counter(12, 1, "A003", NOW - 600, 3)  # the hub's clock went back 11 minutes
    model.apply(stepped, NOW + 61)
    assert [c.ticket for c in model.recent(NOW + 61)] == ["A003", "A002", "A001"]
    assert model.newest(NOW + 61).ticket == "A003"


def test_site_summary_adds_recent_calls_and_learns_the_hub_clock() -> None:
    model = ScreenModel(site)
    day = site.business_day(NOW)
    calls = (
        m.CallInfo(ticket="B004", service="kk", counter=4, call_seq=3, called_at=NOW - 50),
        m.CallInfo(ticket="A002", service="ktp", counter=1, call_seq=2, called_at=NOW - 90),
    )
    summary = m.SiteState(seq=5, day=day, now=NOW + 3, config_version="x", issued=9, served=2,
                          waiting=5, recent_calls=calls)  # fmt: skip
    assert model.apply(summary, NOW, retained=False).applied
    assert model.clock_offset == 3
    assert [c.ticket for c in model.recent(NOW)] == ["B004", "A002"]
    # Yesterday's retained summary shows no calls today.
    stale = ScreenModel(site)
    old = summary.model_copy(update={"day": "2026-11-22", "now": NOW - 86400})
    stale.apply(old, NOW, retained=True)
    assert stale.recent(NOW) == () and stale.clock_offset == 0
    # Calls made yesterday do not show on a counter tile today.
    model.apply(counter(30, 9, called_at=NOW - 86400), NOW)
    assert model.shown_ticket(3, NOW) is None


def test_service_states_by_seq() -> None:
    model = ScreenModel(site)
    state = m.ServiceState(seq=4, service="ktp", open=True, waiting=3, est_wait_s=60, quota_left=9)
    assert model.apply(state, NOW).applied
    assert not model.apply(state.model_copy(update={"waiting": 99}), NOW).applied
    assert model.services["ktp"].waiting == 3


@pytest.mark.parametrize(
    ("topic", "payload", "code"),
    [
        (topics.counter_state(3), b"not json", "bad_json"),
        (topics.counter_state(3), b"[1, 2]", "bad_json"),
        (topics.counter_state(3), b"", "bad_json"),
        (topics.counter_state(3), json.dumps({"v": 2, "seq": 1}).encode(), "unsupported_version"),
        (topics.counter_state(3), json.dumps({"v": 1, "seq": "x"}).encode(), "invalid"),
        (topics.counter_state(4), m.encode(counter(1, 1)), "invalid"),  # topic says 4
        (topics.counter_state(99), m.encode(counter(1, 1, number=99)), "unknown_counter"),
        (topics.service_state("ktp"), m.encode(m.ServiceState(
            seq=1, service="kk", open=True, waiting=0, est_wait_s=0, quota_left=1)), "invalid"),
        (topics.service_state("zzz"), m.encode(m.ServiceState(
            seq=1, service="zzz", open=True, waiting=0, est_wait_s=0, quota_left=1)),
         "unknown_service"),
        (topics.status("tv-lobby-1"), b"{}", "invalid"),
        ("mpp/v1/other-site/site/state", b"{}", "invalid"),
        (topics.counter_state(3), b"{" * 20000, "too_large"),
    ],
)  # fmt: skip
def test_malformed_state_is_refused_with_a_specific_code(topic: str, payload: bytes,
                                                         code: str) -> None:  # fmt: skip
    model = ScreenModel(site)
    with pytest.raises(BadMessage) as error:
        model.parse(topic, payload)
    assert error.value.code == code
    assert model.counters == {} and model.services == {}


def test_parse_accepts_what_the_hub_sends() -> None:
    model = ScreenModel(site)
    state = model.parse(topics.counter_state(3), m.encode(counter(1, 1)))
    assert isinstance(state, m.CounterState) and state.ticket == "A012"


def featured(seq: int, *captions: str, zone: str = "entrance") -> m.FeaturedState:
    return m.FeaturedState(
        seq=seq,
        zone=zone,
        slides=tuple(
            m.FeaturedSlide(
                order=i,
                caption=m.SlideCaption(id=text),
                image_url=f"http://127.0.0.1:8080/media/featured/{i:064x}.png",
                image_sha256=f"{i:064x}",
            )
            for i, text in enumerate(captions)
        ),
    )


def test_featured_products_by_seq_a_republish_is_taken() -> None:
    model = ScreenModel(site)
    parsed = model.parse(topics.featured("entrance"), m.encode(featured(5, "Amplang")))
    assert model.apply(parsed, NOW).applied
    assert model.apply(featured(5, "Amplang", "Sasirangan"), NOW).applied  # same seq: a republish
    older = model.apply(featured(4), NOW)
    assert not older.applied and older.note == "seq 4 < 5"
    assert [s.caption.id for s in model.featured["entrance"].slides] == ["Amplang", "Sasirangan"]


@pytest.mark.parametrize(
    ("topic", "payload", "code"),
    [
        (topics.featured("entrance"), m.encode(featured(1, zone="lobby")), "invalid"),
        (topics.featured("nowhere"), m.encode(featured(1, zone="nowhere")), "invalid"),
        (topics.featured("entrance"), b"", "bad_json"),
        (topics.featured("entrance"), json.dumps({"v": 1, "seq": 1, "zone": "entrance",
                                                   "slides": [{"order": 0}]}).encode(), "invalid"),
    ],
)  # fmt: skip
def test_malformed_featured_products_are_refused(topic: str, payload: bytes, code: str) -> None:
    model = ScreenModel(site)
    with pytest.raises(BadMessage) as error:
        model.parse(topic, payload)
    assert error.value.code == code and model.featured == {}
