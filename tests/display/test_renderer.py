"""Screens drawn by pygame on SDL's dummy driver, saved as PNG and checked pixel by pixel."""

from __future__ import annotations

import logging
import re
import time
from pathlib import Path

import pytest

from display.chime import write_chime
from display.layout import CANTEEN_GLYPH, Box
from display.renderer import (
    BACKGROUNDS,
    INK_ON_HIGHLIGHT,
    STYLES,
    TEXT_CACHE_BYTES,
    YELLOW,
    MixerPlayer,
)
from display.scene import SceneBuilder
from display.state import ScreenModel
from protocol import messages as m
from tests.conftest import example_text, make_site
from tests.display.conftest import EXAMPLES, builder, busy_model, png_pixels

site = make_site()
SIZES = [(1920, 1080), (1366, 768)]
NOW = 1_795_420_800.0  # a whole minute: pages and ticker are at their first item


def ink_box(image, box: Box, color: tuple[int, int, int]) -> Box | None:
    """Bounding box of the pixels of exactly `color` inside `box` of a PNG image."""
    xs, ys = [], []
    pixels = image.load()
    for y in range(box.y, box.bottom):
        for x in range(box.x, box.right):
            if pixels[x, y] == color:
                xs.append(x)
                ys.append(y)
    if not xs:
        return None
    return Box(min(xs), min(ys), max(xs) - min(xs) + 1, max(ys) - min(ys) + 1)


def assert_texts_fit(renderer) -> int:
    count = 0
    for drawn in renderer.drawn.values():
        for text in drawn:
            assert text.box.contains(text.ink), text
            count += 1
    return count


