"""Online booking (reservasi) on the region: seats per session, codes, cancellation, and the
numbered messages that carry bookings, cancellations and survey answers down to each site.

The sites say what may be booked (`BookingOffer` on `up/booking`, from their inventories); the
region decides who gets a seat. The last seats are exact under any concurrency: a seat is
taken by one conditional UPDATE of the session's row (`booked < quota`), which PostgreSQL
serialises, inside the transaction that also stores the booking and its message to the site;
one active booking per phone per service per day is a partial unique index. Phone numbers are
kept only as a keyed hash (HMAC-SHA256 with the region's own key): matching needs no more.

    slots = sessions_on(offer, "ktp", day, now, tz)
    made = book(conn, offer, "ktp", day, "08:00-10:00", phone_hashed=h, now=now, tz=tz)
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
from psycopg import errors as pg_errors

from protocol import messages as m
from protocol.errors import MppError
from protocol.funnel import FunnelRow, merge

SCHEMA = """
CREATE TABLE IF NOT EXISTS booking_offers (
    site text PRIMARY KEY,
    offer jsonb NOT NULL,
    updated_at double precision NOT NULL
);
CREATE TABLE IF NOT EXISTS booking_seats (
    site text NOT NULL,
    service text NOT NULL,
    day date NOT NULL,
    session text NOT NULL,
    quota integer NOT NULL,
    booked integer NOT NULL DEFAULT 0,
    PRIMARY KEY (site, service, day, session)
);
CREATE TABLE IF NOT EXISTS bookings (
    code text PRIMARY KEY,
    site text NOT NULL,
    service text NOT NULL,
    day date NOT NULL,
    session text NOT NULL,
    phone_hash text NOT NULL,
    key_hash text NOT NULL,
    lang text NOT NULL DEFAULT 'id',
    status text NOT NULL CHECK (status IN ('active', 'cancelled', 'checked_in', 'expired')),
    ticket bigint,
    created_at double precision NOT NULL,
    changed_at double precision NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS bookings_one_per_phone
    ON bookings (site, service, day, phone_hash) WHERE status IN ('active', 'checked_in');
CREATE INDEX IF NOT EXISTS bookings_day ON bookings (site, day);
CREATE TABLE IF NOT EXISTS down_links (
    site text PRIMARY KEY,
    last_id bigint NOT NULL DEFAULT 0,
    applied bigint NOT NULL DEFAULT 0,
    answered_at double precision
);
CREATE TABLE IF NOT EXISTS down_queue (
    site text NOT NULL,
    id bigint NOT NULL,
    at double precision NOT NULL,
    body jsonb NOT NULL,
    PRIMARY KEY (site, id)
);
"""
DOWN_CHANNEL = "mpp_down"  # NOTIFY: a message for a site waits to be sent
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
PHONE_RE = re.compile(r"^628[0-9]{7,11}$")


class BookingRefused(MppError):
    """A booking or cancellation the rules refuse; `key` names the citizen's text."""

    def __init__(self, key: str, message: str) -> None:
        self.key = key
        super().__init__(message)


def create_schema(conn: psycopg.Connection) -> None:
    """The booking tables (idempotent; inside the caller's transaction)."""
    conn.execute(SCHEMA)


# -- pure parts -------------------------------------------------------------------------------
def normal_phone(text: str) -> str:
    """An Indonesian mobile number as 62812...: spaces, dashes, dots and brackets dropped,
    +62 / 0 in front made 62; BookingRefused('phone') when it is not one."""
    digits = re.sub(r"[\s().-]", "", text or "")
    if digits.startswith("+"):
        digits = digits[1:]
    if digits.startswith("0"):
        digits = "62" + digits[1:]
    if not PHONE_RE.fullmatch(digits):
        raise BookingRefused("phone", f"{text[:40]!r} is not an Indonesian mobile number")
    return digits


def phone_hash(phone: str, key: str) -> str:
    """The keyed hash a phone number is kept as (HMAC-SHA256): matching works, reading back
    does not, and without the key no list of every number reverses it."""
    return hmac.new(key.encode(), normal_phone(phone).encode(), hashlib.sha256).hexdigest()


def new_code() -> str:
    """A booking code: 8 of 32 unambiguous characters (40 bits; no 0/O, 1/I)."""
    return "".join(secrets.choice(m.BOOKING_CODE_ALPHABET) for _ in range(8))


def key_hash(key: str) -> str:
    """How a cancel link's key is kept."""
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True)
class Slot:
    """A session of a service on one day, with its seats."""

    session: str  # '08:00-10:00'
    start: str
    end: str
    quota: int
    booked: int = 0
    open: bool = True  # may still be booked (it has not started)

    @property
    def left(self) -> int:
        """Seats left."""
        return max(0, self.quota - self.booked)


