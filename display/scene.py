"""What each region of a screen shows right now, as plain values (pure; no pygame).

The render loop builds a scene from the model, the clock and the highlights, and the renderer
redraws exactly the regions whose content differs from what is on the glass:

    builder = SceneBuilder(site, "lobby", layout, lang="id", base_dir=Path("examples"))
    scene = builder.build(model, now=time.time(), lit={(3, 7): True}, offline=False)
    scene["call"].items[1].text        # 'A012'
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from display.layout import Layout
from display.state import Call, ScreenModel
from protocol import messages as m
from protocol.site import Site
from protocol.texts import (
    CLOCK_UNSYNCED_MARK,
    away_texts,
    cost_text,
    date_text,
    mark_text,
    pause_notice,
    paused_until_text,
    service_mark,
    time_class_text,
)

LABELS: dict[str, dict[str, str]] = {
    "id": {
        "calling": "NOMOR ANTRIAN",
        "calling_priority": "NOMOR ANTRIAN PRIORITAS",
        "no_call": "Belum ada panggilan",
        "number": "NOMOR",
        "counter": "LOKET",
        "waiting": "Menunggu per layanan",
        "waiting_n": "{n} menunggu",
        "offline": "● Tidak terhubung",
        "menu": "Menu Kantin",
        "products": "Produk Unggulan UMKM",
        "services": "Layanan · waktu · biaya · antrian",
        "page": "{page}/{pages}",
    },
    "en": {
        "calling": "NOW CALLING",
        "calling_priority": "NOW CALLING · PRIORITY",
        "no_call": "No calls yet",
        "number": "NUMBER",
        "counter": "COUNTER",
        "waiting": "Waiting per service",
        "waiting_n": "{n} waiting",
        "offline": "● Offline",
        "menu": "Canteen menu",
        "products": "Featured local products",
        "services": "Services · time · cost · queue",
        "page": "{page}/{pages}",
    },
}
EMPTY_TICKET = "—"
ARROW = "→"


@dataclass(frozen=True)
class Item:
    """One thing drawn in a part of a region: a text in a style, or an image with its caption."""

    part: str
    text: str = ""
    style: str = "body"
    align: str = "left"
    image: str | None = None
    group: str | None = None  # items of a group in a region share one font size (lists)


@dataclass(frozen=True)
class Content:
    """Everything one region shows; equal contents need no redraw."""

    background: str
    items: tuple[Item, ...] = ()

    def text(self, part: str) -> str:
        """The text drawn in `part` ('' when nothing is)."""
        return next((i.text for i in self.items if i.part == part), "")


Scene = dict[str, Content]


@dataclass(frozen=True)
class Timing:
    """How often pages, slides and the ticker turn (seconds)."""

    page_s: float = 10.0
    slide_s: float = 8.0
    ticker_s: float = 6.0


def zone_counters(site: Site, zone: str) -> tuple[int, ...]:
    """The counters a zone's screens follow: those in the zone, or every counter if none are."""
    own = tuple(n for n, c in sorted(site.counters.items()) if c.zone == zone)
    return own or tuple(sorted(site.counters))


def zone_services(site: Site, counters: tuple[int, ...]) -> tuple[str, ...]:
    """Services served at `counters`, in inventory order."""
    served = {code for n in counters for code in site.counters[n].services}
    return tuple(code for code in site.services if code in served)


def no_images(_sha256: str) -> str | None:
    """No image of the admin's featured products is at hand: their slides show captions."""
    return None


