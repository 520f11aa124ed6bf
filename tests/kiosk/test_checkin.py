"""Booking check-in at the kiosk: the USB scanner's key events read into a code (a virtual
uinput device where the kernel allows one, else the same decoder fed the key events), the
code typed on the touch pad, the ticket printed with 'RESERVASI', a repeat scan printing the
same ticket, and every refusal told on screen with nothing printed."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import evdev
import pytest
from escpos.printer import Dummy

from hub.service import HubService
from kiosk.menu import TouchMenu
from kiosk.scanner import KeyDecoder, Scanner, parse_scan
from protocol import messages as m
from protocol.site import Site
from tests.hub.test_bookings import Clock, Region, booked
from tests.kiosk.conftest import dummy_printer
from tests.region.sites import clear_retained_uplink, region_site
from tests.timing import wait_until

URL = "https://antrian.kalselprov.go.id/r/{site}/K7P3M9QX"
MONDAY_0750 = datetime.fromisoformat("2026-12-07T07:50:00+08:00").timestamp()


def key_events(text: str) -> list[tuple[int, int]]:
    """What a keyboard-mode scanner sends for `text` + Enter (US layout, Shift for capitals
    and ':' '?'), from evdev's own key names."""
    e = evdev.ecodes
    names = {"/": "SLASH", ":": "SEMICOLON", ".": "DOT", "-": "MINUS", "_": "MINUS", "?": "SLASH"}
    out: list[tuple[int, int]] = []
    for char in text:
        shifted = char.isupper() or char in ":_?"
        name = names.get(char) or char.upper()
        code = e.ecodes[f"KEY_{name}"]
        if shifted:
            out.append((e.KEY_LEFTSHIFT, 1))
        out += [(code, 1), (code, 0)]
        if shifted:
            out.append((e.KEY_LEFTSHIFT, 0))
    return [*out, (e.KEY_ENTER, 1), (e.KEY_ENTER, 0)]


def test_the_decoder_reads_a_scanned_url_and_the_booking_in_it():
    decoder = KeyDecoder()
    lines = [decoder.feed(code, value) for code, value in key_events(URL.format(site="mpp-bjb"))]
    line = next(x for x in lines if x is not None)
    assert line == "https://antrian.kalselprov.go.id/r/mpp-bjb/K7P3M9QX"
    assert parse_scan(line) == ("mpp-bjb", "K7P3M9QX")
    assert parse_scan(" k7p3-m9qx ") == (None, "K7P3M9QX")  # typed, any case, with a dash
    for noise in ("", "hello", "K7P3M9Q", "K7P3M9Q0", "https://x/r/mpp/K7P3M9Q"):
        assert parse_scan(noise) is None


@pytest.mark.skipif(
    not os.access("/dev/uinput", os.W_OK), reason="no /dev/uinput here (the decoder test covers)"
)
def test_a_virtual_scanner_device_is_read_with_evdev():
    from evdev import UInput

    seen: list[str] = []
    with UInput(name="mpp-test-scanner") as device:
        scanner = Scanner(device.device.path, seen.append, retry_s=0.2).start()
        try:
            wait_until(lambda: scanner._device is not None, 5)
            for code, value in key_events("K7P3M9QX"):
                device.write(evdev.ecodes.EV_KEY, code, value)
                device.syn()
            assert wait_until(lambda: seen == ["K7P3M9QX"], 5)
        finally:
            scanner.stop()


@pytest.fixture
def site(broker, tmp_path: Path) -> Site:
    """The example site with a [region] (bookings come down from it)."""
    return region_site(broker.port, tmp_path / "hub.sqlite", f"ck-{tmp_path.name[-12:]}")


@pytest.fixture
def clock() -> Clock:
    return Clock(MONDAY_0750)


