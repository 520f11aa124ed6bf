"""The kiosk flow end to end: MockFactory presses, the real hub on a real Mosquitto and SQLite,
escpos printers whose bytes are read back."""

from __future__ import annotations

import re
import sqlite3
import threading
import time
from pathlib import Path

import pytest
from escpos.printer import Dummy
from gpiozero.pins.mock import MockFactory
from PIL import Image

from hub.service import HubService
from kiosk.menu import COLOURS, TouchMenu
from kiosk.printer import TicketPrinter
from protocol import messages as m
from protocol.brokers import Mosquitto
from protocol.mqtt import EXPIRY_GRACE_S, REPLY_MARGIN_S, Bus, Incoming
from protocol.site import Printer, Site
from protocol.texts import CLOCK_UNSYNCED
from tests.conftest import example_text, make_site
from tests.hub.scenario import T0, Clock
from tests.kiosk.conftest import (
    FlakyPrinter,
    JammedPrinter,
    SlowPrinter,
    dummy_printer,
    press,
    request_rows,
    ticket_rows,
)
from tests.kiosk.escpos_bytes import parse
from tests.timing import ManualClock, wait_until

KTP, KK, PRIORITY_PIN = 5, 6, 26  # kiosk-3's pins in the example inventory
READY, BUSY, FAULT = 16, 20, 21


def leds(pins: MockFactory) -> tuple[int, int, int]:
    return pins.pin(READY).state, pins.pin(BUSY).state, pins.pin(FAULT).state


def quota_site(port: int, tmp_path: Path, quota: int = 1) -> Site:
    """The example site with a daily quota of `quota` KTP tickets."""
    text = example_text().replace("daily_quota = 150", f"daily_quota = {quota}", 1)
    return make_site(port, text=text, always_open=True, database=tmp_path / "quota.sqlite")


def tokens(database: Path) -> list[str]:
    conn = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        return [row[0] for row in conn.execute("SELECT token FROM tickets ORDER BY id")]
    finally:
        conn.close()


def test_press_prints_the_confirmed_ticket_and_reports_it(hub, make_kiosk, pins) -> None:
    device = Dummy(profile="default")
    app = make_kiosk("kiosk-3", printer=dummy_printer(hub.site, "kiosk-3", device))
    press(pins, KTP)
    assert app.wait_idle(10)
    printed = parse(device.output)
    number = printed.find("A001")
    assert number.width == 6 and number.height == 6
    text = " ".join(printed.texts())  # 58 mm paper: long lines wrap
    assert "Perekaman dan Cetak KTP-el" in text
    assert "Antrian di depan Anda: 0" in text
    [token] = tokens(hub.database)
    assert printed.qr_payloads == [f"{hub.site.site.public_url}/t/{token}"]
    assert printed.qr_prints == 1 and len(printed.cuts) == 1
    rows = ticket_rows(hub.database)
    assert [(r["label"], r["service"], r["status"], r["printed"], r["source"]) for r in rows] == [
        ("A001", "ktp", "waiting", 1, "kiosk-3")
    ]
    assert [n.kind for n in app.notices][-2:] == ["printing", "printed"]
    assert app.notices[-1].number == "A001"
    assert leds(pins) == (1, 0, 0)
    assert wait_until(
        lambda: "kiosk-3" in hub.fleet and hub.fleet["kiosk-3"].status.health.printer == "ok"
    )
    # The hub's retained service state reaches the kiosk (the menu would show it).
    assert wait_until(lambda: "ktp" in app.states and app.states["ktp"].waiting == 1)


