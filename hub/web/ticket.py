"""The citizen's ticket page (from the ticket's QR): where they are in the queue, live.

No login and no personal data: the page is found only by the ticket's unguessable token
(128 random bits); an unknown or malformed token is a plain 404.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import asdict, dataclass, field
from typing import Any

from flask import Blueprint, Response, abort, current_app, render_template, stream_with_context

from hub.service import HubService
from hub.store import connect
from hub.web import base
from hub.web.live import Event, sse, stream
from hub.web.security import public
from protocol import messages as m
from protocol.texts import cost_text, time_class_text, wait_text

bp = Blueprint("ticket", __name__)
TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{16,64}$")


@dataclass
class TicketView:
    """What the ticket page shows (also sent as JSON-able data to the live stream)."""

    number: str
    status: str
    service: str
    service_name: str
    agency: str
    issued: str
    priority: bool
    people_ahead: int | None = None
    est_wait: str | None = None
    now_serving: list[str] = field(default_factory=list)
    counter_name: str | None = None
    call_seq: int = 0
    transferred_to: str | None = None
    requirements: list[str] = field(default_factory=list)
    procedure: list[str] = field(default_factory=list)
    time_class: str = ""
    cost: str = ""
    survey_open: bool = False
    surveyed: bool = False
    stale: bool = False  # a ticket of an earlier day


def ticket_row(conn: sqlite3.Connection, token: str) -> sqlite3.Row | None:
    """The ticket with this token, if the token is well-formed and exists."""
    if not TOKEN_RE.fullmatch(token):
        return None
    return conn.execute("SELECT * FROM tickets WHERE token = ?", (token,)).fetchone()


def people_ahead(conn: sqlite3.Connection, row: sqlite3.Row) -> int:
    """Waiting tickets of the same service called before this one (the hub's queue order)."""
    return int(
        conn.execute(
            "SELECT COUNT(*) FROM tickets WHERE day = ? AND service = ? AND status = 'waiting' "
            "AND (queue_key < ? OR (queue_key = ? AND id < ?))",
            (row["day"], row["service"], row["queue_key"], row["queue_key"], row["id"]),
        ).fetchone()[0]
    )


def avg_service_s(conn: sqlite3.Connection, service: HubService, code: str) -> float:
    """The hub's learnt average service time of a service (the inventory's until learnt)."""
    row = conn.execute(
        "SELECT avg_service_s FROM service_stats WHERE service = ?", (code,)
    ).fetchone()
    return float(row[0]) if row else service.site.services[code].avg_minutes * 60


def ticket_view(
    conn: sqlite3.Connection, service: HubService, row: sqlite3.Row, lang: str
) -> TicketView:
    """The page's content for a ticket row, from the database and the hub's retained state."""
    site = service.site
    code = row["service"]
    spec = site.services[code]
    topics = service.bus.topics
    state = service.retained.get(topics.service_state(code))
    view = TicketView(
        number=row["label"],
        status=row["status"],
        service=code,
        service_name=spec.name.get(lang),
        agency=site.agencies[spec.agency].short,
        issued=site.local_now(row["issued_at"]).strftime("%H:%M"),
        priority=bool(row["priority"]),
        requirements=list(spec.requirements.get(lang)),
        procedure=list(spec.procedure.get(lang)),
        time_class=time_class_text(site.time_classes[spec.time_class], lang),
        cost=cost_text(spec, lang),
        stale=row["day"] != site.business_day(service.clock()),
    )
    if row["service"] != row["issued_service"]:
        view.transferred_to = view.service_name
    if isinstance(state, m.ServiceState):
        view.now_serving = list(state.now_serving)
    if row["status"] == "waiting" and not view.stale:
        ahead = people_ahead(conn, row)
        counters = state.open_counters if isinstance(state, m.ServiceState) else 0
        view.people_ahead = ahead
        view.est_wait = wait_text(
            round(ahead * avg_service_s(conn, service, code) / max(1, counters)), lang
        )
    if row["counter"] is not None and row["status"] in ("called", "skipped"):
        view.counter_name = site.counter_name(row["counter"], lang)
        counter = service.retained.get(topics.counter_state(row["counter"]))
        if isinstance(counter, m.CounterState) and counter.ticket_id == row["id"]:
            view.call_seq = counter.call_seq
    if row["status"] == "done":
        answered = conn.execute(
            "SELECT 1 FROM survey_responses WHERE ticket = ?", (row["id"],)
        ).fetchone()
        view.surveyed = answered is not None
        view.survey_open = not view.surveyed
    return view


@bp.get("/t/<token>")
@public
def page(token: str) -> Any:
    """The ticket page."""
    row = ticket_row(base.db(), token)
    if row is None:
        abort(404)
    view = ticket_view(base.db(), base.hub(), row, base.lang())
    return render_template("ticket.html", view=view, token=token)


def _relevant(events: list[Event], service_code: str, ticket_id: int) -> bool:
    """Whether a batch of published states can change this ticket's page."""
    for _kind, message in events:
        if isinstance(message, m.ServiceState) and message.service == service_code:
            return True
        if isinstance(message, m.CounterState) and (
            message.ticket_id == ticket_id or message.service == service_code
        ):
            return True
    return False


@bp.get("/t/<token>/events")
@public
def events(token: str) -> Any:
    """Server-sent events: the ticket's rendered status whenever its queue changes."""
    row = ticket_row(base.db(), token)
    if row is None:
        abort(404)
    service, lang, ticket_id = base.hub(), base.lang(), row["id"]
    config = current_app.config
    conn = connect(service.database, readonly=True)
    last: dict[str, str] = {}

    def render() -> list[str]:
        fresh = conn.execute("SELECT * FROM tickets WHERE id = ?", (ticket_id,)).fetchone()
        view = ticket_view(conn, service, fresh, lang)
        html = render_template("_ticket_body.html", view=view, token=token)
        if last.get("html") == html:
            return []
        last["html"] = html
        data = asdict(view)
        return [
            sse(
                "ticket",
                {"html": html, "status": view.status, "call_seq": view.call_seq, "data": data},
            )
        ]

    def update(batch: list[Event]) -> list[str]:
        current = conn.execute("SELECT service FROM tickets WHERE id = ?", (ticket_id,)).fetchone()
        return render() if _relevant(batch, current[0], ticket_id) else []

    def body() -> Any:
        try:
            yield from stream(
                base.feed(),
                render,
                update,
                keepalive_s=config["SSE_KEEPALIVE_S"],
                max_s=config["SSE_MAX_S"],
            )
        finally:
            conn.close()

    return Response(
        stream_with_context(body()),
        mimetype="text/event-stream",
        headers={"X-Accel-Buffering": "no"},
    )
