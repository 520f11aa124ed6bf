"""What a citizen's phone shows of a ticket on the region's public page (no personal data).

The region never holds a ticket's token, only its SHA-256 (from the ticket's `issued` event):
`/t/<token>` hashes what the phone sends and looks that up. The figures come from the site's
hub as it computed them (`QueueView`: people ahead is the ticket's place in the hub's call
order, with the hub's estimate); the region renders, it does not re-derive. When the site's
link is down the page says since when its figures are old.

    found = find_ticket(conn, token)
    state = ticket_state(found, view, now=now, link_timeout_s=35, lang="id")
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
from psycopg.rows import dict_row

from protocol import messages as m
from protocol.texts import wait_text

TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
ACTIVE = ("waiting", "called", "skipped")

WORDS: dict[str, dict[str, str]] = {
    "id": {
        "waiting": "Menunggu",
        "called": "Dipanggil",
        "skipped": "Terlewat",
        "done": "Selesai dilayani",
        "voided": "Dibatalkan",
        "expired": "Kedaluwarsa",
        "go": "Silakan menuju {counter}",
        "missed": "Nomor Anda terlewat di {counter}. Silakan lapor ke petugas loket.",
        "thanks": "Terima kasih. Semoga urusan Anda lancar.",
        "ahead_more": "lebih dari {n}",
        "stale": "Koneksi ke MPP terputus. Angka di halaman ini adalah keadaan pukul {at} "
        "dan mungkin sudah berubah; dengarkan panggilan di MPP.",
        "never": "Data antrian MPP belum diterima.",
        "counter": "Loket {n}",
    },
    "en": {
        "waiting": "Waiting",
        "called": "Called",
        "skipped": "Missed",
        "done": "Served",
        "voided": "Cancelled",
        "expired": "Expired",
        "go": "Please go to {counter}",
        "missed": "Your number was missed at {counter}. Please tell the counter's officer.",
        "thanks": "Thank you. We hope all went well.",
        "ahead_more": "more than {n}",
        "stale": "The link to the MPP is down. The figures on this page are as of {at} and "
        "may have changed; listen for the calls at the MPP.",
        "never": "The MPP's queue data has not arrived yet.",
        "counter": "Counter {n}",
    },
}


def token_hash(token: str) -> str | None:
    """The SHA-256 the region keeps of a well-formed token; None for anything else."""
    if not TOKEN_RE.fullmatch(token or ""):
        return None
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Found:
    """A ticket as the region holds it, with its site's names and link."""

    site: str
    id: int
    label: str
    service: str
    status: str
    counter: int | None
    day: str
    issued_at: float
    site_name: str
    timezone: str
    services: dict[str, Any]
    counter_names: dict[str, Any]
    last_seen: float | None
    surveyed: bool
    survey_pending: bool
    booking: str | None


TICKET_SQL = """
SELECT t.site, t.id, t.label, t.service, t.status, t.counter, t.day::text, t.issued_at,
       s.name, s.timezone, s.services, l.last_seen,
       EXISTS (SELECT 1 FROM survey_responses r WHERE r.site = t.site AND r.ticket = t.id),
       EXISTS (SELECT 1 FROM down_queue q WHERE q.site = t.site AND q.body->>'kind' = 'survey'
               AND (q.body->>'ticket')::bigint = t.id),
       (SELECT b.code FROM bookings b WHERE b.site = t.site AND b.ticket = t.id LIMIT 1),
       s.counter_names
FROM tickets t
JOIN sites s ON s.site = t.site
LEFT JOIN links l ON l.site = t.site
WHERE %s
"""


def _found(row: tuple[Any, ...]) -> Found:
    return Found(
        site=row[0],
        id=row[1],
        label=row[2],
        service=row[3],
        status=row[4],
        counter=row[5],
        day=row[6],
        issued_at=row[7],
        site_name=row[8],
        timezone=row[9],
        services=row[10],
        last_seen=row[11],
        surveyed=row[12],
        survey_pending=row[13],
        booking=row[14],
        counter_names=row[15],
    )