@pytest.fixture
def hub(site: Site, clock: Clock) -> Iterator[HubService]:
    service = HubService(site, clock=clock, clock_synced=lambda: True, first_start=True).start()
    region = Region(site)
    region.send(
        site, 0, [booked("K7P3M9QX"), booked("CCCC4444"), booked("DDDD5555", day="2026-12-08")]
    )
    region.send(site, 3, [m.BookingCancelled(code="CCCC4444")])
    region.bus.stop()
    yield service
    service.stop()
    clear_retained_uplink(site)


def printed_text(raw: Dummy) -> str:
    return raw.output.decode("cp437", "replace")


def test_a_scan_prints_an_ordinary_ticket_marked_reservasi_and_again_the_same(
    hub, make_kiosk, site
):
    raw = Dummy(profile="default")
    kiosk = make_kiosk("kiosk-3", printer=dummy_printer(site, "kiosk-3", raw))
    decoder = KeyDecoder()
    line = next(
        x for x in (decoder.feed(c, v) for c, v in key_events(URL.format(site=site.site.id))) if x
    )
    assert kiosk.check_in(line) == "accept"
    assert kiosk.wait_idle(10)
    assert [t.number for t in kiosk.printed] == ["A001"]
    first = printed_text(raw)
    assert "RESERVASI" in first and "K7P3M9QX" in first and "A001" in first
    assert kiosk.notices[-1].kind == "printed"
    # The same code again (typed this time): the same ticket, printed again, never a second.
    assert kiosk.check_in("k7p3m9qx") == "accept"
    assert kiosk.wait_idle(10)
    assert [t.number for t in kiosk.printed] == ["A001", "A001"]
    assert kiosk.printed[1].reprint and kiosk.printed[1].token == kiosk.printed[0].token
    assert wait_until(lambda: len(hub.queue.tickets) == 1, 2)


REFUSED = [  # (scanned or typed, the code the citizen is told, words of the text)
    ("ZZZZ9999", "unknown_booking", "tidak ditemukan"),
    ("CCCC4444", "booking_cancelled", "dibatalkan"),
    ("DDDD5555", "wrong_day", "bukan hari ini"),
    (URL.format(site="mpp-lain"), "other_site", "MPP lain"),
    ("not a code", None, "tidak dikenali"),
]


def test_a_refused_code_is_told_on_screen_and_nothing_prints(hub, make_kiosk, site):
    raw = Dummy(profile="default")
    kiosk = make_kiosk("kiosk-3", printer=dummy_printer(site, "kiosk-3", raw))
    for scan, code, words in REFUSED:
        kiosk.check_in(scan)
        assert kiosk.wait_idle(10)
        told = kiosk.notices[-1]
        assert told.kind == "refused" and words in told.get("id") and told.get("en"), scan
        assert code is None or told.code == code, (scan, told)
    assert kiosk.printed == [] and raw.output == b""
    assert hub.queue.tickets == {}


def test_the_touch_pad_types_a_code_and_checks_it_in(hub, make_kiosk, site):
    menu = TouchMenu(site, tuple(site.services), size=(1080, 1920), lang="id")
    kiosk = make_kiosk("kiosk-1", menu=menu, printer=dummy_printer(site, "kiosk-1"))
    view = menu.view()
    button = view.tile("checkin")
    assert button is not None and button.title == "Reservasi (check-in)"
    menu.tap(center(button))
    for char in "K7P3M9QX":
        menu.tap(center(menu.view().tile(f"pad:{char}")))
    assert not menu.view().tile("pad:A").enabled  # eight typed: no more
    menu.render()
    assert menu.drawn["pad"] == "K 7 P 3 M 9 Q X"
    menu.tap(center(menu.view().tile("pad:ok")))
    assert kiosk.wait_idle(10)
    assert [t.booking for t in kiosk.printed] == ["K7P3M9QX"]
    assert menu.view().tile("checkin") is not None  # back to the menu


def center(tile) -> tuple[int, int]:
    x, y, w, h = tile.rect
    return x + w // 2, y + h // 2
