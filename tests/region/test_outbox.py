"""The hub's outbox to a real region service and PostgreSQL, through one real Mosquitto."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from hub.outbox import BATCH_BYTES, read_batch, site_catalog
from hub.reports import Period, build_report
from hub.service import HubService
from protocol import messages as m
from protocol.brokers import Mosquitto
from protocol.site import Site
from region.config import RegionConfig, parse_region
from region.service import RegionService
from tests.region.sites import (
    assert_same_history,
    busy_period,
    hub_head,
    region_acked,
    region_rows,
    region_site,
)
from tests.timing import wait_until


def region_config(dsn: str, port: int, prefix: str = "mpp/v1") -> RegionConfig:
    """A region on a test broker without accounts."""
    return parse_region(
        f'[region]\nid = "kalsel"\nname = "Kalsel"\ntimezone = "Asia/Makassar"\n'
        f'[database]\ndsn = "{dsn}"\n[broker]\nport = {port}\nprefix = "{prefix}"\n'
    )


@pytest.fixture
def region(region_dsn: str, broker: Mosquitto) -> Iterator[RegionService]:
    """The region service on the session broker and this test's database."""
    service = RegionService(region_config(region_dsn, broker.port)).start()
    yield service
    service.stop()


@pytest.fixture
def outbox_site(broker: Mosquitto, tmp_path: Path, request) -> Site:
    """The example site with a [region] table, on the session broker."""
    return region_site(
        broker.port,
        tmp_path / "hub.sqlite",
        f"bjb-{request.node.name[-20:]}"[:40].lower().replace("_", "-"),
    )


def test_every_event_reaches_postgresql_once_and_matches(outbox_site, region, region_dsn) -> None:
    hub = HubService(outbox_site, first_start=True).start()
    try:
        busy_period(hub, 60)
        hub.submit(m.CloseService(device="hub", service="ktp", by="admin"))
        head = hub_head(hub.database)
        site = outbox_site.site.id
        assert wait_until(lambda: region_acked(region_dsn, site) == head, 20)
    finally:
        hub.stop()
    count = assert_same_history(hub.database, region_dsn, site)
    kinds = {row[0] for row in region_rows(region_dsn, "SELECT DISTINCT kind FROM events")}
    assert {"opened", "issued", "called", "finished", "rated", "priority_granted"} <= kinds
    assert "service_closed" in kinds and count == head
    assert region_rows(region_dsn, "SELECT name, counters FROM sites") == [
        (outbox_site.site.name, len(outbox_site.counters))
    ]
    # The region's sums per service are the hub's own report.
    with sqlite3.connect(hub.database) as conn:
        today = date.fromisoformat(hub.queue.day)
        report = build_report(conn, outbox_site, Period(today, today), group="service")
    ours = {
        s.key: (s.issued, s.served, s.no_shows, s.voided, s.transferred, s.within_class)
        for s in report.rows
    }
    theirs = {
        row[0]: tuple(row[1:])
        for row in region_rows(
            region_dsn,
            "SELECT service, sum(issued), sum(served), sum(no_shows), sum(voided), "
            "sum(transferred), sum(within_class) FROM daily GROUP BY service",
        )
        if any(row[1:])
    }
    assert theirs == ours


def test_a_batch_is_bounded_in_events_and_bytes(outbox_site, tmp_path) -> None:
    hub = HubService(outbox_site, first_start=True).start()
    try:
        busy_period(hub, 40)
    finally:
        hub.stop()
    conn = sqlite3.connect(f"file:{hub.database}?mode=ro", uri=True)
    head = hub_head(hub.database)
    small = read_batch(conn, "bjb", 0, head=head, max_events=7, now=1.0)
    assert len(small.events) == 7 and small.after == 0 and small.last == small.events[-1].id
    big = read_batch(conn, "bjb", 0, head=head, max_events=500, now=1.0)
    assert len(m.encode(big)) <= m.MAX_PAYLOAD_BYTES
    issued = next(e for e in big.events if e.kind == "issued")
    token = conn.execute("SELECT token FROM tickets WHERE id = ?", (issued.ticket,)).fetchone()[0]
    assert issued.token_sha256 == m.token_sha256(token) and token not in m.encode(big).decode()
    assert BATCH_BYTES < m.MAX_PAYLOAD_BYTES


def test_catalog_of_a_large_site_fits_one_message() -> None:
    from protocol.site import parse_site
    from protocol.synthetic import synthetic_site

    site = parse_site(synthetic_site(services=23, counters=200))
    assert len(m.encode(site_catalog(site))) < m.MAX_PAYLOAD_BYTES
