"""Screens in the browser, for smart TVs without a Pi: the lobby (a tile per counter), the
canteen (the latest calls, very large) and the entrance (latest calls and featured products).
Public, like the TVs themselves; no officer names. Speech is optional: the browser speaks a
call once someone has tapped the screen (browsers refuse audio before a gesture)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import (
    Blueprint,
    abort,
    current_app,
    g,
    render_template,
    send_from_directory,
)

from protocol import messages as m
from protocol.numbers import number_words, ticket_words
from protocol.site import Site
from protocol.texts import pause_notice
from web import base, live
from web.featured import FeaturedStore, media_name_ok
from web.hub_link import HubLink
from web.live import Event, sse
from web.security import public

bp = Blueprint("display", __name__)
CALL_ROWS = {"canteen": 4, "entrance": 3, "lobby": 0}


def call_text(site: Site, ticket: str, counter: int, lang: str, reading: str = "words") -> str:
    """'Nomor antrian A dua belas, silakan menuju loket tiga.' (English when lang is 'en')."""
    spec = site.counters.get(counter)
    named = spec is not None and spec.name is not None
    if lang == "en":
        where = (
            site.counter_name(counter, "en") if named else f"counter {number_words(counter, 'en')}"
        )
        return f"Ticket number {ticket_words(ticket, 'en', reading)}, please go to {where}."  # type: ignore[arg-type]
    where = site.counter_name(counter) if named else f"loket {number_words(counter)}"
    return f"Nomor antrian {ticket_words(ticket, 'id', reading)}, silakan menuju {where}."  # type: ignore[arg-type]


def utc_offset_minutes(site: Site, now: float) -> int:
    """The site's offset from UTC now, in minutes (the TV's clock shows the site's time)."""
    offset = site.local_now(now).utcoffset()
    return round(offset.total_seconds() / 60) if offset is not None else 0


def _zone(code: str) -> Any:
    zone = base.site().zones.get(code)
    if zone is None:
        abort(404)
    return zone


def zone_counters(site: Site, zone: str) -> list[int]:
    """Counters shown on a zone's lobby screen (every counter when none is in the zone)."""
    mine = [n for n, c in site.counters.items() if c.zone == zone]
    return mine or list(site.counters)


def tiles(service: HubLink, numbers: list[int]) -> list[tuple[int, m.CounterState | None]]:
    """Counter numbers with their latest state."""
    topics = service.bus.topics
    return [(n, service.retained.get(topics.counter_state(n))) for n in numbers]  # type: ignore[misc]


def calls(service: HubLink, count: int) -> list[m.CallInfo]:
    """The latest calls of the site (newest first)."""
    state = service.retained.get(service.bus.topics.site_state())
    return list(state.recent_calls[:count]) if isinstance(state, m.SiteState) else []


def zone_pause(service: HubLink, zone_code: str, lang: str) -> str | None:
    """The pause in force for the services shown in the zone (all, for zones without
    counters), as the screen says it; None without one."""
    site = service.site
    own = {code for n in zone_counters(site, zone_code) for code in site.counters[n].services}
    codes = [code for code in site.services if code in own] or list(site.services)
    topics = service.topics
    states = (service.retained.get(topics.service_state(code)) for code in codes)
    return pause_notice(site, (s for s in states if isinstance(s, m.ServiceState)), lang)


def zone_sound(service: HubLink, zone_code: str) -> m.ZoneSound:
    """How the zone's screens speak now (the hub's retained setting, else the inventory's)."""
    state = service.retained.get(service.bus.topics.zone_sound(zone_code))
    if isinstance(state, m.ZoneSound):
        return state
    return m.ZoneSound.of_inventory(zone_code, service.site.zones[zone_code])


def _lang(zone: Any) -> str:
    from flask import request

    return request.args.get("lang") if request.args.get("lang") in ("id", "en") else zone.lang


def _call_info(site: Site, call: m.CallInfo, lang: str, sound: m.ZoneSound) -> dict[str, Any]:
    return {
        "counter": call.counter,
        "ticket": call.ticket,
        "call_seq": call.call_seq,
        "called_at": call.called_at,
        "speak": call_text(site, call.ticket, call.counter, lang, sound.number_reading),
        "lang": "en-GB" if lang == "en" else "id-ID",
        "voice": sound.speech,
        "volume": sound.volume,
    }


@bp.get("/display")
@public
def index() -> Any:
    """The zones, each with a link to its screen."""
    return render_template("display_index.html")


