"""The region's public ticket page and online booking through Flask's test client, on real
PostgreSQL: the hub's figures rendered as sent, the stale link said with its time, the survey
queued for the site, the booking flow with its refusals, calendar file and cancel link."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest
from flask.testing import FlaskClient
from icalendar import Calendar
from psycopg_pool import ConnectionPool

from protocol import messages as m
from region import downlink
from region.config import parse_region
from region.ingest import Ingestor, Received
from region.web import create_app
from region.web.accounts import Accounts
from tests.region.events import CATALOG, T0, batches, issued
from tests.region.test_bookings import offer
from tests.region.test_ingest import catalog, received, topic

TOKEN = "tok-A001-abcdefghijkl"
CONFIG = """
[region]
id = "kalsel"
name = "Kalimantan Selatan"
timezone = "Asia/Makassar"
[web]
public_url = "https://antrian.example.go.id"
[booking]
per_address_per_hour = 3
[[sites]]
id = "bjb"
name = "MPP Banjarbaru"
"""


def view(waiting=(1,), est=(0,), called=(), seq=10) -> m.QueueView:
    return m.QueueView(
        site="bjb",
        service="ktp",
        seq=seq,
        at=T0,
        open=True,
        waiting=tuple(waiting),
        est_wait_s=tuple(est),
        called=tuple(called),
    )


@pytest.fixture
def pool(region_dsn: str, region_conn) -> Iterator[ConnectionPool]:
    ingest = Ingestor(region_conn)
    events = [
        issued(1, 7, T0, "ktp", "A005").model_copy(update={"token_sha256": m.token_sha256(TOKEN)}),
        issued(2, 8, T0 + 1, "ktp", "A006"),
    ]
    ingest.ingest([catalog()] + [received(b) for b in batches(events, 5)])
    with region_conn.transaction():
        downlink.handle(region_conn, "bjb", "queue_view", m.encode(view((8, 7), (0, 600))), T0)
        downlink.handle(region_conn, "bjb", "booking_offer", m.encode(offer()), T0)
    region_conn.execute("UPDATE links SET last_seen = %s", (T0 + 5,))
    with ConnectionPool(region_dsn, min_size=1, max_size=4, open=True) as made:
        yield made


@pytest.fixture
def clock() -> list[float]:
    return [T0 + 10]


@pytest.fixture
def client(pool: ConnectionPool, clock) -> Iterator[FlaskClient]:
    app = create_app(
        parse_region(CONFIG),
        pool,
        {"CLOCK": lambda: clock[0], "TESTING": True, "SSE_MAX_S": 0.5, "SSE_KEEPALIVE_S": 0.1},
    )
    yield app.test_client()
    app.extensions["region"]["feed"].stop()


def first_event(client: FlaskClient, path: str) -> dict:
    reply = client.get(path, buffered=False)
    assert reply.mimetype == "text/event-stream"
    for chunk in reply.response:
        text = chunk.decode() if isinstance(chunk, bytes) else chunk
        if text.startswith("event: ticket"):
            reply.close()
            return json.loads(text.split("data: ", 1)[1])
    raise AssertionError("no ticket event")


def test_the_ticket_page_shows_the_hubs_figures_and_no_personal_data(client):
    page = client.get(f"/t/{TOKEN}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "A005" in html and "KTP-el" in html and "MPP Banjarbaru" in html
    # The hub put A006 first (e.g. a priority ticket): one person ahead, its estimate.
    assert re.search(r'id="people-ahead">1<', html)
    assert re.search(r'id="est-wait">[^<]*10 menit', html)
    assert TOKEN not in html.replace(f"/t/{TOKEN}/", "")  # only in its own links
    assert client.get("/t/unknown-token-0000000").status_code == 404
    assert client.get("/t/bad token!").status_code == 404
    event = first_event(client, f"/t/{TOKEN}/events")
    assert event["status"] == "waiting" and event["ahead"] == "1" and event["stale"] == ""


def test_called_says_which_counter_and_a_down_link_says_since_when(client, region_conn, clock):
    with region_conn.transaction():
        called = (m.CalledTicket(ticket=7, counter=3, call_seq=12),)
        downlink.handle(
            region_conn, "bjb", "queue_view", m.encode(view((8,), (0,), called, 11)), T0
        )
    event = first_event(client, f"/t/{TOKEN}/events")
    assert event["headline"] == "Silakan menuju Loket 3" and event["call_seq"] == 12
    clock[0] = T0 + 5 + 600  # nothing from the site for ten minutes
    event = first_event(client, f"/t/{TOKEN}/events")
    assert "Koneksi ke MPP terputus" in event["stale"] and "09:00" in event["stale"]
    english = client.get(f"/t/{TOKEN}?lang=en").get_data(as_text=True)
    assert "The link to the MPP is down" in english and "as of 09:00" in english


def test_the_survey_goes_to_the_site_once_answered_and_never_twice(client, region_conn):
    region_conn.execute("UPDATE tickets SET status = 'done' WHERE id = 7")
    html = client.get(f"/t/{TOKEN}").get_data(as_text=True)
    assert 'id="survey-form"' in html and 'id="survey-form" class="survey" hidden' not in html
    token = re.search(r'name="csrf_token" value="([^"]+)"', html)[1]
    answers = {f"U{i}": str(1 + i % 4) for i in range(1, 10)}
    short = client.post(f"/t/{TOKEN}/survey", data={"csrf_token": token, "U1": "4"})
    assert short.status_code == 400
    sent = client.post(f"/t/{TOKEN}/survey", data={**answers, "csrf_token": token, "comment": "ok"})
    assert sent.status_code == 302
    again = client.post(f"/t/{TOKEN}/survey", data={**answers, "csrf_token": token})
    assert again.status_code == 409
    rows = region_conn.execute("SELECT id, body FROM down_queue WHERE site = 'bjb'").fetchall()
    assert len(rows) == 1
    body = m.SurveyAnswered.model_validate(rows[0][1])
    assert body.ticket == 7 and body.token_sha256 == m.token_sha256(TOKEN)
    assert body.scores == tuple(int(answers[f"U{i}"]) for i in range(1, 10))
    assert "Terima kasih" in client.get(f"/t/{TOKEN}?terima=1").get_data(as_text=True)
    # The site acknowledges: the comment does not stay at the region.
    with region_conn.transaction():
        ack = m.DownAck(site="bjb", applied=1, at=T0)
        downlink.handle(region_conn, "bjb", "down_ack", m.encode(ack), T0)
    assert "comment" not in region_conn.execute("SELECT body FROM down_queue").fetchone()[0]


def csrf(client: FlaskClient, path: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', client.get(path).get_data(as_text=True))[
        1
    ]


def test_booking_flow_code_qr_calendar_and_cancel_by_link(client, region_conn, clock):
    clock[0] = T0 - 3 * 3600  # Monday 06:00
    assert "Perekaman" not in client.get("/reservasi").get_data(as_text=True)
    index = client.get("/reservasi").get_data(as_text=True)
    assert 'href="/reservasi/bjb/ktp"' in index
    days = client.get("/reservasi/bjb/ktp").get_data(as_text=True)
    assert "Senin, 7 Desember 2026" in days and 'href="/reservasi/bjb/ktp/2026-12-07"' in days
    sessions = client.get("/reservasi/bjb/ktp/2026-12-07").get_data(as_text=True)
    assert "08:00–10:00" in sessions and "Sisa kuota: 10" in sessions
    path = "/reservasi/bjb/ktp/2026-12-07/08:00-10:00"
    token = csrf(client, path)
    bad = client.post(path, data={"csrf_token": token, "phone": "12345"})
    assert bad.status_code == 400 and "tidak valid" in bad.get_data(as_text=True)
    made = client.post(path, data={"csrf_token": token, "phone": "0812 3456 7890"})
    assert made.status_code == 302
    link = made.headers["Location"]
    code = re.search(r"/r/bjb/([A-Z2-9]{8})\?k=", link)[1]
    page = client.get(link).get_data(as_text=True)
    assert code in page and 'id="booking-qr" src="data:image/svg+xml;base64,' in page
    assert "07:30–08:15" in page  # check-in window
    twice = client.post(path, data={"csrf_token": token, "phone": "+6281234567890"})
    assert twice.status_code == 409 and "sudah memiliki reservasi" in twice.get_data(as_text=True)
    # Rate limit: 3 attempts an hour from one address (the config), then refused.
    limited = client.post(path, data={"csrf_token": token, "phone": "081200000009"})
    assert limited.status_code == 429
    ics = client.get(f"/r/bjb/{code}/kalender.ics")
    assert ics.mimetype == "text/calendar"
    event = Calendar.from_ical(ics.data).walk("VEVENT")[0]
    assert event["DTSTART"].dt.isoformat() == "2026-12-07T08:00:00+08:00"
    assert code in str(event["DESCRIPTION"])
    # Without the link's key: no cancel button, and a forged cancel is refused.
    assert 'id="cancel"' not in client.get(f"/r/bjb/{code}").get_data(as_text=True)
    forged = client.post(f"/r/bjb/{code}/batal", data={"csrf_token": token, "k": "nope"})
    assert forged.status_code == 409
    key = link.split("k=", 1)[1]
    done = client.post(f"/r/bjb/{code}/batal", data={"csrf_token": token, "k": key})
    assert done.status_code == 302
    after = client.get(done.headers["Location"]).get_data(as_text=True)
    assert "Dibatalkan" in after and 'id="booking-qr"' not in after
    kinds = [r[0] for r in region_conn.execute("SELECT body->>'kind' FROM down_queue ORDER BY id")]
    assert kinds == ["booking", "cancel"]
    assert client.get("/r/bjb/AAAAAAAA").status_code == 404
    assert client.get("/r/other/" + code).status_code == 404


def test_a_full_session_says_so(client, region_conn, clock):
    clock[0] = T0 - 3 * 3600
    region_conn.execute(
        "INSERT INTO booking_seats VALUES ('bjb', 'ktp', '2026-12-07', '08:00-10:00', 10, 10)"
    )
    sessions = client.get("/reservasi/bjb/ktp/2026-12-07").get_data(as_text=True)
    assert re.search(r'id="session-0800">08:00–10:00 <span class="seats">Penuh', sessions)
    path = "/reservasi/bjb/ktp/2026-12-07/08:00-10:00"
    full = client.post(path, data={"csrf_token": csrf(client, path), "phone": "081234567890"})
    assert full.status_code == 409 and "kuota sesi ini baru saja habis" in full.get_data(
        as_text=True
    )


def test_the_site_catalog_travels_to_the_ticket_pages(region_conn):
    """Counter names from the catalog (a counter called by name on the page)."""
    named = CATALOG.model_copy(
        update={"counter_names": {"3": m.Text(id="Loket Prioritas", en="Priority desk")}}
    )
    Ingestor(region_conn).ingest([Received(topic("bjb", "catalog"), m.encode(named))])
    names = region_conn.execute("SELECT counter_names FROM sites WHERE site = 'bjb'").fetchone()[0]
    assert names == {"3": {"id": "Loket Prioritas", "en": "Priority desk"}}


def test_the_reports_page_shows_the_booking_funnel(client, clock):
    clock[0] = T0 - 3 * 3600
    path = "/reservasi/bjb/ktp/2026-12-07/08:00-10:00"
    client.post(path, data={"csrf_token": csrf(client, path), "phone": "081234567890"})
    pool = client.application.extensions["region"]["pool"]
    Accounts(pool).add("sup", "Sup", "supervisor", "rahasia-panjang")
    token = csrf(client, "/login")
    login = {"username": "sup", "password": "rahasia-panjang", "csrf_token": token}
    assert client.post("/login", data=login).status_code == 302
    page = client.get("/reports?start=2026-12-07&end=2026-12-07").get_data(as_text=True)
    table = page.split('id="funnel"', 1)[1].split("</table>", 1)[0]
    cells = re.findall(r'<td class="num">(\d+)</td>', table)
    assert "MPP Banjarbaru" in table and "KTP-el" in table
    assert cells == ["1", "0", "0", "0", "0", "2", "0"]  # booked 1; walk-ins A005, A006
