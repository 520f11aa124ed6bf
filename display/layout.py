"""Screen geometry: where each region of a zone's screen goes, at any resolution (pure).

A layout is a list of regions (redrawn independently: a counter tile changes alone), each with
named parts (text boxes or an image box) and the font size that part is drawn at, at most:

    layout = zone_layout("canteen", 1920, 1080, counters=(1, 2, 3), services=20)
    layout["call-0"].part("ticket").box         # Box(x=..., y=..., w=..., h=...)
    layout["call-0"].part("ticket").font_px     # ticket digits >= 1/8 of the screen height

The renderer shrinks a text until it fits its box; it never draws outside it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

# Height of a digit's ink as a fraction of the font size, for the bold sans faces we draw
# with (DejaVu Sans Bold: 0.729; FreeSans Bold, pygame's own font: 0.72). Used to size the
# canteen's numbers so their glyphs are at least 1/8 of the screen height (landscape).
DIGIT_HEIGHT = 0.70
CANTEEN_GLYPH = 1 / 8
CANTEEN_ROWS = 4


@dataclass(frozen=True)
class Box:
    """A rectangle in screen pixels."""

    x: int
    y: int
    w: int
    h: int

    @property
    def right(self) -> int:
        """x just past the right edge."""
        return self.x + self.w

    @property
    def bottom(self) -> int:
        """y just past the bottom edge."""
        return self.y + self.h

    def contains(self, other: Box) -> bool:
        """True when `other` lies wholly inside this box."""
        return (
            other.x >= self.x
            and other.y >= self.y
            and other.right <= self.right
            and other.bottom <= self.bottom
        )

    def overlaps(self, other: Box) -> bool:
        """True when the two boxes share at least one pixel."""
        return (
            self.x < other.right
            and other.x < self.right
            and self.y < other.bottom
            and other.y < self.bottom
        )

    def inset(self, dx: int, dy: int | None = None) -> Box:
        """The box shrunk by `dx` left/right and `dy` top/bottom."""
        dy = dx if dy is None else dy
        return Box(self.x + dx, self.y + dy, max(1, self.w - 2 * dx), max(1, self.h - 2 * dy))

    def rows(self, *weights: float, gap: int = 0) -> list[Box]:
        """Split top to bottom into boxes proportional to `weights`."""
        return self._split(weights, gap, vertical=True)

    def cols(self, *weights: float, gap: int = 0) -> list[Box]:
        """Split left to right into boxes proportional to `weights`."""
        return self._split(weights, gap, vertical=False)

    def _split(self, weights: tuple[float, ...], gap: int, vertical: bool) -> list[Box]:
        total = sum(weights)
        length = (self.h if vertical else self.w) - gap * (len(weights) - 1)
        boxes, start, acc = [], 0, 0.0
        for weight in weights:
            acc += weight
            end = round(length * acc / total)
            size = max(1, end - start)
            if vertical:
                boxes.append(Box(self.x, self.y + start + gap * len(boxes), self.w, size))
            else:
                boxes.append(Box(self.x + start + gap * len(boxes), self.y, size, self.h))
            start = end
        return boxes


@dataclass(frozen=True)
class Part:
    """A box inside a region holding one text (or an image) drawn at up to `font_px`."""

    name: str
    box: Box
    font_px: int = 0


@dataclass(frozen=True)
class Region:
    """A part of the screen drawn and updated as one (a tile, a panel, the clock)."""

    name: str
    box: Box
    parts: tuple[Part, ...] = ()

    def part(self, name: str) -> Part:
        """The part called `name`; KeyError names the parts that exist."""
        for part in self.parts:
            if part.name == name:
                return part
        raise KeyError(f"region {self.name!r} has no part {name!r}: {[p.name for p in self.parts]}")


@dataclass(frozen=True)
class Layout:
    """Every region of one zone's screen at one resolution."""

    kind: str
    width: int
    height: int
    regions: tuple[Region, ...]
    pages: dict[str, int] = field(default_factory=dict)  # region group -> rows per page

    def __getitem__(self, name: str) -> Region:
        for region in self.regions:
            if region.name == name:
                return region
        raise KeyError(f"no region {name!r} in the {self.kind} layout")

    def names(self) -> list[str]:
        """Region names in drawing order."""
        return [r.name for r in self.regions]


def _font(box: Box, fraction: float = 0.78) -> int:
    """A font size that fills `fraction` of a text box's height."""
    return max(8, int(box.h * fraction))


