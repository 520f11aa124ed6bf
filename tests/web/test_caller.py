"""The web caller: the same commands as the caller box, through the hub's command path."""

from __future__ import annotations

import re

from flask.testing import FlaskClient

from hub.service import HubService
from protocol import messages as m
from tests.web.conftest import issue
from tests.web.sse import EventReader


def press(client: FlaskClient, number: int, action: str, **extra: str) -> str:
    """Press a button as the page offers it; the text of the page after the redirect."""
    page = client.get(f"/caller/{number}").get_data(as_text=True)
    form = re.search(
        rf'action="/caller/{number}/{action}"[^>]*>\s*<input type="hidden" name="csrf_token" value="([^"]+)">'
        rf'<input type="hidden" name="request_id" value="([^"]+)">',
        page,
    )
    assert form, f"no {action} button"
    data = {"csrf_token": form[1], "request_id": form[2], **extra}
    response = client.post(f"/caller/{number}/{action}", data=data)
    assert response.status_code == 302
    return client.get(response.headers["Location"]).get_data(as_text=True)


def counter_state(hub: HubService, number: int) -> m.CounterState:
    return hub.retained[hub.bus.topics.counter_state(number)]  # type: ignore[return-value]


def test_officer_runs_a_counter_from_the_browser(as_role, hub: HubService) -> None:
    client = as_role("officer")
    issue(hub)
    issue(hub)
    page = press(client, 3, "open")
    assert counter_state(hub, 3).open and counter_state(hub, 3).officer == "Siti Petugas"
    page = press(client, 3, "next")
    assert "Memanggil A001" in page and 'id="caller-now">A001<' in page
    page = press(client, 3, "recall")
    assert counter_state(hub, 3).call_seq == 2
    page = press(client, 3, "skip")
    assert counter_state(hub, 3).skipped == ("A001",)
    assert "Panggil kembali A001" in page
    page = press(client, 3, "next")
    assert counter_state(hub, 3).ticket == "A002"
    page = press(client, 3, "transfer", service="kk")
    assert counter_state(hub, 3).ticket is None
    state = hub.retained[hub.bus.topics.service_state("kk")]
    assert state.waiting == 1
    page = press(client, 3, "next")  # nobody waits for ktp now
    assert "Tidak ada antrian menunggu" in page
    page = press(client, 3, "close")
    assert not counter_state(hub, 3).open


def test_a_double_click_calls_once(as_role, hub: HubService) -> None:
    client = as_role("officer")
    issue(hub)
    issue(hub)
    press(client, 3, "open")
    page = client.get("/caller/3").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)[1]
    request_id = re.search(
        r'action="/caller/3/next">\s*<input[^>]+>\s*<input type="hidden" name="request_id" value="([^"]+)"',
        page,
    )[1]
    for _ in range(2):
        client.post(
            "/caller/3/next",
            data={"csrf_token": token, "request_id": request_id},
        )
    state = counter_state(hub, 3)
    assert state.ticket == "A001" and state.call_seq == 1
    assert hub.retained[hub.bus.topics.service_state("ktp")].waiting == 1


def test_refusals_are_shown_in_the_officers_language(as_role, hub: HubService) -> None:
    client = as_role("officer")
    page = press(client, 5, "next")
    assert "Loket 5 tutup" in page
    client.get("/caller/5?lang=en")
    assert "Counter 5 is closed" in press(client, 5, "next")
    response = client.post(
        "/caller/5/transfer",
        data={
            "csrf_token": re.search(
                r'name="csrf_token" value="([^"]+)"', client.get("/caller/5").get_data(as_text=True)
            )[1],
            "service": "NOT A CODE",
            "request_id": m.new_request_id(),
        },
    )
    assert response.status_code == 400
    assert client.get("/caller/99").status_code == 404
    assert client.post("/caller/3/explode", data={}).status_code in (400, 404)


def test_caller_panel_follows_the_hub_live(as_role, hub: HubService, bus_for) -> None:
    client = as_role("officer")
    stream = EventReader(client.get("/caller/13/events", buffered=False))
    try:
        _, first = stream.until(lambda n, d: n == "panel")
        assert "0 menunggu" in first["html"]
        bus_for("kiosk-1").request(m.IssueTicket(device="kiosk-1", service="skck"), timeout=5)
        _, data = stream.until(lambda n, d: n == "panel" and "1 menunggu" in d["html"])
        assert 'id="caller-now">—<' in data["html"]
    finally:
        stream.close()


def test_an_officer_takes_a_break_from_the_browser_and_next_ends_it(
    as_role, hub: HubService
) -> None:
    client = as_role("officer")
    issue(hub)
    issue(hub)
    press(client, 3, "open")
    press(client, 3, "next")
    page = press(client, 3, "break", reason="rapat", minutes="45")
    state = counter_state(hub, 3)
    assert state.on_break is not None and state.on_break.reason == "rapat"
    assert state.on_break.until == state.on_break.since + 45 * 60 and state.ticket is None
    back = hub.site.local_now(state.on_break.until).strftime("%H:%M")
    assert f'id="caller-away">Loket 3 - rapat, kembali {back}<' in page
    page = press(client, 3, "next")  # back at the counter: ends the break and calls A002
    assert counter_state(hub, 3).on_break is None and "Memanggil A002" in page
    page = press(client, 3, "break", reason="istirahat", minutes="9999")
    assert "Lama istirahat harus 1 sampai 480 menit" in page
    assert counter_state(hub, 3).on_break is None  # nothing was sent
    page = press(client, 3, "break", reason="tidur")
    assert "Pilih alasan istirahat" in page
    press(client, 3, "break", reason="sholat")  # the inventory's 20 minutes
    state = counter_state(hub, 3)
    assert state.on_break.until == state.on_break.since + 20 * 60
    page = press(client, 3, "end_break")
    assert counter_state(hub, 3).on_break is None and "caller-away" not in page
