"""What a site's events mean for the region (pure: no database, no clock).

`apply` replays one event on the ticket it concerns, exactly as the hub's rules changed that
ticket (hub/rules.py), so the region's ticket rows match the site's. `contribution` is what one
ticket adds to the per site/day/service sums; it follows the hub's report definitions
(hub/reports.py): the issue side counts under the service the ticket was issued for, the
outcome side under the service that finished (or lost) it. Sums are kept exact by adding
`contribution(after) - contribution(before)` whenever a ticket changes.

    ticket = apply(None, issued_event, agency_of)     # a new ticket
    ticket = apply(ticket, called_event, agency_of)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from operator import attrgetter
from typing import Any

from protocol.messages import OutboxEvent

WAITING, CALLED, DONE, SKIPPED, VOIDED, EXPIRED = (
    "waiting",
    "called",
    "done",
    "skipped",
    "voided",
    "expired",
)
TICKET_KINDS = frozenset(
    {
        "issued",
        "priority_granted",
        "priority_revoked",
        "called",
        "recalled",
        "called_back",
        "skipped",
        "transferred",
        "finished",
        "voided",
        "expired",
    }
)
SUM_FIELDS: tuple[str, ...] = (
    "issued",
    "voided",
    "transferred",
    "waits",
    "wait_s",
    "served",
    "no_shows",
    "within_class",
    "services",
    "service_s",
)


@dataclass(slots=True)
class Ticket:
    """A ticket as the region holds it (the columns of the `tickets` table but `site`).
    `apply` never changes one: it returns a changed copy."""

    id: int
    day: str
    label: str
    issued_service: str
    service: str
    agency: str
    status: str
    priority: str | None
    issued_at: float
    called_at: float | None = None
    started_at: float | None = None
    first_called_at: float | None = None
    finished_at: float | None = None
    counter: int | None = None
    officer: str | None = None
    call_count: int = 0
    transfers: int = 0
    token_sha256: str | None = None


TICKET_COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(Ticket))
row_of: Callable[[Ticket], tuple[Any, ...]] = attrgetter(*TICKET_COLUMNS)  # its column values


def replace(ticket: Ticket, **changes: Any) -> Ticket:
    """A copy of `ticket` with `changes` (dataclasses.replace is ten times slower)."""
    copy = Ticket(*row_of(ticket))
    for name, value in changes.items():
        setattr(copy, name, value)
    return copy


class EventOrderError(ValueError):
    """An event about a ticket the region has not seen issued (a gap was skipped)."""


def apply(ticket: Ticket | None, event: OutboxEvent, agency_of: Callable[[str], str]) -> Ticket:
    """The ticket after `event` (a kind in TICKET_KINDS)."""
    at = event.at
    if event.kind == "issued":
        if event.label is None or event.day is None or event.issued_service is None:
            raise EventOrderError(f"issued event {event.id} lacks label, day or issued_service")
        return Ticket(
            id=event.ticket or 0,
            day=event.day,
            label=event.label,
            issued_service=event.issued_service,
            service=event.issued_service,
            agency=agency_of(event.issued_service),
            status=WAITING,
            priority=None,
            issued_at=at,
            token_sha256=event.token_sha256,
        )
    if ticket is None:
        raise EventOrderError(f"event {event.id} ({event.kind}) for unknown ticket {event.ticket}")
    match event.kind:
        case "priority_granted":
            return replace(ticket, priority=(event.detail or "").split(" by ")[0] or None)
        case "priority_revoked":
            return replace(ticket, priority=None)
        case "called" | "called_back" | "recalled":
            return replace(
                ticket,
                status=CALLED,
                counter=event.counter,
                officer=event.officer,
                called_at=at,
                started_at=ticket.started_at if event.kind == "recalled" else at,
                first_called_at=ticket.first_called_at if ticket.first_called_at else at,
                call_count=ticket.call_count + 1,
            )
        case "skipped":
            return replace(ticket, status=SKIPPED)
        case "transferred":
            service = event.service or ticket.service
            return replace(
                ticket,
                service=service,
                agency=agency_of(service),
                status=WAITING,
                counter=None,
                transfers=ticket.transfers + 1,
            )
        case "finished":
            return replace(ticket, status=DONE, finished_at=at)
        case "voided":
            return replace(ticket, status=VOIDED)
        case "expired":
            return replace(ticket, status=EXPIRED)
    raise EventOrderError(f"event kind {event.kind!r} does not change a ticket")


Sums = dict[tuple[str, str], list[float]]  # (day, service) -> values in SUM_FIELDS order


def contribution(ticket: Ticket | None, limit_s: Mapping[str, int]) -> Sums:
    """What `ticket` adds to the sums of its day (None adds nothing)."""
    out: Sums = {}
    if ticket is None:
        return out
    issue = out.setdefault((ticket.day, ticket.issued_service), [0.0] * len(SUM_FIELDS))
    issue[0] += 1
    issue[1] += ticket.status == VOIDED
    issue[2] += ticket.transfers > 0
    if ticket.first_called_at is not None:
        issue[3] += 1
        issue[4] += ticket.first_called_at - ticket.issued_at
    outcome = out.setdefault((ticket.day, ticket.service), [0.0] * len(SUM_FIELDS))
    outcome[6] += ticket.first_called_at is not None and ticket.status in (SKIPPED, EXPIRED)
    if ticket.status == DONE:
        outcome[5] += 1
        limit = limit_s.get(ticket.service)
        if limit is not None and ticket.finished_at is not None:
            outcome[7] += ticket.finished_at - ticket.issued_at <= limit
        if ticket.started_at is not None and ticket.finished_at is not None:
            outcome[8] += 1
            outcome[9] += ticket.finished_at - ticket.started_at
    return out


def add_sums(into: Sums, sums: Sums, sign: int = 1) -> None:
    """into += sign * sums."""
    for key, values in sums.items():
        target = into.setdefault(key, [0.0] * len(SUM_FIELDS))
        for i, value in enumerate(values):
            target[i] += sign * value
