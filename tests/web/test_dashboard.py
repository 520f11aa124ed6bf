"""The live dashboard: rendered from the hub's retained state and updated by SSE."""

from __future__ import annotations

import re
import time

from hub.service import HubService
from protocol import messages as m
from tests.web.conftest import issue, ok
from tests.web.sse import EventReader


def test_dashboard_shows_services_counters_fleet(as_role, hub: HubService, bus_for) -> None:
    issue(hub, "pkb")
    issue(hub, "pkb")
    ok(hub, m.OpenCounter(device="hub", counter=10, officer="Dewi"))
    ok(hub, m.CallNext(device="hub", counter=10))
    bus_for("kiosk-1").set_health(printer="paper_low")
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and (
        "kiosk-1" not in hub.fleet or hub.fleet["kiosk-1"].status.health.printer != "paper_low"
    ):
        time.sleep(0.02)
    body = as_role("officer").get("/dashboard").get_data(as_text=True)
    assert 'id="svc-pkb"' in body and 'id="ctr-10"' in body
    row = body[body.index('id="ctr-10"') : body.index("</tr>", body.index('id="ctr-10"'))]
    assert "Dewi" in row and "G001" in row
    svc = body[body.index('id="svc-pkb"') : body.index("</tr>", body.index('id="svc-pkb"'))]
    assert '<td class="num waiting">1</td>' in svc
    assert 'id="dev-kiosk-1"' in body and 'id="dev-tv-canteen-2"' in body
    kiosk = body[
        body.index('id="dev-kiosk-1"') : body.index("</tr>", body.index('id="dev-kiosk-1"'))
    ]
    assert "Kertas hampir habis" in kiosk and "Daring" in kiosk
    assert 'id="sum-issued">2<' in body


def test_dashboard_stream_replaces_changed_rows(as_role, hub: HubService) -> None:
    client = as_role("supervisor")
    stream = EventReader(client.get("/dashboard/events", buffered=False))
    try:
        stream.until(lambda n, d: n == "hello")
        issue(hub, "skck")
        _, data = stream.until(lambda n, d: n == "replace" and d["id"] == "svc-skck")
        assert '<td class="num waiting">1</td>' in data["html"]
        ok(hub, m.OpenCounter(device="hub", counter=13, officer="Rina"))
        ok(hub, m.CallNext(device="hub", counter=13))
        _, data = stream.until(
            lambda n, d: n == "replace" and d["id"] == "ctr-13" and "H001" in d["html"]
        )
        assert "Rina" in data["html"]
        _, data = stream.until(lambda n, d: n == "replace" and d["id"] == "summary")
        assert 'id="sum-issued">1<' in data["html"]
        # A new ticket changes no counter's own state, yet counter 13's waiting count: its row
        # is redrawn from the service's state.
        issue(hub, "skck")
        _, data = stream.until(
            lambda n, d: n == "replace" and d["id"] == "ctr-13" and "H001" in d["html"]
        )
        assert '<td class="num">1</td>' in data["html"]
    finally:
        stream.close()


def test_device_presence_reaches_the_dashboard(as_role, hub: HubService, bus_for) -> None:
    client = as_role("officer")
    stream = EventReader(client.get("/dashboard/events", buffered=False))
    try:
        stream.until(lambda n, d: n == "hello")
        bus_for("kiosk-2")  # announces itself online (retained status)
        _, data = stream.until(lambda n, d: n == "replace" and d["id"] == "dev-kiosk-2")
        assert "Daring" in data["html"]
    finally:
        stream.close()
    body = client.get("/dashboard").get_data(as_text=True)
    row = body[body.index('id="dev-kiosk-2"') : body.index("</tr>", body.index('id="dev-kiosk-2"'))]
    assert "Daring" in row


def test_dashboard_shows_the_inventory_version_and_a_refusal(as_role, hub: HubService) -> None:
    client = as_role("supervisor")
    body = client.get("/dashboard").get_data(as_text=True)
    assert f'id="sum-config">{hub.site.version}<' in body
    stream = EventReader(client.get("/dashboard/events", buffered=False))
    try:
        stream.until(lambda n, d: n == "hello")
        hub.refuse_site("0123456789ab: site.toml: not valid TOML")
        _, data = stream.until(
            lambda n, d: n == "replace" and d["id"] == "summary" and "refused" in d["html"]
        )
        assert "Inventaris baru ditolak: 0123456789ab: site.toml: not valid TOML" in data["html"]
        assert f'id="sum-config">{hub.site.version}<' in data["html"]  # the old one runs on
    finally:
        stream.close()


def test_the_no_counter_alert_reaches_the_supervisor_within_seconds_and_is_acked_by_name(
    as_role, hub: HubService
) -> None:
    """Issue 22: 4 citizens waited with no counter open, and the dashboard said 'no alerts'."""
    client = as_role("supervisor")
    stream = EventReader(client.get("/dashboard/events", buffered=False))
    try:
        stream.until(lambda n, d: n == "hello")
        started = time.monotonic()
        for _ in range(4):
            issue(hub, "paspor")  # counters 19 and 20 are closed
        _, data = stream.until(
            lambda n, d: n == "replace" and d["id"] == "alerts" and "Paspor RI" in d["html"]
        )
        assert time.monotonic() - started < 5
        assert "tidak ada loket yang buka" in data["html"] and "Tangani" in data["html"]
        alert = next(a for a in hub.snapshot("alert") if a.kind == "no_counter")
        page = client.get("/alerts").get_data(as_text=True)
        token = re.search(r'name="csrf_token" value="([^"]+)"', page)[1]
        rid = re.search(rf'/alerts/{alert.id}/ack".*?name="request_id" value="([^"]+)"', page, re.S)
        response = client.post(
            f"/alerts/{alert.id}/ack", data={"csrf_token": token, "request_id": rid[1]}
        )
        assert response.status_code == 302
        _, data = stream.until(
            lambda n, d: n == "replace" and d["id"] == "alerts" and "Budi Supervisor" in d["html"]
        )
        assert "Ditangani oleh Budi Supervisor" in data["html"]  # still shown: still true
        ok(hub, m.OpenCounter(device="hub", counter=19, officer="Rina"))
        stream.until(
            lambda n, d: n == "replace" and d["id"] == "alerts" and "Paspor RI" not in d["html"]
        )
        ok(hub, m.StartBreak(device="hub", counter=19, reason="sholat"))
        _, data = stream.until(
            lambda n, d: n == "replace" and d["id"] == "ctr-19" and "sholat" in d["html"]
        )
        assert "Loket 19 - sholat, kembali" in data["html"]
    finally:
        stream.close()
