"""The character display's layout: Indonesian and English, 16x2 and 20x4."""

from __future__ import annotations

import pytest

from caller.screen import MESSAGES, Screen, Selection, View, message
from protocol import messages as m
from protocol.site import Site
from tests.conftest import make_site


@pytest.fixture(scope="module")
def site() -> Site:
    return make_site()


def state(**kw: object) -> m.CounterState:
    fields: dict[str, object] = {
        "seq": 7,
        "counter": 3,
        "open": True,
        "call_seq": 4,
        "ticket": "A012",
        "waiting": 5,
        "officer": "Siti",
    }
    fields.update(kw)
    return m.CounterState(**fields)  # type: ignore[arg-type]


def test_called_number_and_waiting_count(site: Site) -> None:
    screen = Screen(site, 3, "id", 16, 2)
    assert screen.lines(View(state(), connected=True)) == ["A012 -> Loket 3", "Menunggu: 5"]
    english = Screen(site, 3, "en", 16, 2)
    assert english.lines(View(state(), connected=True)) == ["A012->Counter 3", "Waiting: 5"]
    assert Screen(site, 3, "en", 20, 2).lines(View(state(), True))[0] == "A012 -> Counter 3"


def test_open_closed_unknown_and_offline(site: Site) -> None:
    screen = Screen(site, 3, "id", 16, 2)
    assert screen.lines(View(state(ticket=None), True))[0] == "Loket 3 - Buka"
    assert screen.lines(View(state(ticket=None, open=False), True))[0] == "Loket 3 - Tutup"
    assert screen.lines(View(None, True)) == ["Loket 3", "Memuat data..."]
    assert screen.lines(View(state(), False)) == ["A012 -> Loket 3", "Tidak terhubung"]
    english = Screen(site, 3, "en", 16, 2)
    assert english.lines(View(state(ticket=None, open=False), True))[0] == "Counter 3 closed"
    assert english.lines(View(state(ticket=None), True))[0] == "Counter 3 - Open"


def test_feedback_replaces_the_second_line_on_two_rows(site: Site) -> None:
    screen = Screen(site, 3, "id", 16, 2)
    lines = screen.lines(View(state(), True, flash=message("queue_empty")))
    assert lines == ["A012 -> Loket 3", "Antrian kosong"]


def test_four_rows_show_waiting_by_service_and_the_officer(site: Site) -> None:
    screen = Screen(site, 1, "id", 20, 4)
    view = View(state(counter=1), True, waiting_by_prefix=(("A", 3), ("B", 2)))
    assert screen.lines(view) == ["A012 -> Loket 1", "Menunggu: 5", "A:3 B:2", "Petugas: Siti"]
    flashed = screen.lines(View(state(counter=1), True, flash="Terima kasih!"))
    assert flashed[3] == "Terima kasih!"


def test_transfer_choice_shows_position_and_target(site: Site) -> None:
    choice = Selection("transfer", ("akta", "pindah"), 0, until=99.0)
    screen = Screen(site, 1, "id", 16, 2)
    assert screen.lines(View(state(), True, selection=choice)) == [
        "C Akta Kelah 1/2",
        "NEXT=ya lain=tdk",  # how to confirm or cancel, also on two rows
    ]
    assert Screen(site, 1, "en", 16, 2).lines(View(state(), True, selection=choice)) == [
        "C Birth and  1/2",
        "NEXT=yes else=no",
    ]
    assert Screen(site, 1, "id", 20, 2).lines(View(state(), True, selection=choice))[1] == (
        "NEXT=ya lain=batal"
    )
    big = Screen(site, 1, "en", 20, 4)
    assert big.lines(View(state(), True, selection=choice.advanced(99.0))) == [
        "Transfer to 2/2",
        "D Moving in/out lett",
        "NEXT = yes",
        "Other = cancel",
    ]
    assert choice.advanced(1).advanced(2).chosen == "akta"  # wraps round


def test_call_back_choice(site: Site) -> None:
    choice = Selection("skip", ("A007", "A009"), 1, until=5.0)
    lines = Screen(site, 3, "id", 16, 2).lines(View(state(ticket=None), True, selection=choice))
    assert lines == ["Panggil A009 2/2", "NEXT=ya lain=tdk"]
    four = Screen(site, 3, "id", 20, 4).lines(View(state(ticket=None), True, selection=choice))
    assert four == ["Panggil lagi 2/2", "A009", "NEXT = ya", "Lain = batal"]


def test_a_priority_ticket_is_marked(site: Site) -> None:
    assert Screen(site, 3, "id", 16, 2).lines(View(state(priority=True), True)) == [
        "A012 Prioritas",
        "Menunggu: 5",
    ]
    assert Screen(site, 3, "en", 16, 2).lines(View(state(priority=True), True))[0] == (
        "A012 Priority"
    )
    wide = Screen(site, 3, "id", 40, 2).lines(View(state(priority=True), True))
    assert wide[0] == "A012 -> Loket 3 Prioritas"


def test_every_message_fits_sixteen_columns_in_both_languages() -> None:
    for key in MESSAGES:
        for lang in ("id", "en"):
            assert len(message(key, lang, ticket="AB123")) <= 16, (key, lang)


def test_unknown_code_is_named() -> None:
    assert message("quota_reached") == "Gagal: quota_reached"
    assert message("internal", "en") == "Failed: internal"


def test_a_break_and_a_pause_show_with_the_return_time(site: Site) -> None:
    back = 1795420862.0 + 1800  # hub clock; shown in the site's time zone
    at = site.local_now(back).strftime("%H:%M")
    away = state(ticket=None, on_break=m.BreakInfo(reason="istirahat", since=1795420862.0))
    assert Screen(site, 3, "id", 16, 2).lines(View(away, True)) == ["Istirahat", "NEXT = kembali"]
    assert Screen(site, 3, "id", 20, 2).lines(View(away, True))[0] == "Loket 3 - Istirahat"
    timed = away.model_copy(update={"on_break": away.on_break.model_copy(update={"until": back})})
    assert Screen(site, 3, "en", 16, 2).lines(View(timed, True)) == [
        "Counter 3: Break",
        f"Back at {at}",
    ]
    pause = m.PauseInfo(
        id="jumat",
        name=m.Text(id="Istirahat sholat Jumat", en="Friday prayer"),
        since=0,
        until=back,
    )
    paused = state(ticket=None, pause=pause)
    assert Screen(site, 3, "id", 16, 2).lines(View(paused, True)) == [
        "Loket 3 - Jeda",
        f"Kembali {at}",
    ]
    serving = state(pause=pause)  # the citizen being served when the pause began
    assert Screen(site, 3, "id", 16, 2).lines(View(serving, True))[0] == "A012 -> Loket 3"


def test_open_close_on_an_open_counter_offers_closing_or_a_break(site: Site) -> None:
    screen = Screen(site, 3, "id", 16, 4)
    options = ("close", "istirahat", "sholat", "rapat", "lainnya")
    lines = screen.lines(View(state(), True, selection=Selection("open_close", options, 3, 9.0)))
    assert lines == ["Pilih 4/5", "Rapat", "NEXT = ya", "Lain = batal"]
