"""Ingest into real PostgreSQL: once per event id, never past a gap, malformed refused."""

from __future__ import annotations

import json

import psycopg

from protocol import messages as m
from region.ingest import Ingestor, Received, advance
from tests.region.events import CATALOG, batches, day_of_events, topic


def received(batch: m.EventBatch) -> Received:
    return Received(topic(batch.site), m.encode(batch))


def catalog() -> Received:
    return Received(topic("bjb", "catalog"), m.encode(CATALOG))


def table(conn: psycopg.Connection, sql: str) -> list[tuple]:
    return conn.execute(sql).fetchall()


def test_advance_stops_at_a_gap() -> None:
    assert advance(0, [(0, 5), (5, 9)]) == (9, [])
    assert advance(0, [(5, 9)]) == (0, [(5, 9)])
    assert advance(3, [(0, 5), (7, 9)]) == (5, [(7, 9)])
    assert advance(10, [(0, 5)]) == (10, [])


def test_duplicated_batches_store_each_event_once(region_conn) -> None:
    ingest = Ingestor(region_conn)
    parts = batches(day_of_events(), 5)
    assert ingest.ingest([catalog(), received(parts[0]), received(parts[0])]) == {"bjb": 5}
    assert ingest.ingest([received(b) for b in parts] + [received(parts[1])]) == {"bjb": 17}
    assert ingest.ingest([received(parts[2])]) == {"bjb": 17}
    region_conn.commit()
    assert table(region_conn, "SELECT count(*), count(DISTINCT id) FROM events") == [(17, 17)]
    assert table(region_conn, "SELECT sum(issued), sum(served) FROM daily") == [(4, 1)]
    assert table(region_conn, "SELECT count(*) FROM ratings") == [(1,)]


def test_reordered_batches_wait_for_the_gap(region_conn) -> None:
    ingest = Ingestor(region_conn)
    parts = batches(day_of_events(), 3)  # (0,3] (3,6] (6,9] (9,12] (12,15] (15,17]
    assert ingest.ingest([catalog(), received(parts[2]), received(parts[4])]) == {"bjb": 0}
    # Stored, but not applied and not acknowledged: no ticket exists yet.
    assert table(region_conn, "SELECT count(*) FROM events") == [(6,)]
    assert table(region_conn, "SELECT count(*) FROM tickets") == [(0,)]
    assert table(region_conn, "SELECT after, last FROM ranges ORDER BY after") == [(6, 9), (12, 15)]
    assert ingest.ingest([received(parts[0])]) == {"bjb": 3}
    assert ingest.ingest([received(parts[5]), received(parts[1])]) == {"bjb": 9}
    assert ingest.ingest([received(parts[3])]) == {"bjb": 17}
    assert table(region_conn, "SELECT count(*) FROM ranges") == [(0,)]
    reordered = table(region_conn, "SELECT * FROM tickets ORDER BY id")
    sums = table(region_conn, "SELECT * FROM daily ORDER BY service")
    # The same events in order give the same state.
    region_conn.execute("TRUNCATE events, tickets, daily, links, ratings, survey_responses")
    ingest.ingest([received(b) for b in batches(day_of_events(), 17)])
    assert table(region_conn, "SELECT * FROM tickets ORDER BY id") == reordered
    assert table(region_conn, "SELECT * FROM daily ORDER BY service") == sums


def test_ticket_state_and_sums(region_conn) -> None:
    ingest = Ingestor(region_conn)
    ingest.ingest([catalog()] + [received(b) for b in batches(day_of_events(), 4)])
    rows = table(
        region_conn,
        "SELECT label, service, agency, status, counter, call_count, transfers FROM tickets "
        "ORDER BY id",
    )
    assert rows == [
        ("A001", "ktp", "capil", "done", 1, 1, 0),
        ("A002", "ktp", "capil", "skipped", 1, 1, 0),
        ("B001", "pkb", "samsat", "waiting", None, 1, 1),
        ("C001", "pkb", "samsat", "voided", None, 0, 0),
    ]
    daily = table(
        region_conn,
        "SELECT service, agency, issued, voided, transferred, waits, wait_s, served, no_shows, "
        "within_class, services, service_s FROM daily ORDER BY service",
    )
    assert daily == [
        ("kk", "capil", 1, 0, 1, 1, 398.0, 0, 0, 0, 0, 0.0),
        ("ktp", "capil", 2, 0, 0, 2, 59.0 + 299.0, 1, 1, 1, 1, 240.0),
        ("pkb", "samsat", 1, 1, 0, 0, 0.0, 0, 0, 0, 0, 0.0),
    ]
    assert table(region_conn, "SELECT scores FROM survey_responses") == [
        ([4, 4, 3, 4, 4, 3, 4, 4, 3],)
    ]
    assert table(region_conn, "SELECT open, officer FROM counters") == [(True, "Siti")]
    assert table(region_conn, "SELECT device, online, detail FROM devices") == [
        ("kiosk-1", False, "printer=paper_out")
    ]
    assert table(region_conn, "SELECT id, acked_by FROM alerts") == [
        ("complaints-1-siti", "Pak Kepala")
    ]
    assert table(region_conn, "SELECT acked, head, batches FROM links") == [(17, 17, 5)]


