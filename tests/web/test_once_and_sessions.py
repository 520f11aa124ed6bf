"""Staff changes apply once (a replayed form changes nothing again), logout ends the session on
the server, the login throttle is per address, and live streams are bounded (503 + retry)."""

from __future__ import annotations

import io
import re
import sqlite3

from flask import Flask
from PIL import Image

from hub.service import HubService
from protocol import messages as m
from tests.web.conftest import PASSWORD, form, issue, login
from tests.web.sse import EventReader

POST_FORM = re.compile(r"<form[^>]*method=\"post\"[^>]*>(.*?)</form>", re.S)
STAFF_PAGES = ("/admin", "/admin/users", "/admin/featured", "/admin/services/ktp",
               "/admin/counters/3", "/admin/zones/canteen", "/caller/3", "/priority", "/alerts",
               "/dashboard")  # fmt: skip


def read(hub: HubService, sql: str) -> list[tuple]:
    """Rows of the hub's database, read as the web reads it (a connection of its own)."""
    with sqlite3.connect(f"file:{hub.database}?mode=ro", uri=True) as conn:
        return [tuple(row) for row in conn.execute(sql)]


def png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (40, 30), (10, 120, 30)).save(out, "PNG")
    return out.getvalue()


def test_every_staff_form_carries_a_request_id(as_role, hub: HubService) -> None:
    admin = as_role("admin")
    issue(hub)
    seen = 0
    for url in STAFF_PAGES:
        page = admin.get(url).get_data(as_text=True)
        for body in POST_FORM.findall(page):
            seen += 1
            found = re.search(r'name="request_id" value="([^"]+)"', body)
            assert found and m.REQUEST_ID_RE.fullmatch(found[1]), (url, body[:200])
    assert seen >= 10
    # A staff form posted without one is refused and changes nothing.
    token = form(admin, "/admin")["csrf_token"]
    refused = admin.post(
        "/admin/services/ktp/close", data={"csrf_token": token}, follow_redirects=True
    )
    assert "Formulir tidak lengkap" in refused.get_data(as_text=True)
    assert "ktp" not in hub.queue.closed_services


def test_a_replayed_close_does_not_close_a_reopened_service(as_role, hub: HubService) -> None:
    admin = as_role("admin")
    close = form(admin, "/admin")
    admin.post("/admin/services/nib/close", data=close)
    assert "nib" in hub.queue.closed_services
    admin.post("/admin/services/nib/open", data=form(admin, "/admin"))
    admin.post("/admin/services/nib/close", data=close)  # the browser's back + resubmit
    assert "nib" not in hub.queue.closed_services
    # Both changes are events with who made them.
    rows = read(
        hub,
        "SELECT kind, officer FROM events WHERE service = 'nib' AND kind LIKE 'service_%' "
        "ORDER BY id",
    )
    assert [tuple(r) for r in rows] == [
        ("service_closed", "Ani Admin"),
        ("service_opened", "Ani Admin"),
    ]


def test_replayed_quota_and_featured_forms_apply_once(app: Flask, as_role, hub: HubService) -> None:
    admin = as_role("admin")
    quota = {**form(admin, "/admin/services/paspor"), "daily_quota": "25", "cutoff": ""}
    admin.post("/admin/services/paspor", data=quota)
    admin.post("/admin/services/paspor", data={**quota, "daily_quota": "26"})  # same form id
    assert hub.queue.daily_quota("paspor") == 25
    assert read(
        hub, "SELECT COUNT(*) FROM events WHERE kind = 'limits' AND service = 'paspor'"
    ) == [(1,)]
    product = {**form(admin, "/admin/featured"), "zone": "entrance", "caption_id": "Amplang"}
    for _ in range(2):
        admin.post(
            "/admin/featured",
            data={**product, "image": (io.BytesIO(png()), "a.png")},
            content_type="multipart/form-data",
        )
    assert [p.caption_id for p in app.extensions["mpp_featured"].all()] == ["Amplang"]
    account = {**form(admin, "/admin/users"), "username": "rina", "name": "Rina",
               "role": "officer", "password": "panjang-sekali"}  # fmt: skip
    first = admin.post("/admin/users", data=account, follow_redirects=True)
    again = admin.post("/admin/users", data=account, follow_redirects=True)
    assert "Tersimpan" in first.get_data(as_text=True)
    assert "sudah dipakai" not in again.get_data(as_text=True)  # told it was done, not an error