@bp.get("/display/<zone_code>")
@public
def screen(zone_code: str) -> Any:
    """A zone's screen."""
    zone = _zone(zone_code)
    g.lang = _lang(zone)  # the screen's texts in its own language (the session keeps the user's)
    service, site = base.hub(), base.site()
    store: FeaturedStore = current_app.extensions["mpp_featured"]
    return render_template(
        "display.html",
        zone=zone,
        zone_code=zone_code,
        tiles=tiles(service, zone_counters(site, zone_code)) if zone.kind == "lobby" else [],
        calls=calls(service, CALL_ROWS[zone.kind]),
        products=store.all(zone_code) if zone.kind == "entrance" else [],
        inventory_products=list(enumerate(zone.featured)) if zone.kind == "entrance" else [],
        screen_lang=g.lang,
        sound=zone_sound(service, zone_code),
        utc_offset=utc_offset_minutes(site, service.clock()),
        pause=zone_pause(service, zone_code, _lang(zone)),
    )


@bp.get("/display/<zone_code>/events")
@public
def events(zone_code: str) -> Any:
    """Server-sent events: changed tiles or the latest calls, with what to say for a new call."""
    zone = _zone(zone_code)
    service, site, config = base.hub(), base.site(), current_app.config
    lang = _lang(zone)
    numbers = set(zone_counters(site, zone_code))
    rows = CALL_ROWS[zone.kind]

    def tile_event(number: int, state: m.CounterState | None) -> str:
        html = render_template("_display_tile.html", number=number, state=state, screen_lang=lang)
        call = None
        if state is not None and state.ticket and state.called_at:
            call = _call_info(
                site,
                m.CallInfo(
                    ticket=state.ticket,
                    service=state.service or "x",
                    counter=number,
                    call_seq=state.call_seq,
                    called_at=state.called_at,
                ),
                lang,
                zone_sound(service, zone_code),
            )
        seq = state.call_seq if state is not None else 0
        return sse(
            "tile",
            {
                "id": f"tile-{number}",
                "counter": number,
                "call_seq": seq,
                "html": html,
                "call": call,
                "now": service.clock(),
            },
        )

    def calls_event() -> str:
        latest = calls(service, rows)
        html = render_template("_display_calls.html", calls=latest, screen_lang=lang)
        sound = zone_sound(service, zone_code)
        info = [_call_info(site, c, lang, sound) for c in latest]
        return sse("calls", {"html": html, "calls": info, "now": service.clock()})

    def pause_event() -> str:
        html = render_template("_display_pause.html", pause=zone_pause(service, zone_code, lang))
        return sse("pause", {"html": html})

    def initial() -> list[str]:
        if rows:
            return [calls_event(), pause_event()]
        return [*(tile_event(n, s) for n, s in tiles(service, sorted(numbers))), pause_event()]

    def update(batch: list[Event]) -> list[str]:
        out: dict[str, str] = {}
        for _kind, message in batch:
            if isinstance(message, m.ServiceState):
                out["pause"] = pause_event()
            if rows and isinstance(message, m.SiteState):
                out["calls"] = calls_event()
            elif not rows and isinstance(message, m.CounterState) and message.counter in numbers:
                out[str(message.counter)] = tile_event(message.counter, message)
        return list(out.values())

    return live.response(base.feed(), initial, update, config)


@bp.get("/media/<name>")
@public
def media(name: str) -> Any:
    """An uploaded featured-product image."""
    if not media_name_ok(name):
        abort(404)
    return send_from_directory(current_app.config["MEDIA_DIR"], name, max_age=3600)


@bp.get("/media/featured/<sha256>.png")
@public
def featured_image(sha256: str) -> Any:
    """A featured product's image by its content hash, for the Pi displays (current products
    only; a hash names its content, so it may be cached for good)."""
    store: FeaturedStore = current_app.extensions["mpp_featured"]
    name = store.image_by_hash(sha256)
    if name is None or not media_name_ok(name):
        abort(404)
    return send_from_directory(
        current_app.config["MEDIA_DIR"], name, mimetype="image/png", max_age=365 * 86400
    )


@bp.get("/media/inventory/<zone_code>/<int:index>")
@public
def inventory_media(zone_code: str, index: int) -> Any:
    """A featured-product image named in the site inventory (relative to the inventory file)."""
    zone = _zone(zone_code)
    if not 0 <= index < len(zone.featured) or not base.site().source:
        abort(404)
    folder = Path(base.site().source).resolve().parent
    return send_from_directory(folder, zone.featured[index].image, max_age=3600)
