"""The caller box end to end: MockFactory presses -> real Mosquitto -> real hub -> feedback."""

from __future__ import annotations

import queue
import signal
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from caller.box import CallerBox, CallerConfigError, caller_device
from caller.lcd import FakeCharDisplay, LcdError
from hub.service import HubService
from protocol import messages as m
from protocol.brokers import Mosquitto
from protocol.mqtt import Bus, Incoming
from protocol.site import Site
from tests.caller.conftest import Rig
from tests.conftest import make_site
from tests.timing import wait_until


def issue(hub: HubService, service: str, count: int) -> list[str]:
    """Issue tickets through the hub's own command path; their numbers."""
    numbers = []
    for _ in range(count):
        reply = hub.submit(m.IssueTicket(device="hub", service=service))
        assert reply.ok, reply.error
        numbers.append(m.IssueResult.model_validate(reply.result).ticket.number)
    return numbers


def ratings(hub: HubService) -> list[tuple[str, int, str | None, int]]:
    """(ticket, counter, officer, score) rows of the hub's SQLite file."""
    with sqlite3.connect(f"file:{hub.database}?mode=ro", uri=True) as db:
        rows = db.execute("SELECT label, counter, officer, score FROM ratings ORDER BY id")
        return [tuple(row) for row in rows]  # type: ignore[misc]


def watch(bus: Bus, topic_filter: str, model: type[m.Message]) -> queue.Queue:
    """Decoded messages on `topic_filter` (empty payloads, i.e. cleared topics, as None)."""
    got: queue.Queue = queue.Queue()

    def handler(incoming: Incoming) -> None:
        got.put(m.decode(model, incoming.payload) if incoming.payload else None)

    bus.subscribe(topic_filter, handler)
    return got


@pytest.fixture
def rig03(hub: HubService, bus_for: Callable[[str], Bus], make_rig: Callable[..., Rig]) -> Rig:
    """caller-03 (counter 3: ktp, one transfer target 'kk') with its retained state received."""
    rig = make_rig(hub.site, bus_for("caller-03"), officer="Siti")
    assert wait_until(lambda: rig.box.state is not None), "no retained counter state from the hub"
    return rig


def test_display_is_right_after_a_reboot(
    hub: HubService, bus_for: Callable[[str], Bus], make_rig: Callable[..., Rig]
) -> None:
    issue(hub, "ktp", 3)
    assert hub.submit(m.OpenCounter(device="hub", counter=3, officer="Siti")).ok
    assert hub.submit(m.CallNext(device="hub", counter=3)).ok
    # The box starts after all that happened: the retained state tells it everything.
    rig = make_rig(hub.site, bus_for("caller-03"))
    assert wait_until(lambda: rig.display.text == "A001 -> Loket 3|Menunggu: 2"), rig.display.text
    assert rig.pin_states("led_ready")[-1] is True
    assert rig.pin_states("led_fault")[-1] is False


def test_every_officer_button(rig03: Rig, hub: HubService) -> None:
    issue(hub, "ktp", 3)
    box = rig03.box
    assert wait_until(lambda: box.state and box.waiting == 3)
    assert rig03.display.text == "Loket 3 - Tutup|Menunggu: 3"

    rig03.press("open_close")
    assert box.state.open and box.state.officer == "Siti"
    assert rig03.display.text == "Loket 3 - Buka|Loket dibuka"

    rig03.clear_states()
    rig03.press("next")
    assert wait_until(lambda: box.waiting == 2)
    assert (box.state.ticket, box.state.call_seq) == ("A001", 1)
    assert rig03.display.text == "A001 -> Loket 3|Menunggu: 2"
    assert wait_until(lambda: True in rig03.pin_states("buzzer"), 2)  # a short beep

    rig03.press("recall")
    assert (box.state.ticket, box.state.call_seq) == ("A001", 2)
    assert rig03.display.text == "A001 -> Loket 3|Dipanggil ulang"

    rig03.press("skip")
    assert box.state.ticket is None and box.state.skipped == ("A001",)
    assert rig03.display.text == "Loket 3 - Buka|A001 dilewati"

    rig03.press("next")
    assert box.state.ticket == "A002"
    rig03.press("transfer")  # one target (kk): a press transfers
    assert box.state.ticket is None
    assert rig03.display.text == "Loket 3 - Buka|A002 dialihkan"
    assert wait_until(lambda: hub.queue.by_label("A002").service == "kk")

    rig03.press("open_close")  # on an open counter: closing first, then the break reasons
    assert rig03.display.text == "Tutup loket  1/5|NEXT=ya lain=tdk"
    rig03.press("next")
    assert not box.state.open
    assert rig03.display.text == "Loket 3 - Tutup|Loket ditutup"
    assert [o[1] for o in rig03.outcomes] == ["ok"] * 6 + ["selecting", "ok"]

    # Feedback texts lapse; the display then shows the state again.
    rig03.skew[0] += box.flash_s
    box.tick()
    assert rig03.display.text == "Loket 3 - Tutup|Menunggu: 1"


