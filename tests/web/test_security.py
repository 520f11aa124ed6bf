"""Every route tried anonymously and as each role; CSRF, login throttling, cookies, error pages."""

from __future__ import annotations

import pytest
from flask import Flask

from hub.service import HubService
from protocol import messages as m
from protocol.site import Site
from tests.conftest import make_site, site_text
from tests.web.conftest import PASSWORD, TOKEN_RE, csrf, form, issue, login, web_app

# Who may use each endpoint (written out here, not read from the app, so a change shows).
AUDIENCE = {
    "static": "public",
    "auth.index": "public",
    "auth.login": "public",
    "auth.health": "public",
    "auth.logout": "officer",
    "ticket.page": "public",
    "ticket.events": "public",
    "survey.form": "public",
    "survey.thanks": "public",
    "display.index": "public",
    "display.screen": "public",
    "display.events": "public",
    "display.media": "public",
    "display.featured_image": "public",
    "display.inventory_media": "public",
    "dashboard.index": "officer",
    "dashboard.events": "officer",
    "caller.index": "officer",
    "caller.counter": "officer",
    "caller.act": "officer",
    "caller.events": "officer",
    "reports.index": "supervisor",
    "reports.export": "supervisor",
    "reports.ikm": "supervisor",
    "reports.ikm_csv": "supervisor",
    "reports.alerts": "supervisor",
    "reports.ack": "supervisor",
    "priority.index": "supervisor",
    "priority.revoke": "supervisor",
    "admin.index": "admin",
    "admin.set_service": "admin",
    "admin.close_counter": "admin",
    "admin.service_limits": "admin",
    "admin.counter_services": "admin",
    "admin.zone_sound": "admin",
    "admin.users": "admin",
    "admin.add_user": "admin",
    "admin.update_user": "admin",
    "admin.featured": "admin",
    "admin.add_featured": "admin",
    "admin.remove_featured": "admin",
}
RANK = {"public": 0, "officer": 1, "supervisor": 2, "admin": 3}


def sample_args(token: str) -> dict[str, object]:
    return {
        "token": token,
        "number": 3,
        "action": "open",
        "zone_code": "lobby",
        "alert_id": "complaints-3-x-1",
        "code": "ktp",
        "username": "petugas",
        "product_id": 99,
        "name": "abc.png",
        "sha256": "0" * 64,
        "index": 0,
        "ticket_id": 99999,
        "filename": "app.css",
    }


def routes(app: Flask, token: str) -> list[tuple[str, str, str]]:
    out = []
    args = sample_args(token)
    with app.test_request_context():
        for rule in app.url_map.iter_rules():
            values = {k: args[k] for k in rule.arguments}
            url = app.url_for(rule.endpoint, **values)
            for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
                out.append((rule.endpoint, method, url))
    return out


def test_every_endpoint_has_a_declared_audience(app: Flask) -> None:
    assert {rule.endpoint for rule in app.url_map.iter_rules()} == set(AUDIENCE)


@pytest.mark.parametrize("who", ["anonymous", "officer", "supervisor", "admin"])
def test_each_route_as_each_role(app: Flask, hub: HubService, as_role, who: str) -> None:
    token = issue(hub).token
    client = app.test_client() if who == "anonymous" else as_role(who)
    rank = 0 if who == "anonymous" else RANK[who]
    for endpoint, method, url in routes(app, token):
        if endpoint == "auth.logout":
            continue  # would end this client's session mid-test; checked below
        need = RANK[AUDIENCE[endpoint]]
        if method == "GET":
            response = client.get(url, buffered=False)
        else:
            token_value = csrf(client, "/login")
            response = client.post(url, data={"csrf_token": token_value}, buffered=False)
        status, location = response.status_code, response.headers.get("Location", "")
        response.close()
        where = f"{who} {method} {url} -> {status}"
        if rank >= need:
            assert status != 403, where
            assert "/login" not in location or endpoint == "auth.index", where
            assert status < 500, where
        elif who == "anonymous" and method == "GET":
            assert status == 302 and location.startswith("/login?next="), where
        else:
            assert status == 403, where


def test_logout_needs_login_and_ends_the_session(client, as_role) -> None:
    assert client.post("/logout", data={**form(client)}).status_code == 403
    officer = as_role("officer")
    assert officer.get("/dashboard").status_code == 200
    assert officer.post("/logout", data={**form(officer, "/dashboard")}).status_code == 302
    assert officer.get("/dashboard").status_code == 302


