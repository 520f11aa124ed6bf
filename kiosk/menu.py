"""The optional touchscreen menu: the one module of the kiosk that imports pygame (lazily).

`menu_view()` is the pure part: which tiles go where on a screen of the device's size, with
each service's time class and waiting count, closed or out-of-quota services shown as such and
not selectable, and the priority row with the line that explains it (or, while a category is
armed, which one and for how long). `TouchMenu` draws a view with pygame and turns taps into
choices; the armed category is read from the kiosk's `PrioritySelector` at every frame, so the
screen shows exactly what the next ticket will carry::

    view = menu_view(site, ("ktp", "kk"), states, size=(1080, 1920), lang="id")
    tile_at(view, (300, 500))       # the Tile under that point, or None (closed, or none)
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kiosk.errors import KioskConfigError
from kiosk.notices import Notice
from protocol.messages import BOOKING_CODE_ALPHABET, PRIORITIES, ServiceState
from protocol.site import Site
from protocol.texts import (
    mark_text,
    no_counter_text,
    paused_until_text,
    priority_text,
    resume_text,
    service_mark,
    time_class_text,
)

log = logging.getLogger("mpp.kiosk")

FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")
MIN_TILE_HEIGHT = 120
GAP = 12

# Short names for the priority buttons (the ticket prints the full ones).
PRIORITY_SHORT: dict[str, dict[str, str]] = {
    "elderly": {"id": "Lansia", "en": "Elderly"},
    "disabled": {"id": "Disabilitas", "en": "Disability"},
    "pregnant": {"id": "Ibu hamil", "en": "Pregnant"},
    "child": {"id": "Anak", "en": "Child"},
}

WORDS: dict[str, dict[str, str]] = {
    "id": {
        "choose": "Silakan pilih layanan",
        "waiting": "Menunggu: {n} orang",
        "priority": "Prioritas:",
        "priority_hint": "Lansia, disabilitas, ibu hamil, anak: ketuk dulu, lalu pilih layanan",
        "priority_armed": "{category}: sekarang pilih layanan ({seconds} detik)",
        "next": "Berikutnya ›",
        "prev": "‹ Sebelumnya",
        "page": "Halaman {page} dari {pages}",
        "other_lang": "English",
        "checkin": "Reservasi (check-in)",
        "pad_title": "Ketik kode reservasi Anda (8 huruf/angka), atau pindai QR-nya",
        "pad_ok": "OK",
        "pad_del": "Hapus",
        "pad_close": "Batal",
    },
    "en": {
        "choose": "Please choose a service",
        "waiting": "Waiting: {n}",
        "priority": "Priority:",
        "priority_hint": "Elderly, disabled, pregnant, children: tap first, then the service",
        "priority_armed": "{category}: now choose your service ({seconds} s)",
        "next": "Next ›",
        "prev": "‹ Back",
        "page": "Page {page} of {pages}",
        "other_lang": "Bahasa Indonesia",
        "checkin": "Booking (check-in)",
        "pad_title": "Type your booking code (8 characters), or scan its QR",
        "pad_ok": "OK",
        "pad_del": "Delete",
        "pad_close": "Cancel",
    },
}

COLOURS = {
    "background": (244, 246, 250),
    "header": (0, 74, 143),
    "header_text": (255, 255, 255),
    "tile": (255, 255, 255),
    "tile_border": (0, 94, 184),
    "tile_text": (20, 24, 32),
    "tile_muted": (90, 98, 110),
    "closed": (205, 208, 214),
    "closed_text": (110, 114, 122),
    "badge": (178, 34, 34),
    "selected": (255, 196, 0),
    "banner": (178, 34, 34),
    "info": (0, 74, 143),
    "ok": (0, 122, 61),
    "warn": (196, 110, 0),
    "fault": (178, 34, 34),
}


@dataclass(frozen=True)
class Tile:
    """A touchable area: a service, a priority category or a page button."""

    key: str  # service code, "priority:<category>", "page:next", "page:prev", "lang:<code>",
    # "checkin" (opens the code pad), "pad:<character>", "pad:del", "pad:ok", "pad:close"
    rect: tuple[int, int, int, int]  # x, y, width, height
    title: str
    lines: tuple[str, ...] = ()
    enabled: bool = True
    badge: str | None = None
    selected: bool = False

    def contains(self, pos: tuple[int, int]) -> bool:
        """True if the point lies inside this tile."""
        x, y, w, h = self.rect
        return x <= pos[0] < x + w and y <= pos[1] < y + h


@dataclass(frozen=True)
class MenuView:
    """Everything the menu screen shows at one moment."""

    size: tuple[int, int]
    title: str
    subtitle: str
    tiles: tuple[Tile, ...]
    header_height: int
    page: int = 0
    pages: int = 1
    banner: str | None = None
    notice: Notice | None = None
    lang: str = "id"
    extra: dict[str, Any] = field(default_factory=dict)

    def tile(self, key: str) -> Tile | None:
        """The tile with this key on the current page."""
        return next((t for t in self.tiles if t.key == key), None)


def service_tile_text(
    site: Site, code: str, state: ServiceState | None, lang: str
) -> tuple[str, tuple[str, ...], bool, str | None]:
    """(title, lines, enabled, badge) of a service tile; unknown state stays selectable."""
    service = site.services[code]
    words = WORDS[lang]
    agency = site.agencies[service.agency].short
    lines = [f"{agency} · {time_class_text(site.time_classes[service.time_class], lang)}"]
    enabled, badge = True, None
    if state is not None:
        lines.append(words["waiting"].format(n=state.waiting))
        mark = service_mark(state.open, state.quota_left)
        if state.pause is not None:  # e.g. Friday prayer: say when service resumes
            until = site.local_now(state.pause.until)
            lines.append(resume_text(until, lang))
            if not state.open:
                enabled, badge = False, paused_until_text(until, lang).upper()
        elif mark is None and state.est_wait_s is None:  # tickets, but nobody calls them now
            lines.append(no_counter_text(lang))
        if mark is not None and badge is None:  # 'TUTUP' / 'KUOTA HABIS', as the TVs say it
            enabled, badge = False, mark_text(mark, lang).upper()
    return service.name.get(lang), tuple(lines), enabled, badge


def menu_view(
    site: Site,
    services: tuple[str, ...],
    states: dict[str, ServiceState],
    *,
    size: tuple[int, int],
    lang: str = "id",
    page: int = 0,
    priority: str | None = None,
    priority_left_s: float = 0.0,
    banner: str | None = None,
    notice: Notice | None = None,
    languages: tuple[str, ...] = ("id",),
    check_in: bool = False,
    pad: str | None = None,
) -> MenuView:
    """Lay out the menu for a screen of `size`: header, service tiles (paged), the line that
    explains priority (or names the armed category and the seconds left), the priority row.
    `check_in`: a button opens the booking code pad; `pad`: the pad is open with that typed."""
    lang = lang if lang in WORDS else "id"
    if pad is not None:
        return pad_view(site, size=size, lang=lang, typed=pad, banner=banner, notice=notice)
    width, height = size
    words = WORDS[lang]
    header_h = max(100, height // 14)
    hint_h = max(36, height // 40)
    priority_h = max(80, height // 20)
    banner_h = max(50, height // 32)
    columns = 2 if width < height else max(2, min(4, width // 440))
    grid_top = header_h + GAP
    grid_bottom = height - priority_h - hint_h - banner_h - GAP
    rows_fit = max(1, (grid_bottom - grid_top + GAP) // (MIN_TILE_HEIGHT + GAP))
    per_page = columns * rows_fit
    pages = max(1, math.ceil(len(services) / per_page))
    if pages > 1:  # keep one row for the page buttons
        rows_fit = max(1, rows_fit - 1)
        per_page = columns * rows_fit
        pages = max(1, math.ceil(len(services) / per_page))
    page = min(max(0, page), pages - 1)
    shown = services[page * per_page : (page + 1) * per_page]
    rows = max(1, math.ceil(len(shown) / columns)) if pages == 1 else rows_fit
    nav_rows = 1 if pages > 1 else 0
    tile_w = (width - GAP * (columns + 1)) // columns
    tile_h = min(
        (grid_bottom - grid_top - GAP * (rows + nav_rows - 1)) // (rows + nav_rows),
        max(MIN_TILE_HEIGHT, height // 6),
    )
    tiles: list[Tile] = []
    other = next((code for code in languages if code != lang and code in WORDS), None)
    if other is not None:  # the citizen's language, in the header's right corner
        lang_w = max(200, width // 4)
        rect = (width - lang_w - GAP, GAP, lang_w, header_h - 2 * GAP)
        tiles.append(Tile(f"lang:{other}", rect, WORDS[lang]["other_lang"]))
    if check_in:  # booked citizens check in here (or with the scanner)
        right = tiles[-1].rect[0] if tiles else width
        check_w = max(220, width // 4)
        rect = (right - check_w - GAP, GAP, check_w, header_h - 2 * GAP)
        tiles.append(Tile("checkin", rect, words["checkin"]))
    for i, code in enumerate(shown):
        row, col = divmod(i, columns)
        rect = (GAP + col * (tile_w + GAP), grid_top + row * (tile_h + GAP), tile_w, tile_h)
        title, lines, enabled, badge = service_tile_text(site, code, states.get(code), lang)
        tiles.append(Tile(code, rect, title, lines, enabled, badge))
    if pages > 1:
        y = grid_top + rows * (tile_h + GAP)
        half = (width - 3 * GAP) // 2
        tiles.append(Tile("page:prev", (GAP, y, half, tile_h), words["prev"], (), page > 0))
        tiles.append(
            Tile(
                "page:next", (2 * GAP + half, y, half, tile_h), words["next"], (), page < pages - 1
            )
        )
    label_w = width // 6
    cell_w = (width - label_w - GAP * (len(PRIORITIES) + 1)) // len(PRIORITIES)
    y = height - priority_h - banner_h
    for i, category in enumerate(PRIORITIES):
        x = label_w + GAP + i * (cell_w + GAP)
        tiles.append(
            Tile(
                f"priority:{category}",
                (x, y + GAP // 2, cell_w, priority_h - GAP),
                PRIORITY_SHORT[category][lang],
                selected=category == priority,
            )
        )
    if priority is not None:
        hint = words["priority_armed"].format(
            category=priority_text(priority, lang), seconds=max(1, math.ceil(priority_left_s))
        )
    else:
        hint = words["priority_hint"]
    subtitle = words["choose"]
    if pages > 1:
        subtitle += "  ·  " + words["page"].format(page=page + 1, pages=pages)
    return MenuView(
        size=size,
        title=site.site.name,
        subtitle=subtitle,
        tiles=tuple(tiles),
        header_height=header_h,
        page=page,
        pages=pages,
        banner=banner,
        notice=notice,
        lang=lang,
        extra={
            "priority_label": words["priority"],
            "priority_hint": hint,
            "hint_y": y - hint_h,
            "hint_h": hint_h,
            "priority_y": y,
            "priority_h": priority_h,
            "banner_h": banner_h,
        },
    )


PAD_COLUMNS = 8


def pad_view(
    site: Site,
    *,
    size: tuple[int, int],
    lang: str,
    typed: str,
    banner: str | None = None,
    notice: Notice | None = None,
) -> MenuView:
    """The booking code pad: the code's 32 characters, delete, OK (with 8 typed), cancel."""
    width, height = size
    words = WORDS[lang]
    header_h = max(100, height // 14)
    keys = BOOKING_CODE_ALPHABET
    rows = math.ceil(len(keys) / PAD_COLUMNS)
    key_w = (width - GAP * (PAD_COLUMNS + 1)) // PAD_COLUMNS
    key_h = min(key_w, (height - header_h - 4 * GAP) // (rows + 3))
    top = header_h + GAP + key_h + GAP  # a row for the typed code
    tiles = [
        Tile(
            f"pad:{char}",
            (GAP + (i % PAD_COLUMNS) * (key_w + GAP), top + (i // PAD_COLUMNS) * (key_h + GAP),
             key_w, key_h),
            char,
            enabled=len(typed) < 8,
        )
        for i, char in enumerate(keys)
    ]  # fmt: skip
    y = top + rows * (key_h + GAP)
    third = (width - 4 * GAP) // 3
    tiles += [
        Tile("pad:close", (GAP, y, third, key_h), words["pad_close"]),
        Tile("pad:del", (2 * GAP + third, y, third, key_h), words["pad_del"], enabled=bool(typed)),
        Tile("pad:ok", (3 * GAP + 2 * third, y, third, key_h), words["pad_ok"], len(typed) == 8),
    ]
    return MenuView(
        size=size,
        title=site.site.name,
        subtitle=words["pad_title"],
        tiles=tuple(tiles),
        header_height=header_h,
        banner=banner,
        notice=notice,
        lang=lang,
        extra={"pad": typed, "pad_y": header_h + GAP, "pad_h": key_h},
    )


def tile_at(view: MenuView, pos: tuple[int, int]) -> Tile | None:
    """The selectable tile under a tap, or None (nothing there, or shown as unavailable)."""
    if view.notice is not None:
        return None
    tile = next((t for t in view.tiles if t.contains(pos)), None)
    return tile if tile is not None and tile.enabled else None


class TouchMenu:
    """The kiosk's touchscreen: draws the menu with pygame and reports taps.

    State arrives from other threads (`set_states`, `show`, `set_banner`); the armed priority
    is read from `bind_priority`'s source at every frame. The loop in `run()` (the process's
    main thread) draws and reads taps.
    """

    def __init__(
        self,
        site: Site,
        services: tuple[str, ...],
        *,
        size: tuple[int, int],
        fullscreen: bool = False,
        lang: str = "id",
        notice_s: float = 6.0,
        lang_idle_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        import pygame

        self._pg = pygame
        self.site = site
        self.services = services
        self.size = size
        self.device_lang = lang  # the device's language: every citizen starts with it
        self.lang = lang  # the language shown now (a citizen may choose the other one)
        self.notice_s = notice_s
        self.lang_idle_s = lang_idle_s
        self.clock = clock
        self._last_tap = float("-inf")
        self._printed_shown = False  # a 'take your ticket' notice is up: its end ends a visit
        self._on_choose: Callable[[str], Any] | None = None
        self._on_priority: Callable[[str], Any] | None = None
        self._on_check_in: Callable[[str], Any] | None = None
        self._pad: str | None = None  # the booking code pad is open, with this typed
        self._lock = threading.Lock()
        self._states: dict[str, ServiceState] = {}
        self._notice: Notice | None = None
        self._notice_until = 0.0
        self._banner: str | Notice | None = None
        self._priority: Callable[[], tuple[str, float] | None] = lambda: None
        self.drawn: dict[str, str] = {}  # what the last frame drew of some texts (checks)
        self.last_touch: tuple[int, int] | None = None  # where the screen was last touched
        self._page = 0
        self._fonts: dict[tuple[int, bool], Any] = {}
        flags = pygame.FULLSCREEN if fullscreen else 0
        try:
            pygame.display.init()
            pygame.font.init()
            self.surface = pygame.display.set_mode(size, flags)
        except pygame.error as exc:
            raise KioskConfigError(
                f"the kiosk's screen ({size[0]}x{size[1]}) cannot be opened: {exc}; check the "
                "display cable, or set SDL_VIDEODRIVER (kmsdrm on a Pi without a desktop)"
            ) from None
        pygame.display.set_caption(f"{site.site.name}: kiosk")
        if fullscreen:
            pygame.mouse.set_visible(False)

    # -- inputs from the app --------------------------------------------------------------
    def on_choose(self, callback: Callable[[str], Any]) -> None:
        """Call `callback(service_code)` when a citizen taps an open service."""
        self._on_choose = callback

    def on_check_in(self, callback: Callable[[str], Any]) -> None:
        """Call `callback(code)` when a citizen types a booking code and taps OK (the menu
        then shows the check-in button)."""
        self._on_check_in = callback

    def on_priority(self, callback: Callable[[str], Any]) -> None:
        """Call `callback(category)` when a priority category is tapped."""
        self._on_priority = callback

    def set_states(self, states: dict[str, ServiceState]) -> None:
        """The latest retained state of each service (waiting, open, quota)."""
        with self._lock:
            self._states = dict(states)

    def show(self, notice: Notice | None) -> None:
        """Show a notice over the menu for `notice_s` seconds (None clears it)."""
        with self._lock:
            if notice is None:
                self._end_notice()
            self._notice = notice
            self._notice_until = self.clock() + self.notice_s
            self._printed_shown = notice is not None and notice.kind == "printed"

    def _end_notice(self) -> None:
        """The notice goes; after 'take your ticket' the next citizen starts in the device's
        language. Caller holds the lock."""
        if self._printed_shown:
            self.lang = self.device_lang
            self._printed_shown = False
        self._notice = None

    def set_banner(self, text: str | Notice | None) -> None:
        """A lasting warning at the bottom (offline, printer fault), shown in the language on
        the screen when it is a Notice; None removes it."""
        with self._lock:
            self._banner = text

    def bind_priority(self, source: Callable[[], tuple[str, float] | None]) -> None:
        """Where the armed priority comes from: `source()` gives (category, seconds left) or
        None. Read at every frame, so a used or lapsed choice disappears from the screen."""
        self._priority = source

    # -- view and drawing -------------------------------------------------------------------
    def view(self) -> MenuView:
        """What the screen shows now."""
        armed = self._priority()
        with self._lock:
            now = self.clock()
            if self._notice is not None and now >= self._notice_until:
                self._end_notice()
            if self._notice is None and now - self._last_tap > self.lang_idle_s:
                self.lang = self.device_lang  # the citizen who chose it has gone
            return menu_view(
                self.site,
                self.services,
                self._states,
                size=self.size,
                lang=self.lang,
                page=self._page,
                priority=armed[0] if armed else None,
                priority_left_s=armed[1] if armed else 0.0,
                banner=self._banner.get(self.lang)
                if isinstance(self._banner, Notice)
                else self._banner,
                notice=self._notice,
                languages=self.site.site.languages,
                check_in=self._on_check_in is not None,
                pad=self._pad,
            )

    def font(self, size: int, bold: bool = False) -> Any:
        """DejaVu Sans when installed, else pygame's own font; cached."""
        key = (size, bold)
        if key not in self._fonts:
            path = FONT_DIR / ("DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf")
            font = self._pg.font.Font(str(path) if path.exists() else None, size)
            font.set_bold(bold and not path.exists())
            self._fonts[key] = font
        return self._fonts[key]

    def render(self) -> Any:
        """Draw the current view on the screen surface and return it."""
        view = self.view()
        pg, surface = self._pg, self.surface
        width, height = view.size
        surface.fill(COLOURS["background"])
        pg.draw.rect(surface, COLOURS["header"], (0, 0, width, view.header_height))
        in_header = [t.rect[0] for t in view.tiles if t.key.startswith(("lang:", "checkin"))]
        title_w = min(in_header, default=width) - 4 * GAP
        self._text(
            view.title,
            (GAP * 2, GAP),
            title_w,
            size=self._fitting(view.title, title_w, 44, True),
            bold=True,
            colour=COLOURS["header_text"],
        )
        self._text(
            view.subtitle,
            (GAP * 2, view.header_height // 2 + 8),
            title_w,
            size=self._fitting(view.subtitle, title_w, 34, False),
            bold=False,
            colour=COLOURS["header_text"],
        )
        for tile in view.tiles:
            self._tile(tile)
        if "pad" in view.extra:  # the booking code pad: the code typed so far, large
            typed = " ".join(view.extra["pad"].ljust(8, "_"))
            self._text(
                typed,
                (GAP, view.extra["pad_y"]),
                width - 2 * GAP,
                size=max(32, min(96, view.extra["pad_h"] - 16)),
                bold=True,
                colour=COLOURS["tile_text"],
                centre=True,
                record="pad",
            )
        else:
            self._hint(view)
            label_y = view.extra["priority_y"]
            self._text(
                view.extra["priority_label"],
                (GAP, label_y + view.extra["priority_h"] // 2 - 16),
                width // 6 - GAP,
                size=26,
                bold=True,
                colour=COLOURS["tile_text"],
            )
        if view.banner:
            banner_h = view.extra.get("banner_h", max(50, height // 32))
            pg.draw.rect(surface, COLOURS["banner"], (0, height - banner_h, width, banner_h))
            self._text(
                view.banner,
                (GAP, height - banner_h + 12),
                width - 2 * GAP,
                size=28,
                bold=True,
                colour=COLOURS["header_text"],
            )
        if view.notice is not None:
            self._draw_notice(view)
        return surface

    def _tile(self, tile: Tile) -> None:
        pg, surface = self._pg, self.surface
        x, y, w, h = tile.rect
        fill = COLOURS["tile"] if tile.enabled else COLOURS["closed"]
        if tile.selected:
            fill = COLOURS["selected"]
        pg.draw.rect(surface, fill, tile.rect, border_radius=14)
        border = COLOURS["tile_border"] if tile.enabled else COLOURS["closed_text"]
        pg.draw.rect(surface, border, tile.rect, width=3, border_radius=14)
        text_colour = COLOURS["tile_text"] if tile.enabled else COLOURS["closed_text"]
        if tile.key.startswith(("priority:", "page:", "lang:", "pad:", "checkin")):
            size = self._fitting(tile.title, w - 16, max(22, min(32, h // 3)), True)
            top = y + (h - self.font(size, True).get_linesize()) // 2
            self._text(
                tile.title,
                (x + 8, top),
                w - 16,
                size=size,
                bold=True,
                colour=text_colour,
                centre=True,
            )
            return
        title_size = max(24, min(40, int(h * 0.22)))
        info_size = max(18, min(28, int(h * 0.16)))
        title_width = w - 32
        if tile.badge:
            font = self.font(info_size, True)
            label = font.render(tile.badge, True, (255, 255, 255))
            bw, bh = label.get_width() + 20, label.get_height() + 8
            bx, by = x + w - bw - 10, y + 10
            pg.draw.rect(surface, COLOURS["badge"], (bx, by, bw, bh), border_radius=8)
            surface.blit(label, (bx + 10, by + 4))
            title_width -= bw + 8
        top = self._text(
            tile.title,
            (x + 16, y + 8),
            title_width,
            size=title_size,
            bold=True,
            colour=text_colour,
            max_lines=2,
        )
        for line in tile.lines:
            top = self._text(
                line,
                (x + 16, top + 2),
                w - 32,
                size=info_size,
                bold=False,
                colour=COLOURS["tile_muted"],
            )

    def _hint(self, view: MenuView) -> None:
        """The line above the priority row: who qualifies, or the armed category and time."""
        x, y, h = GAP, view.extra["hint_y"], view.extra["hint_h"]
        width = view.size[0] - 2 * GAP
        text = view.extra["priority_hint"]
        armed = any(t.selected for t in view.tiles)
        if armed:
            self._pg.draw.rect(self.surface, COLOURS["selected"], (x, y, width, h), border_radius=8)
        size = self._fitting(text, width - 2 * GAP, max(16, min(30, h - 8)), armed)
        top = y + (h - self.font(size, armed).get_linesize()) // 2
        self._text(
            text,
            (x + GAP, top),
            width - 2 * GAP,
            size=size,
            bold=armed,
            colour=COLOURS["tile_text"],
            centre=True,
            record="priority_hint",
        )

    def _fitting(self, text: str, width: int, size: int, bold: bool, smallest: int = 16) -> int:
        """The largest font size up to `size` at which `text` fits `width` on one line."""
        while size > smallest and self.font(size, bold).size(text)[0] > width:
            size -= 1
        return size

    def _draw_notice(self, view: MenuView) -> None:
        pg, surface = self._pg, self.surface
        notice = view.notice
        assert notice is not None
        width, height = view.size
        shade = pg.Surface((width, height), pg.SRCALPHA)
        shade.fill((0, 0, 0, 150))
        surface.blit(shade, (0, 0))
        box = (GAP * 3, height // 4, width - GAP * 6, int(height * 0.38))
        pg.draw.rect(surface, (255, 255, 255), box, border_radius=24)
        pg.draw.rect(surface, COLOURS[notice.level], box, width=10, border_radius=24)
        top = box[1] + 60
        top = self._text(
            notice.get(view.lang),
            (box[0] + 40, top),
            box[2] - 80,
            size=52,
            bold=True,
            colour=COLOURS[notice.level],
            max_lines=4,
            centre=True,
        )
        if notice.number:
            font = self.font(min(260, box[2] // max(3, len(notice.number))), True)
            label = font.render(notice.number, True, COLOURS["tile_text"])
            surface.blit(label, ((width - label.get_width()) // 2, top + 30))

    def _text(
        self,
        text: str,
        pos: tuple[int, int],
        width: int,
        *,
        size: int,
        bold: bool,
        colour: tuple[int, int, int],
        max_lines: int = 1,
        centre: bool = False,
        record: str | None = None,
    ) -> int:
        """Draw wrapped text; returns the y below it (`record`: keep the lines in `drawn`)."""
        font = self.font(size, bold)
        words, lines, line = text.split(), [], ""
        for word in words:
            candidate = f"{line} {word}".strip()
            if font.size(candidate)[0] <= width or not line:
                line = candidate
            else:
                lines.append(line)
                line = word
        if line:
            lines.append(line)
        if len(lines) > max_lines:
            lines = lines[:max_lines]
            while lines[-1] and font.size(lines[-1] + "…")[0] > width:
                lines[-1] = lines[-1][:-1]
            lines[-1] += "…"
        if record is not None:
            self.drawn[record] = "\n".join(lines)
        x, y = pos
        for line in lines:
            label = font.render(line, True, colour)
            left = x + (width - label.get_width()) // 2 if centre else x
            self.surface.blit(label, (left, y))
            y += font.get_linesize()
        return y

    def save_png(self, path: str | Path) -> Path:
        """Draw and write the screen to a PNG (tests, docs, remote support)."""
        self.render()
        self._pg.image.save(self.surface, str(path))
        return Path(path)

    # -- taps -----------------------------------------------------------------------------
    def tap(self, pos: tuple[int, int]) -> Tile | None:
        """Handle a tap at a screen position; returns the tile it chose, if any."""
        self.last_touch = pos
        view = self.view()
        self._last_tap = self.clock()
        if view.notice is not None and not view.notice.in_progress:
            self.show(None)  # a tap closes a result ("take your ticket"), choosing nothing
            return None
        tile = tile_at(view, pos)
        if tile is None:
            return None
        if tile.key == "checkin" or tile.key.startswith("pad:"):
            self._pad_tap(tile.key)
        elif tile.key.startswith("lang:"):
            with self._lock:
                self.lang = tile.key.split(":", 1)[1]
        elif tile.key.startswith("page:"):
            with self._lock:
                self._page = view.page + (1 if tile.key == "page:next" else -1)
        elif tile.key.startswith("priority:"):
            if self._on_priority is not None:
                self._on_priority(tile.key.split(":", 1)[1])
        elif self._on_choose is not None:
            self._on_choose(tile.key)
        return tile

    def _pad_tap(self, key: str) -> None:
        """The check-in button and the code pad's keys."""
        code = None
        with self._lock:
            typed = self._pad or ""
            if key == "checkin":
                self._pad = ""
            elif key == "pad:close":
                self._pad = None
            elif key == "pad:del":
                self._pad = typed[:-1]
            elif key == "pad:ok":
                code, self._pad = typed, None
            elif len(typed) < 8:
                self._pad = typed + key.split(":", 1)[1]
        if code is not None and self._on_check_in is not None:
            self._on_check_in(code)

    def handle(self, event: Any) -> bool:
        """Process one pygame event; False when the window was closed."""
        pg = self._pg
        if event.type == pg.QUIT:
            return False
        if event.type == pg.MOUSEBUTTONDOWN and event.button == 1:
            if not getattr(event, "touch", False):  # SDL also sends touches as mouse events
                self.tap(event.pos)
        elif event.type == pg.FINGERDOWN:
            self.tap((int(event.x * self.size[0]), int(event.y * self.size[1])))
        return True

    def draw(self) -> None:
        """Draw the menu and put it on the screen."""
        self.render()
        self._pg.display.flip()

    def pump(self) -> bool:
        """Handle the taps that arrived, without drawing; False when the window was closed."""
        return all([self.handle(event) for event in self._pg.event.get()])

    def post_touch(self, pos: tuple[int, int]) -> None:
        """Queue a finger touch at `pos`, as the touchscreen sends one (a selftest run with
        simulated hardware)."""
        pg = self._pg
        x, y = pos[0] / self.size[0], pos[1] / self.size[1]
        pg.event.post(
            pg.event.Event(pg.FINGERDOWN, x=x, y=y, dx=0.0, dy=0.0, touch_id=0, finger_id=0)
        )

    def run(
        self,
        stop: threading.Event,
        frame_s: float = 0.1,
        on_frame: Callable[[], Any] | None = None,
    ) -> None:
        """Draw and read taps until `stop` is set (or the window is closed)."""
        pg = self._pg
        while not stop.is_set():
            for event in pg.event.get():
                if not self.handle(event):
                    stop.set()
            self.render()
            pg.display.flip()
            if on_frame is not None:
                on_frame()
            stop.wait(frame_s)

    def close(self) -> None:
        """Close the window."""
        self._pg.display.quit()
