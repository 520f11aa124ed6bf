"""The regional web app through Flask's test client, on real PostgreSQL."""

from __future__ import annotations

import re
from collections.abc import Iterator

import psycopg
import pytest
from flask.testing import FlaskClient
from psycopg_pool import ConnectionPool

from protocol.ikm import ikm
from region.config import parse_region
from region.db import connect, create_schema
from region.ingest import Ingestor
from region.web import create_app
from region.web.accounts import Accounts
from tests.region.events import T0, batches, day_of_events
from tests.region.test_ingest import catalog, received

CONFIG = """
[region]
id = "kalsel"
name = "Kalimantan Selatan"
timezone = "Asia/Makassar"
[[sites]]
id = "bjb"
name = "MPP Banjarbaru"
[[sites]]
id = "mtp"
name = "MPP Martapura"
"""
PASSWORD = "rahasia-panjang"


@pytest.fixture(scope="module")
def web_dsn(postgres) -> Iterator[str]:
    """One database for the module (the pages only read; each test adds distinct names)."""
    with psycopg.connect(postgres.dsn(), autocommit=True) as admin:
        admin.execute("CREATE DATABASE region_web")
    dsn = postgres.dsn("region_web")
    with connect(dsn) as conn:
        create_schema(conn)
        ingest = Ingestor(conn)
        ingest.ingest([catalog()] + [received(b) for b in batches(day_of_events(), 5)])
        conn.execute("UPDATE links SET last_seen = %s", (T0 + 690,))
    yield dsn
    with psycopg.connect(postgres.dsn(), autocommit=True) as admin:
        admin.execute("DROP DATABASE IF EXISTS region_web WITH (FORCE)")


@pytest.fixture(scope="module")
def pool(web_dsn: str) -> Iterator[ConnectionPool]:
    with ConnectionPool(web_dsn, min_size=1, max_size=4, open=True) as made:
        accounts = Accounts(made)
        for role in ("viewer", "supervisor", "admin"):
            accounts.add(role, role.title(), role, PASSWORD)
        yield made


@pytest.fixture
def client(pool: ConnectionPool) -> FlaskClient:
    app = create_app(parse_region(CONFIG), pool, {"CLOCK": lambda: T0 + 700, "TESTING": True})
    return app.test_client()


def csrf(client: FlaskClient, path: str = "/login") -> str:
    page = client.get(path).get_data(as_text=True)
    return re.search(r'name="csrf_token" value="([^"]+)"', page)[1]


def login(client: FlaskClient, user: str) -> None:
    token = csrf(client)
    reply = client.post(
        "/login", data={"username": user, "password": PASSWORD, "csrf_token": token}
    )
    assert reply.status_code == 302, reply.get_data(as_text=True)


def test_pages_need_a_login_and_forms_a_token(client: FlaskClient) -> None:
    assert client.get("/").headers["Location"].startswith("/login")
    assert client.get("/reports").status_code == 302
    assert (
        client.post("/login", data={"username": "viewer", "password": PASSWORD}).status_code == 400
    )
    token = csrf(client)
    bad = client.post("/login", data={"username": "viewer", "password": "x", "csrf_token": token})
    assert bad.status_code == 401 and "salah" in bad.get_data(as_text=True)
    other = {"REMOTE_ADDR": "127.0.0.2"}
    for _ in range(5):
        client.post(
            "/login",
            data={"username": "admin", "password": "x", "csrf_token": token},
            environ_base=other,
        )
    throttled = client.post(
        "/login",
        data={"username": "admin", "password": PASSWORD, "csrf_token": token},
        environ_base=other,
    )
    assert throttled.status_code == 429
    login(client, "admin")  # from its own address: nobody locks an account out from elsewhere
    client.post("/logout", data={"csrf_token": csrf(client, "/")})
    login(client, "viewer")
    page = client.get("/")
    assert page.headers["Content-Security-Policy"].startswith("default-src 'self'")
    assert client.post("/logout").status_code == 400  # no token


def test_logout_ends_the_session_on_the_server(pool: ConnectionPool) -> None:
    app = create_app(parse_region(CONFIG), pool, {"CLOCK": lambda: T0 + 700, "TESTING": True})
    client = app.test_client()
    login(client, "viewer")
    cookie = client.get_cookie("mpp_region")
    assert cookie is not None and client.get("/").status_code == 200
    client.post("/logout", data={"csrf_token": csrf(client, "/")})
    copy = app.test_client()  # the old cookie, as someone who copied it would send it
    copy.set_cookie(cookie.key, cookie.value, domain=cookie.domain or "localhost")
    assert copy.get("/").headers["Location"].startswith("/login")


def test_overview_in_indonesian_and_english(client: FlaskClient) -> None:
    login(client, "viewer")
    page = client.get("/").get_data(as_text=True)
    assert "Semua MPP" in page and "Terhubung" in page and 'http-equiv="refresh"' in page
    row = re.search(r'<tr class="up" data-site="bjb">(.*?)</tr>', page, re.S)[1]
    cells = re.findall(r'<td class="num[^"]*">([^<]*)</td>', row)
    # behind, waiting (B001 after its transfer), served, longest wait (min), counters, devices, alerts
    assert cells == ["0", "1", "1", "12", "1/3", "1", "0"]
    assert "MPP Martapura" in page and "Belum pernah terhubung" in page
    english = client.get("/?lang=en").get_data(as_text=True)
    assert "All sites" in english and "Never connected" in english


