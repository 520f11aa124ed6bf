"""The survey command through the real hub: one response per served ticket, refusals change
nothing; and the hub-internal service open/close commands."""

from __future__ import annotations

import sqlite3

from hub.service import HubService
from protocol import messages as m
from protocol.site import Site
from tests.hub.scenario import Clock, ok, play_day


def count(site: Site) -> int:
    with sqlite3.connect(site.hub.database) as conn:
        return conn.execute("SELECT COUNT(*) FROM survey_responses").fetchone()[0]


def test_one_response_per_served_ticket(site: Site) -> None:
    clock = Clock()
    service = HubService(site, clock=clock, first_start=True).start()
    try:
        tickets = play_day(service, clock)
        first = m.SubmitSurvey(
            device="hub",
            token=tickets["A001"].token,
            scores=(4, 3, 4, 4, 3, 3, 4, 4, 2),
            comment="  Ramah  ",
        )
        assert service.submit(first).result == {"ticket": "A001", "service": "ktp"}
        assert service.submit(first).ok  # the same request again: the same answer, applied once
        again = service.submit(first.model_copy(update={"request_id": "another-request-1"}))
        assert not again.ok and again.error.code == "already_answered"
        skipped = service.submit(
            m.SubmitSurvey(device="hub", token=tickets["A002"].token, scores=(4,) * 9)
        )
        assert not skipped.ok and skipped.error.code == "bad_state"
        assert skipped.error.text.id.startswith("Survei dapat diisi")
        unknown = service.submit(m.SubmitSurvey(device="hub", token="x" * 22, scores=(4,) * 9))
        assert not unknown.ok and unknown.error.code == "unknown_ticket"
        with sqlite3.connect(site.hub.database) as conn:
            row = conn.execute(
                "SELECT label, service, agency, counter, officer, u1, u9, comment FROM survey_responses"
            ).fetchone()
        assert row == ("A001", "ktp", "disdukcapil", 3, "Siti", 4, 2, "Ramah")
        assert count(site) == 1
    finally:
        service.stop()


def test_survey_commands_are_hub_only(hub: HubService, bus_for) -> None:
    from tests.hub.test_service import raw_request

    caller = bus_for("caller-03")
    reply = raw_request(
        caller,
        "survey",
        {
            "v": 1,
            "request_id": "abcdefgh77",
            "device": "caller-03",
            "token": "x" * 22,
            "scores": [4] * 9,
        },
    )
    assert not reply.ok and reply.error.code == "forbidden"


def test_close_and_open_service(hub: HubService) -> None:
    assert ok(hub, m.CloseService(device="hub", service="ktp", by="admin")) == {
        "service": "ktp",
        "closed": True,
    }
    refused = hub.submit(m.IssueTicket(device="hub", service="ktp"))
    assert not refused.ok and refused.error.code == "service_closed"
    state = next(s for s in hub.snapshot("service_state") if s.service == "ktp")
    assert state.open is False
    ok(hub, m.OpenService(device="hub", service="ktp", by="admin"))
    assert hub.submit(m.IssueTicket(device="hub", service="ktp")).ok
    unknown = hub.submit(m.CloseService(device="hub", service="nope", by="admin"))
    assert not unknown.ok and unknown.error.code == "unknown_service"
