"""The citizen's ticket page (from the ticket's QR): where they are in the queue, live.

No login and no personal data: the page is found only by the ticket's unguessable token
(128 random bits); an unknown or malformed token is a plain 404.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import asdict, dataclass, field
from typing import Any

from flask import Blueprint, abort, current_app, render_template

from protocol import messages as m
from protocol.texts import cost_text, pause_text, time_class_text, wait_text
from web import base, live
from web.hub_link import HubLink
from web.live import Event, sse
from web.security import public

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
    est_wait: str | None = None  # no counter serves the service now: says so instead
    est_is_sentence: bool = False  # est_wait says why there is no estimate (not a figure)
    notice: str | None = None  # a pause in force: when service resumes
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


def ticket_view(conn: sqlite3.Connection, link: HubLink, row: sqlite3.Row, lang: str) -> TicketView:
    """The page's content for a ticket row, from the hub's database and retained state: the
    people ahead and the estimate are the hub's own figures (`ServiceQueue`), not worked out
    here."""
    site = link.site
    code = row["service"]
    spec = site.services[code]
    topics = link.topics
    state = link.retained.get(topics.service_state(code))
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
        stale=row["day"] != site.business_day(link.clock()),
    )
    if row["service"] != row["issued_service"]:
        view.transferred_to = view.service_name
    if isinstance(state, m.ServiceState):
        view.now_serving = list(state.now_serving)
        if state.pause is not None and row["status"] in ("waiting", "skipped"):
            name = state.pause.name.en if lang == "en" else state.pause.name.id
            until = site.local_now(state.pause.until)
            view.notice = pause_text(name, until, state.open, lang)
    queue = link.retained.get(topics.service_queue(code))
    if row["status"] == "waiting" and not view.stale and isinstance(queue, m.ServiceQueue):
        position = queue.position(row["id"])
        if position is not None:
            view.people_ahead = position[0]
            view.est_wait = wait_text(position[1], lang)
            view.est_is_sentence = position[1] is None
    if row["counter"] is not None and row["status"] in ("called", "skipped"):
        view.counter_name = site.counter_name(row["counter"], lang)
        counter = link.retained.get(topics.counter_state(row["counter"]))
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
        if isinstance(message, m.ServiceState | m.ServiceQueue) and message.service == service_code:
            return True
        if isinstance(message, m.CounterState) and (
            message.ticket_id == ticket_id or message.service == service_code
        ):
            return True
    return False


def _figures(link: HubLink, code: str, ticket_id: int) -> tuple[Any, ...]:
    """What a waiting ticket's page shows from the hub's state: its position and estimate,
    what it shows of the service (`live.shown_of`); (None, ...) when the ticket is not in its
    queue's order."""
    queue = link.retained.get(link.topics.service_queue(code))
    state = link.retained.get(link.topics.service_state(code))
    position = queue.position(ticket_id) if isinstance(queue, m.ServiceQueue) else None
    shown = live.shown_of(state) if isinstance(state, m.ServiceState) else ()
    return position, shown


@bp.get("/t/<token>/events")
@public
def events(token: str) -> Any:
    """Server-sent events: the ticket's rendered status whenever its queue changes."""
    row = ticket_row(base.db(), token)
    if row is None:
        abort(404)
    link, lang, ticket_id = base.hub(), base.lang(), row["id"]
    reader = base.stream_reader()
    last: dict[str, Any] = {}
    feed = base.feed()
    interest = live.Interest(row["service"], ticket_id)

    def render() -> list[str]:
        with reader as conn:
            fresh = conn.execute("SELECT * FROM tickets WHERE id = ?", (ticket_id,)).fetchone()
            view = ticket_view(conn, link, fresh, lang)
        last.update(status=view.status, service=view.service)
        if view.service != interest.service:  # transferred: follow the new service's queue
            feed.follow(interest, view.service)
        last["figures"] = _figures(link, view.service, ticket_id)
        # The feed then wakes the page only for a state that changes these figures.
        interest.settled = view.status == "waiting" and last["figures"][0] is not None
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
        if not _relevant(batch, last.get("service", ""), ticket_id):
            return []
        # Thousands of pages follow a busy queue: a waiting ticket whose figures the hub did not
        # change (a newcomer joined behind it) is not read nor rendered again.
        if last.get("status") == "waiting":
            figures = _figures(link, last["service"], ticket_id)
            if figures[0] is not None and figures == last.get("figures"):
                return []
        return render()

    return live.response(feed, render, update, current_app.config, interest=interest)
