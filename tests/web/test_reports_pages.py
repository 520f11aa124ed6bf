"""Supervisor pages over a played day: report tables, charts, CSV, IKM, alerts acknowledged."""

from __future__ import annotations

import csv
import io
import re
import sqlite3
from collections.abc import Iterator

import pytest
from flask import Flask

from hub.service import HubService
from protocol import messages as m
from protocol.site import Site
from tests.hub.scenario import Clock, ok, play_day
from tests.web.conftest import PASSWORD, form, login, web_app


@pytest.fixture
def played_app(site: Site) -> Iterator[tuple[Flask, HubService, dict]]:
    clock = Clock()
    service = HubService(site, clock=clock, first_start=True).start()
    tickets = play_day(service, clock)
    ok(
        service,
        m.SubmitSurvey(
            device="hub", token=tickets["A001"].token, scores=(4,) * 9, comment="Cepat & ramah <b>"
        ),
    )
    try:
        with web_app(site, service) as app:
            app.extensions["mpp_users"].add("kepala", "Kepala MPP", "supervisor", PASSWORD)
            yield app, service, tickets
    finally:
        service.stop()


def supervisor(app: Flask):
    client = app.test_client()
    login(client, "kepala")
    return client


def test_report_page_and_csv(played_app) -> None:
    app, _, _ = played_app
    client = supervisor(app)
    body = client.get("/reports?start=2026-11-23&end=2026-11-23").get_data(as_text=True)
    assert "Perekaman dan Cetak KTP-el" in body and "<svg" in body
    assert body.count('class="cell"') == 7  # heat map: one hour column (09:00) x 7 days
    assert 'data-count="4"' in body
    export = client.get("/reports/export.csv?start=2026-11-23&end=2026-11-23&group=service")
    assert export.headers["Content-Type"].startswith("text/csv")
    assert "attachment" in export.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(export.get_data(as_text=True).lstrip("\ufeff"))))
    ktp = next(r for r in rows if r["key"] == "ktp")
    assert (ktp["issued"], ktp["served"], ktp["no_shows"], ktp["wait_median_s"]) == (
        "2",
        "2",
        "1",
        "900",
    )
    total = next(r for r in rows if r["key"] == "total")
    assert (total["issued"], total["voided"], total["transferred"]) == ("4", "1", "1")
    series = client.get(
        "/reports/export.csv?start=2026-11-01&end=2026-11-30&bucket=week&table=series"
    )
    weeks = list(csv.DictReader(io.StringIO(series.get_data(as_text=True).lstrip("\ufeff"))))
    assert [w["key"] for w in weeks] == [
        "2026-W44",
        "2026-W45",
        "2026-W46",
        "2026-W47",
        "2026-W48",
        "2026-W49",
    ]  # 30 Nov is a Monday
    bad = client.get("/reports?start=2026-11-30&end=2026-11-01")
    said = "Periode berakhir (2026-11-01) sebelum dimulai (2026-11-30)"
    assert bad.status_code == 200 and said in bad.get_data(as_text=True)
    english = client.get("/reports?start=2026-11-30&end=2026-11-01&lang=en")
    assert "The period ends (2026-11-01) before it starts" in english.get_data(as_text=True)
    assert client.get("/reports/export.csv?start=nope&end=2026-11-01").status_code == 400


def test_ikm_page(played_app) -> None:
    app, _, _ = played_app
    client = supervisor(app)
    body = client.get("/reports/ikm?start=2026-11-23&end=2026-11-23").get_data(as_text=True)
    assert 'id="ikm-respondents">1<' in body and 'id="ikm-value">100.00<' in body
    assert "A (Sangat baik)" in body
    assert "Cepat &amp; ramah &lt;b&gt;" in body  # comments are escaped
    assert "Siti" in body  # rating pad results per officer
    polres = client.get("/reports/ikm?start=2026-11-23&end=2026-11-23&agency=polres").get_data(
        as_text=True
    )
    assert 'id="ikm-respondents">0<' in polres and "Belum ada responden" in polres
    exported = client.get("/reports/ikm.csv?start=2026-11-23&end=2026-11-23").get_data(as_text=True)
    assert "U1,Persyaratan,4.0000,0.4444" in exported and "ikm,100.00" in exported


