"""Online bookings (reservasi) at the site: what the region sends down, applied once each, and
the kiosk's check-in.

The region takes bookings; the site keeps a copy of each one ahead of its day (`bookings`), so
a citizen checks in at a kiosk even with the WAN down. The region's messages (`down/messages`)
are numbered per site; `region_messages` holds each applied id with what became of it, so a
message sent twice is applied once, and only in order (a gap waits for the region to send
again from the acknowledgement).

A check-in issues an ordinary ticket that joins the queue at check-in time (a booking is a
reservation, not a priority lane); the same code again gives the same ticket, never a second.

    upto = apply_batch(store, site, batch, now)    # inside the worker's transaction
"""

from __future__ import annotations

import hashlib
import logging
import sqlite3
from collections.abc import Callable
from datetime import date, datetime, timedelta

from hub.rules import ACTIVE, Queue, Refused, Ticket
from hub.store import Store
from hub.survey import record_for_ticket
from protocol import messages as m
from protocol.funnel import FunnelRow, merge
from protocol.site import Site, TextList, parse_hhmm
from protocol.texts import cost_text, date_text

log = logging.getLogger("mpp.hub.bookings")

SCHEMA = """
CREATE TABLE IF NOT EXISTS bookings (
    code TEXT PRIMARY KEY,
    service TEXT NOT NULL,
    day TEXT NOT NULL,
    start TEXT NOT NULL,
    "end" TEXT NOT NULL,
    lang TEXT NOT NULL DEFAULT 'id',
    status TEXT NOT NULL CHECK (status IN ('active', 'cancelled', 'checked_in', 'expired')),
    ticket INTEGER,
    received_at REAL NOT NULL,
    changed_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS bookings_day ON bookings (day, status);
CREATE TABLE IF NOT EXISTS region_messages (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    at REAL NOT NULL,
    applied_at REAL NOT NULL,
    result TEXT NOT NULL
);
"""
ACTIVE_BOOKING, CANCELLED, CHECKED_IN, EXPIRED = "active", "cancelled", "checked_in", "expired"


def create_schema(conn: sqlite3.Connection) -> None:
    """The booking tables in the hub's database (idempotent)."""
    conn.executescript(SCHEMA)


# -- the region's messages -------------------------------------------------------------------
def applied_upto(conn: sqlite3.Connection) -> int:
    """The highest region message id applied (every one before it is applied too)."""
    return int(conn.execute("SELECT COALESCE(MAX(id), 0) FROM region_messages").fetchone()[0])


def apply_batch(store: Store, site: Site, batch: m.DownBatch, now: float) -> int:
    """Apply the batch's messages not applied yet, in order, stopping at a gap (inside the
    caller's transaction); returns the acknowledgement: the highest id applied."""
    conn = store.conn
    upto = applied_upto(conn)
    for message in batch.messages:
        if message.id <= upto:
            continue  # sent again: applied already
        if message.id != upto + 1:
            log.info("region messages after a gap wait", extra={"applied": upto, "got": message.id})
            break
        result = _apply_one(store, site, message.body, now)
        conn.execute(
            "INSERT INTO region_messages (id, kind, at, applied_at, result) VALUES (?, ?, ?, ?, ?)",
            (message.id, message.body.kind, message.at, now, result),
        )
        log.info(
            "region message applied",
            extra={"id": message.id, "kind": message.body.kind, "result": result},
        )
        upto = message.id
    return upto


DownBody = m.BookingMade | m.BookingCancelled | m.SurveyAnswered


def _apply_one(store: Store, site: Site, body: DownBody, now: float) -> str:
    """What one message did: 'stored', 'cancelled', 'recorded', or why it changed nothing."""
    conn = store.conn
    match body:
        case m.BookingMade():
            cursor = conn.execute(
                'INSERT OR IGNORE INTO bookings (code, service, day, start, "end", lang, status, '
                "received_at, changed_at) VALUES (?, ?, ?, ?, ?, ?, 'active', ?, ?)",
                (body.code, body.service, body.day, body.start, body.end, body.lang, now, now),
            )
            if cursor.rowcount != 1:
                return "duplicate code"
            store.add_event("booking_received", now, service=body.service, detail=body.code)
            return "stored"
        case m.BookingCancelled():
            cursor = conn.execute(
                "UPDATE bookings SET status = 'cancelled', changed_at = ? "
                "WHERE code = ? AND status = 'active'",
                (now, body.code),
            )
            if cursor.rowcount != 1:
                row = conn.execute("SELECT status FROM bookings WHERE code = ?", (body.code,))
                found = row.fetchone()
                return f"not cancelled: {found[0] if found else 'unknown code'}"
            store.add_event("booking_cancelled", now, detail=body.code)
            return "cancelled"
        case m.SurveyAnswered():
            ticket = store.conn.execute(
                "SELECT * FROM tickets WHERE id = ?", (body.ticket,)
            ).fetchone()
            if ticket is None or token_hash(ticket["token"]) != body.token_sha256:
                return "refused: unknown ticket"
            try:
                record_for_ticket(store, site, ticket, body.scores, body.comment, now=now)
            except Refused as refusal:
                return f"refused: {refusal.code}"
            return "recorded"
    return "refused: unknown kind"


