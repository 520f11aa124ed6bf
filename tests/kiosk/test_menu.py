"""The touch menu: layout at the device's resolution, unavailable services, PNG rendering."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime
from itertools import combinations
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from PIL import Image

from kiosk.menu import COLOURS, GAP, TouchMenu, menu_view, tile_at
from kiosk.notices import notice
from protocol.messages import PauseInfo, ServiceState, Text
from protocol.site import load_site, parse_site
from tests.conftest import EXAMPLE, ROOT, example_text

SITE = load_site(EXAMPLE)
SERVICES = tuple(SITE.services)  # kiosk-1 offers every service (touchscreen, no list)
PORTRAIT = (1080, 1920)


def state(code: str, *, open_: bool = True, quota: int = 50, waiting: int = 3) -> ServiceState:
    return ServiceState(
        seq=1, service=code, open=open_, waiting=waiting, est_wait_s=600, quota_left=quota
    )


STATES = {
    "ktp": state("ktp", waiting=12),
    "skck": state("skck", open_=False),
    "paspor": state("paspor", quota=0),
}


def test_every_service_fits_the_portrait_screen_on_one_page() -> None:
    view = menu_view(SITE, SERVICES, STATES, size=PORTRAIT, lang="id")
    services = [t for t in view.tiles if t.key in SITE.services]
    assert [t.key for t in services] == list(SERVICES) and view.pages == 1
    for tile in view.tiles:
        x, y, w, h = tile.rect
        assert x >= 0 and y >= view.header_height and x + w <= 1080 and y + h <= 1920
        assert h >= 80 and w >= 200  # large enough to read and to hit with a finger
    for a, b in combinations(view.tiles, 2):
        ax, ay, aw, ah = a.rect
        bx, by, bw, bh = b.rect
        assert ax + aw <= bx or bx + bw <= ax or ay + ah <= by or by + bh <= ay, (a.key, b.key)


def test_tiles_show_time_class_waiting_and_unavailable_services() -> None:
    view = menu_view(SITE, SERVICES, STATES, size=PORTRAIT, lang="id")
    ktp = view.tile("ktp")
    assert ktp.title == "Perekaman dan Cetak KTP-el"
    assert ktp.lines == ("Disdukcapil · Selesai maks. 3 jam", "Menunggu: 12 orang")
    assert ktp.enabled and ktp.badge is None
    assert view.tile("skck").badge == "TUTUP" and not view.tile("skck").enabled
    assert view.tile("paspor").badge == "KUOTA HABIS" and not view.tile("paspor").enabled
    assert view.tile("kk").enabled and view.tile("kk").lines == (
        "Disdukcapil · Selesai maks. 3 jam",
    )
    english = menu_view(SITE, SERVICES, STATES, size=PORTRAIT, lang="en")
    assert english.tile("skck").badge == "CLOSED"
    assert english.tile("tanah").lines == ("BPN · Done within 3 days",)


def test_tiles_say_when_no_counter_serves_a_service_and_when_a_pause_ends() -> None:
    until = datetime(2026, 11, 27, 13, 0, tzinfo=ZoneInfo("Asia/Makassar")).timestamp()
    pause = PauseInfo(id="jumat", name=Text(id="Istirahat sholat Jumat", en="Friday prayer"),
                      since=until - 5400, until=until)  # fmt: skip
    states = {
        "paspor": state("paspor").model_copy(update={"est_wait_s": None}),
        "ktp": state("ktp").model_copy(update={"pause": pause}),
        "skck": state("skck", open_=False).model_copy(update={"pause": pause}),
    }
    view = menu_view(SITE, SERVICES, states, size=PORTRAIT, lang="id")
    paspor = view.tile("paspor")
    assert paspor.enabled and paspor.lines[-1] == "Belum ada loket yang melayani saat ini"
    ktp = view.tile("ktp")  # keeps issuing during the pause
    assert ktp.enabled and ktp.lines[-1] == "Layanan dilanjutkan pukul 13:00"
    skck = view.tile("skck")
    assert not skck.enabled and skck.badge == "JEDA S.D. 13:00"
    english = menu_view(SITE, SERVICES, states, size=PORTRAIT, lang="en")
    assert english.tile("paspor").lines[-1] == "No counter serves this now"


def test_taps_on_unavailable_services_choose_nothing() -> None:
    view = menu_view(SITE, SERVICES, STATES, size=PORTRAIT)
    centre = lambda tile: (tile.rect[0] + tile.rect[2] // 2, tile.rect[1] + tile.rect[3] // 2)  # noqa: E731
    assert tile_at(view, centre(view.tile("ktp"))).key == "ktp"
    assert tile_at(view, centre(view.tile("skck"))) is None
    assert tile_at(view, centre(view.tile("paspor"))) is None
    assert tile_at(view, (5, 5)) is None  # the header
    busy = menu_view(SITE, SERVICES, STATES, size=PORTRAIT, notice=notice("printing"))
    assert tile_at(busy, centre(busy.tile("ktp"))) is None  # no choice under a notice


def test_small_landscape_screen_pages_the_services() -> None:
    view = menu_view(SITE, SERVICES, {}, size=(800, 480), lang="id")
    assert view.pages > 1
    assert view.tile("page:prev") is not None and not view.tile("page:prev").enabled
    seen = []
    for page in range(view.pages):
        seen += [
            t.key
            for t in menu_view(SITE, SERVICES, {}, size=(800, 480), page=page).tiles
            if t.key in SITE.services
        ]
    assert seen == list(SERVICES)  # every service reachable, none twice


@pytest.fixture
def touch_menu() -> Iterator[TouchMenu]:
    menu = TouchMenu(SITE, SERVICES, size=PORTRAIT, lang="id")
    yield menu
    menu.close()


def _inside(tile, inset: int = 8) -> tuple[int, int]:
    x, y, _, h = tile.rect
    return x + inset, y + h // 2


def test_menu_png_at_device_resolution(touch_menu: TouchMenu, tmp_path: Path) -> None:
    touch_menu.set_states(STATES)
    path = touch_menu.save_png(tmp_path / "menu.png")
    image = Image.open(path).convert("RGB")
    assert image.size == PORTRAIT
    view = touch_menu.view()
    assert image.getpixel(_inside(view.tile("ktp"))) == COLOURS["tile"]
    assert image.getpixel(_inside(view.tile("skck"))) == COLOURS["closed"]
    assert image.getpixel(_inside(view.tile("paspor"))) == COLOURS["closed"]
    assert image.getpixel((5, 5)) == COLOURS["header"]
    badge = view.tile("skck")
    x, y, w, h = badge.rect
    crop = image.crop((x + w // 2, y, x + w, y + h))
    assert COLOURS["badge"] in {colour for _, colour in crop.getcolors(1 << 16)}
    title = image.crop((x, y, x + w, y + 60))  # the title is drawn: dark pixels exist
    assert min(sum(colour) for _, colour in title.getcolors(1 << 16)) < 400


def test_taps_choose_services_and_priority(touch_menu: TouchMenu) -> None:
    chosen: list[str] = []
    priorities: list[str] = []
    touch_menu.on_choose(chosen.append)
    touch_menu.on_priority(priorities.append)
    touch_menu.set_states(STATES)
    view = touch_menu.view()
    centre = lambda tile: (tile.rect[0] + tile.rect[2] // 2, tile.rect[1] + tile.rect[3] // 2)  # noqa: E731
    touch_menu.tap(centre(view.tile("skck")))
    touch_menu.tap(centre(view.tile("kk")))
    touch_menu.tap(centre(view.tile("priority:elderly")))
    assert chosen == ["kk"] and priorities == ["elderly"]
    touch_menu.bind_priority(lambda: ("elderly", 12.5))
    view = touch_menu.view()
    assert [t.key for t in view.tiles if t.selected] == ["priority:elderly"]
    assert view.extra["priority_hint"] == "Lansia: sekarang pilih layanan (13 detik)"


def test_priority_row_explains_who_qualifies_on_one_line(tmp_path: Path) -> None:
    for lang, hint in (
        ("id", "Lansia, disabilitas, ibu hamil, anak: ketuk dulu, lalu pilih layanan"),
        ("en", "Elderly, disabled, pregnant, children: tap first, then the service"),
    ):
        for size in (PORTRAIT, (800, 480)):
            menu = TouchMenu(SITE, SERVICES, size=size, lang=lang)
            try:
                view = menu.view()
                assert view.extra["priority_hint"] == hint
                image = Image.open(menu.save_png(tmp_path / f"{lang}.png")).convert("RGB")
                assert menu.drawn["priority_hint"] == hint  # whole, on one line
                band = image.crop((0, view.extra["hint_y"], size[0], view.extra["priority_y"]))
                assert min(sum(c) for _, c in band.getcolors(1 << 16)) < 200  # dark text drawn
                row = min(t.rect[1] for t in view.tiles if t.key.startswith("priority:"))
                assert view.extra["hint_y"] + view.extra["hint_h"] <= row
                above = max(t.rect[1] + t.rect[3] for t in view.tiles if t.key in SITE.services)
                assert above <= view.extra["hint_y"]  # between the services and the row
            finally:
                menu.close()


def test_armed_priority_is_drawn_highlighted_and_a_lapsed_one_is_not(tmp_path: Path) -> None:
    armed: list[tuple[str, float] | None] = [("pregnant", 4.2)]
    menu = TouchMenu(SITE, SERVICES, size=PORTRAIT, lang="en")
    menu.bind_priority(lambda: armed[0])
    try:
        view = menu.view()
        tile = view.tile("priority:pregnant")
        image = Image.open(menu.save_png(tmp_path / "armed.png")).convert("RGB")
        assert image.getpixel(_inside(tile)) == COLOURS["selected"]
        assert image.getpixel((GAP + 4, view.extra["hint_y"] + 4)) == COLOURS["selected"]
        assert menu.drawn["priority_hint"] == "Pregnant woman: now choose your service (5 s)"
        armed[0] = None  # used by a ticket, or the window ended
        image = Image.open(menu.save_png(tmp_path / "lapsed.png")).convert("RGB")
        assert image.getpixel(_inside(tile)) == COLOURS["tile"]
        assert image.getpixel((GAP + 4, view.extra["hint_y"] + 4)) == COLOURS["background"]
    finally:
        menu.close()


def test_notice_covers_the_menu_then_expires(tmp_path: Path) -> None:
    clock = [100.0]
    menu = TouchMenu(SITE, SERVICES, size=PORTRAIT, notice_s=5.0, clock=lambda: clock[0])
    try:
        before = Image.open(menu.save_png(tmp_path / "a.png")).convert("RGB")
        menu.show(notice("printed", number="A012"))
        during = Image.open(menu.save_png(tmp_path / "b.png")).convert("RGB")
        ktp = menu.view().tile("ktp")
        assert sum(during.getpixel(_inside(ktp))) < sum(before.getpixel(_inside(ktp)))
        assert during.getpixel((PORTRAIT[0] // 2, PORTRAIT[1] // 4 + 4)) == COLOURS["ok"]
        clock[0] += 5.1
        assert menu.view().notice is None
        menu.show(notice("printed", number="A013"))
        assert menu.tap(_inside(ktp)) is None  # a tap closes the result, choosing nothing
        assert menu.view().notice is None
        menu.show(notice("printing"))
        assert menu.tap(_inside(ktp)) is None and menu.view().notice is not None  # must wait
        menu.show(None)
        menu.set_banner("Kertas tiket habis. Silakan hubungi petugas.")
        after = Image.open(menu.save_png(tmp_path / "c.png")).convert("RGB")
        assert after.getpixel((2, PORTRAIT[1] - 2)) == COLOURS["banner"]
    finally:
        menu.close()


def test_a_screen_that_cannot_open_is_a_clear_error() -> None:
    code = (
        "from protocol.site import load_site; from kiosk.menu import TouchMenu\n"
        "from kiosk.errors import KioskConfigError\n"
        "site = load_site('examples/banjarbaru.toml')\n"
        "try:\n    TouchMenu(site, ('ktp',), size=(1080, 1920))\n"
        "except KioskConfigError as exc:\n    print(exc)\n"
    )
    env = {**os.environ, "SDL_VIDEODRIVER": "no-such-driver"}
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    assert "screen (1080x1920) cannot be opened" in out.stdout


def test_a_citizen_chooses_english_for_one_visit(tmp_path: Path) -> None:
    clock = [100.0]
    menu = TouchMenu(SITE, SERVICES, size=PORTRAIT, lang="id", clock=lambda: clock[0])
    try:
        view = menu.view()
        switch = view.tile("lang:en")
        assert switch is not None and switch.title == "English"
        assert switch.rect[1] + switch.rect[3] <= view.header_height  # in the header
        assert menu.tap(_inside(switch)).key == "lang:en"
        english = menu.view()
        assert english.lang == "en" and english.tile("ktp").title.startswith("e-ID card")
        assert english.tile("lang:id").title == "Bahasa Indonesia"
        assert english.extra["priority_hint"].startswith("Elderly")
        menu.set_banner(notice("printer", "paper_out"))
        menu.save_png(tmp_path / "en.png")
        assert menu.view().banner == "Ticket paper has run out. Please ask the staff."
        menu.show(notice("printed", number="A012"))  # the ticket is out
        clock[0] += 6.5  # 'take your ticket' ends: the next citizen starts in Indonesian
        assert menu.view().lang == "id"
        menu.tap(_inside(menu.view().tile("lang:en")))
        clock[0] += 29.0
        assert menu.view().lang == "en"
        clock[0] += 2.0  # nobody has touched the screen for 30 s: back to the device's
        assert menu.view().lang == "id" and menu.view().banner.startswith("Kertas tiket habis")
    finally:
        menu.close()


def test_a_site_in_indonesian_only_offers_no_other_language() -> None:
    text = example_text().replace('languages = ["id", "en"]', 'languages = ["id"]', 1)
    site = parse_site(text, "id-only.toml")
    view = menu_view(site, tuple(site.services), {}, size=PORTRAIT, languages=("id",))
    assert not [t for t in view.tiles if t.key.startswith("lang:")]
