"""The printed ticket as data: a list of typed blocks built from the site and a confirmed ticket.

The thermal printer (`kiosk.printer`) renders the layout to ESC/POS bytes; the PNG preview
(`kiosk.preview`) draws those same bytes, so what a technician previews is what a citizen
holds::

    layout = ticket_layout(site, ticket_info, "id")
    [type(block).__name__ for block in layout][:3]   # ['Text', 'Text', 'Rule']
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from kiosk.errors import KioskError
from protocol.messages import TicketInfo
from protocol.site import Site
from protocol.texts import (
    cost_text,
    date_text,
    priority_text,
    resume_text,
    time_class_text,
    wait_text,
)

Align = Literal["left", "center", "right"]

LABELS: dict[str, dict[str, str]] = {
    "id": {
        "number": "NOMOR ANTRIAN",
        "priority": "PRIORITAS",
        "ahead": "Antrian di depan Anda",
        "wait": "Perkiraan waktu tunggu",
        "time_class": "Waktu layanan",
        "cost": "Biaya",
        "scan": "Pindai untuk memantau antrian Anda",
        "booking": "RESERVASI",
        "code": "Kode",
    },
    "en": {
        "number": "QUEUE NUMBER",
        "priority": "PRIORITY",
        "ahead": "People ahead of you",
        "wait": "Estimated wait",
        "time_class": "Service time",
        "cost": "Cost",
        "scan": "Scan to follow your place in the queue",
        "booking": "BOOKING",
        "code": "Code",
    },
}


@dataclass(frozen=True)
class Text:
    """A paragraph of text; renderers wrap it to the paper width. `size` 2 = double size."""

    text: str
    align: Align = "center"
    bold: bool = False
    size: Literal[1, 2] = 1


@dataclass(frozen=True)
class Field:
    """A 'label: value' row on the left; the value goes on the next line, indented, when both
    do not fit one line (so 'Selesai maks. 3 jam' is never cut away from its label's line
    into '... 3' and 'jam')."""

    label: str
    value: str


@dataclass(frozen=True)
class Number:
    """The ticket number, printed as large as the paper allows."""

    text: str


@dataclass(frozen=True)
class Qr:
    """A QR code linking to the citizen's ticket page."""

    payload: str


@dataclass(frozen=True)
class Logo:
    """The MPP's logo image (optional in the inventory)."""

    path: Path


@dataclass(frozen=True)
class Rule:
    """A thin separator line."""


@dataclass(frozen=True)
class Feed:
    """Blank lines."""

    lines: int = 1


@dataclass(frozen=True)
class Cut:
    """Cut the paper: the end of a ticket."""


Block = Text | Field | Number | Qr | Logo | Rule | Feed | Cut


def ticket_url(site: Site, token: str) -> str:
    """The citizen's ticket page, as the QR code carries it (token only, no names): on the
    region's public address when the site has one (phones on mobile data reach it; the site
    server stays on its LAN), else on the site's web app."""
    base = site.region.public_url if site.region and site.region.public_url else None
    base = base or site.site.public_url
    return f"{base.rstrip('/')}/t/{urllib.parse.quote(token, safe='')}"


def logo_path(site: Site) -> Path | None:
    """The inventory's logo file, resolved next to the inventory file when relative."""
    if not site.site.logo:
        return None
    path = Path(site.site.logo)
    if not path.is_absolute() and site.source:
        path = Path(site.source).resolve().parent / path
    return path


def ticket_layout(site: Site, ticket: TicketInfo, lang: str = "id") -> list[Block]:
    """Everything printed on one ticket, top to bottom, in `lang` (Indonesian by default)."""
    service = site.services.get(ticket.service)
    if service is None:
        raise KioskError(
            f"the hub confirmed ticket {ticket.number} for service {ticket.service!r}, which "
            "this kiosk's inventory does not have; provision the kiosk with the hub's inventory"
        )
    lang = lang if lang in LABELS else "id"
    words = LABELS[lang]
    agency = site.agencies[service.agency]
    issued = site.local_now(ticket.issued_at)
    blocks: list[Block] = []
    logo = logo_path(site)
    if logo is not None:
        blocks.append(Logo(logo))
    blocks += [
        Text(site.site.name.upper(), bold=True),
        *([Text(site.site.address)] if site.site.address else []),
        Rule(),
        Text(agency.name),
        Text(service.name.get(lang), bold=True, size=2),
        Feed(),
        Text(words["number"]),
        Number(ticket.number),
    ]
    if ticket.priority:
        category = priority_text(ticket.priority, lang)
        blocks.append(Text(f"{words['priority']}: {category}", bold=True))
    if ticket.booking:  # an ordinary ticket of the queue, marked as a checked-in reservation
        blocks.append(Text(f"{words['booking']} · {words['code']} {ticket.booking}", bold=True))
    blocks += [
        Feed(),
        Text(f"{date_text(issued, lang)}  {issued:%H:%M} {issued.tzname() or ''}".rstrip()),
        Rule(),
        Field(words["ahead"], str(ticket.people_ahead)),
        # No estimate (no counter serves the service now) prints that instead of a time.
        Field(words["wait"], wait_text(ticket.est_wait_s, lang)),
        *(
            [Text(resume_text(site.local_now(ticket.resumes_at), lang), bold=True)]
            if ticket.resumes_at is not None
            else []
        ),
        Field(words["time_class"], time_class_text(site.time_classes[service.time_class], lang)),
        Field(words["cost"], cost_text(service, lang)),
        Rule(),
        Qr(ticket_url(site, ticket.token)),
        Text(words["scan"]),
        Feed(),
        Text(site.site.ticket_footer.get(lang)),
        Cut(),
    ]
    return blocks


def sample_ticket(site: Site, service: str, now: float) -> TicketInfo:
    """A plausible confirmed ticket for previews (never printed for a citizen)."""
    if service not in site.services:
        known = ", ".join(site.services)
        raise KioskError(f"no service {service!r} in {site.source or 'the inventory'}; use {known}")
    return TicketInfo(
        id=12,
        number=f"{site.services[service].prefix}012",
        service=service,
        issued_at=now,
        token="contoh-token-tiket",
        people_ahead=5,
        est_wait_s=round(5 * site.services[service].avg_minutes * 60),
    )
