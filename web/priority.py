"""Priority tickets for supervisors: today's waiting ones with who granted priority (the
kiosk or the officer's device) and when, and revoking one that was not due (it then waits among
the regular tickets; the revocation is logged with the supervisor's name)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template, url_for

from hub import reports as r
from protocol import messages as m
from web import base
from web.hub_link import WEB_DEVICE
from web.security import requires

bp = Blueprint("priority", __name__)


@bp.get("/priority")
@requires("supervisor")
def index() -> Any:
    """Waiting priority tickets and today's revocations."""
    day = base.site().business_day(base.hub().clock())
    return render_template(
        "priority.html",
        waiting=r.waiting_priority(base.db(), day),
        revoked=r.revoked_priority(base.db(), day),
    )


@bp.post("/priority/<int:ticket_id>/revoke")
@requires("supervisor")
def revoke(ticket_id: int) -> Any:
    """Take priority away from one ticket, through the hub (screens and estimates follow)."""
    return base.submit_form(
        lambda by, request_id: m.RevokePriority(
            request_id=request_id, device=WEB_DEVICE, ticket_id=ticket_id, by=by
        ),
        url_for("priority.index"),
        lambda reply: base.t("priority.revoked", ticket=reply.result["number"]),  # type: ignore[index]
    )
