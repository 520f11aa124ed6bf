"""Several ingest workers: each site is stored by one of them, and every event once, even
when two of them store the same site at the same time."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import paho.mqtt.client as paho
import psycopg
from paho.mqtt.enums import CallbackAPIVersion

from protocol import messages as m
from protocol.brokers import Mosquitto
from protocol.topics import Topics
from region.ingest import Ingestor, Received
from region.service import Partition
from tests.region.events import CATALOG, batches, day_of_events
from tests.region.sites import region_rows
from tests.timing import wait_until

PREFIX = "workers/v1"


def catalog_of(site: str) -> m.SiteCatalog:
    return CATALOG.model_copy(update={"site": site})


def test_partitions_share_out_every_site_once() -> None:
    sites = [f"mpp-{i}" for i in range(300)]
    for count in (1, 2, 3, 4):
        owners = [[Partition(i, count).owns(s) for i in range(count)] for s in sites]
        assert all(sum(row) == 1 for row in owners)
        assert all(any(row[i] for row in owners) for i in range(count))


def store_all(dsn: str, stream: list[m.EventBatch], start: threading.Barrier) -> None:
    """One ingest process: the catalog, then every batch of `stream`, one group each."""
    with psycopg.connect(dsn) as conn:
        ingest = Ingestor(conn)
        ingest.ingest([Received(Topics("bjb").catalog(), m.encode(CATALOG))])
        start.wait(10)
        for batch in stream:
            ingest.ingest([Received(Topics("bjb").events(), m.encode(batch))])


def state(conn: psycopg.Connection) -> list[tuple]:
    """Tickets, sums and ratings."""
    return (
        conn.execute("SELECT * FROM tickets ORDER BY id").fetchall()
        + conn.execute("SELECT * FROM daily ORDER BY service").fetchall()
        + conn.execute("SELECT site, ticket, score FROM ratings").fetchall()
    )


def test_two_ingestors_storing_one_site_at_once_store_every_event_once(region_conn) -> None:
    """As when a worker is started twice by mistake: each stores all batches, in its own
    order, at the same time; the site's row lock keeps them apart."""
    region_conn.autocommit = True
    parts = batches(day_of_events(), 2, site="bjb")  # 9 batches
    streams = [parts + parts[::2], list(reversed(parts)) + parts[1::2]]
    results = []
    for _round in range(3):
        region_conn.execute(
            "TRUNCATE events, tickets, daily, links, ranges, ratings, survey_responses, sites, "
            "counters, devices, alerts"
        )
        start = threading.Barrier(2)
        with ThreadPoolExecutor(2) as pool:
            done = [pool.submit(store_all, region_conn.info.dsn, s, start) for s in streams]
            for future in done:
                future.result(30)
        assert region_conn.execute(
            "SELECT count(*), count(DISTINCT id) FROM events"
        ).fetchall() == [(17, 17)]
        assert region_conn.execute("SELECT acked FROM links").fetchall() == [(17,)]
        results.append(state(region_conn))
    # The same state as one ingest of the batches in order.
    region_conn.execute("TRUNCATE events, tickets, daily, links, ranges, ratings, survey_responses")
    Ingestor(region_conn).ingest([Received(Topics("bjb").events(), m.encode(b)) for b in parts])
    assert results == [state(region_conn)] * 3


def log_of(tmp_path: Path) -> str:
    """What the region processes logged."""
    return (tmp_path / "region.log").read_text(errors="replace")


def children(pid: int) -> list[int]:
    """The process's child processes (from /proc)."""
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


def test_region_run_with_two_workers_stores_each_site_once(
    region_dsn: str, broker: Mosquitto, tmp_path: Path
) -> None:
    """`mpp region run` with [ingest] workers = 2: a second process stores its share of the
    sites; every batch is handled once; a worker that dies is started again, and dies with
    the first process."""
    sites = [f"site-{i}" for i in range(6)]
    assert {Partition(1, 2).owns(s) for s in sites} == {True, False}  # both get some
    config = tmp_path / "region.toml"
    config.write_text(
        '[region]\nid = "kalsel"\nname = "Kalsel"\ntimezone = "Asia/Makassar"\n'
        f'[database]\ndsn = "{region_dsn}"\n[broker]\nport = {broker.port}\n'
        # Client ids of their own on the session broker (workers-region, ...-ingest-1).
        f'prefix = "{PREFIX}"\nusername = "workers-region"\n[ingest]\nworkers = 2\n',
        encoding="utf-8",
    )
    log = (tmp_path / "region.log").open("wb")
    service = subprocess.Popen(
        [sys.executable, "-m", "protocol.cli", "region", "run", "--config", str(config)],
        stdout=log,
        stderr=log,
    )
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id="workers-test", protocol=5)
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    published: dict[str, int] = {}
    try:
        for site in sites:  # retained: each worker stores its sites' catalogs once subscribed
            client.publish(
                Topics(site, PREFIX).catalog(), m.encode(catalog_of(site)), qos=1, retain=True
            ).wait_for_publish(5)
        assert wait_until(
            lambda: region_rows(region_dsn, "SELECT count(*) FROM sites")[0][0] == len(sites), 30
        ), log_of(tmp_path)
        for site in sites:
            parts = batches(day_of_events(), 4, site=site)
            sent = parts + parts[1:3]  # two sent twice
            for batch in sent:
                client.publish(Topics(site, PREFIX).events(), m.encode(batch), qos=1)
            published[site] = len(sent)
        assert wait_until(
            lambda: (
                region_rows(region_dsn, "SELECT count(*) FROM links WHERE acked = 17")[0][0]
                == len(sites)
            ),
            30,
        ), log_of(tmp_path)
        first = children(service.pid)
        assert len(first) == 1
        os.kill(first[0], signal.SIGKILL)  # a worker that dies is started again
        assert wait_until(lambda: len(set(children(service.pid)) - set(first)) == 1, 20), log_of(
            tmp_path
        )
        worker = children(service.pid)
        service.send_signal(signal.SIGKILL)
        service.wait(10)
        # The worker is told (parent-death signal) and stops by itself.
        assert wait_until(lambda: not Path(f"/proc/{worker[0]}").exists(), 20), log_of(tmp_path)
    finally:
        if service.poll() is None:
            service.kill()
            service.wait(10)
        for site in sites:
            client.publish(Topics(site, PREFIX).catalog(), b"", qos=1, retain=True)
        client.disconnect()
        client.loop_stop()
        log.close()
    rows = region_rows(
        region_dsn, "SELECT site, count(*), count(DISTINCT id) FROM events GROUP BY site"
    )
    assert sorted(rows) == [(site, 17, 17) for site in sites]
    # A batch stored by both workers would count twice here.
    batches_seen = dict(region_rows(region_dsn, "SELECT site, batches FROM links"))
    assert batches_seen == published, log_of(tmp_path)
    assert region_rows(region_dsn, "SELECT sum(issued), sum(served) FROM daily") == [
        (4 * len(sites), len(sites))
    ]
