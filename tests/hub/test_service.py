"""The hub service over a real Mosquitto and a real SQLite file."""

from __future__ import annotations

import json
import queue
import secrets
import sqlite3
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from hub.service import HubService
from protocol import messages as m
from protocol.brokers import Mosquitto
from protocol.errors import CommandRejected
from protocol.mqtt import Bus, Incoming
from protocol.site import Site
from tests.conftest import make_site
from tests.hub.test_store import index_misses_a_row
from tests.timing import wait_until


def rows(site: Site, sql: str, *args: object) -> list[tuple]:
    with sqlite3.connect(site.hub.database) as conn:
        return conn.execute(sql, args).fetchall()


class Watcher:
    """Collects retained state messages as a screen would receive them."""

    def __init__(self, bus: Bus, name: str, model: type[m.Message]) -> None:
        self.model = model
        self.got: queue.Queue[m.Message] = queue.Queue()
        bus.subscribe(bus.topics.all_of(name), self._on)

    def _on(self, incoming: Incoming) -> None:
        if incoming.payload:
            self.got.put(m.decode(self.model, incoming.payload))

    def until(self, check: Callable[[m.Message], bool], timeout: float = 5) -> m.Message:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                message = self.got.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                break
            if check(message):
                return message
        raise AssertionError("expected state never arrived")


def raw_request(bus: Bus, kind: str, payload: bytes | dict, device: str | None = None) -> m.Reply:
    """Publish any payload on a command topic and wait for the hub's reply."""
    replies: queue.Queue[m.Reply] = queue.Queue()
    device = device or bus.device
    bus.subscribe(bus.topics.reply(device), lambda i: replies.put(m.decode(m.Reply, i.payload)))
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    bus.publish(bus.topics.command(device, kind), body)
    return replies.get(timeout=5)


def test_issue_is_durable_and_published(hub: HubService, bus_for, site: Site) -> None:
    screen = bus_for("tv-lobby-1")
    services = Watcher(screen, "service_state", m.ServiceState)
    kiosk = bus_for("kiosk-1")
    result = m.IssueResult.model_validate(
        kiosk.request(m.IssueTicket(device="kiosk-1", service="ktp"), timeout=5)
    )
    assert result.ticket.number == "A001" and len(result.ticket.token) >= 20
    assert rows(site, "SELECT label, status, source FROM tickets") == [
        ("A001", "waiting", "kiosk-1")
    ]
    state = services.until(lambda s: s.service == "ktp" and s.waiting == 1)
    assert state.last_issued == "A001" and state.quota_left == 149


def test_call_reaches_screens_with_growing_call_seq(hub: HubService, bus_for) -> None:
    screen = bus_for("tv-lobby-1")
    counters = Watcher(screen, "counter_state", m.CounterState)
    kiosk, caller = bus_for("kiosk-1"), bus_for("caller-03")
    kiosk.request(m.IssueTicket(device="kiosk-1", service="ktp"), timeout=5)
    caller.request(m.OpenCounter(device="caller-03", counter=3, officer="Siti"), timeout=5)
    result = m.CounterResult.model_validate(
        caller.request(m.CallNext(device="caller-03", counter=3), timeout=5)
    )
    assert result.call is not None and result.call.ticket == "A001"
    first = counters.until(lambda s: s.counter == 3 and s.ticket == "A001")
    caller.request(m.Recall(device="caller-03", counter=3), timeout=5)
    again = counters.until(lambda s: s.counter == 3 and s.call_seq > first.call_seq)
    assert again.ticket == "A001" and again.call_seq == first.call_seq + 1 and again.seq > first.seq


def test_repeated_request_id_applies_once(hub: HubService, bus_for, site: Site) -> None:
    kiosk = bus_for("kiosk-1")
    command = m.IssueTicket(device="kiosk-1", service="skck")
    first = kiosk.request(command, timeout=5)
    second = kiosk.request(command, timeout=5)  # a double press / QoS 1 redelivery / retry
    assert first == second
    assert rows(site, "SELECT COUNT(*) FROM tickets") == [(1,)]


def test_repeat_after_restart_gets_the_first_reply(site: Site, bus_for) -> None:
    hub = HubService(site, first_start=True).start()
    kiosk = bus_for("kiosk-1")
    command = m.IssueTicket(device="kiosk-1", service="skck")
    first = kiosk.request(command, timeout=5)
    hub.stop()
    hub = HubService(site, first_start=True).start()
    try:
        assert kiosk.request(command, timeout=5) == first
        assert (
            kiosk.request(m.IssueTicket(device="kiosk-1", service="skck"), timeout=5)["ticket"][
                "number"
            ]
            == "H002"
        )
    finally:
        hub.stop()
    assert rows(site, "SELECT label FROM tickets ORDER BY id") == [("H001",), ("H002",)]