def offer_of(raw: dict[str, Any]) -> m.BookingOffer:
    """A stored offer back as the message."""
    return m.BookingOffer.model_validate(raw)


def days_open(offer: m.BookingOffer, service: str, now: float, tz: str) -> list[date]:
    """The days (today up to `days_ahead` ahead) on which `service` has a session."""
    spec = offer.services.get(service)
    if spec is None:
        return []
    today = datetime.fromtimestamp(now, ZoneInfo(tz)).date()
    weekdays = {day for s in spec.sessions for day in s.days}
    closed = set(offer.closed_days)
    return [
        d
        for d in (today + timedelta(days=i) for i in range(offer.days_ahead + 1))
        if WEEKDAYS[d.weekday()] in weekdays and d.isoformat() not in closed
    ]


def sessions_on(offer: m.BookingOffer, service: str, day: date, now: float, tz: str) -> list[Slot]:
    """The sessions of `service` on `day` (seats not counted: see `with_seats`); one that has
    started may not be booked any more."""
    spec = offer.services.get(service)
    if spec is None or day not in days_open(offer, service, now, tz):
        return []
    zone = ZoneInfo(tz)
    slots = []
    for s in sorted(spec.sessions, key=lambda s: s.start):
        if WEEKDAYS[day.weekday()] not in s.days:
            continue
        begins = datetime.combine(day, datetime.strptime(s.start, "%H:%M").time(), zone)
        opened = now < begins.timestamp()
        slots.append(Slot(f"{s.start}-{s.end}", s.start, s.end, s.online_quota, open=opened))
    return slots


def with_seats(
    conn: psycopg.Connection, site: str, service: str, day: date, slots: list[Slot]
) -> list[Slot]:
    """The slots with how many seats each has taken."""
    booked = dict(
        conn.execute(
            "SELECT session, booked FROM booking_seats WHERE site = %s AND service = %s "
            "AND day = %s",
            (site, service, day),
        ).fetchall()
    )
    return [
        Slot(s.session, s.start, s.end, s.quota, booked.get(s.session, 0), s.open) for s in slots
    ]


# -- storing ------------------------------------------------------------------------------------
def save_offer(conn: psycopg.Connection, offer: m.BookingOffer, now: float) -> None:
    """Keep a site's latest offer (from its retained `up/booking`)."""
    conn.execute(
        "INSERT INTO booking_offers (site, offer, updated_at) VALUES (%s, %s, %s) "
        "ON CONFLICT (site) DO UPDATE SET offer = excluded.offer, updated_at = excluded.updated_at",
        (offer.site, json.dumps(offer.model_dump(mode="json")), now),
    )


def load_offer(conn: psycopg.Connection, site: str) -> m.BookingOffer | None:
    """A site's offer, if it sent one."""
    row = conn.execute("SELECT offer FROM booking_offers WHERE site = %s", (site,)).fetchone()
    return offer_of(row[0]) if row else None


