"""The hub's rule for a citizen's satisfaction survey: one response per served ticket."""

from __future__ import annotations

import sqlite3

from hub.rules import DONE, Refused
from hub.store import Store
from protocol import messages as m
from protocol.site import Site


def record_survey(store: Store, site: Site, command: m.SubmitSurvey, now: float) -> m.SurveyResult:
    """Store the response (inside the command's transaction), or refuse having changed nothing."""
    ticket = store.ticket_by_token(command.token)
    if ticket is None:
        raise Refused(
            "unknown_ticket",
            "no ticket with that token",
            "Tiket tidak ditemukan",
            "Ticket not found",
        )
    record_for_ticket(store, site, ticket, command.scores, command.comment, now=now)
    return m.SurveyResult(ticket=ticket["label"], service=ticket["service"])


def record_for_ticket(
    store: Store,
    site: Site,
    ticket: sqlite3.Row,
    scores: tuple[int, ...],
    comment: str,
    *,
    now: float,
) -> None:
    """Store a response for a ticket row (the hub's page, or the region's through `down/`),
    or refuse having changed nothing: once per served ticket."""
    if ticket["status"] != DONE:
        raise Refused(
            "bad_state",
            f"ticket {ticket['label']} is {ticket['status']}; the survey opens after service",
            "Survei dapat diisi setelah layanan selesai",
            "The survey opens once you have been served",
        )
    if store.survey_answered(ticket["id"]):
        raise Refused(
            "already_answered",
            f"the survey of ticket {ticket['label']} was answered already",
            "Terima kasih, survei tiket ini sudah diisi",
            "Thank you, this ticket's survey is already answered",
        )
    service = site.services.get(ticket["service"])
    agency = service.agency if service is not None else ""
    store.save_survey(ticket, agency, scores, comment.strip(), now)
