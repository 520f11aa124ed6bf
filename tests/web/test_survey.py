"""The survey pages: 9 questions, one response per served ticket, validation."""

from __future__ import annotations

import re
import sqlite3

from flask.testing import FlaskClient

from hub.service import HubService
from protocol import messages as m
from tests.web.conftest import csrf, form, issue, ok


def served(hub: HubService) -> m.TicketInfo:
    ticket = issue(hub)
    ok(hub, m.OpenCounter(device="hub", counter=3, officer="Siti"))
    ok(hub, m.CallNext(device="hub", counter=3))
    ok(hub, m.Finish(device="hub", counter=3))
    return ticket


def answers(client: FlaskClient, url: str, scores: list[int], comment: str = "") -> dict:
    page = client.get(url).get_data(as_text=True)
    request_id = re.search(r'name="request_id" value="([^"]+)"', page)[1]
    data = {f"U{i + 1}": str(s) for i, s in enumerate(scores)}
    data.update(csrf_token=csrf(client, url), request_id=request_id, comment=comment)
    return data


def responses(hub: HubService) -> list[tuple]:
    with sqlite3.connect(hub.database) as conn:
        return conn.execute("SELECT label, u1, u5, u9, comment FROM survey_responses").fetchall()


def test_survey_has_the_nine_elements(client, hub: HubService) -> None:
    ticket = served(hub)
    body = client.get(f"/t/{ticket.token}/survey").get_data(as_text=True)
    assert body.count('type="radio"') == 36
    for name in ("Persyaratan", "Sistem, mekanisme dan prosedur", "Waktu penyelesaian", "Biaya/tarif",
                 "Produk spesifikasi jenis pelayanan", "Kompetensi pelaksana", "Perilaku pelaksana",
                 "Sarana dan prasarana", "Penanganan pengaduan, saran dan masukan"):  # fmt: skip
        assert name in body
    assert "Permenpan RB No. 14 Tahun 2017" in body
    assert "nama" not in body.lower().replace("nama pengguna", "")  # asks for no name


def test_one_response_per_ticket_even_when_sent_twice(client, hub: HubService) -> None:
    ticket = served(hub)
    url = f"/t/{ticket.token}/survey"
    data = answers(client, url, [4, 3, 4, 4, 2, 4, 4, 3, 1], "Petugas ramah, ruang tunggu panas")
    first = client.post(url, data=data)
    assert first.status_code == 302 and first.headers["Location"].endswith("/survey/thanks")
    again = client.post(url, data=data)  # a double submit: same request id
    assert again.status_code == 200 and "sudah tercatat" in again.get_data(as_text=True)
    assert responses(hub) == [("A001", 4, 2, 1, "Petugas ramah, ruang tunggu panas")]
    assert "Terima kasih" in client.get(f"/t/{ticket.token}/survey/thanks").get_data(as_text=True)
    page = client.get(f"/t/{ticket.token}").get_data(as_text=True)
    assert "survei Anda sudah tercatat" in page and "survey-link" not in page


def test_missing_answers_are_asked_again(client, hub: HubService) -> None:
    ticket = served(hub)
    url = f"/t/{ticket.token}/survey"
    data = answers(client, url, [4] * 9)
    del data["U7"]
    response = client.post(url, data=data)
    assert response.status_code == 422
    assert "Mohon jawab semua pertanyaan" in response.get_data(as_text=True)
    data = answers(client, url, [4] * 9)
    data["U2"] = "5"
    assert client.post(url, data=data).status_code == 422
    assert responses(hub) == []


def test_survey_waits_for_the_end_of_service(client, hub: HubService) -> None:
    ticket = issue(hub)
    body = client.get(f"/t/{ticket.token}/survey").get_data(as_text=True)
    assert "setelah layanan selesai" in body and "radio" not in body
    posted = client.post(f"/t/{ticket.token}/survey", data={**form(client)})
    assert "radio" not in posted.get_data(as_text=True) and responses(hub) == []


def test_too_long_comment_is_refused(client, hub: HubService) -> None:
    ticket = served(hub)
    url = f"/t/{ticket.token}/survey"
    data = answers(client, url, [3] * 9, "x" * 1001)
    assert client.post(url, data=data).status_code == 400
    assert responses(hub) == []
