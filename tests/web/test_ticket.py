"""The citizen's ticket page: content, live updates over SSE, tokens that cannot be guessed."""

from __future__ import annotations

from flask import Flask

from hub.service import HubService
from protocol import messages as m
from tests.web.conftest import issue, ok
from tests.web.sse import EventReader


def test_waiting_ticket_shows_position_wait_and_standard(client, hub: HubService) -> None:
    issue(hub, "skck")
    ticket = issue(hub, "skck")
    ok(hub, m.OpenCounter(device="hub", counter=13, officer="Rina"))
    page = client.get(f"/t/{ticket.token}")
    body = page.get_data(as_text=True)
    assert page.status_code == 200
    assert 'id="ticket-number">H002<' in body
    assert 'id="people-ahead">1<' in body
    assert "± 10 menit" in body  # 1 ahead x 10 min average / 1 open counter
    assert "Rp 30.000" in body and "Selesai maks. 3 jam" in body
    assert "Pas foto 4x6 latar merah" in body and "Serahkan berkas dan sidik jari" in body
    assert "Menunggu dipanggil" in body
    assert "Siti" not in body and "Rina" not in body  # no officer names, no personal data


def test_called_ticket_says_where_to_go_in_either_language(client, hub: HubService) -> None:
    ticket = issue(hub)
    ok(hub, m.OpenCounter(device="hub", counter=3, officer="Siti"))
    ok(hub, m.CallNext(device="hub", counter=3))
    body = client.get(f"/t/{ticket.token}").get_data(as_text=True)
    assert "Giliran Anda!" in body and "Silakan menuju Loket 3" in body
    english = client.get(f"/t/{ticket.token}?lang=en").get_data(as_text=True)
    assert "It is your turn!" in english and "Please go to Counter 3" in english
    # the choice is remembered for the next page
    assert "Please go to Counter 3" in client.get(f"/t/{ticket.token}").get_data(as_text=True)


def test_after_service_the_survey_is_offered(client, hub: HubService) -> None:
    ticket = issue(hub)
    ok(hub, m.OpenCounter(device="hub", counter=3, officer="Siti"))
    ok(hub, m.CallNext(device="hub", counter=3))
    ok(hub, m.Finish(device="hub", counter=3))
    body = client.get(f"/t/{ticket.token}").get_data(as_text=True)
    assert "Layanan selesai" in body
    assert f'href="/t/{ticket.token}/survey"' in body


def test_transferred_and_skipped_tickets(client, hub: HubService) -> None:
    first, second = issue(hub), issue(hub)
    ok(hub, m.OpenCounter(device="hub", counter=3, officer="Siti"))
    ok(hub, m.CallNext(device="hub", counter=3))
    ok(hub, m.Transfer(device="hub", counter=3, service="kk"))
    body = client.get(f"/t/{first.token}").get_data(as_text=True)
    assert "Anda dialihkan ke layanan Kartu Keluarga" in body and "A001" in body
    ok(hub, m.CallNext(device="hub", counter=3))
    ok(hub, m.Skip(device="hub", counter=3))
    body = client.get(f"/t/{second.token}").get_data(as_text=True)
    assert "Terlewat" in body and "lapor ke Loket 3" in body


def test_tokens_are_long_and_unknown_ones_look_alike(client, hub: HubService) -> None:
    ticket = issue(hub)
    assert len(ticket.token) >= 22  # 16 random bytes
    unknown = client.get("/t/" + "A" * 22)
    malformed = client.get("/t/../../etc/passwd")
    short = client.get("/t/1")
    assert unknown.status_code == short.status_code == 404
    assert malformed.status_code == 404
    assert unknown.get_data() == short.get_data()
    assert client.get(f"/t/{ticket.token[:-1]}x").status_code == 404
    assert client.get("/t/" + "A" * 22 + "/events").status_code == 404


def test_live_stream_follows_the_ticket(app: Flask, client, hub: HubService) -> None:
    issue(hub)
    ticket = issue(hub)
    ok(hub, m.OpenCounter(device="hub", counter=3, officer="Siti"))
    stream = EventReader(client.get(f"/t/{ticket.token}/events", buffered=False))
    try:
        _, data = stream.until(lambda n, d: n == "ticket")
        assert data["status"] == "waiting" and data["data"]["people_ahead"] == 1
        ok(hub, m.CallNext(device="hub", counter=3))  # A001 is called: one fewer ahead
        _, data = stream.until(lambda n, d: n == "ticket" and d["data"]["people_ahead"] == 0)
        assert "A001" in data["data"]["now_serving"]
        ok(hub, m.CallNext(device="hub", counter=3))  # now this ticket
        _, data = stream.until(lambda n, d: n == "ticket" and d["status"] == "called")
        assert "Silakan menuju Loket 3" in data["html"] and data["call_seq"] >= 2
        assert app.extensions["mpp_live"].listeners == 1
    finally:
        stream.close()
    assert app.extensions["mpp_live"].listeners == 0


def test_live_stream_ends_by_itself_with_keepalives(app: Flask, client, hub: HubService) -> None:
    app.config["SSE_MAX_S"] = 0.5
    ticket = issue(hub)
    stream = EventReader(client.get(f"/t/{ticket.token}/events", buffered=False))
    kinds = []
    while (event := stream.next_event()) is not None:
        kinds.append(event[0])
    assert kinds[0] == "comment" and "ticket" in kinds and "comment" in kinds[2:]
    assert app.extensions["mpp_live"].listeners == 0


def test_with_no_counter_open_the_page_says_so_instead_of_a_time(client, hub: HubService) -> None:
    """Issue 18 item 4: the page said '4 ahead, ± 32 min' for a queue no counter would call."""
    tickets = [issue(hub, "ktp") for _ in range(5)]  # counters 1-3 (ktp) are closed
    body = client.get(f"/t/{tickets[-1].token}").get_data(as_text=True)
    assert 'id="people-ahead">4<' in body
    assert (
        'id="est-wait" class="sentence">Belum ada loket yang melayani saat ini<' in body
        and "± " not in body
    )
    english = client.get(f"/t/{tickets[-1].token}?lang=en").get_data(as_text=True)
    assert 'id="est-wait" class="sentence">No counter serves this now<' in english
    ok(hub, m.OpenCounter(device="hub", counter=3, officer="Siti"))
    body = client.get(f"/t/{tickets[-1].token}?lang=id").get_data(as_text=True)
    assert 'id="est-wait">± 32 menit<' in body  # 4 ahead x 8 min, one counter
    ok(hub, m.StartBreak(device="hub", counter=3, reason="lainnya"))  # away, no return time
    body = client.get(f"/t/{tickets[-1].token}").get_data(as_text=True)
    assert "Belum ada loket yang melayani saat ini" in body
