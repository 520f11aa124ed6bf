"""Online booking (reservasi) for citizens, phone-sized, Indonesian first: service -> date ->
session (with seats left) -> phone number -> booking code with its QR, the service's
requirements and what to bring, a calendar file, and a cancel link. No login: the booking's
page is found by its code, and cancelling needs the key that only its link carries.
"""

from __future__ import annotations

import base64
import re
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import qrcode
import qrcode.image.svg
from flask import Blueprint, Response, abort, g, redirect, render_template, request, url_for
from icalendar import Calendar, Event

from protocol import messages as m
from protocol.texts import date_text
from region import bookings as bk
from region.web import base
from region.web.security import public

bp = Blueprint("booking", __name__)
SITE_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
CODE_RE = re.compile(m.BOOKING_CODE_PATTERN)


def _site(site: str) -> tuple[m.BookingOffer, dict[str, Any]]:
    """A site's offer and its catalog row (name, time zone, services), or 404."""
    if not SITE_RE.fullmatch(site):
        abort(404)
    with base.db() as conn:
        offer = bk.load_offer(conn, site)
        row = conn.execute(
            "SELECT name, timezone, services FROM sites WHERE site = %s", (site,)
        ).fetchone()
    if offer is None or row is None:
        abort(404)
    return offer, {"id": site, "name": row[0], "tz": row[1], "services": row[2]}


def _service_name(info: dict[str, Any], code: str) -> str:
    name = info["services"].get(code, {}).get("name", {})
    return str(name.get(g.get("lang", "id")) or name.get("id") or code)


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        abort(404)


def day_label(day: date) -> str:
    """'Senin, 7 Desember 2026' (or in English)."""
    return date_text(datetime.combine(day, datetime.min.time()), g.get("lang", "id"))


@bp.get("/reservasi")
@public
def index() -> Any:
    """Step 1: the MPP and its bookable services."""
    with base.db() as conn:
        rows = conn.execute(
            "SELECT o.site, s.name, s.timezone, s.services, o.offer FROM booking_offers o "
            "JOIN sites s ON s.site = o.site ORDER BY s.name"
        ).fetchall()
    sites = []
    for site, name, _tz, services, raw in rows:
        offer = bk.offer_of(raw)
        info = {"services": services}
        choices = [(code, _service_name(info, code)) for code in sorted(offer.services)]
        if choices:
            sites.append({"id": site, "name": name, "services": choices})
    return render_template("booking_index.html", sites=sites)


@bp.get("/reservasi/<site>/<service>")
@public
def days(site: str, service: str) -> Any:
    """Step 2: the date (today up to the site's days ahead)."""
    offer, info = _site(site)
    if service not in offer.services:
        abort(404)
    open_days = bk.days_open(offer, service, base.now(), info["tz"])
    return render_template(
        "booking_days.html",
        info=info,
        service=service,
        service_name=_service_name(info, service),
        days=[(d.isoformat(), day_label(d)) for d in open_days],
    )


@bp.get("/reservasi/<site>/<service>/<day>")
@public
def sessions(site: str, service: str, day: str) -> Any:
    """Step 3: the session, with the seats left."""
    offer, info = _site(site)
    when = _day(day)
    slots = bk.sessions_on(offer, service, when, base.now(), info["tz"])
    if not slots:
        abort(404)
    with base.db() as conn:
        slots = bk.with_seats(conn, site, service, when, slots)
    return render_template(
        "booking_sessions.html",
        info=info,
        service=service,
        service_name=_service_name(info, service),
        day=day,
        day_text=day_label(when),
        slots=slots,
    )


@bp.route("/reservasi/<site>/<service>/<day>/<session>", methods=["GET", "POST"])
@public
def phone(site: str, service: str, day: str, session: str) -> Any:
    """Step 4: the phone number; the booking is made (or refused, saying why)."""
    offer, info = _site(site)
    when = _day(day)
    slots = bk.sessions_on(offer, service, when, base.now(), info["tz"])
    slot = next((s for s in slots if s.session == session), None)
    if slot is None:
        abort(404)
    error, status = None, 200
    if request.method == "POST":
        limit = base.region()["booking_limit"]
        if not limit.allow(f"ip:{request.remote_addr}"):
            error, status = base.t("book.limited"), 429
        else:
            try:
                hashed = bk.phone_hash(request.form.get("phone", ""), base.region()["phone_key"])
                with base.db() as conn:
                    made = bk.book(
                        conn,
                        offer,
                        service,
                        when,
                        session,
                        phone_hashed=hashed,
                        now=base.now(),
                        tz=info["tz"],
                        lang=g.get("lang", "id"),
                    )
                return redirect(url_for("booking.show", site=site, code=made.code, k=made.key))
            except bk.BookingRefused as refused:
                error = base.t(f"book.refused.{refused.key}")
                status = 409 if refused.key in ("full", "twice", "closed") else 400
    return render_template(
        "booking_phone.html",
        info=info,
        service=service,
        service_name=_service_name(info, service),
        day=day,
        day_text=day_label(when),
        slot=slot,
        error=error,
    ), status