def test_an_error_from_the_broker_connection_does_not_stop_the_queue(
    hub: HubService, bus_for, caplog: pytest.LogCaptureFixture
) -> None:
    kiosk = bus_for("kiosk-1")
    poll = hub.bus.poll
    faults = [ValueError("filedescriptor out of range in select()")]  # as select() once raised

    def failing_once(timeout: float) -> None:
        if faults:
            raise faults.pop()
        poll(timeout)

    hub.bus.poll = failing_once  # type: ignore[method-assign]
    hub.bus.wake()  # the worker leaves the poll it is in and calls the failing one
    wait_until(lambda: "broker connection poll failed" in caplog.text, 5)
    assert not faults and "broker connection poll failed" in caplog.text
    reply = kiosk.request(m.IssueTicket(device="kiosk-1", service="ktp"), timeout=5)
    assert reply["ticket"]["number"] == "A001"
    assert hub.alive()


def test_an_internal_error_echoes_the_request_id_and_changes_nothing(site: Site, bus_for) -> None:
    broken: list[bool] = []

    def token() -> str:
        if broken:
            raise RuntimeError("no randomness")  # an unforeseen failure inside a command
        return secrets.token_urlsafe(16)

    hub = HubService(site, new_token=token, first_start=True).start()
    try:
        kiosk = bus_for("kiosk-1")
        assert raw_request(kiosk, "issue", m.encode(m.IssueTicket(device="kiosk-1", service="ktp")))
        seq = hub.seq
        broken.append(True)
        command = m.IssueTicket(device="kiosk-1", service="ktp")
        reply = raw_request(kiosk, command.kind, m.encode(command))
        assert reply.error is not None and reply.error.code == "internal"
        assert reply.request_id == command.request_id  # the device can match it
        assert hub.seq == seq and hub.queue.last_number["ktp"] == 1
        assert rows(site, "SELECT label FROM tickets") == [("A001",)]
        broken.clear()
        again = raw_request(kiosk, command.kind, m.encode(command))  # the same id, retried
        assert again.ok and again.result["ticket"]["number"] == "A002"  # type: ignore[index]
        assert hub.alive()
    finally:
        hub.stop()


def test_a_worker_that_stops_is_reported_and_nothing_waits_for_it(hub: HubService, bus_for) -> None:
    def breaks(kind: str, message: object) -> None:
        raise RuntimeError("an unforeseen bug while publishing")

    hub.on_change(breaks)
    kiosk = bus_for("kiosk-1")
    kiosk.publish(
        kiosk.topics.command("kiosk-1", "issue"), m.IssueTicket(device="kiosk-1", service="ktp")
    )
    wait_until(lambda: hub.failed is not None, 5)
    assert hub.failed is not None and "unforeseen bug" in hub.failed
    assert not hub.alive()  # the watchdog pings stop; `mpp hub` exits (systemd restarts it)
    started = time.monotonic()
    reply = hub.submit(m.IssueTicket(device="hub", service="ktp"))
    assert reply.error is not None and reply.error.code == "internal"
    assert time.monotonic() - started < 1


@pytest.mark.parametrize(
    "officer",
    ["Muhammad Rizki Pratama", "Raden Ajeng " + "Kartini " * 6, "Ñoño Ñáñez", "李小龙"],
)
def test_a_complaints_alert_is_raised_for_any_officer_name(
    hub: HubService, site: Site, officer: str
) -> None:
    officer = officer.strip()[:60]
    assert hub.submit(m.OpenCounter(device="hub", counter=21, officer=officer)).ok
    service = site.counters[21].services[0]
    for _ in range(site.hub.complaint_alert_after):
        assert hub.submit(m.IssueTicket(device="hub", service=service)).ok
        assert hub.submit(m.CallNext(device="hub", counter=21)).ok
        rated = hub.submit(m.Rate(device="hub", counter=21, score=1))
        assert rated.ok, rated.error
    alerts = hub.snapshot("alert")
    assert [(a.kind, a.officer) for a in alerts] == [("consecutive_complaints", officer)]
    assert rows(site, "SELECT COUNT(*) FROM ratings WHERE score = 1") == [(3,)]
    assert rows(site, "SELECT id FROM alerts") == [(alerts[0].id,)]


def test_a_late_repeat_of_an_applied_command_gets_its_first_reply(
    hub: HubService, bus_for, site: Site
) -> None:
    kiosk = bus_for("kiosk-1")
    command = m.IssueTicket(device="kiosk-1", service="skck", expires_at=time.time() + 5)
    first = raw_request(kiosk, command.kind, m.encode(command))
    assert first.ok
    # The broker redelivers it after a hub restart, long after its sender's deadline: it was
    # applied, so the answer is the ticket, not "stale" (else the kiosk would not print it).
    late = command.model_copy(update={"expires_at": time.time() - 60})
    again = raw_request(kiosk, late.kind, m.encode(late))
    assert again.ok and again.result == first.result
    expired = m.IssueTicket(device="kiosk-1", service="skck", expires_at=time.time() - 60)
    refused = raw_request(kiosk, expired.kind, m.encode(expired))
    assert refused.error is not None and refused.error.code == "stale"
    assert rows(site, "SELECT COUNT(*) FROM tickets") == [(1,)]