def queue_down(conn: psycopg.Connection, site: str, body: Any, now: float) -> int:
    """A message to `site`, numbered after its last one (inside the caller's transaction)."""
    conn.execute("INSERT INTO down_links (site) VALUES (%s) ON CONFLICT DO NOTHING", (site,))
    row = conn.execute(
        "UPDATE down_links SET last_id = last_id + 1 WHERE site = %s RETURNING last_id", (site,)
    ).fetchone()
    assert row is not None
    conn.execute(
        "INSERT INTO down_queue (site, id, at, body) VALUES (%s, %s, %s, %s)",
        (site, row[0], now, json.dumps(body.model_dump(mode="json"))),
    )
    conn.execute(f"NOTIFY {DOWN_CHANNEL}")
    return int(row[0])


@dataclass(frozen=True)
class Made:
    """A booking made: its code and the key of its cancel link (kept only hashed)."""

    code: str
    key: str


def book(
    conn: psycopg.Connection,
    offer: m.BookingOffer,
    service: str,
    day: date,
    session: str,
    *,
    phone_hashed: str,
    now: float,
    tz: str,
    lang: str = "id",
) -> Made:
    """Take a seat (one transaction); BookingRefused('full' | 'twice' | 'closed')."""
    slots = sessions_on(offer, service, day, now, tz)
    slot = next((s for s in slots if s.session == session), None)
    if slot is None or not slot.open:
        raise BookingRefused("closed", f"{service} {day} {session} cannot be booked now")
    site = offer.site
    made = Made(new_code(), secrets.token_urlsafe(16))
    try:
        with conn.transaction():
            conn.execute(
                "INSERT INTO booking_seats (site, service, day, session, quota) "
                "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (site, service, day, session) "
                "DO UPDATE SET quota = excluded.quota",
                (site, service, day, session, slot.quota),
            )
            seat = conn.execute(
                "UPDATE booking_seats SET booked = booked + 1 WHERE site = %s AND service = %s "
                "AND day = %s AND session = %s AND booked < quota RETURNING booked",
                (site, service, day, session),
            ).fetchone()
            if seat is None:
                raise BookingRefused("full", f"{service} {day} {session} is fully booked")
            conn.execute(
                "INSERT INTO bookings (code, site, service, day, session, phone_hash, key_hash, "
                "lang, status, created_at, changed_at) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, 'active', %s, %s)",
                (made.code, site, service, day, session, phone_hashed, key_hash(made.key), lang,
                 now, now),
            )  # fmt: skip
            body = m.BookingMade(
                code=made.code,
                service=service,
                day=day.isoformat(),
                start=slot.start,
                end=slot.end,
                lang=lang if lang in ("id", "en") else "id",
            )
            queue_down(conn, site, body, now)
    except pg_errors.UniqueViolation as exc:
        if "bookings_one_per_phone" in str(exc):
            raise BookingRefused(
                "twice", f"this phone has a booking for {service} on {day} already"
            ) from None
        raise  # a code drawn twice (1 in 10^12): the citizen tries again
    return made


def booking(conn: psycopg.Connection, code: str) -> dict[str, Any] | None:
    """A booking by code (as a dict of its columns), if any."""
    with conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        return cur.execute("SELECT * FROM bookings WHERE code = %s", (code,)).fetchone()


def key_matches(row: dict[str, Any], key: str) -> bool:
    """Whether `key` is the booking's cancel key."""
    return bool(key) and hmac.compare_digest(row["key_hash"], key_hash(key))


def cancel(conn: psycopg.Connection, code: str, key: str, *, now: float, tz: str) -> None:
    """Cancel by link before the session starts: the seat is free again and the site is told
    (one transaction); BookingRefused('unknown' | 'not_active' | 'started')."""
    row = booking(conn, code)
    if row is None or not key_matches(row, key):
        raise BookingRefused("unknown", f"no booking {code} with that key")
    start = row["session"].split("-")[0]
    begins = datetime.combine(row["day"], datetime.strptime(start, "%H:%M").time(), ZoneInfo(tz))
    if now >= begins.timestamp():
        raise BookingRefused("started", f"booking {code}'s session has started")
    with conn.transaction():
        conn.execute(
            "SELECT booked FROM booking_seats WHERE site = %s AND service = %s AND day = %s "
            "AND session = %s FOR UPDATE",
            (row["site"], row["service"], row["day"], row["session"]),
        )  # the same lock order as `book`
        done = conn.execute(
            "UPDATE bookings SET status = 'cancelled', changed_at = %s "
            "WHERE code = %s AND status = 'active' RETURNING code",
            (now, code),
        ).fetchone()
        if done is None:
            raise BookingRefused("not_active", f"booking {code} is {row['status']}")
        conn.execute(
            "UPDATE booking_seats SET booked = booked - 1 WHERE site = %s AND service = %s "
            "AND day = %s AND session = %s AND booked > 0",
            (row["site"], row["service"], row["day"], row["session"]),
        )
        queue_down(conn, row["site"], m.BookingCancelled(code=code), now)