def test_a_break_is_chosen_on_the_lcd_and_the_next_press_ends_it(
    rig03: Rig, hub: HubService
) -> None:
    issue(hub, "ktp", 2)
    box = rig03.box
    rig03.press("open_close")
    rig03.press("next")  # A001
    for shown in ("Tutup loket  1/5", "Istirahat    2/5", "Sholat       3/5"):
        rig03.press("open_close")
        assert rig03.display.text == f"{shown}|NEXT=ya lain=tdk"
    rig03.press("next")  # confirm: a prayer break (the inventory: 20 minutes)
    assert box.state.on_break is not None and box.state.on_break.reason == "sholat"
    assert box.state.ticket is None  # A001 is finished
    assert rig03.display.text == "Loket 3 - Sholat|Mulai istirahat"
    rig03.skew[0] += box.flash_s
    box.tick()
    back = hub.site.local_now(box.state.on_break.until).strftime("%H:%M")
    assert rig03.display.text == f"Loket 3 - Sholat|Kembali {back}"
    rig03.press("next")  # back at the counter: the break ends and A002 is called
    assert box.state.on_break is None and box.state.ticket == "A002"
    rig03.press("open_close")
    rig03.press("open_close")
    rig03.press("next")  # istirahat, 30 minutes in the inventory
    rig03.press("open_close")  # OPEN/CLOSE on a break: an explicit end
    assert box.state.on_break is None and box.state.open
    assert rig03.display.text == "Loket 3 - Buka|Selamat bekerja"
    with sqlite3.connect(f"file:{hub.database}?mode=ro", uri=True) as db:
        kinds = [r[0] for r in db.execute("SELECT detail FROM events WHERE kind LIKE 'break_s%'")]
    assert kinds == ["sholat,20", "istirahat,30"]


def test_refusals_get_feedback_and_change_nothing(rig03: Rig, hub: HubService) -> None:
    rig03.press("next")  # counter closed
    assert rig03.outcomes[-1] == ("next", "refused", "counter_closed")
    assert rig03.display.text == "Loket 3 - Tutup|Loket tutup"
    assert wait_until(lambda: rig03.pin_states("led_fault").count(True) >= 2, 2)
    rig03.press("open_close")
    rig03.press("recall")  # nothing called yet
    assert rig03.outcomes[-1] == ("recall", "refused", "no_ticket")
    assert rig03.display.text == "Loket 3 - Buka|Belum ada nomor"
    rig03.press("next")
    assert rig03.outcomes[-1] == ("next", "refused", "queue_empty")
    assert rig03.display.text == "Loket 3 - Buka|Antrian kosong"
    assert rig03.box.state.call_seq == 0


def test_next_pressed_twice_within_the_debounce_window_calls_once(
    rig03: Rig, hub: HubService
) -> None:
    issue(hub, "ktp", 3)
    rig03.box.debounce_s = 0.6
    rig03.press("open_close")
    rig03.press("next", idle=False)
    rig03.press("next", fresh=False)  # a nervous double press, well within 600 ms
    for _ in range(4):  # and a bouncing contact
        rig03.press("next", idle=False, fresh=False)
    assert rig03.box.wait_idle(10)
    # The ok comes last: it is recorded when the hub's answer arrives.
    assert sorted(o for o in rig03.outcomes if o[0] == "next") == [
        *[("next", "ignored", "bounce")] * 5,
        ("next", "ok", ""),
    ]
    # The hub saw one call: the retained state a newcomer receives says so.
    assert wait_until(lambda: hub.queue.counters[3].call_seq == 1)
    assert rig03.box.state.ticket == "A001" and wait_until(lambda: rig03.box.waiting == 2)
    rig03.press("next")  # after the window (the helper waits it out), a press again
    assert rig03.box.state.ticket == "A002"