def token_hash(token: str) -> str:
    """A ticket token's SHA-256, as the region holds it."""
    return hashlib.sha256(token.encode()).hexdigest()


# -- check-in ----------------------------------------------------------------------------------
def window(site: Site, day: str, start: str) -> tuple[float, float]:
    """(opens, closes) of a booking's check-in window, epoch seconds: from
    `check_in_before_min` before the session's start to `check_in_after_min` after it."""
    begins = datetime.combine(date.fromisoformat(day), parse_hhmm(start), site.site.tz)
    rules = site.booking
    opens = begins - timedelta(minutes=rules.check_in_before_min)
    closes = begins + timedelta(minutes=rules.check_in_after_min)
    return opens.timestamp(), closes.timestamp()


def _refuse(code: str, message: str, text_id: str, text_en: str) -> Refused:
    return Refused(code, message, text_id, text_en)


def check_in(
    conn: sqlite3.Connection,
    queue: Queue,
    site: Site,
    command: m.CheckIn,
    *,
    now: float,
    issue: Callable[[str, str], Ticket],
) -> tuple[Ticket, bool]:
    """(ticket, reprint) for a booking code at a kiosk; Refused (having changed nothing) for an
    unknown, cancelled, expired, other-day or other-site code. `issue(service, code)` issues
    the new ticket (the hub's path, on its clock and token)."""
    code = command.code
    if command.site is not None and command.site != site.site.id:
        raise _refuse(
            "other_site",
            f"booking {code} names site {command.site!r}, not {site.site.id!r}",
            "Reservasi ini untuk MPP lain. Silakan datang ke MPP yang tertulis pada reservasi.",
            "This booking is for another MPP. Please go to the MPP named in your booking.",
        )
    row = conn.execute("SELECT * FROM bookings WHERE code = ?", (code,)).fetchone()
    if row is None:
        raise _refuse(
            "unknown_booking",
            f"no booking {code} at this site",
            "Kode reservasi tidak ditemukan di MPP ini. Periksa kode dan lokasi MPP pada "
            "reservasi Anda, atau ambil antrian biasa.",
            "Booking code not found at this MPP. Check the code and the MPP named in your "
            "booking, or take an ordinary ticket.",
        )
    if row["status"] == CANCELLED:
        raise _refuse(
            "booking_cancelled",
            f"booking {code} was cancelled",
            "Reservasi ini sudah dibatalkan. Silakan ambil antrian biasa.",
            "This booking was cancelled. Please take an ordinary ticket.",
        )
    if row["ticket"] is not None:
        ticket = queue.tickets.get(row["ticket"])
        if ticket is not None and ticket.status in ACTIVE:
            return ticket, True  # scanned again: the same ticket, printed again
        raise _refuse(
            "booking_used",
            f"booking {code} was checked in already and its ticket is no longer in the queue",
            "Reservasi ini sudah digunakan.",
            "This booking has been used already.",
        )
    today = site.business_day(now)
    booked_day = date.fromisoformat(row["day"])
    when = date_text(datetime.combine(booked_day, parse_hhmm(row["start"]), site.site.tz), "id")
    when_en = date_text(datetime.combine(booked_day, parse_hhmm(row["start"]), site.site.tz), "en")
    opens, closes = window(site, row["day"], row["start"])
    if row["status"] == EXPIRED or row["day"] < today or now > closes:
        until = datetime.fromtimestamp(closes, site.site.tz).strftime("%H:%M")
        raise _refuse(
            "booking_expired",
            f"booking {code}'s check-in window ended at {until} on {row['day']}",
            f"Waktu check-in reservasi ini sudah lewat (sampai pukul {until}, {when}). "
            "Silakan ambil antrian biasa.",
            f"The check-in time of this booking has passed (until {until}, {when_en}). "
            "Please take an ordinary ticket.",
        )
    if row["day"] != today:
        raise _refuse(
            "wrong_day",
            f"booking {code} is for {row['day']}, not today {today}",
            f"Reservasi ini untuk {when}, bukan hari ini.",
            f"This booking is for {when_en}, not today.",
        )
    if now < opens:
        at = datetime.fromtimestamp(opens, site.site.tz).strftime("%H:%M")
        raise _refuse(
            "too_early",
            f"check-in for booking {code} opens at {at}",
            f"Check-in reservasi ini dibuka pukul {at}. Silakan kembali nanti.",
            f"Check-in for this booking opens at {at}. Please come back then.",
        )
    if row["service"] not in site.services:
        raise _refuse(
            "unknown_service",
            f"booking {code} is for service {row['service']!r}, not in this inventory",
            "Layanan reservasi ini tidak tersedia. Silakan hubungi petugas.",
            "The service of this booking is not available. Please ask the staff.",
        )
    ticket = issue(row["service"], code)
    conn.execute(
        "UPDATE bookings SET status = 'checked_in', ticket = ?, changed_at = ? WHERE code = ?",
        (ticket.id, now, code),
    )
    return ticket, False