def test_no_command_acts_on_yesterdays_tickets_after_local_midnight(site: Site, bus_for) -> None:
    midnight = datetime(2026, 11, 24, tzinfo=ZoneInfo(site.site.timezone)).timestamp()
    now = [midnight - 1]  # the hub's clock stands still unless the test moves it
    hub = HubService(site, clock=lambda: now[0], first_start=True).start()
    try:
        kiosk, caller = bus_for("kiosk-1"), bus_for("caller-03")
        kiosk.request(m.IssueTicket(device="kiosk-1", service="ktp"), timeout=5)
        caller.request(m.OpenCounter(device="caller-03", counter=3, officer="Siti"), timeout=5)
        called = caller.request(m.CallNext(device="caller-03", counter=3), timeout=5)
        assert called["counter"]["ticket"] == "A001"
        now[0] = midnight + 0.5  # just past midnight, before the hub's periodic tick
        with pytest.raises(CommandRejected) as refused:  # A001 of yesterday is not called again
            caller.request(m.Recall(device="caller-03", counter=3), timeout=5)
        assert refused.value.code == "no_ticket"
        reply = kiosk.request(m.IssueTicket(device="kiosk-1", service="ktp"), timeout=5)
        assert reply["ticket"]["number"] == "A001"
    finally:
        hub.stop()
    assert rows(site, "SELECT day, label, status, call_count FROM tickets ORDER BY id") == [
        ("2026-11-23", "A001", "expired", 1),
        ("2026-11-24", "A001", "waiting", 0),
    ]


@pytest.mark.parametrize(
    ("kind", "payload", "code"),
    [
        ("next", b"{oops", "bad_json"),
        ("next", b"[]", "bad_json"),
        (
            "next",
            {"v": 9, "request_id": "abcdefgh01", "device": "caller-03", "counter": 3},
            "unsupported_version",
        ),
        (
            "next",
            {"v": 1, "request_id": "abcdefgh02", "device": "caller-03", "counter": "3x"},
            "invalid",
        ),
        ("next", {"v": 1, "request_id": "abcdefgh03", "device": "caller-03"}, "invalid"),
        ("explode", {"v": 1, "request_id": "abcdefgh04", "device": "caller-03"}, "unknown_kind"),
        (
            "next",
            {"v": 1, "request_id": "abcdefgh05", "device": "caller-04", "counter": 3},
            "device_mismatch",
        ),
        (
            "next",
            {"v": 1, "request_id": "abcdefgh06", "device": "caller-03", "counter": 4},
            "forbidden",
        ),
        (
            "issue",
            {"v": 1, "request_id": "abcdefgh07", "device": "caller-03", "service": "ktp"},
            "forbidden",
        ),
        (
            "ack_alert",
            {
                "v": 1,
                "request_id": "abcdefgh08",
                "device": "caller-03",
                "alert_id": "x",
                "by": "me",
            },
            "forbidden",
        ),
        (
            "next",
            {
                "v": 1,
                "request_id": "abcdefgh09",
                "device": "caller-03",
                "counter": 3,
                "sent_at": 1.0,
            },
            "stale",
        ),
        (
            "next",
            {
                "v": 1,
                "request_id": "abcdefgh12",
                "device": "caller-03",
                "counter": 3,
                "expires_at": 1.0,
            },
            "stale",
        ),
        (
            "next",
            {"v": 1, "request_id": "abcdefgh10", "device": "caller-03", "counter": 3},
            "counter_closed",
        ),
    ],
)
def test_bad_commands_get_specific_errors_and_change_nothing(
    hub: HubService, bus_for, site: Site, kind: str, payload: object, code: str
) -> None:
    kiosk = bus_for("kiosk-3")
    kiosk.request(m.IssueTicket(device="kiosk-3", service="ktp"), timeout=5)
    before = rows(site, "SELECT * FROM tickets"), rows(site, "SELECT * FROM counters")
    reply = raw_request(bus_for("caller-03"), kind, payload)
    assert not reply.ok and reply.error is not None and reply.error.code == code, reply
    assert (rows(site, "SELECT * FROM tickets"), rows(site, "SELECT * FROM counters")) == before


def test_unknown_device_and_kiosk_service(hub: HubService, bus_for) -> None:
    stranger = bus_for("kiosk-3")
    reply = raw_request(
        stranger,
        "issue",
        {"v": 1, "request_id": "abcdefgh11", "device": "rogue", "service": "ktp"},
        "rogue",
    )
    assert reply.error is not None and reply.error.code == "forbidden"
    with pytest.raises(CommandRejected) as caught:  # kiosk-3's buttons do not include paspor
        stranger.request(m.IssueTicket(device="kiosk-3", service="paspor"), timeout=5)
    assert caught.value.code == "forbidden"


def test_hub_survives_garbage_and_keeps_serving(hub: HubService, bus_for) -> None:
    caller = bus_for("caller-03")
    for payload in [b"", b"\x00" * 100, b"null", b'{"v": 1}', b"{" * 5000]:
        caller.publish(caller.topics.command("caller-03", "next"), payload)
    caller.publish("mpp/v1/" + hub.site.site.id + "/cmd/caller-03", b"{}")  # short topic
    assert caller.request(m.OpenCounter(device="caller-03", counter=3), timeout=5)["counter"][
        "open"
    ]