def test_transfer_with_several_targets_is_chosen_then_confirmed(
    hub: HubService, bus_for: Callable[[str], Bus], make_rig: Callable[..., Rig]
) -> None:
    issue(hub, "ktp", 2)
    rig = make_rig(hub.site, bus_for("caller-01"), officer="Budi")  # targets: akta, pindah
    assert wait_until(lambda: rig.box.state is not None)
    rig.press("open_close")
    rig.press("next")
    call_seq = rig.box.state.call_seq

    rig.press("transfer")
    assert rig.display.text == "C Akta Kelah 1/2|NEXT=ya lain=tdk"  # how to confirm
    assert rig.outcomes[-1] == ("transfer", "selecting", "akta")
    rig.press("transfer")
    assert rig.display.text == "D Surat Pind 2/2|NEXT=ya lain=tdk"
    rig.press("next")  # confirms the target shown
    assert rig.outcomes[-1][:2] == ("next", "ok")
    assert rig.box.state.ticket is None and rig.box.state.call_seq == call_seq
    assert rig.display.text == "Loket 1 - Buka|A001 dialihkan"
    assert wait_until(lambda: hub.queue.by_label("A001").service == "pindah")

    # Another button cancels a choice; nothing is sent.
    rig.press("next")
    assert rig.box.state.ticket == "A002"
    rig.press("transfer")
    rig.press("recall")
    assert rig.outcomes[-1] == ("recall", "cancelled", "other_button")
    assert rig.display.text == "A002 -> Loket 1|Dibatalkan"
    assert rig.box.state.ticket == "A002"

    # A choice left alone lapses; NEXT then calls the next ticket as usual.
    rig.press("transfer")
    rig.skew[0] += rig.box.selection_timeout_s
    rig.box.tick()
    assert rig.box.selection is None and rig.outcomes[-1] == ("transfer", "cancelled", "timeout")
    rig.press("next")
    assert rig.outcomes[-1][:2] == ("next", "ok")
    assert hub.queue.by_label("A002").status == "done"


def test_skip_on_an_idle_counter_calls_a_no_show_back(rig03: Rig, hub: HubService) -> None:
    issue(hub, "ktp", 2)
    rig03.press("open_close")
    rig03.press("next")  # A001
    rig03.press("skip")  # A001 did not come
    rig03.press("next")  # A002
    rig03.press("next")  # nobody waits: A002 is finished, the counter is idle
    assert rig03.display.text == "Loket 3 - Buka|Selesai"
    rig03.press("skip")
    assert rig03.display.text == "Panggil A001 1/1|NEXT=ya lain=tdk"
    rig03.press("next")
    assert rig03.box.state.ticket == "A001" and rig03.box.state.skipped == ()
    assert rig03.display.text == "A001 -> Loket 3|Menunggu: 0"


def test_a_priority_call_is_marked_on_the_display(rig03: Rig, hub: HubService) -> None:
    issue(hub, "ktp", 1)
    reply = hub.submit(m.IssueTicket(device="hub", service="ktp", priority="pregnant"))
    assert reply.ok, reply.error
    rig03.press("open_close")
    rig03.press("next")  # the priority ticket comes first
    assert rig03.box.state.ticket == "A002" and rig03.box.state.priority
    assert rig03.display.text == "A002 Prioritas|Menunggu: 1"
    rig03.press("next")
    assert rig03.display.text == "A001 -> Loket 3|Menunggu: 0"


def test_ratings_go_to_the_right_ticket_and_officer(rig03: Rig, hub: HubService) -> None:
    issue(hub, "ktp", 3)
    rig03.press("open_close")  # officer Siti
    rig03.press("next")  # A001
    rig03.press("very_satisfied")
    assert rig03.outcomes[-1] == ("very_satisfied", "ok", "")
    assert rig03.box.recent[-1].result == {
        "ticket": "A001",
        "counter": 3,
        "officer": "Siti",
        "score": 4,
    }
    assert rig03.display.text == "A001 -> Loket 3|Terima kasih!"
    rig03.press("satisfied")  # a second rating of the same ticket
    assert rig03.outcomes[-1] == ("satisfied", "refused", "already_rated")
    assert rig03.display.text == "A001 -> Loket 3|Sudah dinilai"

    rig03.press("next")  # A002
    rig03.press("dissatisfied")
    rig03.press("open_close")  # Siti leaves (A002 is finished) ...
    rig03.press("next")
    rig03.box.officer = "Budi"
    rig03.press("open_close")  # ... Budi takes over
    rig03.press("next")  # A003
    rig03.press("next")  # nobody waits: A003 is finished, its rating still counts
    rig03.press("very_dissatisfied")
    assert ratings(hub) == [
        ("A001", 3, "Siti", 4),
        ("A002", 3, "Siti", 2),
        ("A003", 3, "Budi", 1),
    ]


