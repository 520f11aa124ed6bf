"""Sites with an outbox, their busy periods, and how their databases compare with the region's."""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path

import psycopg

from hub.service import HubService
from protocol import messages as m
from protocol.mqtt import Bus
from protocol.site import Site, parse_site
from tests.conftest import site_text

REGION = "[region]\nheartbeat_s = 1\nresend_after_s = 2\n"
EVENT_COLUMNS = "id, at, kind, ticket, counter, service, officer, detail"
TICKET_COLUMNS = (
    "id, day::text, label, issued_service, service, status, priority, issued_at, called_at, "
    "started_at, first_called_at, finished_at, counter, officer, call_count, transfers"
)


def region_site(port: int, database: Path, site_id: str, region: dict | None = None, **hub) -> Site:
    """The example site with a [region] table (quick heartbeats and resends for tests;
    `region` overrides its keys, e.g. small batches)."""
    return parse_site(region_text(port, database, site_id, region, **hub), "test-site.toml")


def region_text(port: int, database: Path, site_id: str, region: dict | None = None, **hub) -> str:
    """The inventory text of `region_site`."""
    text = site_text(port, always_open=True, database=database, site_id=site_id, **hub)
    extra = "".join(f"{key} = {value}\n" for key, value in (region or {}).items())
    return text + REGION + extra


def busy_period(hub: HubService, tickets: int, seed: int = 1) -> None:
    """Counters open, tickets issued and served, skipped, transferred, rated (no clock games)."""
    rng = random.Random(seed)
    counters = sorted(hub.site.counters)[:6]
    for number in counters:
        hub.submit(m.OpenCounter(device="hub", counter=number, officer=f"Petugas {number}"))
    services = sorted({code for n in counters for code in hub.site.counters[n].services})
    for i in range(tickets):
        priority = "elderly" if i % 11 == 0 else None
        hub.submit(
            m.IssueTicket(device="hub", service=services[i % len(services)], priority=priority)
        )
        if i % 2:
            number = rng.choice(counters)
            hub.submit(m.CallNext(device="hub", counter=number))
            roll = rng.random()
            transfer_to = hub.site.counters[number].transfer_to
            if roll < 0.15:
                hub.submit(m.Skip(device="hub", counter=number))
            elif roll < 0.25 and transfer_to:
                hub.submit(m.Transfer(device="hub", counter=number, service=transfer_to[0]))
            elif roll < 0.5:
                hub.submit(m.Rate(device="hub", counter=number, score=rng.randint(1, 4)))
    for number in counters:
        hub.submit(m.Finish(device="hub", counter=number))


def hub_rows(database: Path, sql: str) -> list[tuple]:
    """Rows of the hub's SQLite database (read-only)."""
    conn = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        return [tuple(r) for r in conn.execute(sql).fetchall()]
    finally:
        conn.close()


def hub_head(database: Path) -> int:
    """The hub's newest event id."""
    return hub_rows(database, "SELECT COALESCE(MAX(id), 0) FROM events")[0][0]


def region_rows(dsn: str, sql: str, *args: object) -> list[tuple]:
    """Rows of the region's PostgreSQL database."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        return [tuple(r) for r in conn.execute(sql, args).fetchall()]


def region_acked(dsn: str, site: str) -> int:
    """What the region acknowledged for `site` (0 if nothing)."""
    rows = region_rows(dsn, "SELECT acked FROM links WHERE site = %s", site)
    return rows[0][0] if rows else 0


def assert_same_history(database: Path, dsn: str, site: str) -> int:
    """Every event of the hub is in the region exactly once, identical, and the region's ticket
    rows are the hub's; returns how many events."""
    ours = hub_rows(database, f"SELECT {EVENT_COLUMNS} FROM events ORDER BY id")
    theirs = region_rows(
        dsn, f"SELECT {EVENT_COLUMNS} FROM events WHERE site = %s ORDER BY id", site
    )
    assert len(theirs) == len({row[0] for row in theirs})  # once each
    assert theirs == ours
    columns = TICKET_COLUMNS.replace("day::text", "day")
    hub_tickets = hub_rows(database, f"SELECT {columns} FROM tickets ORDER BY id")
    region_tickets = region_rows(
        dsn, f"SELECT {TICKET_COLUMNS} FROM tickets WHERE site = %s ORDER BY id", site
    )
    assert region_tickets == hub_tickets
    return len(ours)


def clear_retained_uplink(site: Site) -> None:
    """Take a site's retained up/ messages (catalog, booking offer) off the broker: on a broker
    shared by the whole session they would reach every later test's region service."""
    bus = Bus(
        site.site.id, f"cleaner-{site.site.id}"[:40], "hub", port=site.broker.port, presence=False
    )
    if bus.start(wait=10):
        for topic in (bus.topics.catalog(), bus.topics.booking_offer()):
            bus.publish(topic, b"", retain=True)
        bus.flush(5)
    bus.stop()