def _text(name: str, box: Box, fraction: float = 0.78) -> Part:
    return Part(name, box, _font(box, fraction))


def _header(width: int, height: int, margin: int) -> tuple[list[Region], int]:
    """Title (MPP name, zone), status mark and clock along the top; returns the bottom edge."""
    band = Box(0, 0, width, max(40, round(height * 0.095)))
    inner = band.inset(margin, round(band.h * 0.08))
    title, status, clock = inner.cols(60, 14, 26, gap=margin)
    name, zone = title.rows(58, 42)
    time_box, date_box = clock.rows(60, 40)
    regions = [
        Region("header", band),
        Region("title", title, (_text("name", name), _text("zone", zone))),
        Region("status", status, (_text("mark", status.rows(1, 1, 1)[1], 0.8),)),
        Region("clock", clock, (_text("time", time_box), _text("date", date_box))),
    ]
    return regions, band.bottom


def _grid(count: int, area: Box, gap: int, aspect: float) -> list[Box]:
    """`count` equal tiles filling `area`, as close to `aspect` (w/h) as the space allows."""
    if count == 0:
        return []
    best: tuple[float, int] = (-1.0, 1)
    for cols in range(1, count + 1):
        rows = math.ceil(count / cols)
        tile_w = (area.w - gap * (cols - 1)) / cols
        tile_h = (area.h - gap * (rows - 1)) / rows
        score = min(tile_w / aspect, tile_h)
        if score > best[0]:
            best = (score, cols)
    cols = best[1]
    rows = math.ceil(count / cols)
    tile_w = (area.w - gap * (cols - 1)) // cols
    tile_h = (area.h - gap * (rows - 1)) // rows
    return [
        Box(
            area.x + (i % cols) * (tile_w + gap),
            area.y + (i // cols) * (tile_h + gap),
            tile_w,
            tile_h,
        )
        for i in range(count)
    ]


def _list_rows(area: Box, count: int, min_row: int, columns: int, gap: int) -> list[Box]:
    """Row boxes for a paged list: as many rows as fit at `min_row` height, in `columns`."""
    per_col = max(1, min(area.h // max(1, min_row), math.ceil(max(1, count) / columns)))
    boxes: list[Box] = []
    for column in area.cols(*([1] * columns), gap=gap):
        boxes.extend(column.rows(*([1] * per_col)))
    return boxes


def lobby_layout(width: int, height: int, counters: int, services: int) -> Layout:
    """Newest call very large, counter tiles, waiting per service, a ticker of standards."""
    margin = max(6, round(min(width, height) * 0.012))
    regions, top = _header(width, height, margin)
    ticker_h = max(24, round(height * 0.07))
    body = Box(margin, top + margin, width - 2 * margin, height - top - ticker_h - 3 * margin)
    landscape = width >= height
    if landscape:
        call_box, right = body.cols(40, 60, gap=margin)
        grid_box, services_box = right.rows(60, 40, gap=margin)
    else:
        call_box, grid_box, services_box = body.rows(30, 40, 30, gap=margin)
    inner = call_box.inset(margin)
    label, ticket, counter, service = inner.rows(12, 46, 26, 16)
    regions.append(
        Region(
            "call",
            call_box,
            (
                _text("label", label, 0.7),
                _text("ticket", ticket, 0.95),
                _text("counter", counter, 0.8),
                _text("service", service, 0.6),
            ),
        )
    )
    for i, tile in enumerate(_grid(counters, grid_box, max(4, margin // 2), 1.9)):
        label_box, ticket_box = tile.inset(max(2, margin // 3)).rows(36, 64)
        regions.append(
            Region(
                f"counter-{i}",
                tile,
                (_text("label", label_box, 0.8), _text("ticket", ticket_box, 0.9)),
            )
        )
    heading, rows_box = services_box.rows(1, 7)
    rows = _list_rows(
        rows_box, services, max(18, round(height / 22)), 2 if landscape else 1, margin
    )
    parts = [_text("heading", heading.inset(margin // 2, 0), 0.7)]
    for i, row in enumerate(rows):
        name, count = row.inset(margin // 2, 1).cols(80, 20)
        parts += [_text(f"name-{i}", name, 0.72), _text(f"count-{i}", count, 0.72)]
    regions.append(Region("services", services_box, tuple(parts)))
    ticker = Box(0, height - ticker_h - margin, width, ticker_h + margin)
    regions.append(
        Region("ticker", ticker, (_text("text", ticker.inset(margin * 2, margin // 2), 0.62),))
    )
    return Layout("lobby", width, height, tuple(regions), {"services": len(rows)})


def canteen_layout(width: int, height: int, featured: bool) -> Layout:
    """The last calls in digits readable from 10 m, and a panel for the menu or products."""
    margin = max(6, round(min(width, height) * 0.012))
    regions, top = _header(width, height, margin)
    body = Box(margin, top + margin, width - 2 * margin, height - top - 2 * margin)
    landscape = width >= height
    calls_box, panel_box = (
        body.cols(63, 37, gap=margin) if landscape else body.rows(65, 35, gap=margin)
    )
    # 1/8 of the height on a landscape TV; of the width on a portrait one (else "A012" and
    # its counter could not share a row).
    glyph_px = math.ceil(min(width, height) * CANTEEN_GLYPH / DIGIT_HEIGHT)
    head_box, rows_box = calls_box.rows(6, 94)
    head_ticket, head_counter = head_box.cols(62, 38)
    regions.append(
        Region(
            "calls-head",
            head_box,
            (_text("ticket", head_ticket, 0.75), _text("counter", head_counter, 0.75)),
        )
    )
    for i, row in enumerate(rows_box.rows(*([1] * CANTEEN_ROWS), gap=max(4, margin // 2))):
        inner = row.inset(margin, max(2, margin // 3))
        # The digits need 0.8 of their font size; above them a strip for 'PRIORITAS'.
        digits_h = min(inner.h, max(math.ceil(glyph_px * 0.8), round(inner.h * 0.7)))
        strip, numbers = inner.rows(inner.h - digits_h, digits_h)
        ticket, counter = numbers.cols(62, 38)
        mark = Box(ticket.x, strip.y, ticket.w, strip.h)
        regions.append(
            Region(
                f"call-{i}",
                row,
                (
                    Part("ticket", ticket, glyph_px),
                    Part("counter", counter, glyph_px),
                    _text("mark", mark, 0.8),
                ),
            )
        )
    inner = panel_box.inset(margin)
    if featured:
        heading, items_box, image, caption = inner.rows(9, 36, 45, 10)
    else:
        heading, items_box = inner.rows(9, 91)
        image = caption = None
    items = items_box.rows(*([1] * 8))
    parts = [_text("heading", heading, 0.75)]
    parts += [_text(f"item-{i}", box, 0.62) for i, box in enumerate(items)]
    if image is not None and caption is not None:
        parts += [Part("image", image.inset(margin // 2)), _text("caption", caption, 0.6)]
    regions.append(Region("panel", panel_box, tuple(parts)))
    return Layout("canteen", width, height, tuple(regions), {"menu": len(items)})


def entrance_layout(width: int, height: int, services: int) -> Layout:
    """Featured local products (UMKM) slideshow and the list of services with their standard."""
    margin = max(6, round(min(width, height) * 0.012))
    regions, top = _header(width, height, margin)
    body = Box(margin, top + margin, width - 2 * margin, height - top - 2 * margin)
    landscape = width >= height
    slide_box, list_box = (
        body.cols(57, 43, gap=margin) if landscape else body.rows(50, 50, gap=margin)
    )
    image, caption = slide_box.inset(margin).rows(86, 14)
    regions.append(
        Region("slide", slide_box, (Part("image", image), _text("caption", caption, 0.6)))
    )
    inner = list_box.inset(margin)
    heading, rows_box = inner.rows(7, 93)
    rows = _list_rows(rows_box, services, max(36, round(height / 13)), 1, margin)
    parts = [_text("heading", heading, 0.7)]
    for i, row in enumerate(rows):
        name, detail = row.inset(0, max(1, row.h // 14)).rows(55, 45)
        parts += [_text(f"name-{i}", name, 0.8), _text(f"detail-{i}", detail, 0.78)]
    regions.append(Region("services", list_box, tuple(parts)))
    return Layout("entrance", width, height, tuple(regions), {"services": len(rows)})


def zone_layout(
    kind: str,
    width: int,
    height: int,
    *,
    counters: int = 0,
    services: int = 0,
    featured: bool = False,
) -> Layout:
    """The layout of a zone kind ('lobby', 'canteen', 'entrance') at width x height."""
    if kind == "lobby":
        return lobby_layout(width, height, counters, services)
    if kind == "canteen":
        return canteen_layout(width, height, featured)
    if kind == "entrance":
        return entrance_layout(width, height, services)
    raise ValueError(f"zone kind {kind!r} has no layout; use lobby, canteen or entrance")