@dataclass
class SceneBuilder:
    """Builds the scene of one zone's screen from the model and the clock.

    `image_for(sha256)` is the file of a downloaded featured-product image, or None.
    """

    site: Site
    zone_id: str
    layout: Layout
    lang: str = "id"
    base_dir: Path = Path()
    timing: Timing = field(default_factory=Timing)
    image_for: Callable[[str], str | None] = no_images

    def __post_init__(self) -> None:
        self.zone = self.site.zones[self.zone_id]
        self.counters = zone_counters(self.site, self.zone_id)
        services = zone_services(self.site, self.counters)
        self.services = services if self.zone.kind == "lobby" else tuple(self.site.services)
        self.labels = LABELS[self.lang]

    # -- helpers ---------------------------------------------------------------------------
    def _page(self, now: float, period: float, count: int) -> int:
        return int(now // period) % count if count > 0 else 0

    def _header(self, model: ScreenModel, now: float, offline: bool) -> Scene:
        local = self.site.local_now(now + model.clock_offset)
        return {
            "header": Content("header"),
            "title": Content(
                "header",
                (
                    Item("name", self.site.site.name, "title"),
                    Item("zone", self.zone.name.get(self.lang), "subtitle"),
                ),
            ),
            "status": Content("header", self._status(model, offline)),
            "clock": Content(
                "header",
                (
                    Item("time", local.strftime("%H:%M"), "title", "right"),
                    Item("date", date_text(local, self.lang), "subtitle", "right"),
                ),
            ),
        }

    def _status(self, model: ScreenModel, offline: bool) -> tuple[Item, ...]:
        """The header's mark: offline, or the hub not trusting its clock (no tickets now)."""
        if offline:
            return (Item("mark", self.labels["offline"], "alert", "center"),)
        if model.summary is not None and not model.summary.clock_ok:
            return (Item("mark", CLOCK_UNSYNCED_MARK[self.lang], "alert", "center"),)
        return ()

    def _service_mark(self, model: ScreenModel, code: str) -> str | None:
        """'Tutup' / 'Kuota habis' / 'jeda s.d. 13:00' when the service takes no tickets now,
        else None."""
        state = model.services.get(code)
        if state is not None and state.pause is not None and not state.open:
            return paused_until_text(self.site.local_now(state.pause.until), self.lang)
        mark = service_mark(state.open, state.quota_left) if state is not None else None
        return mark_text(mark, self.lang) if mark is not None else None

    def pause_notice(self, model: ScreenModel) -> str | None:
        """What the screen says of a pause in force for its services, or None."""
        return pause_notice(self.site, (model.services.get(c) for c in self.services), self.lang)

    def slides(self, model: ScreenModel) -> list[tuple[str | None, str]]:
        """(image file or None, caption) of each slide: the admin's featured products when the
        hub sent some for this zone, else the inventory's."""
        admin = model.featured.get(self.zone_id)
        if admin is not None and admin.slides:
            ordered: list[m.FeaturedSlide] = sorted(admin.slides, key=lambda s: s.order)
            return [(self.image_for(s.image_sha256), s.caption.get(self.lang)) for s in ordered]
        return [
            (str(self.base_dir / f.image), f.caption.get(self.lang)) for f in self.zone.featured
        ]

    def _slide(self, model: ScreenModel, now: float) -> tuple[str | None, str]:
        slides = self.slides(model)
        if not slides:
            return None, self.site.site.name
        return slides[self._page(now, self.timing.slide_s, len(slides))]

    # -- zones -----------------------------------------------------------------------------
    def build(
        self, model: ScreenModel, now: float, lit: dict[tuple[int, int], bool], offline: bool
    ) -> Scene:
        """The scene at `now`; `lit` maps highlighted call keys to their blink phase (on/off)."""
        scene = self._header(model, now, offline)
        if self.zone.kind == "lobby":
            scene.update(self._lobby(model, now, lit))
        elif self.zone.kind == "canteen":
            scene.update(self._canteen(model, now, lit))
        else:
            scene.update(self._entrance(model, now))
        return scene

    def _lobby(self, model: ScreenModel, now: float, lit: dict[tuple[int, int], bool]) -> Scene:
        scene: Scene = {}
        newest = model.newest(now)
        on = newest is not None and lit.get(newest.key, False)
        if newest is None:
            items = (
                Item("label", self.labels["calling"], "label", "center"),
                Item("ticket", EMPTY_TICKET, "ticket", "center"),
                Item("service", self.labels["no_call"], "body", "center"),
            )
        else:
            label = self.labels["calling_priority" if newest.priority else "calling"]
            items = (
                Item("label", label, "accent" if newest.priority else "label", "center"),
                Item("ticket", newest.ticket, "ticket", "center"),
                Item(
                    "counter",
                    f"{ARROW} {self.site.counter_name(newest.counter, self.lang).upper()}",
                    "counter",
                    "center",
                ),
                Item("service", self._service_name(newest), "body", "center"),
            )
        scene["call"] = Content("highlight" if on else "call", items)
        for i, number in enumerate(self.counters):
            state = model.counters.get(number)
            ticket = model.shown_ticket(number, now)
            key = (number, state.call_seq) if state is not None else None
            lit_now = key is not None and ticket is not None and lit.get(key, False)
            away = away_texts(self.site, number, state, self.lang) if ticket is None else None
            closed = (state is not None and not state.open and ticket is None) or away is not None
            shown = mark_text("closed", self.lang) if closed else (ticket or EMPTY_TICKET)
            name = self.site.counter_name(number, self.lang)
            if away is not None:
                name, shown = away
            priority = ticket is not None and state is not None and state.priority
            label = f"{name} · {mark_text('priority', self.lang)}" if priority else name
            scene[f"counter-{i}"] = Content(
                "highlight" if lit_now else ("tile-closed" if closed else "tile"),
                (
                    Item("label", label, "accent" if priority else "label", "center"),
                    Item("ticket", shown, "muted" if closed else "ticket", "center"),
                ),
            )
        rows = self.layout.pages.get("services", 1)
        pages = max(1, math.ceil(len(self.services) / rows))
        page = self._page(now, self.timing.page_s, pages)
        heading = self.labels["waiting"]
        if pages > 1:
            heading += "  " + self.labels["page"].format(page=page + 1, pages=pages)
        items_list = [Item("heading", heading, "label")]
        for i, code in enumerate(self.services[page * rows : (page + 1) * rows]):
            service = self.site.services[code]
            state = model.services.get(code)
            mark = self._service_mark(model, code)
            if mark is not None:  # no tickets now: say why, not '0'
                count = Item(f"count-{i}", mark, "alert", "right", group="marks")
            else:
                waiting = "–" if state is None else str(state.waiting)
                count = Item(f"count-{i}", waiting, "accent", "right", group="counts")
            items_list += [
                Item(
                    f"name-{i}",
                    f"{service.prefix}  {service.name.get(self.lang)}",
                    "body",
                    group="names",
                ),
                count,
            ]
        scene["services"] = Content("panel", tuple(items_list))
        notice = self.pause_notice(model)
        ticker = (
            Item("text", notice, "alert") if notice else Item("text", self._ticker(now), "ticker")
        )
        scene["ticker"] = Content("ticker", (ticker,))
        return scene

    def _service_name(self, call: Call) -> str:
        service = self.site.services.get(call.service or "")
        return service.name.get(self.lang) if service is not None else ""

    def _ticker(self, now: float) -> str:
        codes = self.services
        if not codes:
            return self.site.site.name
        code = codes[self._page(now, self.timing.ticker_s, len(codes))]
        service = self.site.services[code]
        time_class = self.site.time_classes[service.time_class]
        return (
            f"{service.name.get(self.lang)} ({service.prefix}) — "
            f"{time_class_text(time_class, self.lang)} · {cost_text(service, self.lang)}"
        )

    def _canteen(self, model: ScreenModel, now: float, lit: dict[tuple[int, int], bool]) -> Scene:
        scene: Scene = {
            "calls-head": Content(
                "panel",
                (
                    Item("ticket", self.labels["number"], "label", "center"),
                    Item("counter", self.labels["counter"], "label", "center"),
                ),
            )
        }
        recent = model.recent(now)
        rows = sum(1 for name in self.layout.names() if name.startswith("call-"))
        for i in range(rows):
            if i < len(recent):
                call = recent[i]
                on = lit.get(call.key, False)
                items = [
                    Item("ticket", call.ticket, "ticket", "center"),
                    Item("counter", str(call.counter), "ticket", "center"),
                ]
                if call.priority:
                    mark = mark_text("priority", self.lang).upper()
                    items.append(Item("mark", mark, "accent", "center"))
                # Marked while its blink lasts only: afterwards it is one of the last calls.
                scene[f"call-{i}"] = Content("highlight" if on else "tile", tuple(items))
            else:
                scene[f"call-{i}"] = Content("tile")
        menu = self.zone.menu
        rows_per_page = self.layout.pages.get("menu", 1)
        pages = max(1, math.ceil(len(menu) / rows_per_page))
        page = self._page(now, self.timing.page_s, pages)
        notice = self.pause_notice(model)
        items = [
            Item("heading", notice, "alert")
            if notice
            else Item("heading", self.labels["menu" if menu else "products"], "label")
        ]
        items += [
            Item(f"item-{i}", text, "body", group="menu")
            for i, text in enumerate(menu[page * rows_per_page : (page + 1) * rows_per_page])
        ]
        if self.zone.featured:  # the layout has room for products only then
            image, caption = self._slide(model, now)
            items += [Item("image", caption, "body", "center", image=image)]
            items += [Item("caption", caption, "subtitle", "center")]
        scene["panel"] = Content("panel", tuple(items))
        return scene

    def _entrance(self, model: ScreenModel, now: float) -> Scene:
        image, caption = self._slide(model, now)
        scene: Scene = {
            "slide": Content(
                "panel",
                (
                    Item("image", caption, "body", "center", image=image),
                    Item("caption", caption, "subtitle", "center"),
                ),
            )
        }
        rows = self.layout.pages.get("services", 1)
        pages = max(1, math.ceil(len(self.services) / rows))
        page = self._page(now, self.timing.page_s, pages)
        heading = self.labels["services"]
        if pages > 1:
            heading += "  " + self.labels["page"].format(page=page + 1, pages=pages)
        notice = self.pause_notice(model)
        items = [Item("heading", notice, "alert") if notice else Item("heading", heading, "label")]
        for i, code in enumerate(self.services[page * rows : (page + 1) * rows]):
            service = self.site.services[code]
            state = model.services.get(code)
            time_class = self.site.time_classes[service.time_class]
            detail = [time_class_text(time_class, self.lang), cost_text(service, self.lang)]
            if state is not None:
                mark = self._service_mark(model, code)
                detail.append(mark or self.labels["waiting_n"].format(n=state.waiting))
            items += [
                Item(
                    f"name-{i}",
                    f"{service.prefix}  {service.name.get(self.lang)}",
                    "body",
                    group="names",
                ),
                Item(f"detail-{i}", " · ".join(detail), "muted", group="details"),
            ]
        scene["services"] = Content("panel", tuple(items))
        return scene

    # -- timing ----------------------------------------------------------------------------
    def next_change(self, now: float) -> float:
        """The next moment the scene changes by the clock alone (minute, page, slide, ticker)."""
        periods = [60.0, self.timing.page_s]
        if self.zone.kind == "lobby":
            periods.append(self.timing.ticker_s)
        if self.zone.featured or self.zone.kind == "entrance":  # the admin's products too
            periods.append(self.timing.slide_s)
        return min((math.floor(now / p) + 1) * p for p in periods)


class Highlights:
    """Which new calls blink now: from arrival until their announcement has ended.

    A spoken call blinks while it waits for and plays its announcement (the blink phase
    restarts when the chime starts, so light and sound begin together), then `linger_s` more;
    a muted call blinks for `blink_s`.
    """

    def __init__(
        self,
        blink_s: float = 6.0,
        period_s: float = 1.0,
        linger_s: float = 2.0,
        max_s: float = 60.0,
    ) -> None:
        self.blink_s = blink_s
        self.period_s = period_s
        self.linger_s = linger_s
        self.max_s = max_s
        self._calls: dict[tuple[int, int], list[float]] = {}  # key -> [since, phase, until]

    def add(self, key: tuple[int, int], now: float, spoken: bool) -> None:
        """A new call arrived; `spoken`: an announcement will follow."""
        self._calls[key] = [now, now, now + (self.max_s if spoken else self.blink_s)]

    def started(self, key: tuple[int, int], now: float) -> None:
        """Its announcement began playing: blink from here in step with the chime."""
        if key in self._calls:
            self._calls[key][1] = now

    def finished(self, key: tuple[int, int], now: float) -> None:
        """Its announcement ended (or failed): stop blinking soon."""
        if key in self._calls:
            since = self._calls[key][0]
            self._calls[key][2] = max(since + self.blink_s, now + self.linger_s)

    def lit(self, now: float) -> dict[tuple[int, int], bool]:
        """Active highlights and whether each is in its 'on' half of the blink."""
        self._calls = {k: v for k, v in self._calls.items() if now < v[2]}
        half = self.period_s / 2
        return {k: int((now - v[1]) // half) % 2 == 0 for k, v in self._calls.items()}

    def next_change(self, now: float) -> float | None:
        """When the blink next toggles or ends (None when nothing blinks)."""
        half = self.period_s / 2
        times = []
        for _since, phase, until in self._calls.values():
            if now < until:
                times.append(min(until, phase + (math.floor((now - phase) / half) + 1) * half))
        return min(times) if times else None