def test_logout_ends_the_session_on_the_server(app: Flask, as_role) -> None:
    officer = as_role("officer")
    cookie = officer.get_cookie("mpp_session")
    assert cookie is not None
    copy = app.test_client()
    copy.set_cookie("mpp_session", cookie.value)
    assert copy.get("/dashboard").status_code == 200
    officer.post("/logout", data=form(officer, "/dashboard"))
    assert officer.get("/dashboard").status_code == 302
    # The old cookie, kept by someone else, opens nothing any more.
    assert copy.get("/dashboard").status_code == 302


def test_a_new_password_ends_the_accounts_sessions(app: Flask, as_role) -> None:
    officer, admin = as_role("officer"), as_role("admin")
    assert officer.get("/dashboard").status_code == 200
    admin.post(
        "/admin/users/petugas",
        data={
            **form(admin, "/admin/users"),
            "role": "officer",
            "active": "1",
            "password": "sandi-baru-123",
        },
    )
    assert officer.get("/dashboard").status_code == 302


def test_login_throttle_is_per_address(app: Flask) -> None:
    attacker = app.test_client()
    attacker.environ_base["REMOTE_ADDR"] = "192.0.2.66"
    for _ in range(5):
        wrong = attacker.post(
            "/login",
            data={"username": "admin", "password": "tebakan-salah", **form(attacker)},
        )
        assert wrong.status_code == 401
    blocked = attacker.post(
        "/login", data={"username": "admin", "password": PASSWORD, **form(attacker)}
    )
    assert blocked.status_code == 429 and int(blocked.headers["Retry-After"]) > 0
    # The admin at the counter, from another address, logs in as usual.
    admin = app.test_client()
    admin.environ_base["REMOTE_ADDR"] = "192.0.2.10"
    login(admin, "admin")
    assert admin.get("/admin").status_code == 200


def test_live_streams_are_bounded_per_client_and_in_all(
    app: Flask, client, hub: HubService
) -> None:
    token = issue(hub).token
    app.config.update(MAX_STREAMS_PER_CLIENT=2)
    feed = app.extensions["mpp_live"]
    feed.max_per_client = 2
    open_streams = [client.get(f"/t/{token}/events") for _ in range(2)]
    refused = client.get(f"/t/{token}/events")
    assert refused.status_code == 503
    assert refused.headers["Retry-After"] == "30"
    assert "Terlalu banyak layar terbuka" in refused.get_data(as_text=True)
    other = app.test_client()
    other.environ_base["REMOTE_ADDR"] = "192.0.2.20"
    with other.get(f"/t/{token}/events") as allowed:  # another phone is not affected
        assert allowed.status_code == 200
        assert EventReader(allowed).until(lambda kind, _d: kind == "ticket")
    for stream in reversed(open_streams):  # the test client's contexts unwind in order
        stream.close()
    with client.get(f"/t/{token}/events") as again:  # a closed stream gives its slot back
        assert again.status_code == 200
    feed.max_streams = feed.listeners  # full: the whole site's limit
    other.environ_base["REMOTE_ADDR"] = "192.0.2.21"
    assert other.get(f"/t/{token}/events").status_code == 503
    assert feed.refused >= 2


def test_streams_send_keep_alives_between_updates(app: Flask, client, hub: HubService) -> None:
    token = issue(hub).token
    with client.get(f"/t/{token}/events") as stream:
        reader = EventReader(stream)
        reader.until(lambda kind, _d: kind == "ticket")
        _kind, comment = reader.until(lambda kind, _d: kind == "comment", timeout=3)
        assert comment == ": keep-alive"