def test_with_no_counter_open_the_kiosk_says_so_instead_of_a_waiting_time(
    hub, make_kiosk, pins
) -> None:
    """Issue 18 item 4: it used to print '± 8 menit' and say only 'take your ticket'."""
    device = Dummy(profile="default")
    app = make_kiosk("kiosk-3", printer=dummy_printer(hub.site, "kiosk-3", device))
    press(pins, KTP)  # counters 1-3 (ktp) are all closed
    assert app.wait_idle(10)
    told = app.notices[-1]
    assert told.kind == "printed" and told.number == "A001"
    assert "Belum ada loket yang melayani layanan ini saat ini" in told.get("id")
    text = " ".join(" ".join(parse(device.output).texts()).split())  # 58 mm: lines wrap
    assert "Perkiraan waktu tunggu: Belum ada loket yang melayani saat ini" in text
    assert "menit" not in text
    assert hub.submit(m.OpenCounter(device="hub", counter=3, officer="Siti")).ok
    before = len(device.output)
    press(pins, KTP)
    assert wait_until(lambda: app.notices[-1].number == "A002") and app.wait_idle(10)
    assert app.notices[-1].get("id") == "Silakan ambil tiket Anda"
    later = " ".join(" ".join(parse(device.output[before:]).texts()).split())
    assert "Perkiraan waktu tunggu: ± 8 menit" in later


def test_double_press_yields_one_ticket(hub, make_kiosk, pins) -> None:
    device = Dummy(profile="default")
    clock = ManualClock()
    app = make_kiosk(
        printer=dummy_printer(hub.site, "kiosk-3", device),
        lockout_s=0.5,
        bounce_s=0.05,
        clock=clock,
    )
    press(pins, KTP)
    pins.pin(KTP).drive_low()  # contact bounce of the same press
    pins.pin(KTP).drive_high()
    clock.now += 0.06
    press(pins, KTP)  # a real second press
    clock.now += 0.06
    press(pins, KTP)
    assert app.wait_idle(10)
    clock.now += 0.1
    press(pins, KTP)  # still within the lockout after the ticket came out
    assert app.wait_idle(10)
    assert [r["label"] for r in ticket_rows(hub.database)] == ["A001"]
    printed = parse(device.output)
    assert printed.qr_prints == 1 and len(printed.cuts) == 1
    assert "busy" in [n.kind for n in app.notices]
    clock.now += 0.5
    press(pins, KTP)  # the next citizen
    assert app.wait_idle(10)
    assert [r["label"] for r in ticket_rows(hub.database)] == ["A001", "A002"]


def test_press_during_a_print_gets_feedback_and_is_not_queued(hub, make_kiosk, pins) -> None:
    device = SlowPrinter(profile="default")
    app = make_kiosk(printer=dummy_printer(hub.site, "kiosk-3", device))
    press(pins, KTP)
    assert device.writing.wait(10)
    assert leds(pins) == (0, 1, 0)
    press(pins, KK)  # another citizen presses while the ticket prints
    assert app.notices[-1].kind == "busy"
    assert app.notices[-1].get("id") == "Mohon tunggu, tiket sedang dicetak"
    assert wait_until(lambda: [s.state for s in pins.pin(12).states].count(True) >= 1, timeout=2)
    device.release.set()
    assert app.wait_idle(10)
    time.sleep(0.3)
    assert app.wait_idle(1)
    assert [r["label"] for r in ticket_rows(hub.database)] == ["A001"]
    assert parse(device.output).qr_prints == 1


def test_hub_not_answering_prints_nothing_and_cancels_the_request(site, make_kiosk, pins) -> None:
    device = Dummy(profile="default")
    app = make_kiosk(
        printer=dummy_printer(site, "kiosk-3", device),
        request_timeout=0.3,
        retries=1,
        status_every_s=0.3,
    )
    started = time.monotonic()
    press(pins, KTP)
    assert app.wait_idle(10)
    assert time.monotonic() - started < 3
    assert device.output == b""
    assert app.notices[-1].kind == "timeout"
    assert "Tiket tidak dicetak" in app.notices[-1].get("id")
    assert leds(pins)[2] == 1
    [cancel] = app.pending_reports  # the hub is down: the cancel waits
    assert isinstance(cancel, m.VoidTicket) and cancel.ticket_id is None
    hub = HubService(site, first_start=True).start()  # the hub comes back
    try:
        assert wait_until(lambda: not app.pending_reports, timeout=10)
        logged = request_rows(hub.database)[cancel.cancels]
        assert logged["kind"] == "issue" and '"cancelled"' in logged["reply"]
        assert ticket_rows(hub.database) == []  # the old press can never create a ticket
    finally:
        hub.stop()