def test_three_tidak_puas_in_a_row_raise_one_alert(
    rig03: Rig, hub: HubService, bus_for: Callable[[str], Bus]
) -> None:
    issue(hub, "ktp", 4)
    rig03.press("open_close")
    for i in range(4):
        rig03.press("next")
        rig03.press("very_dissatisfied" if i < 3 else "satisfied")
        assert rig03.outcomes[-1][1] == "ok", rig03.outcomes[-1]
        # A supervisor's screen connecting now gets the retained alert.
    supervisor = bus_for("tv-lobby-1")
    alerts = watch(supervisor, supervisor.topics.all_of("alert"), m.Alert)
    alert = alerts.get(timeout=5)
    assert alert.kind == "consecutive_complaints"
    assert (alert.counter, alert.officer) == (3, "Siti")
    assert "3 kali 'Tidak puas'" in alert.text.id
    time.sleep(0.5)
    assert alerts.empty(), "more than one alert"


def test_a_press_after_the_hubs_clock_moved_on_gets_the_rating_window_closed(
    broker: Mosquitto, tmp_path: Path, make_rig: Callable[..., Rig]
) -> None:
    site = make_site(broker.port, always_open=True, database=tmp_path / "hub.sqlite")
    ahead = [0.0]
    hub = HubService(site, clock=lambda: time.time() + ahead[0], first_start=True).start()
    bus = Bus.for_device(site, "caller-03")
    try:
        assert bus.start(wait=5)
        rig = make_rig(site, bus, officer="Siti")
        issue(hub, "ktp", 1)
        rig.press("open_close")
        rig.press("next")
        rig.press("next")  # A001 finished
        ahead[0] = site.hub.rating_window_s + 5  # the citizen walks away; time passes
        rig.press("satisfied")
        # The hub's clock moved on while the box's idea of it did not: the hub refused the press
        # as stale, the box learnt the hub's clock from that refusal and sent it again at once
        # (issue 23 item 6): the citizen is told the rating time is over, not "expired".
        assert rig.outcomes[-1] == ("satisfied", "refused", "rating_closed")
        assert rig.display.text == "Loket 3 - Buka|Waktu habis"
        assert ratings(hub) == []
    finally:
        bus.stop()
        hub.stop()


def test_no_answer_from_the_hub_is_a_fault_and_a_press_meanwhile_is_not_sent(
    broker: Mosquitto, make_rig: Callable[..., Rig]
) -> None:
    site = make_site(broker.port)  # no hub runs for this site
    commands: list[str] = []
    listener = Bus(site.site.id, "hub", "hub", port=broker.port)
    listener.subscribe(listener.topics.all_of("command"), lambda i: commands.append(i.topic))
    bus = Bus.for_device(site, "caller-03")
    try:
        assert listener.start(wait=5) and bus.start(wait=5)
        rig = make_rig(site, bus, debounce_s=0.0, request_timeout_s=0.5, flash_s=0.3)
        rig.press("next", idle=False)
        rig.press("next", idle=False)  # still waiting for the first answer
        assert rig.outcomes == [("next", "ignored", "busy")]
        assert rig.box.wait_idle(5)
        assert rig.outcomes[-1] == ("next", "fault", "timeout")
        assert rig.display.text == "Loket 3|Hub tdk menjawab"
        assert wait_until(lambda: rig.pin_states("led_fault")[-2:] == [True, False], 6)
        assert len(commands) == 1
    finally:
        bus.stop()
        listener.stop()