def test_restart_republishes_exactly_what_the_database_holds(site: Site, bus_for) -> None:
    hub = HubService(site, first_start=True).start()
    kiosk, caller = bus_for("kiosk-1"), bus_for("caller-03")
    for _ in range(3):
        kiosk.request(m.IssueTicket(device="kiosk-1", service="ktp"), timeout=5)
    caller.request(m.OpenCounter(device="caller-03", counter=3, officer="Siti"), timeout=5)
    caller.request(m.CallNext(device="caller-03", counter=3), timeout=5)
    hub.stop()
    # Wipe the retained counter state, as if the broker had lost it.
    caller.publish(caller.topics.counter_state(3), b"", retain=True)
    assert caller.flush(5)
    hub = HubService(site, first_start=True).start()
    try:
        screen = bus_for("tv-lobby-2")
        counters = Watcher(screen, "counter_state", m.CounterState)
        state = counters.until(lambda s: s.counter == 3)
        assert (state.ticket, state.open, state.officer, state.waiting) == ("A001", True, "Siti", 2)
        reply = kiosk.request(m.IssueTicket(device="kiosk-1", service="ktp"), timeout=5)
        assert reply["ticket"]["number"] == "A004"
    finally:
        hub.stop()


def test_local_submit_uses_the_same_path(hub: HubService, site: Site) -> None:
    reply = hub.submit(m.OpenCounter(device="hub", counter=7, officer="Budi"))
    assert reply.ok and reply.result["counter"]["officer"] == "Budi"
    refused = hub.submit(m.CallNext(device="hub", counter=7))
    assert refused.error is not None and refused.error.code == "queue_empty"
    assert refused.error.text is not None and refused.error.text.id == "Tidak ada antrian menunggu"
    assert rows(site, "SELECT kind FROM requests WHERE device = 'hub' ORDER BY at") == [
        ("open",),
        ("next",),
    ]


def test_consecutive_complaints_raise_a_retained_alert_until_acknowledged(
    hub: HubService, bus_for
) -> None:
    staff = bus_for("tv-lobby-3")
    alerts: queue.Queue[bytes] = queue.Queue()
    staff.subscribe(staff.topics.all_of("alert"), lambda i: alerts.put(i.payload))
    kiosk, caller = bus_for("kiosk-1"), bus_for("caller-03")
    caller.request(m.OpenCounter(device="caller-03", counter=3, officer="Siti"), timeout=5)
    for _ in range(3):
        kiosk.request(m.IssueTicket(device="kiosk-1", service="ktp"), timeout=5)
        caller.request(m.CallNext(device="caller-03", counter=3), timeout=5)
        rated = caller.request(m.Rate(device="caller-03", counter=3, score=1), timeout=5)
        assert rated["officer"] == "Siti"
    alert = m.decode(m.Alert, alerts.get(timeout=5))
    assert alert.kind == "consecutive_complaints" and alert.officer == "Siti" and alert.counter == 3
    assert alerts.empty() or alerts.get(timeout=1) == b""  # exactly one alert
    ack = hub.submit(m.AckAlert(device="hub", alert_id=alert.id, by="supervisor"))
    assert ack.ok
    assert alerts.get(timeout=5) == b""  # cleared from the retained topic
    again = hub.submit(m.AckAlert(device="hub", alert_id=alert.id, by="supervisor"))
    assert again.error is not None and again.error.code == "bad_state"


def test_cancel_voids_what_an_unanswered_issue_created(
    hub: HubService, bus_for, site: Site
) -> None:
    kiosk = bus_for("kiosk-1")
    issued = m.IssueTicket(device="kiosk-1", service="ktp")
    ticket = kiosk.request(issued, timeout=5)["ticket"]  # as if this reply had been lost
    result = kiosk.request(m.VoidTicket(device="kiosk-1", cancels=issued.request_id), timeout=5)
    assert result == {"ticket_id": ticket["id"], "number": "A001", "status": "voided"}
    assert rows(site, "SELECT status FROM tickets") == [("voided",)]


def test_cancel_before_arrival_stops_a_late_redelivery(
    hub: HubService, bus_for, site: Site
) -> None:
    kiosk = bus_for("kiosk-1")
    late = m.IssueTicket(device="kiosk-1", service="ktp")
    result = kiosk.request(m.VoidTicket(device="kiosk-1", cancels=late.request_id), timeout=5)
    assert result["status"] == "cancelled"
    with pytest.raises(CommandRejected) as caught:  # the stale original finally arrives
        kiosk.request(late, timeout=5)
    assert caught.value.code == "cancelled"
    assert rows(site, "SELECT COUNT(*) FROM tickets") == [(0,)]


def test_void_needs_exactly_one_target(hub: HubService, bus_for) -> None:
    reply = raw_request(
        bus_for("kiosk-1"), "void", {"v": 1, "request_id": "abcdefgh20", "device": "kiosk-1"}
    )
    assert reply.error is not None and reply.error.code == "invalid"
    assert "exactly one of ticket_id or cancels" in reply.error.message