def test_broker_down_prints_nothing_and_the_press_is_never_sent_later(
    own_broker: Mosquitto, make_kiosk, pins, tmp_path: Path
) -> None:
    site = make_site(own_broker.port, always_open=True, database=tmp_path / "hub.sqlite")
    hub = HubService(site, first_start=True).start()
    try:
        device = Dummy(profile="default")
        app = make_kiosk(on_site=site, printer=dummy_printer(site, "kiosk-3", device))
        own_broker.stop()
        assert wait_until(lambda: not app.bus.connected)
        started = time.monotonic()
        press(pins, KTP)
        assert app.wait_idle(5)
        assert time.monotonic() - started < 1  # refused at once, not after a timeout
        assert device.output == b""
        assert app.notices[-1].kind == "offline"
        assert wait_until(lambda: sum(s.state for s in pins.pin(FAULT).states) >= 2)  # blinks
        own_broker.start()
        assert wait_until(lambda: app.bus.connected and hub.bus.connected, timeout=15)
        time.sleep(1.0)
        assert ticket_rows(hub.database) == []  # the offline press never reached the hub
        assert wait_until(lambda: not app.pending_reports)  # its cancel did, when back
        assert wait_until(lambda: leds(pins) == (1, 0, 0))
        press(pins, KTP)
        assert app.wait_idle(10)
        assert [r["label"] for r in ticket_rows(hub.database)] == ["A001"]
        assert parse(device.output).find("A001")
    finally:
        hub.stop()


def test_printing_failure_voids_the_ticket_at_the_hub(hub, make_kiosk, pins) -> None:
    device = JammedPrinter(profile="default")
    app = make_kiosk(printer=dummy_printer(hub.site, "kiosk-3", device))
    press(pins, KTP)
    assert app.wait_idle(10)
    assert device.attempts == 1
    rows = ticket_rows(hub.database)
    assert [(r["label"], r["status"], r["printed"]) for r in rows] == [("A001", "voided", 0)]
    told = app.notices[-1]
    assert told.kind == "printer" and told.number == "A001"
    assert "Nomor A001 dibatalkan" in told.get("id")
    assert leds(pins) == (0, 0, 1)
    assert wait_until(
        lambda: "kiosk-3" in hub.fleet and hub.fleet["kiosk-3"].status.health.printer == "error"
    )
    assert "Input/output error" in (hub.fleet["kiosk-3"].status.health.detail or "")


def test_an_unexpected_printer_failure_voids_and_the_kiosk_goes_on(hub, make_kiosk, pins) -> None:
    device = FlakyPrinter(profile="default")
    app = make_kiosk(printer=dummy_printer(hub.site, "kiosk-3", device))
    press(pins, KTP)
    assert app.wait_idle(10)
    assert app.notices[-1].kind == "printer"
    press(pins, KTP)
    assert app.wait_idle(10)
    rows = ticket_rows(hub.database)
    assert [(r["label"], r["status"], r["printed"]) for r in rows] == [
        ("A001", "voided", 0),
        ("A002", "waiting", 1),
    ]
    assert parse(device.output).find("A002")