def test_next_while_the_broker_is_down_is_a_fault_and_never_sent_later(
    own_broker: Mosquitto, tmp_path: Path, make_rig: Callable[..., Rig]
) -> None:
    site = make_site(own_broker.port, always_open=True, database=tmp_path / "hub.sqlite")
    hub = HubService(site, first_start=True).start()
    bus = Bus.for_device(site, "caller-03")
    try:
        assert bus.start(wait=5)
        rig = make_rig(site, bus, officer="Siti")
        issue(hub, "ktp", 3)
        rig.press("open_close")
        assert rig.box.state.open and wait_until(lambda: rig.box.waiting == 3)

        own_broker.stop()
        assert wait_until(lambda: not bus.connected, 5)
        assert rig.pin_states("led_fault")[-1] is True and rig.pin_states("led_ready")[-1] is False
        assert rig.display.text == "Loket 3 - Buka|Tidak terhubung"
        started = time.monotonic()
        rig.press("next")
        assert time.monotonic() - started < 1.0  # immediate fault, no waiting for a timeout
        assert rig.outcomes[-1] == ("next", "fault", "offline")
        assert rig.display.text == "Loket 3 - Buka|Tidak terhubung"

        own_broker.start()
        assert bus.wait_connected(10) and hub.bus.wait_connected(10)
        time.sleep(1.5)  # ample time for anything queued to arrive (nothing should)
        assert hub.queue.counters[3].call_seq == 0
        assert all(t.status == "waiting" for t in hub.queue.tickets.values())
        assert wait_until(lambda: rig.pin_states("led_ready")[-1] is True)
        assert rig.box.state.ticket is None and wait_until(lambda: rig.box.waiting == 3)
        # The box works again: the next press calls, exactly once.
        rig.press("next")
        assert rig.box.state.ticket == "A001" and hub.queue.counters[3].call_seq == 1
    finally:
        bus.stop()
        hub.stop()


def test_bad_retained_state_is_ignored(broker: Mosquitto, make_rig: Callable[..., Rig]) -> None:
    site = make_site(broker.port)
    publisher = Bus(site.site.id, "hub", "hub", port=broker.port)
    bus = Bus.for_device(site, "caller-03")
    try:
        assert publisher.start(wait=5) and bus.start(wait=5)
        rig = make_rig(site, bus)
        topic = publisher.topics.counter_state(3)
        good = m.CounterState(seq=10, counter=3, open=True, call_seq=1, ticket="A005", waiting=4)
        publisher.publish(topic, good, retain=True)  # as the hub does: there for a late subscriber
        assert wait_until(lambda: rig.display.text == "A005 -> Loket 3|Menunggu: 4")
        for garbage in (
            b"not json",
            b'{"v": 1, "seq": 11}',
            b'{"v": 9, "seq": 12, "counter": 3, "open": true, "call_seq": 2, "waiting": 0}',
            m.encode(good.model_copy(update={"seq": 13, "counter": 4, "ticket": "B001"})),
            m.encode(good.model_copy(update={"seq": 9, "ticket": "A004"})),  # older
            b"",
        ):
            publisher.publish(topic, garbage)
        newer = good.model_copy(update={"seq": 14, "ticket": "A006", "waiting": 3})
        publisher.publish(topic, newer)
        assert wait_until(lambda: rig.box.state == newer)
        assert rig.display.history[-1] == ["A006 -> Loket 3 ", "Menunggu: 3     "]
        assert all("B001" not in " ".join(lines) for lines in rig.display.history)
        assert all("A004" not in " ".join(lines) for lines in rig.display.history)
    finally:
        publisher.stop()
        bus.stop()


def test_four_row_display_shows_waiting_per_service(
    hub: HubService, bus_for: Callable[[str], Bus], make_rig: Callable[..., Rig]
) -> None:
    issue(hub, "ktp", 2)
    issue(hub, "kk", 1)
    assert hub.submit(m.OpenCounter(device="hub", counter=1, officer="Budi")).ok
    rig = make_rig(hub.site, bus_for("caller-01"), display=FakeCharDisplay(20, 4))
    assert wait_until(
        lambda: rig.display.text == "Loket 1 - Buka|Menunggu: 3|A:2 B:1|Petugas: Budi"
    ), rig.display.text


def test_a_counter_the_admin_reassigns_shows_and_calls_its_new_services(
    hub: HubService, bus_for: Callable[[str], Bus], make_rig: Callable[..., Rig]
) -> None:
    issue(hub, "ktp", 2)
    issue(hub, "skck", 1)
    assert hub.submit(m.OpenCounter(device="hub", counter=1, officer="Budi")).ok
    rig = make_rig(hub.site, bus_for("caller-01"), display=FakeCharDisplay(20, 4))
    assert wait_until(
        lambda: rig.display.text == "Loket 1 - Buka|Menunggu: 2|A:2 B:0|Petugas: Budi"
    ), rig.display.text
    assign = m.AssignCounter(device="hub", counter=1, services=("skck", "ktp"), by="Kepala")
    assert hub.submit(assign).ok
    assert wait_until(
        lambda: rig.display.text == "Loket 1 - Buka|Menunggu: 3|H:1 A:2|Petugas: Budi"
    ), rig.display.text
    rig.press("next")
    assert wait_until(lambda: rig.box.state and rig.box.state.ticket is not None)
    assert rig.box.state.ticket == "A001"  # oldest first across the counter's services