def test_a_site_drill_down(client: FlaskClient) -> None:
    login(client, "viewer")
    page = client.get("/site/bjb").get_data(as_text=True)
    assert "MPP Banjarbaru" in page and "KTP-el" in page
    assert "kiosk-1 (printer=paper_out)" in page
    assert "1: Buka (Siti)" in page
    assert client.get("/site/nowhere").status_code == 404


def test_reports_by_role_with_csv(client: FlaskClient) -> None:
    login(client, "viewer")
    assert client.get("/reports").status_code == 403
    assert client.get("/users").status_code == 403
    client.post("/logout", data={"csrf_token": csrf(client, "/")})
    login(client, "supervisor")
    page = client.get("/reports?start=2026-12-01&end=2026-12-07&group=agency").get_data(
        as_text=True
    )
    assert "Disdukcapil" in page and "<svg" in page
    total = re.search(r"<tr class=total>(.*?)</tr>", page, re.S)[1]
    assert re.findall(r'<td class="num">([^<]*)</td>', total)[:4] == ["4", "1", "1", "1"]
    csv = client.get("/reports.csv?start=2026-12-07&end=2026-12-07&group=service")
    assert csv.mimetype == "text/csv"
    text = csv.get_data(as_text=True)
    assert text.startswith("\ufeff")  # spreadsheet programs then read UTF-8 names right
    lines = text.lstrip("\ufeff").splitlines()
    assert lines[0].startswith("service,name,issued,served,no_shows")
    assert "ktp,KTP-el,2,1,1,0,0,179,240,1,1" in lines
    bad = client.get("/reports?start=2026-12-07&end=2026-01-01")
    assert bad.status_code == 400
    assert "Periode berakhir (2026-01-01) sebelum dimulai (2026-12-07)" in bad.get_data(
        as_text=True
    )
    assert client.get("/reports?start=yesterday").status_code == 400


def test_ikm_per_unit_is_the_hubs_computation(client: FlaskClient) -> None:
    login(client, "supervisor")
    page = client.get("/ikm?start=2026-12-07&end=2026-12-07").get_data(as_text=True)
    expected = ikm([(4, 4, 3, 4, 4, 3, 4, 4, 3)])
    row = re.search(r'<tr data-unit="bjb/ktp">(.*?)</tr>', page, re.S)[1]
    assert str(expected.value) in row and f"{expected.category.letter} (" in row
    cells = re.findall(r'<td class="num">([^<]*)</td>', row)
    assert cells == ["1", *map(str, expected.nrr_decimal()), str(expected.value)]
    csv = client.get("/ikm?start=2026-12-07&end=2026-12-07&format=csv").get_data(as_text=True)
    assert (
        csv.splitlines()[1]
        == f"bjb,ktp,KTP-el,1,4.00,4.00,3.00,4.00,4.00,3.00,4.00,4.00,3.00,{expected.value},{expected.category.letter}"
    )


def test_admin_adds_accounts(client: FlaskClient) -> None:
    login(client, "admin")
    token = csrf(client, "/users")
    short = client.post(
        "/users",
        data={
            "username": "rina",
            "name": "Rina",
            "role": "viewer",
            "password": "x",
            "csrf_token": token,
        },
    )
    assert short.status_code == 400 and "at least" in short.get_data(as_text=True)
    made = client.post(
        "/users",
        data={
            "username": "rina",
            "name": "Rina",
            "role": "viewer",
            "password": PASSWORD,
            "csrf_token": token,
        },
    )
    assert made.status_code == 302
    assert "rina" in client.get("/users").get_data(as_text=True)


def test_mpp_region_web_serves_https_under_the_production_server(web_dsn: str, tmp_path) -> None:
    import os
    import ssl
    import subprocess
    import sys
    import urllib.request

    from broker_config.tls import make_ca, make_server_cert
    from protocol.brokers import free_port, wait_for_port

    ca = make_ca("region web test")
    server = make_server_cert(ca, ["127.0.0.1"])
    (tmp_path / "web.crt").write_bytes(server.cert_pem)
    (tmp_path / "web.key").write_bytes(server.key_pem)
    port = free_port()
    config = tmp_path / "region.toml"
    config.write_text(
        CONFIG
        + f'[database]\ndsn = "{web_dsn}"\n[web]\nport = {port}\n'
        + f'tls_cert = "{tmp_path / "web.crt"}"\ntls_key = "{tmp_path / "web.key"}"\n'
        + 'public_url = "https://127.0.0.1"\n',
        encoding="utf-8",
    )
    log = tmp_path / "web.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "protocol.cli", "region", "web", "--config", str(config)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=dict(os.environ),
        )
    try:
        assert wait_for_port("127.0.0.1", port, 30), log.read_text()
        context = ssl.create_default_context(cadata=ca.cert_pem.decode())
        with urllib.request.urlopen(f"https://127.0.0.1:{port}/healthz", context=context) as r:
            assert r.status == 200 and b'"ok":true' in r.read().replace(b" ", b"")
        with urllib.request.urlopen(f"https://127.0.0.1:{port}/login", context=context) as r:
            assert r.headers["Strict-Transport-Security"] == "max-age=31536000"
            assert "Secure" in r.headers["Set-Cookie"] or r.headers["Set-Cookie"] is None
    finally:
        proc.terminate()
        proc.wait(10)