@pytest.mark.parametrize("size", SIZES)
def test_lobby_png(open_renderer, tmp_path: Path, size: tuple[int, int]) -> None:
    renderer = open_renderer(site, "lobby", size)
    model = busy_model(site, NOW)
    renderer.render(builder(site, "lobby", renderer).build(model, NOW, {}, offline=False))
    png = renderer.save_png(tmp_path / f"lobby-{size[0]}.png")
    image = png_pixels(png)
    assert image.size == size
    assert assert_texts_fit(renderer) > 60
    layout = renderer.layout
    call = layout["call"]
    ticket_box = call.part("ticket").box
    assert renderer.drawn["call"][1].text == "X090"  # counter 30 called last
    # The called number's yellow pixels are in the ticket box of the call panel, filling it.
    ink = ink_box(image, call.box, YELLOW)
    assert ink is not None and ticket_box.contains(ink)
    assert ink.h > 0.6 * ticket_box.h or ink.w > 0.9 * ticket_box.w  # as big as it fits
    # Counter 30's tile shows its ticket in yellow, in its own ticket box.
    tile = layout["counter-29"]
    tile_ink = ink_box(image, tile.box, YELLOW)
    assert tile_ink is not None and tile.part("ticket").box.contains(tile_ink)
    # A closed counter (7) shows 'Tutup', no yellow number.
    closed = layout["counter-6"]
    assert renderer.drawn["counter-6"][1].text == "Tutup"
    assert ink_box(image, closed.box, YELLOW) is None
    assert (
        image.getpixel((closed.box.x + closed.box.w // 2, closed.box.y + 2))
        == BACKGROUNDS["tile-closed"]
    )
    texts = {t.text for d in renderer.drawn.values() for t in d}
    assert {"Mal Pelayanan Publik Kota Banjarbaru", "Ruang Tunggu", "NOMOR ANTRIAN",
            "→ LOKET 30", "Senin, 23 November 2026"} <= texts  # fmt: skip
    ticker = renderer.drawn["ticker"][0].text
    assert re.fullmatch(r".+ \([A-Z]\) — Selesai maks\. \d (jam|hari) · .+", ticker), ticker


@pytest.mark.parametrize("size", SIZES)
def test_canteen_png_numbers_readable_from_afar(open_renderer, tmp_path: Path,
                                               size: tuple[int, int]) -> None:  # fmt: skip
    renderer = open_renderer(site, "canteen", size)
    model = busy_model(site, NOW)
    renderer.render(builder(site, "canteen", renderer).build(model, NOW, {}, offline=False))
    image = png_pixels(renderer.save_png(tmp_path / f"canteen-{size[0]}.png"))
    assert assert_texts_fit(renderer) >= 12
    expected = [("X090", "30"), ("W087", "29"), ("V084", "28"), ("U081", "27")]
    for i, (ticket, number) in enumerate(expected):
        row = renderer.layout[f"call-{i}"]
        assert [t.text for t in renderer.drawn[f"call-{i}"]] == [ticket, number]
        for part in ("ticket", "counter"):
            ink = ink_box(image, row.part(part).box, YELLOW)
            assert ink is not None, (i, part)
            assert ink.h >= size[1] * CANTEEN_GLYPH, (i, part, ink.h)  # glyphs >= 1/8 height
    menu = [t.text for t in renderer.drawn["panel"]]
    assert menu[0] == "Menu Kantin" and "Soto Banjar  Rp 20.000" in menu
    sizes = {t.font_px for t in renderer.drawn["panel"][1:]}
    assert len(sizes) == 1  # the menu's lines share one size


@pytest.mark.parametrize("size", SIZES)
def test_entrance_png_slides_and_services(open_renderer, tmp_path: Path,
                                          size: tuple[int, int]) -> None:  # fmt: skip
    renderer = open_renderer(site, "entrance", size)
    model = busy_model(site, NOW)
    build = builder(site, "entrance", renderer)
    renderer.render(build.build(model, NOW, {}, offline=False))
    image = png_pixels(renderer.save_png(tmp_path / f"entrance-{size[0]}.png"))
    assert assert_texts_fit(renderer) > 10
    picture = renderer.layout["slide"].part("image").box
    crop = image.crop((picture.x, picture.y, picture.right, picture.bottom))
    assert len(crop.getcolors(1_000_000)) > 200  # a picture, not a plain panel
    texts = [t.text for t in renderer.drawn["services"]]
    assert texts[1] == "A  Perekaman dan Cetak KTP-el"
    assert texts[2] == "Selesai maks. 3 jam · Gratis · 0 menunggu"
    assert "Selesai maks. 3 jam · Gratis · Tutup" in texts  # service 'pindah' is closed
    assert renderer.drawn["slide"][-1].text == "Kopi Liberika Banjarbaru"
    # Eight seconds later the next product shows; only the slide region is redrawn.
    later = build.build(model, NOW + 8, {}, offline=False)
    assert renderer.render(later) == ["slide"]
    assert renderer.drawn["slide"][-1].text == "Kain Sasirangan khas Banjar"


def test_only_what_changed_is_redrawn(open_renderer, tmp_path: Path) -> None:
    renderer = open_renderer(site, "lobby", (1920, 1080))
    model = busy_model(site, NOW)
    build = builder(site, "lobby", renderer)
    first = renderer.render(build.build(model, NOW, {}, offline=False))
    assert len(first) == len(renderer.layout.regions)
    assert renderer.render(build.build(model, NOW + 1, {}, offline=False)) == []
    before = png_pixels(renderer.save_png(tmp_path / "before.png"))
    from protocol import messages as m

    model.apply(m.CounterState(seq=500, counter=5, open=True, call_seq=6, ticket="C099",
                               service="akta", called_at=NOW + 2, waiting=1), NOW + 2)  # fmt: skip
    changed = renderer.render(build.build(model, NOW + 2, {}, offline=False))
    assert sorted(changed) == ["call", "counter-4"]
    after = png_pixels(renderer.save_png(tmp_path / "after.png"))
    from PIL import ImageChops

    diff = ImageChops.difference(before, after).getbbox()
    assert diff is not None
    changed_area = Box(diff[0], diff[1], diff[2] - diff[0], diff[3] - diff[1])
    call, tile = renderer.layout["call"].box, renderer.layout["counter-4"].box
    union = Box(min(call.x, tile.x), min(call.y, tile.y),
                max(call.right, tile.right) - min(call.x, tile.x),
                max(call.bottom, tile.bottom) - min(call.y, tile.y))  # fmt: skip
    assert union.contains(changed_area)
    # 21 minutes on, the ticker (21 services, 6 s each) and the service pages have come round:
    # only the clock changes.
    assert renderer.render(build.build(model, NOW + 21 * 60, {}, offline=False)) == ["clock"]


def test_new_call_blinks_and_offline_mark(open_renderer, tmp_path: Path) -> None:
    renderer = open_renderer(site, "lobby", (1366, 768))
    model = busy_model(site, NOW)
    build = builder(site, "lobby", renderer)
    renderer.render(build.build(model, NOW, {(30, 30): True}, offline=False))
    image = png_pixels(renderer.save_png(tmp_path / "on.png"))
    call = renderer.layout["call"]
    centre_top = (call.box.x + call.box.w // 2, call.box.y + 3)
    assert image.getpixel(centre_top) == YELLOW
    assert ink_box(image, call.part("ticket").box, INK_ON_HIGHLIGHT) is not None
    tile = renderer.layout["counter-29"].box
    assert image.getpixel((tile.x + tile.w // 2, tile.y + 2)) == YELLOW
    assert renderer.drawn["status"] == []
    changed = renderer.render(build.build(model, NOW, {(30, 30): False}, offline=True))
    assert sorted(changed) == ["call", "counter-29", "status"]
    image = png_pixels(renderer.save_png(tmp_path / "off.png"))
    assert image.getpixel(centre_top) == BACKGROUNDS["call"]
    assert [t.text for t in renderer.drawn["status"]] == ["● Tidak terhubung"]


def _marked_model() -> ScreenModel:
    """The busy morning; then counter 30 calls a priority ticket, KTP's quota is used up and
    KK is closed."""
    model = busy_model(site, NOW)
    model.apply(m.CounterState(seq=500, counter=30, open=True, call_seq=31, ticket="X091",
                               service=site.counters[30].services[0], priority=True,
                               called_at=NOW - 1, waiting=3), NOW)  # fmt: skip
    model.apply(m.ServiceState(seq=600, service="ktp", open=True, waiting=0, est_wait_s=0,
                               quota_left=0), NOW)  # fmt: skip
    model.apply(m.ServiceState(seq=601, service="kk", open=False, waiting=0, est_wait_s=0,
                               quota_left=9), NOW)  # fmt: skip
    return model


@pytest.mark.parametrize("size", SIZES)
def test_canteen_marks_a_priority_call_and_not_the_newest_after_its_blink(
    open_renderer, tmp_path: Path, size: tuple[int, int]
) -> None:
    renderer = open_renderer(site, "canteen", size)
    renderer.render(builder(site, "canteen", renderer).build(_marked_model(), NOW, {}, False))
    image = png_pixels(renderer.save_png(tmp_path / "canteen.png"))
    first, second = renderer.layout["call-0"], renderer.layout["call-1"]
    assert [t.text for t in renderer.drawn["call-0"]] == ["X091", "30", "PRIORITAS"]
    # After the blink the newest row looks like the others: no colour says "being called".
    inside = lambda box: (box.right - 4, box.y + box.h // 2)  # noqa: E731
    assert image.getpixel(inside(first.box)) == image.getpixel(inside(second.box))
    assert image.getpixel(inside(first.box)) == BACKGROUNDS["tile"]
    # 'PRIORITAS' is drawn in its strip, readable, clear of the number's digits.
    mark = ink_box(image, first.part("mark").box, YELLOW)
    digits = ink_box(image, first.part("ticket").box, YELLOW)
    assert mark is not None and digits is not None
    assert mark.bottom <= digits.y  # above the digits, not over them
    assert mark.h >= size[1] / 45  # about the size of the menu's text
    assert digits.h >= size[1] * CANTEEN_GLYPH  # the number is as large as before


@pytest.mark.parametrize("size", SIZES)
def test_lobby_and_entrance_say_priority_closed_and_quota_used_up(
    open_renderer, tmp_path: Path, size: tuple[int, int]
) -> None:
    model = _marked_model()
    lobby = open_renderer(site, "lobby", size)
    lobby.render(builder(site, "lobby", lobby).build(model, NOW, {}, False))
    image = png_pixels(lobby.save_png(tmp_path / "lobby.png"))
    assert assert_texts_fit(lobby) > 60
    call = lobby.layout["call"]
    assert lobby.drawn["call"][0].text == "NOMOR ANTRIAN PRIORITAS"
    assert ink_box(image, call.part("label").box, YELLOW) is not None  # in the accent colour
    assert lobby.drawn["counter-29"][0].text == "Loket 30 · Prioritas"
    drawn = {t.part: t for t in lobby.drawn["services"]}
    assert drawn["name-0"].text.startswith("A  Perekaman") and drawn["count-0"].text == (
        "Kuota habis"
    )
    assert drawn["count-1"].text == "Tutup"
    alert = STYLES["alert"][1]
    for part in ("count-0", "count-1"):  # said in words, in the alert colour, not "0"
        assert ink_box(image, lobby.layout["services"].part(part).box, alert) is not None
    entrance = open_renderer(site, "entrance", size)
    entrance.render(builder(site, "entrance", entrance).build(model, NOW, {}, False))
    details = [t.text for t in entrance.drawn["services"] if t.part.startswith("detail-")]
    assert details[:2] == [
        "Selesai maks. 3 jam · Gratis · Kuota habis",
        "Selesai maks. 3 jam · Gratis · Tutup",
    ]


def test_english_screen(open_renderer) -> None:
    renderer = open_renderer(site, "canteen", (1366, 768))
    build = SceneBuilder(site, "canteen", renderer.layout, "en", EXAMPLES)
    renderer.render(build.build(ScreenModel(site), NOW, {}, offline=True))
    texts = {t.text for d in renderer.drawn.values() for t in d}
    assert {"NUMBER", "COUNTER", "Canteen menu", "● Offline", "Monday, 23 November 2026"} <= texts


def test_missing_image_shows_its_caption_and_long_texts_are_shortened(
    open_renderer, caplog: pytest.LogCaptureFixture
) -> None:
    text = (
        example_text()
        .replace("umkm/amplang.png", "umkm/hilang.png")
        .replace(
            'name = "Mal Pelayanan Publik Kota Banjarbaru"',
            'name = "'
            + "Mal Pelayanan Publik Kota Banjarbaru yang Sangat Panjang Sekali " * 4
            + '"',
        )
    )
    odd = make_site(text=text)
    renderer = open_renderer(odd, "entrance", (1366, 768))
    build = builder(odd, "entrance", renderer)
    with caplog.at_level(logging.WARNING, logger="mpp.display"):
        for i in range(4):  # two turns of the slideshow: the missing image warns once
            renderer.render(build.build(ScreenModel(odd), NOW + 16 + 24 * i, {}, offline=False))
    assert renderer.drawn["slide"][0].text == "Amplang dan kue khas Banjar"
    warnings = [r for r in caplog.records if "featured image missing" in r.getMessage()]
    assert len(warnings) == 1 and warnings[0].image.endswith("umkm/hilang.png")
    picture = renderer.layout["slide"].part("image").box
    assert renderer.pixel(picture.x + 5, picture.y + picture.h // 2) == BACKGROUNDS["missing"]
    name = renderer.drawn["title"][0]
    assert name.text.endswith("…") and name.box.contains(name.ink)
    assert_texts_fit(renderer)


def test_a_long_day_of_calls_keeps_the_text_cache_bounded(open_renderer) -> None:
    renderer = open_renderer(site, "canteen", (1920, 1080))
    build = builder(site, "canteen", renderer)
    model = ScreenModel(site)
    from protocol import messages as m

    for i in range(1, 201):  # every call a new big number (~0.25 MB of pixels, 50 MB in all)
        model.apply(m.CounterState(seq=i, counter=1 + i % 30, open=True, call_seq=i,
                                   ticket=f"A{i:03d}", service="ktp", called_at=NOW + i,
                                   waiting=0), NOW + i)  # fmt: skip
        renderer.render(build.build(model, NOW + i, {}, offline=False))
    assert 0 < renderer.text_cache_bytes <= TEXT_CACHE_BYTES
    assert [t.text for t in renderer.drawn["call-0"]] == ["A200", "21"]


def test_mixer_player_plays_one_sound_after_the_other(tmp_path: Path) -> None:
    first = write_chime(tmp_path / "a.wav")
    second = write_chime(tmp_path / "b.wav")
    player = MixerPlayer()
    player.open()
    starts: list[float] = []
    try:
        began = time.monotonic()
        player.play([first, second], 0.5, starts.append)
        took = time.monotonic() - began
        assert player.channel_volume() == pytest.approx(0.5, abs=0.01)
    finally:
        player.close()
    assert len(starts) == 1 and starts[0] - began < 0.2
    assert took >= 2 * 1.25  # each chime lasts 1.3 s: played in turn, not together