def test_only_caller_boxes_of_the_inventory(site: Site) -> None:
    with pytest.raises(CallerConfigError, match=r"'caller-3' is not in .*did you mean 'caller-03'"):
        caller_device(site, "caller-3")
    with pytest.raises(CallerConfigError, match=r"'kiosk-1' is a kiosk .* not a caller box"):
        caller_device(site, "kiosk-1")
    assert caller_device(site, "caller-03").counter == 3


def test_unknown_button_and_transfer_without_targets_send_nothing(site: Site) -> None:
    box = CallerBox(site, "caller-13", Bus.for_device(site, "caller-13"))  # never started
    assert box.press("self_destruct") is False
    assert box.lines == ["Loket 13", "Tidak terhubung"]
    # Counter 13 has no transfer_to: a TRANSFER button wired by mistake only says so.
    assert box.press("transfer") is True
    assert [(o.status, o.code, o.kind) for o in box.recent] == [("refused", "no_targets", None)]
    assert box.lines == ["Loket 13", "Tak ada tujuan"]


class FailingDisplay(FakeCharDisplay):
    """A display whose I2C link can be cut (the seam the box sees is CharDisplay)."""

    def __init__(self) -> None:
        super().__init__(16, 2)
        self.broken = False

    def write(self, lines: list[str]) -> None:  # type: ignore[override]
        if self.broken:
            raise LcdError("PCF8574 display at I2C bus 1, address 0x27: [Errno 121] Remote I/O")
        super().write(lines)


def test_display_failure_is_reported_and_the_box_keeps_working(
    hub: HubService, bus_for: Callable[[str], Bus], make_rig: Callable[..., Rig]
) -> None:
    issue(hub, "ktp", 2)
    watcher = bus_for("tv-lobby-1")
    statuses = watch(watcher, watcher.topics.status("caller-03"), m.DeviceStatus)
    display = FailingDisplay()
    rig = make_rig(hub.site, bus_for("caller-03"), display=display, officer="Siti")
    assert wait_until(lambda: rig.box.state is not None)
    rig.press("open_close")
    display.broken = True
    rig.press("next")
    assert rig.outcomes[-1] == ("next", "ok", "") and rig.box.state.ticket == "A001"
    assert wait_until(lambda: True in rig.pin_states("buzzer"), 2)  # feedback without the LCD
    assert wait_until(lambda: _health(statuses) == "error")
    display.broken = False
    rig.press("next")
    assert display.text == "A002 -> Loket 3|Menunggu: 0"
    assert wait_until(lambda: _health(statuses) == "ok")


def _health(statuses: queue.Queue) -> str | None:
    latest = None
    while not statuses.empty():
        status = statuses.get_nowait()
        latest = status.health.lcd if status else None
    return latest


def test_next_held_up_by_a_frozen_broker_is_never_applied_late(
    own_broker: Mosquitto,
    tmp_path: Path,
    make_rig: Callable[..., Rig],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The connection looks up but the broker hangs: the press times out with fault
    feedback, and when the broker wakes the hub refuses the held NEXT as stale."""
    site = make_site(
        own_broker.port, always_open=True, database=tmp_path / "hub.sqlite", command_max_age_s=1
    )
    hub = HubService(site, first_start=True).start()
    bus = Bus.for_device(site, "caller-03")
    try:
        assert bus.start(wait=5)
        rig = make_rig(site, bus, officer="Siti", request_timeout_s=0.5)
        issue(hub, "ktp", 2)
        rig.press("open_close")
        assert own_broker.process is not None
        own_broker.process.send_signal(signal.SIGSTOP)
        try:
            rig.press("next")
            assert rig.outcomes[-1] == ("next", "fault", "timeout")
            assert rig.display.text == "Loket 3 - Buka|Hub tdk menjawab"
            time.sleep(site.hub.command_max_age_s + 0.5)  # the held NEXT grows old
        finally:
            own_broker.process.send_signal(signal.SIGCONT)
        assert wait_until(
            lambda: any("stale" in str(getattr(r, "error", "")) for r in caplog.records), 5
        ), "the held NEXT never reached the hub"
        assert hub.queue.counters[3].call_seq == 0
        rig.press("next")  # the box and the hub work on
        assert rig.box.state.ticket == "A001" and hub.queue.counters[3].call_seq == 1
    finally:
        bus.stop()
        hub.stop()