def test_paper_out_voids_then_stops_asking_until_paper_is_loaded(
    hub, make_kiosk, pins, printer_server
) -> None:
    server = printer_server(status=b"\x12")
    spec = Printer(connection="network", host="127.0.0.1", port=server.port, timeout_s=2)
    app = make_kiosk(printer=TicketPrinter.from_inventory(spec))
    assert wait_until(lambda: app.printer_state == "ok")  # checked when the kiosk starts
    server.status = b"\x72"  # the roll runs out
    press(pins, KTP)
    assert app.wait_idle(10)
    assert [(r["label"], r["status"]) for r in ticket_rows(hub.database)] == [("A001", "voided")]
    assert "Kertas tiket habis" in app.notices[-1].get("id")
    assert wait_until(lambda: hub.fleet["kiosk-3"].status.health.printer == "paper_out")
    press(pins, KTP)  # the printer still says no paper: the hub is not even asked
    assert app.wait_idle(10)
    assert len(ticket_rows(hub.database)) == 1
    assert app.notices[-1].kind == "printer"
    server.status = b"\x12"  # a technician loads a new roll
    press(pins, KTP)
    assert app.wait_idle(10)
    assert [r["status"] for r in ticket_rows(hub.database)] == ["voided", "waiting"]
    assert wait_until(lambda: b"A002" in bytes(server.received))
    assert b"A001" not in bytes(server.received)
    assert wait_until(lambda: hub.fleet["kiosk-3"].status.health.printer == "ok")
    app.printer.close()


def test_refusal_text_from_the_hub_is_shown(broker, make_kiosk, pins, tmp_path) -> None:
    site = quota_site(broker.port, tmp_path)
    hub = HubService(site, first_start=True).start()
    try:
        device = Dummy(profile="default")
        app = make_kiosk(on_site=site, printer=dummy_printer(site, "kiosk-3", device))
        press(pins, KTP)
        assert app.wait_idle(10)
        press(pins, KTP)
        assert app.wait_idle(10)
        told = app.notices[-1]
        assert told.kind == "refused" and told.code == "quota_reached"
        assert told.get("id") == "Kuota antrian Perekaman dan Cetak KTP-el hari ini sudah habis"
        assert told.get("en") == (
            "Today's quota for e-ID card (KTP-el) recording and printing is used up"
        )
        assert parse(device.output).qr_prints == 1  # only the first ticket was printed
        assert leds(pins) == (1, 0, 0)  # a refusal is not a fault of the kiosk
    finally:
        hub.stop()