def test_the_queue_order_with_estimates_is_published_for_ticket_pages(hub: HubService) -> None:
    """The ticket page's people ahead and estimate come from the hub: priority first."""
    assert hub.submit(m.OpenCounter(device="hub", counter=3, officer="Siti")).ok
    first = m.IssueResult.model_validate(
        hub.submit(m.IssueTicket(device="hub", service="ktp")).result
    ).ticket
    second = m.IssueResult.model_validate(
        hub.submit(m.IssueTicket(device="hub", service="ktp")).result
    ).ticket
    urgent = m.IssueResult.model_validate(
        hub.submit(m.IssueTicket(device="hub", service="ktp", priority="elderly")).result
    ).ticket
    state = hub.retained[hub.bus.topics.service_queue("ktp")]
    assert isinstance(state, m.ServiceQueue)
    assert state.order == (urgent.id, first.id, second.id)
    assert state.position(urgent.id) == (0, 0) and urgent.people_ahead == 0
    ahead, wait = state.position(second.id)  # type: ignore[misc]
    assert ahead == 2 and wait == hub.queue.estimate("ktp", 2, hub.clock()) > 0
    assert [state.position(t.id)[0] for t in hub.queue.waiting("ktp")] == [  # type: ignore[index]
        hub.queue.people_ahead(t) for t in hub.queue.waiting("ktp")
    ]
    assert hub.submit(m.CloseCounter(device="hub", counter=3)).ok  # no counter serves ktp now
    state = hub.retained[hub.bus.topics.service_queue("ktp")]
    assert state.position(second.id) == (2, None)  # no time promised


def test_a_hub_started_without_its_broker_serves_the_web_and_connects_when_it_is_up(
    own_broker: Mosquitto, tmp_path: Path
) -> None:
    site = make_site(own_broker.port, always_open=True, database=tmp_path / "hub.sqlite")
    own_broker.stop()
    hub = HubService(site, first_start=True).start(wait_connected=0.5)
    screen = Bus.for_device(site, "tv-lobby-1")
    try:
        assert not hub.bus.connected and hub.alive()
        # The web app's commands go the same way and apply while the broker is away.
        reply = hub.submit(m.IssueTicket(device="hub", service="ktp"), timeout=5)
        assert reply.ok and reply.result["ticket"]["number"] == "A001"
        own_broker.start()
        assert hub.bus.wait_connected(5), "the hub did not connect once the broker was up"
        services = Watcher(screen, "service_state", m.ServiceState)
        assert screen.start(wait=10)
        # (a state the hub published while offline may pass first: paho sends it on connect)
        state = services.until(lambda s: s.service == "ktp" and s.waiting == 1)
        assert state.last_issued == "A001"
    finally:
        screen.stop()
        hub.stop()


def test_staff_changes_reach_devices_and_survive_a_restart(site: Site, bus_for) -> None:
    hub = HubService(site, first_start=True).start()
    kiosk, caller = bus_for("kiosk-1"), bus_for("caller-03")
    screen = bus_for("tv-lobby-2")
    counters = Watcher(screen, "counter_state", m.CounterState)
    services = Watcher(screen, "service_state", m.ServiceState)
    try:
        kiosk.request(m.IssueTicket(device="kiosk-1", service="skck"), timeout=5)
        reply = hub.submit(
            m.AssignCounter(device="hub", counter=3, services=("skck", "ktp"), by="Kepala")
        )
        assert reply.ok and reply.result["counter"]["services"] == ("skck", "ktp")
        assert counters.until(lambda s: s.counter == 3 and s.services == ("skck", "ktp"))
        limits = hub.submit(
            m.SetServiceLimits(
                device="hub", service="paspor", daily_quota=5, cutoff="10:00", by="K"
            )
        )
        assert limits.ok and limits.result == {
            "service": "paspor",
            "daily_quota": 5,
            "cutoff": "10:00",
        }
        assert services.until(lambda s: s.service == "paspor" and s.daily_quota == 5)
        # A caller box may not change what its counter serves.
        with pytest.raises(CommandRejected) as refused:
            caller.request(
                m.AssignCounter(device="caller-03", counter=3, services=("skck",), by="x"),
                timeout=5,
            )
        assert refused.value.code == "forbidden"
    finally:
        hub.stop()
    hub = HubService(site, first_start=True).start()
    try:
        caller.request(m.OpenCounter(device="caller-03", counter=3, officer="Siti"), timeout=5)
        called = caller.request(m.CallNext(device="caller-03", counter=3), timeout=5)
        assert called["call"]["ticket"] == "H001"  # skck, at counter 3 after the restart
        assert hub.queue.daily_quota("paspor") == 5
        assert rows(
            site,
            "SELECT kind, counter, service, officer FROM events WHERE kind IN "
            "('assigned', 'limits') ORDER BY id",
        ) == [
            ("assigned", 3, None, "Kepala"),
            ("limits", None, "paspor", "K"),
        ]
    finally:
        hub.stop()


