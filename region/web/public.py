"""The citizens' public ticket page on the region: `/t/<token>` (from the ticket's QR), live over
server-sent events, and the satisfaction survey, which goes back to the site's hub (down/) so
the hub's IKM stays the one computation. No login, no personal data; an unknown token is 404.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    g,
    redirect,
    render_template,
    request,
    url_for,
)

from protocol import messages as m
from protocol.ikm import ELEMENTS
from region import bookings, public
from region.web import base
from region.web.security import public as public_view

bp = Blueprint("public", __name__)
LIMBO_RELOAD_S = 2.0  # a ticket neither waiting nor called in the view: re-read it this often


def _find(token: str) -> public.Found:
    with base.db() as conn:
        found = public.find_ticket(conn, token)
    if found is None:
        abort(404)
    return found


@bp.get("/t/<token>")
@public_view
def ticket(token: str) -> Any:
    """The ticket page: number, service, status, people ahead, estimate, counter when called."""
    found = _find(token)
    lang = g.get("lang", "id")
    service = found.services.get(found.service, {})
    name = service.get("name", {})
    return render_template(
        "ticket.html",
        found=found,
        token=token,
        state=_state_in(current_app._get_current_object(), found, lang),  # type: ignore[attr-defined]
        service_name=name.get(lang) or name.get("id") or found.service,
        elements=ELEMENTS,
        thanks=request.args.get("terima") == "1",
    )


@bp.get("/t/<token>/events")
@public_view
def events(token: str) -> Any:
    """Server-sent events: the page's changing part whenever the site's view of its service
    (or its link) changes; ends after SSE_MAX_S (the browser reconnects)."""
    found = _find(token)
    lang = g.get("lang", "id")
    config = current_app.config
    app = current_app._get_current_object()  # type: ignore[attr-defined]

    def body() -> Iterator[str]:
        nonlocal found
        with app.app_context():
            the_feed = app.extensions["region"]["feed"]
            yield "retry: 2000\n\n"
            last: dict[str, Any] | None = None
            reloaded = time.monotonic()
            deadline = time.monotonic() + config["SSE_MAX_S"]
            while time.monotonic() < deadline:
                generation = the_feed.generation(found.site, found.service)
                state = _state_in(app, found, lang)
                limbo = (
                    state["status"] in public.ACTIVE
                    and state["ahead"] is None
                    and (state["status"] != "called" or not state["call_seq"])
                )
                if limbo and time.monotonic() - reloaded >= LIMBO_RELOAD_S:
                    reloaded = time.monotonic()
                    with app.extensions["region"]["pool"].connection() as conn:
                        found = public.reload_ticket(conn, found)
                    state = _state_in(app, found, lang)
                if state != last:
                    last = state
                    yield f"event: ticket\ndata: {json.dumps(state, separators=(',', ':'))}\n\n"
                else:
                    yield ": keepalive\n\n"
                wait = LIMBO_RELOAD_S if limbo else config["SSE_KEEPALIVE_S"]
                left = max(0.01, deadline - time.monotonic())
                the_feed.wait(found.site, found.service, generation, min(wait, left))

    return Response(body(), mimetype="text/event-stream", headers={"X-Accel-Buffering": "no"})


def _state_in(app: Any, found: public.Found, lang: str) -> dict[str, Any]:
    """`_state` outside a request (the stream's generator runs after the view returned)."""
    region = app.extensions["region"]
    region["feed"].start()
    view, index = region["feed"].view(region["pool"], found.site, found.service)
    return public.ticket_state(
        found,
        view,
        index=index,
        now=float(app.config["CLOCK"]()),
        link_timeout_s=region["config"].web.link_timeout_s,
        lang=lang,
        last_seen=region["feed"].last_seen.get(found.site, found.last_seen),
    )


@bp.post("/t/<token>/survey")
@public_view
def survey(token: str) -> Any:
    """The satisfaction survey of a served ticket: sent to the site's hub, applied once there."""
    found = _find(token)
    digest = public.token_hash(token)
    assert digest is not None
    chosen = [request.form.get(e.code, "") for e in ELEMENTS]
    if not all(c in ("1", "2", "3", "4") for c in chosen):
        return render_template("message.html", message=base.t("survey.incomplete")), 400
    if found.status != "done" or found.surveyed or found.survey_pending:
        return render_template("message.html", message=base.t("survey.closed")), 409
    body = m.SurveyAnswered(
        ticket=found.id,
        token_sha256=digest,
        scores=tuple(int(c) for c in chosen),
        comment=request.form.get("comment", "")[:1000],
    )
    with base.db() as conn, conn.transaction():
        bookings.queue_down(conn, found.site, body, base.now())
    return redirect(url_for("public.ticket", token=token, terima=1))