def site_events(cur: psycopg.Cursor[Any], site: str, events: list[m.OutboxEvent]) -> None:
    """What the site reports of its bookings (inside ingest's transaction): checked in (with
    the ticket), expired as no-shows."""
    checked = [(e.ticket, e.at, site, e.detail) for e in events if e.kind == "checked_in"]
    expired = [(e.at, site, e.detail) for e in events if e.kind == "booking_expired"]
    if checked:
        cur.executemany(
            "UPDATE bookings SET status = 'checked_in', ticket = %s, changed_at = %s "
            "WHERE site = %s AND code = %s",
            checked,
        )
    if expired:
        cur.executemany(
            "UPDATE bookings SET status = 'expired', changed_at = %s "
            "WHERE site = %s AND code = %s AND status = 'active'",
            expired,
        )


def prune(conn: psycopg.Connection, now: float, tz: str) -> int:
    """Delete bookings (and their seat counts) older than each site's retention."""
    today = datetime.fromtimestamp(now, ZoneInfo(tz)).date()
    deleted = 0
    with conn.transaction():
        for site, raw in conn.execute("SELECT site, offer FROM booking_offers").fetchall():
            keep_from = today - timedelta(days=int(raw["retention_days"]))
            cur = conn.execute(
                "DELETE FROM bookings WHERE site = %s AND day < %s", (site, keep_from)
            )
            deleted += cur.rowcount
            conn.execute(
                "DELETE FROM booking_seats WHERE site = %s AND day < %s", (site, keep_from)
            )
    return deleted


def funnel(
    conn: psycopg.Connection, first: date, last: date, site: str | None = None
) -> list[FunnelRow]:
    """The region's booking report: per site, day and service, booked -> checked in ->
    called -> served, no-shows, and the walk-ins beside them (tickets without a booking)."""
    args = {"first": first, "last": last, "site": site}
    booked = conn.execute(
        "SELECT b.site, b.day::text, b.service, count(*), count(b.ticket), "
        "count(t.first_called_at), count(*) FILTER (WHERE t.status = 'done'), "
        "count(*) FILTER (WHERE b.status = 'expired') "
        "FROM bookings b LEFT JOIN tickets t ON t.site = b.site AND t.id = b.ticket "
        "WHERE b.status != 'cancelled' AND b.day BETWEEN %(first)s AND %(last)s "
        "AND (%(site)s::text IS NULL OR b.site = %(site)s) GROUP BY b.site, b.day, b.service",
        args,
    ).fetchall()
    walk_ins = conn.execute(
        "SELECT t.site, t.day::text, t.issued_service, count(*), count(t.first_called_at), "
        "count(*) FILTER (WHERE t.status = 'done') FROM tickets t "
        "WHERE t.day BETWEEN %(first)s AND %(last)s AND t.status != 'voided' "
        "AND (%(site)s::text IS NULL OR t.site = %(site)s) "
        "AND NOT EXISTS (SELECT 1 FROM bookings b WHERE b.site = t.site AND b.ticket = t.id) "
        "AND (t.site, t.day, t.issued_service) IN (SELECT site, day, service FROM bookings) "
        "GROUP BY t.site, t.day, t.issued_service",
        args,
    ).fetchall()
    return merge(booked, walk_ins)