def test_zone_sound_is_retained_for_every_zone_and_kept_across_restarts(
    site: Site, bus_for
) -> None:
    hub = HubService(site, first_start=True).start()
    screen = bus_for("tv-lobby-2")
    sounds = Watcher(screen, "zone_sound", m.ZoneSound)
    try:
        lobby = sounds.until(lambda s: s.zone == "lobby")
        spec = site.zones["lobby"]
        assert (lobby.speech, lobby.volume, lobby.number_reading) == (
            spec.speech,
            spec.volume,
            spec.number_reading,
        )
        quiet = m.SetZoneSound(device="hub", zone="canteen", speech=False, volume=0.2, by="K")
        reply = hub.submit(quiet)
        assert reply.ok and reply.result["speech"] is False
        assert sounds.until(lambda s: s.zone == "canteen" and not s.speech).volume == 0.2
        unknown = hub.submit(quiet.model_copy(update={"zone": "atap", "request_id": "x" * 16}))
        assert unknown.error is not None and unknown.error.code == "unknown_zone"
    finally:
        hub.stop()
    hub = HubService(site, first_start=True).start()
    try:
        again = Watcher(bus_for("tv-canteen-1"), "zone_sound", m.ZoneSound)
        canteen = again.until(lambda s: s.zone == "canteen")
        assert (canteen.speech, canteen.volume) == (False, 0.2)
    finally:
        hub.stop()


def test_the_wal_is_checkpointed_off_the_command_path(hub: HubService, site: Site) -> None:
    for _ in range(60):
        assert hub.submit(m.IssueTicket(device="hub", service="ktp")).ok
    wait_until(lambda: not hub.store.commits_since_checkpoint, 5)
    assert hub.store.commits_since_checkpoint == 0  # the checkpoint thread took them

    def all_copied() -> bool:
        """Every WAL frame is in the database file (a read-only connection cannot copy any:
        it fails while some are left)."""
        try:
            with sqlite3.connect(f"file:{site.hub.database}?mode=ro", uri=True) as conn:
                busy, wal_frames, copied = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        except sqlite3.OperationalError:
            return False
        return busy == 0 and wal_frames == copied

    assert wait_until(all_copied, 5)


def test_a_device_is_never_refused_for_clock_disagreement_alone(site: Site, bus_for) -> None:
    """Issue 23 item 6: a freshly started kiosk whose clock lags the hub's by a minute, and
    the same kiosk after the hub's clock stepped an hour ahead (NTP), get their tickets: a
    `stale` refusal that comes while the kiosk still waits can only mean its idea of the hub's
    clock was wrong, so it sends the command again (same request id) with the clock the
    refusal taught it, at once. Each is applied once."""
    offset = [60.0]
    hub = HubService(site, clock=lambda: time.time() + offset[0], first_start=True).start()
    kiosk = bus_for("kiosk-1")
    sent: list[dict] = []
    spy = bus_for("tv-lobby-1")
    spy.subscribe(
        spy.topics.command("kiosk-1", "issue"), lambda i: sent.append(json.loads(i.payload))
    )
    time.sleep(0.2)
    try:
        assert not kiosk.knows_hub_time
        first = kiosk.request(m.IssueTicket(device="kiosk-1", service="skck"), timeout=2)
        assert first["ticket"]["number"] == "H001" and kiosk.knows_hub_time
        offset[0] += 3600  # the hub's clock is stepped an hour ahead
        second = kiosk.request(m.IssueTicket(device="kiosk-1", service="skck"), timeout=2)
        assert second["ticket"]["number"] == "H002"
        for rid, step in ((sent[0]["request_id"], 60), (sent[-1]["request_id"], 3600)):
            copies = [s for s in sent if s["request_id"] == rid]
            assert len(copies) == 2  # refused as stale once, then sent with new stamps
            assert step - 5 < copies[1]["sent_at"] - copies[0]["sent_at"] < step + 5
            assert copies[1]["expires_at"] - copies[1]["sent_at"] <= 2 + 0.5
    finally:
        hub.stop()
    assert rows(site, "SELECT label FROM tickets ORDER BY id") == [("H001",), ("H002",)]


def test_presence_of_inventory_devices_is_logged_and_of_other_clients_not(
    hub: HubService, site: Site, bus_for: Callable[[str], Bus]
) -> None:
    """The event log (and so the region's fleet view) holds the site's devices' presence only:
    a tool or test client that announces itself is not a device of the site."""
    stranger = Bus(site.site.id, "tool-dump", "display", port=site.broker.port)
    assert stranger.start(wait=10)
    stranger.stop()
    kiosk = bus_for("kiosk-1")
    assert wait_until(
        lambda: rows(
            site, "SELECT 1 FROM events WHERE kind = 'presence' AND detail LIKE 'kiosk-1 %'"
        ),
        10,
    )
    kiosk.stop()
    details = [d for (d,) in rows(site, "SELECT detail FROM events WHERE kind = 'presence'")]
    assert any(d.startswith("kiosk-1 online") for d in details), details
    assert not any(d.startswith("tool-dump") for d in details), details