# -- no-shows and retention --------------------------------------------------------------------
def expire_no_shows(store: Store, site: Site, now: float) -> list[str]:
    """Bookings whose check-in window has ended without a check-in become no-shows (inside the
    caller's transaction); their seats are not given back. Bookings older than the inventory's
    retention are deleted. Returns the codes expired."""
    conn = store.conn
    today = site.business_day(now)
    expired = []
    for row in conn.execute(
        "SELECT code, service, day, start FROM bookings WHERE status = 'active' AND day <= ?",
        (today,),
    ).fetchall():
        if now > window(site, row["day"], row["start"])[1]:
            expired.append((row["code"], row["service"]))
    for code, service in expired:
        conn.execute(
            "UPDATE bookings SET status = 'expired', changed_at = ? WHERE code = ?", (now, code)
        )
        store.add_event("booking_expired", now, service=service, detail=code)
    oldest = date.fromisoformat(today) - timedelta(days=site.booking.retention_days)
    keep_from = oldest.isoformat()
    conn.execute("DELETE FROM bookings WHERE day < ?", (keep_from,))
    return [code for code, _ in expired]


def booking_offer(site: Site) -> m.BookingOffer:
    """The site's bookable services for the region (from the inventory)."""

    def lines(text_list: TextList) -> m.TextLines:
        return m.TextLines(id=text_list.id, en=text_list.en)

    rules = site.booking
    services = {}
    for code, service in site.services.items():
        if service.booking is None:
            continue
        services[code] = m.OfferService(
            requirements=lines(service.requirements),
            bring=lines(service.booking.bring),
            cost=m.Text(id=cost_text(service, "id"), en=cost_text(service, "en")),
            sessions=tuple(
                m.OfferSession(days=s.days, start=s.start, end=s.end, online_quota=s.online_quota)
                for s in service.booking.sessions
            ),
        )
    return m.BookingOffer(
        site=site.site.id,
        version=site.version,
        days_ahead=rules.days_ahead,
        check_in_before_min=rules.check_in_before_min,
        check_in_after_min=rules.check_in_after_min,
        retention_days=rules.retention_days,
        services=services,
    )


def funnel(conn: sqlite3.Connection, first: str, last: str) -> list[FunnelRow]:
    """The site's booking report for days `first`..`last` (YYYY-MM-DD): per day and service,
    booked -> checked in -> called -> served, no-shows, and the walk-ins beside them."""
    booked = conn.execute(
        "SELECT '', b.day, b.service, count(*), count(b.ticket), "
        "count(t.first_called_at), coalesce(sum(t.status = 'done'), 0), "
        "coalesce(sum(b.status = 'expired'), 0) "
        "FROM bookings b LEFT JOIN tickets t ON t.id = b.ticket "
        "WHERE b.status != 'cancelled' AND b.day BETWEEN ? AND ? GROUP BY b.day, b.service",
        (first, last),
    ).fetchall()
    walk_ins = conn.execute(
        "SELECT '', day, issued_service, count(*), count(first_called_at), "
        "coalesce(sum(status = 'done'), 0) FROM tickets WHERE booking IS NULL "
        "AND status != 'voided' AND day BETWEEN ? AND ? "
        "AND (day, issued_service) IN (SELECT day, service FROM bookings) "
        "GROUP BY day, issued_service",
        (first, last),
    ).fetchall()
    return merge((tuple(r) for r in booked), (tuple(r) for r in walk_ins))