def test_undeclared_route_is_refused_even_to_admins(hub: HubService) -> None:
    with web_app(hub.site) as app:
        app.add_url_rule("/forgot", "forgot", lambda: "secret")
        app.extensions["mpp_users"].add("root", "Root", "admin", PASSWORD)
        client = app.test_client()
        login(client, "root")
        assert client.get("/forgot").status_code == 403


def test_forms_without_the_csrf_token_are_refused(client, as_role, hub: HubService) -> None:
    refused = client.post("/login", data={"username": "admin", "password": PASSWORD})
    assert refused.status_code == 400
    assert "Formulir kedaluwarsa" in refused.get_data(as_text=True)
    admin = as_role("admin")
    forged = admin.post("/admin/services/ktp/close", data={"csrf_token": "forged"})
    assert forged.status_code == 400
    state = next(s for s in hub.snapshot("service_state") if s.service == "ktp")
    assert state.open, "a forged form changed nothing"
    # and the same form with the page's token works
    done = admin.post("/admin/services/ktp/close", data={**form(admin, "/admin")})
    assert done.status_code == 302
    assert hub.submit(m.IssueTicket(device="hub", service="ktp")).error.code == "service_closed"


def test_login_is_throttled(client) -> None:
    for _ in range(5):
        wrong = client.post(
            "/login",
            data={"username": "admin", "password": "wrong-guess", **form(client)},
        )
        assert wrong.status_code == 401
        assert "salah" in wrong.get_data(as_text=True)
    blocked = client.post(
        "/login", data={"username": "admin", "password": PASSWORD, **form(client)}
    )
    assert blocked.status_code == 429
    assert int(blocked.headers["Retry-After"]) > 0
    assert "Terlalu banyak percobaan" in blocked.get_data(as_text=True)


def test_login_redirect_stays_on_this_site(client) -> None:
    response = client.post(
        "/login?next=https://evil.example/x",
        data={"username": "admin", "password": PASSWORD, **form(client)},
    )
    assert response.headers["Location"] == "/dashboard"
    client2 = client.application.test_client()
    response = client2.post(
        "/login?next=/reports",
        data={"username": "admin", "password": PASSWORD, **form(client2)},
    )
    assert response.headers["Location"] == "/reports"


def test_session_cookie_flags(client, tmp_path, broker) -> None:
    response = client.post(
        "/login", data={"username": "admin", "password": PASSWORD, **form(client)}
    )
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    text = (
        site_text(broker.port, database=tmp_path / "tls.sqlite")
        .replace("# tls_cert = ", "tls_cert = ")
        .replace("# tls_key = ", "tls_key = ")
    )
    https_site: Site = make_site(broker.port, text=text)
    assert https_site.web.tls_cert is not None
    with web_app(https_site) as app:  # not connected: login needs no queue
        app.extensions["mpp_users"].add("root", "Root", "admin", PASSWORD)
        plain = app.test_client()
        # Staff pages and the login over plain http go to the https listener.
        moved = plain.get("/login?next=/reports")
        assert moved.status_code == 308
        assert moved.headers["Location"] == "https://localhost:8443/login?next=/reports"
        assert plain.get("/dashboard").headers["Location"] == "https://localhost:8443/dashboard"
        secure = app.test_client()
        page = secure.get("/login", base_url="https://localhost:8443")
        token = TOKEN_RE.search(page.get_data(as_text=True))[1]  # type: ignore[index]
        response = secure.post(
            "/login",
            base_url="https://localhost:8443",
            data={
                "username": "root",
                "password": PASSWORD,
                "csrf_token": token,
                "request_id": m.new_request_id(),
            },
        )
        assert response.status_code == 302 and "Secure" in response.headers["Set-Cookie"]


def test_security_headers(client, hub: HubService) -> None:
    response = client.get(f"/t/{issue(hub).token}")
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Cache-Control"] == "no-store"


def test_errors_show_no_stack_trace(hub: HubService) -> None:
    def broken() -> str:
        raise RuntimeError("database password is hunter2")

    broken._audience = "public"  # type: ignore[attr-defined]
    with web_app(hub.site) as app:
        app.add_url_rule("/broken", "broken", broken)
        response = app.test_client().get("/broken")
        body = response.get_data(as_text=True)
    assert response.status_code == 500
    assert "Terjadi gangguan" in body
    assert "Traceback" not in body and "hunter2" not in body and "RuntimeError" not in body


def test_unknown_pages_and_methods(client) -> None:
    missing = client.get("/no/such/page")
    assert missing.status_code == 404 and "Halaman tidak ditemukan" in missing.get_data(
        as_text=True
    )
    assert client.get("/?lang=en").status_code == 302
    assert "Page not found" in client.get("/nothing").get_data(as_text=True)
    assert client.put("/login").status_code == 405