def test_reports_of_a_tickets_fate_are_applied_however_late(hub: HubService, bus_for) -> None:
    """Issue 23 item 7: `printed` and `void` (also a cancel of an unanswered issue) are never
    refused as stale: what became of a ticket is news whenever it comes, applied once."""
    kiosk = bus_for("kiosk-1")
    long_ago = {"sent_at": time.time() - 3600, "expires_at": time.time() - 3595}
    a1, a2 = (
        m.IssueResult.model_validate(
            kiosk.request(m.IssueTicket(device="kiosk-1", service="ktp"), timeout=5)
        ).ticket
        for _ in range(2)
    )
    printed = m.TicketPrinted(device="kiosk-1", ticket_id=a1.id, **long_ago)
    assert raw_request(kiosk, "printed", m.encode(printed)).ok
    assert hub.queue.tickets[a1.id].printed
    void = m.VoidTicket(device="kiosk-1", ticket_id=a2.id, reason="paper out", **long_ago)
    assert raw_request(kiosk, "void", m.encode(void)).result["status"] == "voided"
    unanswered = m.IssueTicket(device="kiosk-1", service="ktp")
    cancel = m.VoidTicket(device="kiosk-1", cancels=unanswered.request_id, **long_ago)
    assert raw_request(kiosk, "void", m.encode(cancel)).result["status"] == "cancelled"
    late_issue = unanswered.model_copy(update={"sent_at": time.time()})
    refused = raw_request(kiosk, "issue", m.encode(late_issue))
    assert refused.error is not None and refused.error.code == "cancelled"
    assert raw_request(kiosk, "printed", m.encode(printed)).ok  # a repeat: applied once
    stale_issue = m.IssueTicket(device="kiosk-1", service="ktp", **long_ago)
    stale = raw_request(kiosk, "issue", m.encode(stale_issue))  # a press is not a report
    assert stale.error is not None and stale.error.code == "stale"


def test_damage_the_daily_check_finds_raises_an_alert(hub: HubService, site: Site) -> None:
    """The daily backup's integrity check (an index missing a row: quick_check passes) reaches
    the supervisors as a retained alert that says to restore."""
    assert hub.submit(m.IssueTicket(device="hub", service="ktp")).ok
    index_misses_a_row(Path(site.hub.database), "tickets_day")
    assert hub.store is not None and hub.store.backup.run() is None  # the copy fails the check
    alert = wait_until(
        lambda: next((a for a in hub.snapshot("alert") if a.id.startswith("database-check")), None),
        timeout=15,  # the worker looks at every 5 s tick
    )
    assert alert is not None and alert.kind == "storage" and "cadangan" in alert.text.id
    assert rows(site, "SELECT kind FROM alerts WHERE id = ?", alert.id) == [("storage",)]


# -- the officer's and supervisor's day (issue 22): breaks, pauses, alerts, on an injected clock
def _clocked_hub(broker: Mosquitto, tmp_path: Path, when: str) -> tuple[HubService, list[float]]:
    """A hub of the example site (its opening hours and pauses) whose clock stands still at
    local time `when` unless the test moves it."""
    site = make_site(broker.port, database=tmp_path / "hub.sqlite", unprinted_hold_s=0)
    now = [datetime.fromisoformat(when).replace(tzinfo=ZoneInfo(site.site.timezone)).timestamp()]
    return HubService(site, clock=lambda: now[0], first_start=True).start(), now


def test_a_break_from_the_caller_box_is_in_the_counter_state_until_it_ends(
    hub: HubService, bus_for, site: Site
) -> None:
    caller = bus_for("caller-03")
    counters = Watcher(bus_for("tv-lobby-1"), "counter_state", m.CounterState)
    caller.request(m.OpenCounter(device="caller-03", counter=3, officer="Siti"), timeout=5)
    reply = caller.request(m.StartBreak(device="caller-03", counter=3, reason="sholat"), timeout=5)
    on_break = m.CounterResult.model_validate(reply).counter.on_break
    assert on_break is not None and on_break.reason == "sholat"
    assert on_break.until == pytest.approx(on_break.since + 20 * 60)  # the inventory's length
    shown = counters.until(lambda s: s.counter == 3 and s.on_break is not None)
    assert shown.on_break == on_break and shown.open
    caller.request(m.EndBreak(device="caller-03", counter=3), timeout=5)
    assert counters.until(lambda s: s.counter == 3 and s.on_break is None).open
    with pytest.raises(CommandRejected) as refused:
        caller.request(m.EndBreak(device="caller-03", counter=3), timeout=5)
    assert refused.value.code == "bad_state"
    kinds = rows(site, "SELECT kind, counter, officer FROM events WHERE kind LIKE 'break%'")
    assert kinds == [("break_started", 3, "Siti"), ("break_ended", 3, "Siti")]