def find_ticket(conn: psycopg.Connection, token: str) -> Found | None:
    """The ticket whose token hashes to what the region holds, if any."""
    digest = token_hash(token)
    if digest is None:
        return None
    row = conn.execute(TICKET_SQL % "t.token_sha256 = %s", (digest,)).fetchone()
    return _found(row) if row else None


def reload_ticket(conn: psycopg.Connection, found: Found) -> Found:
    """The same ticket as the region holds it now."""
    where = "t.site = %s AND t.id = %s"
    row = conn.execute(TICKET_SQL % where, (found.site, found.id)).fetchone()
    return _found(row) if row else found


def load_view(
    conn: psycopg.Connection, site: str, service: str
) -> tuple[m.QueueView, float] | None:
    """The site's latest view of a service's queue and when it arrived."""
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            "SELECT view, received_at FROM queue_views WHERE site = %s AND service = %s",
            (site, service),
        ).fetchone()
    if row is None:
        return None
    return m.QueueView.model_validate(row["view"]), float(row["received_at"])


def counter_name(found: Found, number: int, lang: str) -> str:
    """'Loket 3', or the site's own name of the counter."""
    named = found.counter_names.get(str(number))
    if named:
        return named.get(lang) or named["id"]
    return WORDS[lang]["counter"].format(n=number)


def ticket_state(
    found: Found,
    view: m.QueueView | None,
    *,
    index: dict[int, int] | None = None,
    now: float,
    link_timeout_s: float,
    lang: str,
    last_seen: float | None = None,
) -> dict[str, Any]:
    """The page's changing part, as text ready to show (the page's script only places it).
    `index`: {ticket id: place} of the view's waiting list, when the caller has it;
    `last_seen`: when the region last heard from the site (default: as the ticket was read)."""
    seen = found.last_seen if last_seen is None else last_seen
    lang = lang if lang in WORDS else "id"
    words = WORDS[lang]
    status, counter, call_seq = found.status, found.counter, 0
    ahead: int | None = None
    wait: str | None = None
    if view is not None and status in ACTIVE:  # an ended ticket never comes back
        places = index if index is not None else {t: i for i, t in enumerate(view.waiting)}
        called = next((c for c in view.called if c.ticket == found.id), None)
        if called is not None:
            status, counter, call_seq = "called", called.counter, called.call_seq
        elif found.id in places:
            status = "waiting"
            ahead = places[found.id]
            wait = wait_text(view.est_wait_s[ahead], lang)
        elif status == "waiting" and view.more:
            ahead = len(view.waiting)
            wait = None
        elif status in ("waiting", "called") and view.seq > 0:
            status = found.status  # left the queue: the ticket row says where it went
    headline = words.get(status, status)
    detail = ""
    if status == "called" and counter is not None:
        headline = words["go"].format(counter=counter_name(found, counter, lang))
    elif status == "skipped" and counter is not None:
        detail = words["missed"].format(counter=counter_name(found, counter, lang))
    elif status == "done":
        detail = words["thanks"]
    stale = ""
    if seen is None:
        stale = words["never"]
    elif now - seen > link_timeout_s:
        at = datetime.fromtimestamp(seen, ZoneInfo(found.timezone))
        today = datetime.fromtimestamp(now, at.tzinfo).date()
        shown = at.strftime("%H:%M" if at.date() == today else "%d-%m-%Y %H:%M")
        stale = words["stale"].format(at=shown)
    ahead_text = None
    if ahead is not None:
        beyond = view is not None and ahead >= len(view.waiting)
        ahead_text = words["ahead_more"].format(n=ahead) if beyond else str(ahead)
    return {
        "status": status,
        "headline": headline,
        "detail": detail,
        "ahead": ahead_text,
        "wait": wait,
        "call_seq": call_seq,
        "stale": stale,
        "survey": status == "done" and not found.surveyed and not found.survey_pending,
    }