def _booking(site: str, code: str) -> dict[str, Any]:
    if not CODE_RE.fullmatch(code):
        abort(404)
    with base.db() as conn:
        row = bk.booking(conn, code)
    if row is None or row["site"] != site:
        abort(404)
    return row


def booking_url(site: str, code: str) -> str:
    """What the booking's QR carries: its page on the region (a phone opens it; the kiosk's
    scanner reads the site and the code from it)."""
    return f"{base.config().web.public_url.rstrip('/')}/r/{site}/{code}"


def qr_data_uri(text: str) -> str:
    """An SVG QR code of `text` as a data: URI (the page's CSP allows data: images)."""
    image = qrcode.make(text, image_factory=qrcode.image.svg.SvgPathImage, border=2)
    return "data:image/svg+xml;base64," + base64.b64encode(image.to_string()).decode()


@bp.get("/r/<site>/<code>")
@public
def show(site: str, code: str) -> Any:
    """The booking: code, QR, when, check-in window, requirements, what to bring, calendar
    file; with the key of its link, the cancel button."""
    row = _booking(site, code)
    offer, info = _site(site)
    spec = offer.services.get(row["service"])
    lang = g.get("lang", "id")
    start, end = row["session"].split("-")
    begins = datetime.combine(
        row["day"], datetime.strptime(start, "%H:%M").time(), ZoneInfo(info["tz"])
    )
    opens = begins - timedelta(minutes=offer.check_in_before_min)
    closes = begins + timedelta(minutes=offer.check_in_after_min)
    key = request.args.get("k", "")
    can_cancel = (
        row["status"] == "active" and bk.key_matches(row, key) and base.now() < begins.timestamp()
    )

    def lines(text: m.TextLines) -> tuple[str, ...]:
        return text.en if lang == "en" and text.en else text.id

    return render_template(
        "booking_show.html",
        row=row,
        info=info,
        service_name=_service_name(info, row["service"]),
        day_text=day_label(row["day"]),
        start=start,
        end=end,
        opens=opens.strftime("%H:%M"),
        closes=closes.strftime("%H:%M"),
        requirements=lines(spec.requirements) if spec else (),
        bring=lines(spec.bring) if spec else (),
        cost=(spec.cost.en if lang == "en" else spec.cost.id) if spec else "",
        qr=qr_data_uri(booking_url(site, code)),
        key=key if can_cancel else "",
        cancelled=request.args.get("batal") == "1",
    )


@bp.get("/r/<site>/<code>/kalender.ics")
@public
def calendar(site: str, code: str) -> Any:
    """The booking as a calendar file (iCalendar): the session, where, the code."""
    row = _booking(site, code)
    _offer, info = _site(site)
    zone = ZoneInfo(info["tz"])
    start, end = (datetime.strptime(t, "%H:%M").time() for t in row["session"].split("-"))
    cal = Calendar()
    cal.add("prodid", "-//MPP Antrian//Reservasi//ID")
    cal.add("version", "2.0")
    event = Event()
    event.add("uid", f"{code}@{site}")
    event.add("dtstamp", datetime.fromtimestamp(row["created_at"], ZoneInfo("UTC")))
    event.add("dtstart", datetime.combine(row["day"], start, zone))
    event.add("dtend", datetime.combine(row["day"], end, zone))
    event.add("summary", f"{_service_name(info, row['service'])} · {info['name']}")
    event.add("location", info["name"])
    event.add("description", f"{base.t('book.code')}: {code}\n{booking_url(site, code)}")
    cal.add_component(event)
    return Response(
        cal.to_ical(),
        mimetype="text/calendar",
        headers={"Content-Disposition": f'attachment; filename="reservasi-{code}.ics"'},
    )


@bp.post("/r/<site>/<code>/batal")
@public
def cancel(site: str, code: str) -> Any:
    """Cancel by the link's key, before the session starts: the seat is free again."""
    _booking(site, code)
    _offer, info = _site(site)
    try:
        with base.db() as conn:
            bk.cancel(conn, code, request.form.get("k", ""), now=base.now(), tz=info["tz"])
    except bk.BookingRefused as refused:
        return render_template("message.html", message=base.t(f"book.cancel.{refused.key}")), 409
    return redirect(url_for("booking.show", site=site, code=code, batal=1))