def test_alert_acknowledged_from_the_web(played_app) -> None:
    app, service, _ = played_app
    ok(service, m.OpenCounter(device="hub", counter=13, officer="Rina"))
    for _ in range(3):
        ok(service, m.IssueTicket(device="hub", service="skck"))
        ok(service, m.CallNext(device="hub", counter=13))
        ok(service, m.Rate(device="hub", counter=13, score=1))
    client = supervisor(app)
    page = client.get("/alerts").get_data(as_text=True)
    assert "Rina" in page and "3 kali" in page
    alert = next(
        a
        for a in service.snapshot("alert")
        if isinstance(a, m.Alert) and a.kind == "consecutive_complaints"
    )
    response = client.post(f"/alerts/{alert.id}/ack", data={**form(client, "/alerts")})
    assert response.status_code == 302
    assert "Ditangani oleh Kepala MPP" in client.get("/alerts").get_data(as_text=True)
    # gone from the retained alerts (the hub's tick may meanwhile raise others, such as a
    # service with people waiting and no counter open)
    assert alert.id not in {a.id for a in service.snapshot("alert") if isinstance(a, m.Alert)}


def test_the_report_shows_bookings_beside_walk_ins(site: Site) -> None:
    clock = Clock()
    service = HubService(site, clock=clock, first_start=True).start()
    try:
        clock.at(0)
        ok(service, m.IssueTicket(device="hub", service="ktp"))  # a walk-in
        day = service.site.business_day(clock())
        with sqlite3.connect(service.database, timeout=10) as conn:  # as down/ brings them
            conn.executemany(
                'INSERT INTO bookings (code, service, day, start, "end", status, received_at, '
                "changed_at) VALUES (?, 'ktp', ?, ?, ?, 'active', 0, 0)",
                [(code, day, f"{hour:02d}:00", f"{hour + 1:02d}:00")
                 for code, hour in (("AAAA2222", 9), ("BBBB3333", 9))],
            )  # fmt: skip
        ok(service, m.CheckIn(device="hub", code="AAAA2222"))
        with web_app(site, service) as app:
            app.extensions["mpp_users"].add("kepala", "Kepala MPP", "supervisor", PASSWORD)
            body = supervisor(app).get(f"/reports?start={day}&end={day}").get_data(as_text=True)
    finally:
        service.stop()
    table = body.split('id="report-funnel"', 1)[1].split("</table>", 1)[0]
    assert "Perekaman dan Cetak KTP-el" in table
    cells = re.findall(r'<td class="num">(\d+)</td>', table)
    assert cells == ["2", "1", "0", "0", "0", "1", "0"]  # booked, in, called, served, no-show


def test_breaks_per_officer_and_counter_on_the_report_page_and_in_csv(played_app) -> None:
    app, _, _ = played_app
    client = supervisor(app)
    page = client.get("/reports?start=2026-11-23&end=2026-11-23").get_data(as_text=True)
    table = page[
        page.index('id="report-breaks"') : page.index("</table>", page.index('id="report-breaks"'))
    ]
    assert "Budi" in table and "Loket 4" in table and "Siti" in table
    csv_text = client.get(
        "/reports/export.csv?start=2026-11-23&end=2026-11-23&table=breaks"
    ).get_data(as_text=True)
    rows = list(csv.reader(io.StringIO(csv_text.lstrip("\ufeff"))))
    assert rows[0] == ["day", "officer", "counter", "breaks", "total_s", "istirahat", "sholat",
                       "rapat", "lainnya"]  # fmt: skip
    assert rows[1] == ["2026-11-23", "Budi", "4", "1", "900", "900", "0", "0", "0"]
