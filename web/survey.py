"""The citizen's satisfaction survey (SKM, Permenpan RB 14/2017): 9 elements on the 1-4 scale,
one response per served ticket, an optional comment; no personal data is asked."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, redirect, render_template, request, url_for

from protocol import messages as m
from protocol.ikm import ELEMENTS
from web import base
from web.hub_link import WEB_DEVICE
from web.security import public
from web.ticket import ticket_row

bp = Blueprint("survey", __name__)
MAX_COMMENT = 1000


def _answered(ticket_id: int) -> bool:
    row = base.db().execute("SELECT 1 FROM survey_responses WHERE ticket = ?", (ticket_id,))
    return row.fetchone() is not None


@bp.route("/t/<token>/survey", methods=["GET", "POST"])
@public
def form(token: str) -> Any:
    """The survey form; a repeated or double submission records one response."""
    row = ticket_row(base.db(), token)
    if row is None:
        abort(404)
    site = base.site()
    service_name = site.services[row["service"]].name.get(base.lang())
    context = {"token": token, "number": row["label"], "service_name": service_name}
    if row["status"] != "done":
        return render_template("survey_closed.html", message=base.t("survey.not_yet"), **context)
    if _answered(row["id"]):
        return render_template("survey_closed.html", message=base.t("ticket.surveyed"), **context)
    error, chosen = None, {}
    if request.method == "POST":
        chosen = {e.code: request.form.get(e.code, "") for e in ELEMENTS}
        comment = request.form.get("comment", "").strip()
        request_id = request.form.get("request_id", "")
        if not all(v in ("1", "2", "3", "4") for v in chosen.values()):
            error = base.t("survey.missing")
        elif len(comment) > MAX_COMMENT or not m.REQUEST_ID_RE.fullmatch(request_id):
            abort(400)
        else:
            command = m.SubmitSurvey(
                request_id=request_id,
                device=WEB_DEVICE,
                token=token,
                scores=tuple(int(chosen[e.code]) for e in ELEMENTS),
                comment=comment,
            )
            reply = base.submit(command)
            if reply.ok or (reply.error and reply.error.code == "already_answered"):
                return redirect(url_for("survey.thanks", token=token))
            error = base.reply_text(reply)
    return render_template(
        "survey.html",
        elements=ELEMENTS,
        chosen=chosen,
        error=error,
        request_id=m.new_request_id(),
        max_comment=MAX_COMMENT,
        **context,
    ), (422 if error else 200)


@bp.get("/t/<token>/survey/thanks")
@public
def thanks(token: str) -> Any:
    """After a response: thanks, and the way back to the ticket page."""
    row = ticket_row(base.db(), token)
    if row is None:
        abort(404)
    return render_template(
        "survey_closed.html",
        token=token,
        number=row["label"],
        message=base.t("survey.thanks"),
        thanks=True,
    )
