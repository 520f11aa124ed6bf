"""Hand-made event batches, as a hub's outbox would send them."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from protocol import messages as m
from protocol.topics import Topics

T0 = datetime(2026, 12, 7, 9, 0, tzinfo=ZoneInfo("Asia/Makassar")).timestamp()
CATALOG = m.SiteCatalog(
    site="bjb",
    name="MPP Banjarbaru",
    timezone="Asia/Makassar",
    version="v1",
    agencies={"capil": "Disdukcapil", "samsat": "Samsat"},
    services={
        "ktp": m.CatalogService(
            name=m.Text(id="KTP-el", en="ID card"), agency="capil", time_class_s=3 * 3600
        ),
        "kk": m.CatalogService(
            name=m.Text(id="Kartu Keluarga", en="Family card"), agency="capil", time_class_s=600
        ),
        "pkb": m.CatalogService(
            name=m.Text(id="Pajak kendaraan", en="Vehicle tax"), agency="samsat", time_class_s=3600
        ),
    },
    counters=3,
)


def ev(id_: int, kind: str, at: float, **kw) -> m.OutboxEvent:
    """One event."""
    return m.OutboxEvent(id=id_, at=at, kind=kind, **kw)


def issued(id_: int, ticket: int, at: float, service: str = "ktp", label: str = "A001"):
    """An `issued` event with the ticket's facts."""
    return ev(
        id_,
        "issued",
        at,
        ticket=ticket,
        service=service,
        issued_service=service,
        label=label,
        day="2026-12-07",
        detail="kiosk-1",
    )


def day_of_events() -> list[m.OutboxEvent]:
    """A small day: four tickets issued, called, served, skipped, transferred, rated, surveyed."""
    t0 = T0
    return [
        ev(1, "opened", t0, counter=1, officer="Siti"),
        issued(2, 1, t0 + 1, "ktp", "A001"),
        issued(3, 2, t0 + 2, "ktp", "A002"),
        issued(4, 3, t0 + 3, "kk", "B001"),
        ev(5, "called", t0 + 60, ticket=1, counter=1, service="ktp", officer="Siti", detail="1"),
        ev(6, "finished", t0 + 300, ticket=1, counter=1, service="ktp", officer="Siti"),
        ev(7, "called", t0 + 301, ticket=2, counter=1, service="ktp", officer="Siti", detail="2"),
        ev(8, "rated", t0 + 302, ticket=1, counter=1, service="ktp", officer="Siti", detail="4"),
        ev(9, "skipped", t0 + 400, ticket=2, counter=1, service="ktp", officer="Siti"),
        ev(10, "called", t0 + 401, ticket=3, counter=1, service="kk", officer="Siti", detail="3"),
        ev(11, "transferred", t0 + 500, ticket=3, counter=1, service="pkb", officer="Siti"),
        issued(12, 4, t0 + 501, "pkb", "C001"),
        ev(13, "voided", t0 + 502, ticket=4, service="pkb", detail="kiosk-1"),
        ev(14, "surveyed", t0 + 600, ticket=1, service="ktp", detail="4,4,3,4,4,3,4,4,3"),
        ev(15, "presence", t0 + 601, detail="kiosk-1 offline printer=paper_out"),
        ev(16, "alert_raised", t0 + 602, counter=1, officer="Siti", detail="complaints-1-siti"),
        ev(17, "alert_acked", t0 + 603, officer="Pak Kepala", detail="complaints-1-siti"),
    ]


def batches(events: list[m.OutboxEvent], size: int, site: str = "bjb") -> list[m.EventBatch]:
    """The events cut into numbered batches."""
    out, after = [], 0
    head = events[-1].id
    for i in range(0, len(events), size):
        part = tuple(events[i : i + size])
        out.append(
            m.EventBatch(
                site=site, after=after, last=part[-1].id, head=head, sent_at=1.0, events=part
            )
        )
        after = part[-1].id
    return out


def topic(site: str = "bjb", name: str = "events") -> str:
    """The regional topic of a site's row."""
    return Topics(site)._build(name)
