"""Supervisors see today's waiting priority tickets with who granted them, and revoke one."""

from __future__ import annotations

import sqlite3

from flask import Flask

from hub.service import HubService
from protocol import messages as m
from protocol.site import Site
from tests.web.conftest import csrf, form, issue


def db_rows(site: Site, sql: str, *args: object) -> list[tuple]:
    with sqlite3.connect(site.hub.database) as conn:
        return conn.execute(sql, args).fetchall()


def test_a_supervisor_revokes_a_priority_and_it_is_logged(
    hub: HubService, as_role, bus_for, site: Site
) -> None:
    kiosk = bus_for("kiosk-1")
    granted = kiosk.request(
        m.IssueTicket(device="kiosk-1", service="ktp", priority="pregnant"), timeout=5
    )["ticket"]
    regular = issue(hub, "ktp")
    client = as_role("supervisor")
    page = client.get("/priority").get_data(as_text=True)
    assert f'id="prio-{granted["id"]}"' in page and f'id="prio-{regular.id}"' not in page
    assert "Ibu hamil" in page and "kiosk-1" in page and "Belum ada." in page
    response = client.post(f"/priority/{granted['id']}/revoke", data={**form(client, "/priority")})
    assert response.status_code == 302
    page = client.get("/priority").get_data(as_text=True)
    assert f"Prioritas tiket {granted['number']} dicabut." in page
    assert f'id="prio-{granted["id"]}"' not in page
    assert (
        "oleh Budi Supervisor" in page and 'Ibu hamil · <span translate="no">kiosk-1</span>' in page
    )
    assert db_rows(site, "SELECT priority FROM tickets WHERE id = ?", granted["id"]) == [(None,)]
    assert db_rows(
        site, "SELECT detail FROM events WHERE kind = 'priority_revoked' AND ticket = ?",
        granted["id"],
    ) == [("Budi Supervisor",)]  # fmt: skip
    state = hub.retained[hub.bus.topics.service_state("ktp")]
    assert isinstance(state, m.ServiceState) and state.priority_waiting == 0


def test_revoking_what_cannot_be_revoked_says_why_and_changes_nothing(
    hub: HubService, as_role, site: Site
) -> None:
    regular = issue(hub, "ktp")
    client = as_role("supervisor")
    before = db_rows(site, "SELECT * FROM tickets")
    token = csrf(client, "/priority")
    client.post(
        f"/priority/{regular.id}/revoke",
        data={"csrf_token": token, "request_id": m.new_request_id()},
    )
    assert "Tiket ini bukan prioritas" in client.get("/priority").get_data(as_text=True)
    client.post(
        "/priority/99999/revoke", data={"csrf_token": token, "request_id": m.new_request_id()}
    )
    page = client.get("/priority?lang=en").get_data(as_text=True)
    assert "Priority tickets today" in page and 'class="flash error"' in page
    assert (
        client.post(
            "/priority/abc/revoke", data={"csrf_token": token, "request_id": m.new_request_id()}
        ).status_code
        == 404
    )
    assert client.post(f"/priority/{regular.id}/revoke").status_code == 400  # no CSRF token
    assert db_rows(site, "SELECT * FROM tickets") == before
    assert db_rows(site, "SELECT COUNT(*) FROM events WHERE kind = 'priority_revoked'") == [(0,)]


def test_officers_may_not_see_or_revoke_priority(
    hub: HubService, app: Flask, as_role, site: Site
) -> None:
    granted = hub.submit(m.IssueTicket(device="hub", service="ktp", priority="elderly"))
    ticket_id = granted.result["ticket"]["id"]  # type: ignore[index]
    officer = as_role("officer")
    assert officer.get("/priority").status_code == 403
    token = csrf(officer, "/dashboard")
    assert (
        officer.post(
            f"/priority/{ticket_id}/revoke",
            data={"csrf_token": token, "request_id": m.new_request_id()},
        ).status_code
        == 403
    )
    assert "/priority" not in officer.get("/dashboard").get_data(as_text=True)
    assert db_rows(site, "SELECT priority FROM tickets WHERE id = ?", ticket_id) == [("elderly",)]
    anonymous = app.test_client()
    assert anonymous.get("/priority").status_code == 302  # to the login page