def test_service_level_alerts_are_raised_once_acknowledged_by_name_and_cleared(
    broker: Mosquitto, tmp_path: Path, bus_for
) -> None:
    hub, now = _clocked_hub(broker, tmp_path, "2026-11-23 09:00")
    site = hub.site
    try:
        screen = Bus.for_device(site, "tv-lobby-1")
        screen.start(wait=10)
        got: queue.Queue[tuple[str, bytes]] = queue.Queue()
        screen.subscribe(screen.topics.all_of("alert"), lambda i: got.put((i.topic, i.payload)))
        hub.submit(m.IssueTicket(device="hub", service="paspor"))  # counters 19, 20: closed
        topic, payload = got.get(timeout=5)  # within a second of the command, no tick needed
        alert = m.decode(m.Alert, payload)
        assert (alert.kind, alert.service, alert.acked_by) == ("no_counter", "paspor", None)
        assert alert.text.id == "Paspor RI: 1 warga menunggu, tidak ada loket yang buka"
        hub.tick()
        hub.submit(m.IssueTicket(device="hub", service="paspor"))
        hub.tick()
        assert got.empty()  # raised once, however often the hub looks
        ack = hub.submit(m.AckAlert(device="hub", alert_id=alert.id, by="Bu Sari"))
        assert ack.ok
        acked = m.decode(m.Alert, got.get(timeout=5)[1])
        assert (acked.id, acked.acked_by, acked.acked_at) == (alert.id, "Bu Sari", now[0])
        hub.submit(m.OpenCounter(device="hub", counter=19, officer="Rina"))
        assert got.get(timeout=5) == (topic, b"")  # the condition ended: cleared
        now[0] += 31 * 60  # half an hour later, nobody called yet at the open counter 19
        hub.tick()
        raised = {m.decode(m.Alert, got.get(timeout=5)[1]).kind for _ in range(2)}
        assert raised == {"long_wait", "idle_counter"}
        hub.submit(m.CallNext(device="hub", counter=19))
        hub.submit(m.CallNext(device="hub", counter=19))  # both citizens called now
        hub.tick()
        cleared = [got.get(timeout=5)[1] for _ in range(2)]
        assert cleared == [b"", b""] and hub.snapshot("alert") == []
        screen.stop()
    finally:
        hub.stop()
    events = rows(site, "SELECT kind, detail FROM events WHERE kind LIKE 'alert%' ORDER BY id")
    assert [kind for kind, _ in events[:3]] == ["alert_raised", "alert_acked", "alert_cleared"]
    assert {detail for _, detail in events[:3]} == {alert.id}
    assert rows(site, "SELECT acked_by FROM alerts WHERE id = ?", alert.id) == [("Bu Sari",)]
    assert rows(site, "SELECT COUNT(*) FROM alerts WHERE cleared_at IS NULL") == [(0,)]


def test_open_alerts_survive_a_restart_and_are_not_raised_again(
    broker: Mosquitto, tmp_path: Path
) -> None:
    hub, now = _clocked_hub(broker, tmp_path, "2026-11-23 09:00")
    hub.submit(m.IssueTicket(device="hub", service="paspor"))
    hub.tick()
    hub.stop()
    hub = HubService(hub.site, clock=lambda: now[0]).start()
    try:
        hub.tick()
        assert [a.kind for a in hub.snapshot("alert")] == ["no_counter"]  # republished
    finally:
        hub.stop()
    assert rows(hub.site, "SELECT COUNT(*) FROM alerts") == [(1,)]


def test_the_friday_pause_reaches_screens_and_kiosks_at_its_time(
    broker: Mosquitto, tmp_path: Path, bus_for
) -> None:
    hub, now = _clocked_hub(broker, tmp_path, "2026-11-27 11:29")
    site = hub.site
    try:
        screen = Bus.for_device(site, "tv-lobby-1")
        screen.start(wait=10)
        services = Watcher(screen, "service_state", m.ServiceState)
        counters = Watcher(screen, "counter_state", m.CounterState)
        summary = Watcher(screen, "site_state", m.SiteState)
        hub.submit(m.OpenCounter(device="hub", counter=13, officer="Budi"))
        hub.submit(m.IssueTicket(device="hub", service="skck"))
        before = services.until(lambda s: s.service == "skck" and s.waiting == 1)
        # a newcomer waits for 1 x 10 min of service: 1 min before the pause, 9 after it
        assert before.pause is None and before.est_wait_s == 60 + 90 * 60 + 9 * 60
        now[0] += 60  # 11:30: the Friday prayer pause begins
        hub.tick()
        paused = services.until(lambda s: s.service == "skck" and s.pause is not None)
        assert paused.seq > before.seq and paused.open  # kiosks go on issuing
        assert paused.pause.name.id == "Istirahat sholat Jumat"
        assert paused.est_wait_s == 90 * 60 + 10 * 60  # counted from its end
        assert counters.until(lambda s: s.counter == 13 and s.pause is not None).open
        assert [p.id for p in summary.until(lambda s: bool(s.pauses)).pauses] == ["jumat"]
        issued = m.IssueResult.model_validate(
            hub.submit(m.IssueTicket(device="hub", service="skck")).result
        ).ticket
        assert issued.resumes_at == paused.pause.until and issued.est_wait_s == 90 * 60 + 600
        assert issued.people_ahead == 1
        refused = hub.submit(m.CallNext(device="hub", counter=13))
        assert refused.error is not None and refused.error.code == "paused"
        now[0] += 90 * 60  # 13:00
        hub.tick()
        assert services.until(lambda s: s.service == "skck" and s.pause is None).waiting == 2
        assert hub.submit(m.CallNext(device="hub", counter=13)).ok
        screen.stop()
    finally:
        hub.stop()
    assert rows(site, "SELECT kind, detail FROM events WHERE kind LIKE 'pause%' ORDER BY id") == [
        ("pause_started", "jumat"),
        ("pause_ended", "jumat"),
    ]