def test_malformed_batches_are_refused_and_change_nothing(region_conn, caplog) -> None:
    ingest = Ingestor(region_conn)
    ingest.ingest([catalog()])
    good = batches(day_of_events(), 17)[0]
    raw = json.loads(m.encode(good))
    bad_numbering = dict(raw, last=99)
    other_site = dict(raw, site="other")
    holes = dict(raw, events=[raw["events"][1], raw["events"][0]])
    wrong_type = dict(raw, events=[dict(raw["events"][0], at="yesterday")])
    payloads = [
        b"not json",
        b"[]",
        json.dumps(bad_numbering).encode(),
        json.dumps(other_site).encode(),
        json.dumps(holes).encode(),
        json.dumps(wrong_type).encode(),
        json.dumps(dict(raw, v=2)).encode(),
        b"{" + b" " * 20000 + b"}",
    ]
    acks = ingest.ingest([Received(topic(), p) for p in payloads])
    assert acks == {}
    assert table(region_conn, "SELECT count(*) FROM events") == [(0,)]
    assert table(region_conn, "SELECT refused, acked FROM links") == [(len(payloads), 0)]
    assert caplog.text.count("malformed message refused") == len(payloads)
    # The good batch still goes in afterwards.
    assert ingest.ingest([received(good)]) == {"bjb": 17}


def test_events_wait_for_the_site_catalog(region_conn) -> None:
    ingest = Ingestor(region_conn)
    first = batches(day_of_events(), 17)[0]
    assert ingest.ingest([received(first)]) == {}
    assert table(region_conn, "SELECT count(*) FROM events") == [(0,)]
    assert ingest.ingest([catalog(), received(first)]) == {"bjb": 17}


def test_a_held_range_sent_again_with_the_gap_filler_is_stored_once(region_conn, caplog) -> None:
    ingest = Ingestor(region_conn)
    parts = batches(day_of_events(), 6)  # (0,6] (6,12] (12,17]
    assert ingest.ingest([catalog(), received(parts[1])]) == {"bjb": 0}
    assert ingest.ingest([received(parts[0]), received(parts[1]), received(parts[2])]) == {
        "bjb": 17
    }
    assert table(region_conn, "SELECT count(*), count(DISTINCT id) FROM events") == [(17, 17)]
    assert table(region_conn, "SELECT sum(issued), sum(served) FROM daily") == [(4, 1)]
    assert "stored again" not in caplog.text  # the straight path knew what was there


def test_rows_stored_behind_the_ingests_back_are_skipped_not_doubled(region_conn, caplog) -> None:
    ingest = Ingestor(region_conn)
    parts = batches(day_of_events(), 5)
    assert ingest.ingest([catalog(), received(parts[0])]) == {"bjb": 5}
    # Events that neither the acknowledgement nor `ranges` account for.
    region_conn.execute(
        "INSERT INTO events (site, id, at, kind) VALUES ('bjb', 8, 0, 'rated'), "
        "('bjb', 12, 0, 'issued')"
    )
    assert ingest.ingest([received(b) for b in parts[1:]]) == {"bjb": 17}
    assert "stored again" in caplog.text
    assert table(region_conn, "SELECT count(*), count(DISTINCT id) FROM events") == [(17, 17)]
    tickets = table(region_conn, "SELECT * FROM tickets ORDER BY id")
    sums = table(region_conn, "SELECT * FROM daily ORDER BY service")
    assert [t[7] for t in tickets] == ["done", "skipped", "waiting", "voided"]
    # The same as the straight path gives.
    region_conn.execute("TRUNCATE events, tickets, daily, links, ratings, survey_responses")
    ingest.ingest([received(b) for b in parts])
    assert table(region_conn, "SELECT * FROM tickets ORDER BY id") == tickets
    assert table(region_conn, "SELECT * FROM daily ORDER BY service") == sums
