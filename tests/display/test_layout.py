"""Screen geometry: regions inside the screen, apart from each other, big enough to read."""

from __future__ import annotations

import itertools

import pytest

from display.layout import CANTEEN_GLYPH, DIGIT_HEIGHT, Box, Layout, zone_layout
from display.scene import zone_counters, zone_services
from tests.conftest import make_site

SIZES = [(1920, 1080), (1366, 768), (1280, 720), (3840, 2160), (1080, 1920)]
site = make_site()


def layout_of(kind: str, size: tuple[int, int]) -> Layout:
    counters = zone_counters(site, "lobby")
    return zone_layout(
        kind, *size, counters=len(counters), services=len(zone_services(site, counters)),
        featured=kind == "entrance",
    )  # fmt: skip


@pytest.mark.parametrize(
    ("kind", "size"), list(itertools.product(("lobby", "canteen", "entrance"), SIZES))
)
def test_regions_fit_the_screen_and_do_not_overlap(kind: str, size: tuple[int, int]) -> None:
    layout = layout_of(kind, size)
    screen = Box(0, 0, *size)
    regions = [r for r in layout.regions if r.name != "header"]
    for region in layout.regions:
        assert screen.contains(region.box), region
        for part in region.parts:
            assert region.box.contains(part.box), (region.name, part)
            assert part.box.w > 0 and part.box.h > 0
    for a, b in itertools.combinations(regions, 2):
        assert not a.box.overlaps(b.box), (a.name, b.name)
    header = layout["header"].box
    for name in ("title", "status", "clock"):
        assert header.contains(layout[name].box)


@pytest.mark.parametrize("size", SIZES)
def test_canteen_numbers_are_at_least_an_eighth_of_the_screen_high_on_landscape(
    size: tuple[int, int],
) -> None:
    layout = layout_of("canteen", size)
    rows = [r for r in layout.regions if r.name.startswith("call-")]
    assert 4 <= len(rows) <= 6
    for row in rows:
        for name in ("ticket", "counter"):
            part = row.part(name)
            assert part.font_px * DIGIT_HEIGHT >= min(size) * CANTEEN_GLYPH
            assert part.box.h >= part.font_px * 0.75  # room for the digits' ink


def test_lobby_has_a_tile_per_counter_and_a_big_call() -> None:
    layout = layout_of("lobby", (1920, 1080))
    tiles = [r for r in layout.regions if r.name.startswith("counter-")]
    assert len(tiles) == 30
    call = layout["call"]
    assert call.part("ticket").font_px > 3 * tiles[0].part("ticket").font_px
    assert call.box.w * call.box.h > 0.2 * 1920 * 1080
    assert layout.pages["services"] >= 8


def test_box_splits_cover_the_box() -> None:
    box = Box(10, 20, 300, 101)
    rows = box.rows(1, 2, 3, gap=4)
    assert rows[0].y == 20 and rows[-1].bottom == box.bottom
    assert sum(r.h for r in rows) + 8 == box.h
    cols = box.cols(1, 1)
    assert cols[0].x == 10 and cols[1].right == box.right


def test_unknown_zone_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="no layout"):
        zone_layout("roof", 800, 600)
    with pytest.raises(KeyError, match="no region 'nope'"):
        layout_of("lobby", (800, 600))["nope"]