def test_touch_menu_kiosk_greys_out_a_full_service(broker, make_kiosk, tmp_path) -> None:
    site = quota_site(broker.port, tmp_path)
    hub = HubService(site, first_start=True).start()
    menu = TouchMenu(site, tuple(site.services), size=(1080, 1920), notice_s=0.1)
    try:
        device = Dummy(profile="TM-T20II")
        app = make_kiosk(
            "kiosk-1", on_site=site, printer=dummy_printer(site, "kiosk-1", device), menu=menu
        )
        assert wait_until(lambda: "ktp" in app.states)  # retained state on connect
        tile = menu.view().tile("ktp")
        assert tile.enabled
        centre = (tile.rect[0] + tile.rect[2] // 2, tile.rect[1] + tile.rect[3] // 2)
        assert menu.tap(centre).key == "ktp"
        assert app.wait_idle(10)
        assert parse(device.output).find("A001")
        assert app.notices[-1].number == "A001"
        assert wait_until(lambda: not menu.view().tile("ktp").enabled)  # quota used up
        assert menu.view().tile("ktp").badge == "KUOTA HABIS"
        assert wait_until(lambda: menu.view().notice is None, 2)  # 'take your ticket' has gone
        assert menu.tap(centre) is None
        assert app.wait_idle(1) and len(ticket_rows(site.hub.database)) == 1
        image = menu.save_png(tmp_path / "menu.png")
        from PIL import Image

        assert (
            Image.open(image).convert("RGB").getpixel((tile.rect[0] + 8, centre[1]))
            == (COLOURS["closed"])
        )
    finally:
        hub.stop()
        menu.close()


def test_priority_pattern_reaches_the_ticket(hub, make_kiosk, pins) -> None:
    device = Dummy(profile="default")
    app = make_kiosk(printer=dummy_printer(hub.site, "kiosk-3", device))
    press(pins, PRIORITY_PIN)
    press(pins, PRIORITY_PIN)  # second press: the next category
    assert app.priority.current() == "disabled"
    assert (
        app.notices[-1].get("id")
        == "Layanan prioritas: Penyandang disabilitas. Silakan pilih layanan."
    )
    press(pins, KTP)
    assert app.wait_idle(10)
    press(pins, KK)  # the next citizen: a regular ticket
    assert app.wait_idle(10)
    rows = ticket_rows(hub.database)
    assert [(r["label"], r["priority"]) for r in rows] == [("A001", "disabled"), ("B001", None)]
    text = " ".join(parse(device.output).texts())
    assert text.count("PRIORITAS: Penyandang disabilitas") == 1


def _centre(tile) -> tuple[int, int]:
    return tile.rect[0] + tile.rect[2] // 2, tile.rect[1] + tile.rect[3] // 2


def test_touch_priority_is_shown_exactly_while_the_next_ticket_carries_it(
    hub, make_kiosk, tmp_path
) -> None:
    clock = ManualClock()
    menu = TouchMenu(hub.site, tuple(hub.site.services), size=(1080, 1920), clock=clock)
    device = Dummy(profile="TM-T20II")
    app = make_kiosk(
        "kiosk-1", printer=dummy_printer(hub.site, "kiosk-1", device), menu=menu, clock=clock
    )

    def selected() -> list[str]:
        return [t.key for t in menu.view().tiles if t.selected]

    try:
        assert menu.tap(_centre(menu.view().tile("priority:elderly"))) is not None
        assert selected() == ["priority:elderly"]
        assert menu.view().notice is None  # the choice does not cover the menu
        clock.now += 1.0
        assert menu.tap(_centre(menu.view().tile("ktp"))).key == "ktp"  # taken at once
        assert app.wait_idle(10)
        assert selected() == []  # used by this ticket: no longer shown
        clock.now += 7.0  # 'take your ticket' has gone
        png = Image.open(menu.save_png(tmp_path / "after.png")).convert("RGB")
        tile = menu.view().tile("priority:elderly")
        assert png.getpixel((tile.rect[0] + 8, _centre(tile)[1])) == COLOURS["tile"]

        menu.tap(_centre(menu.view().tile("priority:pregnant")))
        assert selected() == ["priority:pregnant"]
        clock.now += 15.1  # the window ends: the screen stops showing it
        assert selected() == []
        assert menu.view().extra["priority_hint"].startswith("Lansia, disabilitas")
        menu.tap(_centre(menu.view().tile("kk")))
        assert app.wait_idle(10)
        rows = ticket_rows(hub.database)
        assert [(r["label"], r["priority"]) for r in rows] == [("A001", "elderly"), ("B001", None)]
        assert " ".join(parse(device.output).texts()).count("PRIORITAS") == 1
    finally:
        menu.close()


def test_a_citizen_who_chooses_english_gets_an_english_ticket(hub, make_kiosk) -> None:
    clock = ManualClock()
    menu = TouchMenu(hub.site, tuple(hub.site.services), size=(1080, 1920), clock=clock)
    device = Dummy(profile="TM-T20II")
    app = make_kiosk(
        "kiosk-1", printer=dummy_printer(hub.site, "kiosk-1", device), menu=menu, clock=clock
    )
    try:
        menu.tap(_centre(menu.view().tile("lang:en")))
        menu.tap(_centre(menu.view().tile("tanah")))
        assert app.wait_idle(10)
        english = parse(device.output).texts()
        assert "QUEUE NUMBER" in english and "Cost: As set by Government Regulation 128/2015" in (
            english
        )
        told = menu.view().notice.get(menu.view().lang)  # (no counter serves 'tanah' now)
        assert told.startswith("Please take your ticket. No counter serves this service")
        clock.now += 7.0  # the notice ends: the next citizen gets the device's language
        device.clear()
        menu.tap(_centre(menu.view().tile("kk")))
        assert app.wait_idle(10)
        assert "NOMOR ANTRIAN" in parse(device.output).texts()
    finally:
        menu.close()


def test_the_ready_led_stops_blinking_when_the_priority_window_ends(hub, make_kiosk, pins):
    app = make_kiosk(printer=dummy_printer(hub.site, "kiosk-3"), priority_window_s=0.3)
    press(pins, PRIORITY_PIN)
    assert app.priority.current() == "elderly"
    assert wait_until(lambda: app.priority.current() is None, 2)
    assert wait_until(lambda: leds(pins) == (1, 0, 0), 2)
    samples = []
    for _ in range(20):  # over 0.4 s: a blink (0.25 s on, 0.25 s off) would show an 'off'
        samples.append(pins.pin(READY).state)
        time.sleep(0.02)
    assert all(samples)  # steady ready


def test_garbage_on_the_service_state_topic_changes_nothing(hub, make_kiosk, pins) -> None:
    app = make_kiosk(printer=dummy_printer(hub.site, "kiosk-3"))
    assert wait_until(lambda: "ktp" in app.states)
    before = app.states["ktp"]
    intruder = Bus(hub.site.site.id, "tester-9", "hub", port=hub.site.broker.port)
    try:
        assert intruder.start(wait=5)
        topic = intruder.topics.service_state("ktp")
        intruder.publish(topic, b"\xff not json")
        intruder.publish(topic, b'{"v": 1, "seq": "x"}')
        wrong = before.model_copy(update={"service": "kk", "seq": before.seq + 100})
        intruder.publish(topic, m.encode(wrong))
        older = before.model_copy(update={"seq": before.seq - 1, "waiting": 99})
        intruder.publish(topic, m.encode(older))
        assert intruder.flush(5)
        time.sleep(0.2)
        assert app.states["ktp"] == before
        press(pins, KTP)  # and the kiosk still works
        assert app.wait_idle(10)
        assert [r["label"] for r in ticket_rows(hub.database)] == ["A001"]
    finally:
        intruder.stop()


def test_void_waits_for_the_broker_and_reaches_the_hub(
    own_broker: Mosquitto, make_kiosk, pins, tmp_path: Path
) -> None:
    site = make_site(own_broker.port, always_open=True, database=tmp_path / "hub.sqlite")
    hub = HubService(site, first_start=True).start()
    try:
        device = JammedPrinter(profile="default", before_fail=own_broker.stop)
        app = make_kiosk(
            on_site=site,
            printer=dummy_printer(site, "kiosk-3", device),
            request_timeout=1.0,
            status_every_s=1.0,
        )
        press(pins, KTP)
        assert app.wait_idle(10)
        assert [type(c).__name__ for c in app.pending_reports] == ["VoidTicket"]
        own_broker.start()
        assert wait_until(lambda: not app.pending_reports, timeout=20)
        assert wait_until(
            lambda: [r["status"] for r in ticket_rows(hub.database)] == ["voided"], timeout=5
        )
    finally:
        hub.stop()


def test_a_hub_stalled_past_the_deadline_never_issues_the_ticket(hub, make_kiosk, pins) -> None:
    device = Dummy(profile="default")
    app = make_kiosk(
        printer=dummy_printer(hub.site, "kiosk-3", device), request_timeout=0.3, retries=0
    )
    stall = sqlite3.connect(hub.database, isolation_level=None, timeout=5)
    try:
        stall.execute("BEGIN IMMEDIATE")  # a slow disk: the hub cannot write for a moment
        press(pins, KTP)
        assert app.wait_idle(5)
        assert app.notices[-1].kind == "timeout"
        [cancel] = app.pending_reports  # the cancel could not get through either
        assert isinstance(cancel, m.VoidTicket) and cancel.cancels is not None
        time.sleep(1.0)
    finally:
        stall.execute("ROLLBACK")
        stall.close()
    time.sleep(1.0)  # the hub works through what waited: both are past their deadline now
    assert ticket_rows(hub.database) == []
    assert device.output == b""


class LateHub:
    """A test peer on the hub's side, built from the real Bus and messages: it confirms
    tickets only after `delay` seconds, and records the voids it receives."""

    def __init__(self, site: Site, delay: float) -> None:
        self.bus = Bus(site.site.id, "late-hub", "hub", port=site.broker.port)
        self.delay = delay
        self.voids: list[m.VoidTicket] = []
        self.timers: list[threading.Timer] = []
        self.bus.subscribe(self.bus.topics.all_of("command"), self.on_command)
        assert self.bus.start(wait=5)

    def on_command(self, incoming: Incoming) -> None:
        data = m.decode_json(incoming.payload)
        kind = incoming.topic.rsplit("/", 1)[1]
        command = m.decode(m.COMMANDS[kind], data)
        if isinstance(command, m.IssueTicket):
            ticket = m.TicketInfo(
                id=41,
                number="A041",
                service=command.service,
                issued_at=time.time(),
                token="late-token",
                people_ahead=0,
                est_wait_s=0,
            )
            result = m.IssueResult(ticket=ticket).model_dump()
            timer = threading.Timer(self.delay, self.answer, (command, result))
            self.timers.append(timer)
            timer.start()
            return
        if isinstance(command, m.VoidTicket):
            self.voids.append(command)
        result = m.TicketResult(ticket_id=command.ticket_id, number=None, status="nothing")
        self.answer(command, result.model_dump())

    def answer(self, command: m.Command, result: dict) -> None:
        reply = m.Reply(request_id=command.request_id, ok=True, result=result, hub_time=time.time())
        self.bus.publish(self.bus.topics.reply(command.device), reply)

    def stop(self) -> None:
        for timer in self.timers:
            timer.cancel()
        self.bus.stop()


def test_a_ticket_confirmed_after_the_kiosk_gave_up_is_voided(site, make_kiosk, pins) -> None:
    # Later than the kiosk waits: its timeout, then the hub's deadline grace and reply margin.
    peer = LateHub(site, delay=0.2 + EXPIRY_GRACE_S + REPLY_MARGIN_S + 0.4)
    try:
        device = Dummy(profile="default")
        app = make_kiosk(
            printer=dummy_printer(site, "kiosk-3", device), request_timeout=0.2, retries=0
        )
        press(pins, KTP)
        assert app.wait_idle(5)
        assert app.notices[-1].kind == "timeout"
        assert [v.cancels is not None for v in peer.voids] == [True]  # cancelled at once
        assert wait_until(lambda: len(peer.voids) == 2, timeout=5)  # the late answer came
        assert peer.voids[1].ticket_id == 41 and "not printed" in peer.voids[1].reason
        assert [t.number for t in app.voided] == ["A041"]
        assert device.output == b""
    finally:
        peer.stop()


def test_a_device_that_is_not_a_kiosk_is_refused(site) -> None:
    from kiosk.app import KioskApp
    from kiosk.errors import KioskConfigError

    with pytest.raises(KioskConfigError, match=re.escape("'caller-03' is not a kiosk")):
        KioskApp(site, "caller-03", Bus.for_device(site, "caller-03"), None)


def test_a_hub_that_does_not_trust_its_clock_says_so_on_the_kiosk(site, make_kiosk) -> None:
    """Issue 23 item 4: the hub restarted with its clock an hour behind its own records (a Pi
    without NTP yet) issues nothing; the kiosk's menu says why (Indonesian first) and a press
    gets the hub's reason; once NTP synchronises the clock, tickets come out again."""
    clock = Clock(T0 + 3600)
    synced = [False]
    first = HubService(site, clock=clock, clock_synced=lambda: synced[0], first_start=True).start()
    assert first.submit(m.IssueTicket(device="hub", service="ktp")).ok  # recorded at 10:00
    first.stop()
    clock.now = T0  # back at 09:00: behind the record, and NTP has not synchronised it
    hub = HubService(site, clock=clock, clock_synced=lambda: synced[0]).start()
    menu = TouchMenu(site, tuple(site.services), size=(1080, 1920), notice_s=0.1)
    try:
        device = Dummy(profile="TM-T20II")
        app = make_kiosk("kiosk-1", printer=dummy_printer(site, "kiosk-1", device), menu=menu)
        assert wait_until(lambda: menu.view().banner == CLOCK_UNSYNCED["id"])
        tile = menu.view().tile("ktp")
        assert menu.tap((tile.rect[0] + 5, tile.rect[1] + 5)).key == "ktp"
        assert app.wait_idle(10)
        told = app.notices[-1]
        assert (told.code, told.get("id"), told.get("en")) == (
            "clock_unsynced",
            CLOCK_UNSYNCED["id"],
            CLOCK_UNSYNCED["en"],
        )
        assert parse(device.output).qr_prints == 0
        synced[0] = True  # NTP has set the clock (the hub looks at every issue and every 5 s)
        assert wait_until(lambda: menu.view().notice is None, 2)  # the refusal notice has gone
        assert menu.tap((tile.rect[0] + 5, tile.rect[1] + 5)).key == "ktp"
        assert app.wait_idle(10) and app.notices[-1].number == "A002"
        assert wait_until(lambda: menu.view().banner is None)
    finally:
        hub.stop()
        menu.close()


class BusyHub(LateHub):
    """A test peer that confirms tickets at once and refuses the first `printed` report of
    each ticket with a code after which the same report may succeed (e.g. its disk is full)."""

    def __init__(self, site: Site, code: str) -> None:
        super().__init__(site, delay=0.0)
        self.code = code
        self.numbers = iter(range(1, 100))
        self.refused: list[int] = []
        self.printed: list[int] = []

    def on_command(self, incoming: Incoming) -> None:
        kind = incoming.topic.rsplit("/", 1)[1]
        command = m.decode(m.COMMANDS[kind], m.decode_json(incoming.payload))
        if isinstance(command, m.IssueTicket):
            n = next(self.numbers)
            ticket = m.TicketInfo(
                id=n,
                number=f"A{n:03d}",
                service=command.service,
                issued_at=time.time(),
                token=f"token-{n:03d}",
                people_ahead=0,
                est_wait_s=0,
            )
            self.answer(command, m.IssueResult(ticket=ticket).model_dump())
        elif isinstance(command, m.TicketPrinted) and command.ticket_id not in self.refused:
            self.refused.append(command.ticket_id)
            reply = m.Reply(
                request_id=command.request_id,
                ok=False,
                hub_time=time.time(),
                error=m.ErrorInfo(code=self.code, message="not now"),
            )
            self.bus.publish(self.bus.topics.reply(command.device), reply)
        elif isinstance(command, m.TicketPrinted):
            self.printed.append(command.ticket_id)
            self.answer(command, {"ticket_id": command.ticket_id, "number": None, "status": "ok"})


@pytest.mark.parametrize("code", sorted(m.TRY_AGAIN_CODES))
def test_a_report_refused_for_now_is_kept_and_sent_again(site, make_kiosk, pins, code) -> None:
    """Issue 23 item 7: a refusal after which the same report may succeed is not counted as
    delivered (the kiosk counted every refusal as delivered: printed tickets stayed unprinted
    in the hub, and were called, or held, as tickets nobody had)."""
    peer = BusyHub(site, code)
    try:
        app = make_kiosk(printer=dummy_printer(site, "kiosk-3", Dummy(profile="default")))
        press(pins, KTP)
        assert app.wait_idle(10) and app.notices[-1].number == "A001"
        assert peer.refused == [1]  # refused once, kept, and sent again (same request id)
        assert wait_until(lambda: peer.printed == [1] and not app.pending_reports, timeout=10)
    finally:
        peer.stop()
