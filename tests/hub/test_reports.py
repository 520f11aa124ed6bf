"""Reports over a day played through the real hub (see tests/hub/scenario.py), checked by hand."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import date

import pytest

from hub import reports as r
from hub.service import HubService
from hub.store import connect
from protocol import messages as m
from protocol.site import Site
from tests.hub.scenario import T0, Clock, ok, play_day

DAY = date(2026, 11, 23)


@pytest.fixture
def played(site: Site) -> Iterator[tuple[Site, dict[str, m.TicketInfo], HubService]]:
    clock = Clock()
    service = HubService(site, clock=clock, first_start=True).start()
    try:
        tickets = play_day(service, clock)
        yield site, tickets, service
    finally:
        service.stop()


def report(site: Site, **kw) -> r.Report:
    conn = connect(site.hub.database, readonly=True)
    try:
        return r.build_report(conn, site, r.Period.of("day", DAY), **kw)
    finally:
        conn.close()


def by_key(rep: r.Report) -> dict[str, r.Stats]:
    return {row.key: row for row in rep.rows}


def test_per_service(played) -> None:
    site, _, _ = played
    rep = report(site, group="service")
    rows = by_key(rep)
    assert set(rows) == {"ktp", "kk", "skck"}
    ktp, kk, skck = rows["ktp"], rows["kk"], rows["skck"]
    # A001 and A002 issued for ktp; B001 was transferred in and served there.
    assert (ktp.issued, ktp.served, ktp.no_shows, ktp.voided, ktp.transferred) == (2, 2, 1, 0, 0)
    assert (kk.issued, kk.served, kk.no_shows, kk.transferred) == (1, 0, 0, 1)
    assert (skck.issued, skck.voided, skck.served) == (1, 1, 0)
    # Waits for ktp tickets: A001 600 s, A002 1200 s -> median 900, p90 (nearest rank) 1200.
    assert (ktp.wait_median_s, ktp.wait_p90_s) == (900, 1200)
    # Service times served at ktp: A001 300 s, B001 500 s.
    assert (ktp.service_median_s, ktp.service_p90_s) == (400, 500)
    assert ktp.compliance == 1.0 and kk.compliance is None
    assert kk.wait_median_s == 300
    assert ktp.label == "Perekaman dan Cetak KTP-el"


def test_totals_add_up(played) -> None:
    site, _, _ = played
    total = report(site).total
    assert (total.issued, total.served, total.no_shows, total.voided, total.transferred) == (
        4,
        2,
        1,
        1,
        1,
    )
    assert sorted(total.waits) == [300, 600, 1200]
    assert (total.wait_median_s, total.wait_p90_s) == (600, 1200)


def test_per_agency_and_counter(played) -> None:
    site, _, _ = played
    agencies = by_key(report(site, group="agency"))
    dukcapil = agencies["disdukcapil"]
    assert (dukcapil.issued, dukcapil.served, dukcapil.no_shows, dukcapil.transferred) == (
        3,
        2,
        1,
        1,
    )
    assert agencies["polres"].voided == 1
    counters = by_key(report(site, group="counter", lang="en"))
    assert set(counters) == {"3", "4"}
    assert (counters["3"].served, counters["3"].no_shows, counters["3"].transferred) == (2, 1, 0)
    assert (counters["4"].served, counters["4"].transferred) == (0, 1)
    assert counters["3"].label == "Counter 3"


def test_series_buckets_and_heatmap(played) -> None:
    site, _, _ = played
    conn = connect(site.hub.database, readonly=True)
    try:
        month = r.build_report(conn, site, r.Period.of("month", DAY), bucket="week")
    finally:
        conn.close()
    assert month.period == r.Period(date(2026, 11, 1), date(2026, 11, 30))
    weeks = {s.key: s.issued for s in month.series}
    assert weeks["2026-W48"] == 4 and sum(weeks.values()) == 4
    assert month.heatmap[0][9] == 4  # Monday, 09:00-09:59 local time
    assert sum(map(sum, month.heatmap)) == 4


def test_other_days_are_empty(played) -> None:
    site, _, _ = played
    conn = connect(site.hub.database, readonly=True)
    try:
        rep = r.build_report(conn, site, r.Period.of("day", date(2026, 11, 24)))
    finally:
        conn.close()
    assert rep.total.issued == 0 and rep.rows == []


def test_ratings_per_officer(played) -> None:
    site, _, _ = played
    conn = connect(site.hub.database, readonly=True)
    try:
        results = r.ratings_by_officer(conn, site, r.Period.of("day", DAY))
    finally:
        conn.close()
    assert len(results) == 1
    siti = results[0]
    assert siti.officer == "Siti" and siti.counters == (3,)
    assert siti.counts == {4: 1, 3: 0, 2: 0, 1: 1}
    assert siti.mean == 2.5 and siti.satisfied_share == 0.5


def test_breaks_per_officer_counter_and_day(played) -> None:
    site, _, _ = played
    conn = connect(site.hub.database, readonly=True)
    try:
        rows = r.breaks(conn, site, r.Period.of("day", DAY))
        other_day = r.breaks(conn, site, r.Period.of("day", date(2026, 11, 24)))
    finally:
        conn.close()
    assert [(b.officer, b.counter, b.day, b.count, b.total_s) for b in rows] == [
        ("Budi", 4, "2026-11-23", 1, 900.0),
        ("Siti", 3, "2026-11-23", 1, 600.0),
    ]
    assert rows[0].by_reason == {"istirahat": 900.0} and rows[1].by_reason == {"sholat": 600.0}
    assert other_day == []
    table = list(csv.reader(io.StringIO(r.breaks_csv(rows, ("istirahat", "sholat")))))
    assert table[0] == ["day", "officer", "counter", "breaks", "total_s", "istirahat", "sholat"]
    assert table[1] == ["2026-11-23", "Budi", "4", "1", "900", "900", "0"]


def test_survey_summary_by_service_and_agency(played) -> None:
    site, tickets, service = played
    ok(
        service,
        m.SubmitSurvey(device="hub", token=tickets["A001"].token, scores=(4,) * 9, comment="Cepat"),
    )
    ok(service, m.SubmitSurvey(device="hub", token=tickets["B001"].token, scores=(3,) * 9))
    conn = connect(site.hub.database, readonly=True)
    try:
        period = r.Period.of("week", DAY)
        everything = r.survey_summary(conn, period)
        ktp = r.survey_summary(conn, period, service="ktp")
        kk = r.survey_summary(conn, period, service="kk")
        polres = r.survey_summary(conn, period, agency="polres")
    finally:
        conn.close()
    # (9 x 4 + 9 x 3) / 18 = 3.5 per element; x 25 = 87.50 -> B.
    assert everything.result.respondents == 2 and str(everything.result.value) == "87.50"
    assert everything.result.category.letter == "B"
    assert [c.text for c in everything.comments] == ["Cepat"]
    assert everything.comments[0].service == "ktp"
    assert ktp.result.respondents == 2  # B001 was served as ktp (after its transfer)
    assert kk.result.respondents == 0 and polres.result.respondents == 0


def test_alerts_listed_open_first(site: Site) -> None:
    clock = Clock()
    service = HubService(site, clock=clock, first_start=True).start()
    try:
        ok(service, m.OpenCounter(device="hub", counter=3, officer="Siti"))
        for i in range(3):
            clock.at(100 * i)
            ok(service, m.IssueTicket(device="hub", service="ktp"))
            ok(service, m.CallNext(device="hub", counter=3))
            ok(service, m.Rate(device="hub", counter=3, score=1))
        conn = connect(site.hub.database, readonly=True)
        open_alerts = r.alerts(conn)
        assert len(open_alerts) == 1 and open_alerts[0].acked_by is None
        assert "3 kali" in open_alerts[0].text_id
        ok(service, m.AckAlert(device="hub", alert_id=open_alerts[0].id, by="kepala"))
        assert r.alerts(conn)[0].acked_by == "kepala"
        conn.close()
    finally:
        service.stop()


def test_csv_export_has_every_column_and_escapes_formulas() -> None:
    rows = [r.Stats("ktp", '=HYPERLINK("x")', issued=3, served=2, waits=[60.0, 120.0])]
    text = r.to_csv(rows)
    parsed = list(csv.reader(io.StringIO(text)))
    assert parsed[0][:4] == ["key", "name", "issued", "served"]
    assert parsed[1][1].startswith("'=")
    assert parsed[1][2:4] == ["3", "2"]
    assert parsed[1][parsed[0].index("wait_median_s")] == "90"
    assert parsed[1][parsed[0].index("compliance")] == "0"


def test_percentiles_by_hand() -> None:
    values = [10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0, 90.0, 100.0]
    assert r.percentile(values, 90) == 90.0
    assert r.percentile([*values, 110.0], 90) == 100.0
    assert r.median([5.0, 1.0, 3.0]) == 3.0
    assert r.percentile([], 90) is None and r.median([]) is None


@pytest.mark.parametrize(
    ("start", "end"),
    [
        ("2026-11-30", "2026-11-01"),
        ("2026-13-01", "2026-12-01"),
        ("2020-01-01", "2026-01-01"),
        ("x", "y"),
    ],
)
def test_bad_periods_are_refused(start: str, end: str) -> None:
    with pytest.raises(r.ReportError):
        r.Period.parse(start, end)


def test_bad_grouping_is_refused(site: Site, tmp_path) -> None:
    from hub.store import Store

    Store(tmp_path / "empty.sqlite", first_start=True).close()
    conn = connect(tmp_path / "empty.sqlite", readonly=True)
    with pytest.raises(r.ReportError):
        r.build_report(conn, site, r.Period.of("day", DAY), group="planet")
    with pytest.raises(r.ReportError):
        r.build_report(conn, site, r.Period.of("day", DAY), bucket="year")
    conn.close()


def test_epoch_bounds_are_local_midnights(site: Site) -> None:
    start, end = r.Period.of("day", DAY).epoch_bounds(site)
    assert start == T0 - 9 * 3600 and end - start == 86400
