"""A display against a real Mosquitto and the real hub: NEXT on a caller box -> the number on
the screen PNG and exactly one spoken announcement."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from display.announcer import RecordingAnnouncer, SpeechAnnouncer, wav_seconds
from display.app import DisplayApp
from display.renderer import INK_ON_HIGHLIGHT, YELLOW, MixerPlayer
from hub.service import HubService
from protocol import messages as m
from protocol.brokers import Mosquitto
from protocol.mqtt import Bus
from protocol.site import Site
from tests.conftest import example_text, make_site
from tests.display.conftest import Factory, png_pixels
from tests.display.test_renderer import ink_box


def started_bus(site: Site, device: str, made: list[Bus]) -> Bus:
    bus = Bus.for_device(site, device)
    made.append(bus)
    assert bus.start(wait=10)
    return bus


def prepare(kiosk: Bus, caller: Bus, counter: int, service: str) -> str:
    """Issue a ticket for `service` and open `counter`; returns the ticket number."""
    issued = kiosk.request(m.IssueTicket(device=kiosk.device, service=service), timeout=5)
    caller.request(m.OpenCounter(device=caller.device, counter=counter, officer="Sari"), timeout=5)
    return issued["ticket"]["number"]


def synced(app: DisplayApp) -> Callable[[], bool]:
    """True once the retained state of every service has reached the screen."""
    return lambda: len(app.model.services) == len(app.site.services)


def test_display_modules_import_without_pygame_or_pyttsx3() -> None:
    code = (
        "import sys, display.app, display.cli, display.renderer, display.announcer, "
        "display.scene, display.state, display.layout, display.speech_text, display.video, "
        "display.featured;"
        "print(sorted(m for m in ('pygame', 'pyttsx3') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_next_shows_the_number_highlighted_and_speaks_it_once(
    hub: HubService, bus_for, display_app: Factory, tmp_path: Path
) -> None:
    kiosk, caller = bus_for("kiosk-3"), bus_for("caller-03")
    ticket = prepare(kiosk, caller, 3, "ktp")
    assert ticket == "A001"
    announcer = SpeechAnnouncer(MixerPlayer(), tmp_path / "speech")
    app = display_app(hub.site, announcer=announcer)
    app.run(until=synced(app), timeout=10)
    assert app.model.newest(time.time()) is None

    caller.request(m.CallNext(device="caller-03", counter=3), timeout=5)
    renderer = app.renderer
    app.run(until=lambda: (renderer.shown("call") or None) is not None
            and renderer.shown("call").background == "highlight", timeout=10)  # fmt: skip
    png = renderer.save_png(tmp_path / "lobby-call.png")
    image = png_pixels(png)
    call = renderer.layout["call"]
    ticket_box = call.part("ticket").box
    assert image.getpixel((call.box.x + call.box.w // 2, call.box.y + 3)) == YELLOW
    ink = ink_box(image, ticket_box, INK_ON_HIGHLIGHT)
    assert ink is not None and ink.h > ticket_box.h / 3  # the number, where the layout says
    assert [t.text for t in renderer.drawn["call"]][:3] == ["NOMOR ANTRIAN", "A001", "→ LOKET 3"]
    tile = renderer.layout["counter-2"]  # counter 3's tile
    assert renderer.drawn["counter-2"][1].text == "A001"
    assert image.getpixel((tile.box.x + tile.box.w // 2, tile.box.y + 2)) == YELLOW

    app.run(until=lambda: len(announcer.spoken) == 1, timeout=20)
    app.run(timeout=1.0)  # anything else arriving would be spoken by now
    assert len(announcer.spoken) == 1
    spoken = announcer.spoken[0]
    assert spoken.error is None and spoken.key == (3, 1)
    assert spoken.volume == hub.site.zones["lobby"].volume == 0.9
    assert spoken.text == "Nomor antrian a satu, silakan menuju loket tiga"
    assert wav_seconds(spoken.wavs[-1]) > 1.0
    assert spoken.started_at - spoken.received_at < 1.0
    assert app.ignored == 0


def test_a_priority_call_through_the_hub_is_marked_on_a_tv_started_after_it(
    hub: HubService, bus_for, display_app: Factory, tmp_path: Path
) -> None:
    kiosk, caller = bus_for("kiosk-3"), bus_for("caller-03")
    prepare(kiosk, caller, 3, "ktp")
    kiosk.request(m.IssueTicket(device="kiosk-3", service="ktp", priority="elderly"), timeout=5)
    called = caller.request(m.CallNext(device="caller-03", counter=3), timeout=5)
    assert called["call"]["ticket"] == "A002"  # the priority ticket first
    lobby = display_app(hub.site)
    canteen = display_app(hub.site, "tv-canteen-1")
    for app in (lobby, canteen):  # the retained counter and site states, after the call
        app.run(until=lambda a=app: a.model.newest(time.time()) is not None, timeout=10)
        app.run(timeout=0.2)
    assert [t.text for t in lobby.renderer.drawn["call"]][:2] == [
        "NOMOR ANTRIAN PRIORITAS",
        "A002",
    ]
    assert lobby.renderer.drawn["counter-2"][0].text == "Loket 3 · Prioritas"
    assert [t.text for t in canteen.renderer.drawn["call-0"]] == ["A002", "3", "PRIORITAS"]
    canteen.run(until=lambda: canteen.model.summary is not None, timeout=10)
    recent = canteen.model.summary.recent_calls  # the hub's site summary carries it too
    assert [(c.ticket, c.priority) for c in recent] == [("A002", True)]
    image = png_pixels(canteen.renderer.save_png(tmp_path / "canteen.png"))
    mark = canteen.renderer.layout["call-0"].part("mark").box
    assert ink_box(image, mark, YELLOW) is not None


def test_the_admin_mutes_and_changes_a_zones_voice_without_a_restart(
    hub: HubService, bus_for, display_app: Factory
) -> None:
    kiosk, caller = bus_for("kiosk-3"), bus_for("caller-03")
    prepare(kiosk, caller, 3, "ktp")
    kiosk.request(m.IssueTicket(device="kiosk-3", service="ktp"), timeout=5)
    announcer = RecordingAnnouncer()
    app = display_app(hub.site, announcer=announcer)
    app.run(until=lambda: synced(app)() and app.sound.zone == "lobby", timeout=10)

    def sound(speech: bool, volume: float, reading: str = "words") -> None:
        command = m.SetZoneSound(
            device="hub", zone="lobby", speech=speech, volume=volume, number_reading=reading, by="K"
        )
        assert hub.submit(command).ok
        app.run(until=lambda: (app.sound.speech, app.sound.volume) == (speech, volume), timeout=5)

    sound(False, 0.9)
    assert not app.speaks and app.bus.health.audio == "muted"
    caller.request(m.CallNext(device="caller-03", counter=3), timeout=5)
    app.run(until=lambda: app.model.newest(time.time()) is not None, timeout=5)
    app.run(timeout=0.5)
    assert announcer.spoken == []  # shown, not spoken
    sound(True, 0.4, "digits")
    assert app.speaks and app.bus.health.audio == "ok"
    caller.request(m.CallNext(device="caller-03", counter=3), timeout=5)
    app.run(until=lambda: len(announcer.spoken) == 1, timeout=5)
    spoken = announcer.spoken[0]
    assert (
        spoken.volume == 0.4
        and spoken.text == "Nomor antrian a nol nol dua, silakan menuju loket tiga"
    )
    # A sound setting for another zone, or one on the wrong topic, changes nothing here.
    topics = caller.topics
    other = m.ZoneSound(seq=10**6, zone="canteen", speech=False, volume=0.0)
    hub.bus.publish(topics.zone_sound("lobby"), other, retain=False)
    app.run(timeout=0.5)
    assert app.sound.speech and app.ignored == 1


@pytest.mark.slow
def test_two_calls_100_ms_apart_are_spoken_one_after_the_other(
    hub: HubService, bus_for, display_app: Factory, tmp_path: Path
) -> None:
    kiosk = bus_for("kiosk-3")
    caller3, caller4 = bus_for("caller-03"), bus_for("caller-04")
    prepare(kiosk, caller3, 3, "ktp")
    prepare(kiosk, caller4, 4, "kk")
    announcer = SpeechAnnouncer(MixerPlayer(), tmp_path)
    app = display_app(hub.site, "tv-canteen-1", announcer=announcer)
    app.run(until=synced(app), timeout=10)
    caller3.request(m.CallNext(device="caller-03", counter=3), timeout=5)
    time.sleep(0.1)
    caller4.request(m.CallNext(device="caller-04", counter=4), timeout=5)
    app.run(until=lambda: len(announcer.spoken) == 2, timeout=30)
    first, second = announcer.spoken
    assert first.text == "Nomor antrian a satu, silakan menuju loket tiga"
    assert second.text == "Nomor antrian be satu, silakan menuju loket empat"
    assert second.started_at >= first.ended_at
    assert [t.text for t in app.renderer.drawn["call-0"]] == ["B001", "4"]
    assert [t.text for t in app.renderer.drawn["call-1"]] == ["A001", "3"]


@pytest.mark.slow
def test_reconnect_replays_retained_state_without_speaking_and_marks_offline(
    own_broker: Mosquitto, display_app: Factory, tmp_path: Path
) -> None:
    site = make_site(own_broker.port, always_open=True, database=tmp_path / "hub.sqlite")
    hub = HubService(site, first_start=True).start()
    buses: list[Bus] = []
    try:
        kiosk, caller = started_bus(site, "kiosk-3", buses), started_bus(site, "caller-03", buses)
        prepare(kiosk, caller, 3, "ktp")
        announcer = RecordingAnnouncer()
        app = display_app(site, announcer=announcer, offline_after_s=2.0)
        app.run(until=synced(app), timeout=10)
        caller.request(m.CallNext(device="caller-03", counter=3), timeout=5)
        app.run(until=lambda: len(announcer.spoken) == 1, timeout=10)

        outage = threading.Thread(target=own_broker.restart, kwargs={"down_for": 3.0})
        outage.start()
        app.run(until=lambda: app.offline, timeout=10)
        assert app.offline
        assert [t.text for t in app.renderer.drawn["status"]] == ["● Tidak terhubung"]
        assert app.renderer.drawn["call"][1].text == "A001"  # the last state stays on screen
        outage.join(10)
        before = app.received
        every_state = len(site.counters) + len(site.services) + 1
        app.run(until=lambda: app.connected and app.received >= before + every_state, timeout=20)
        app.run(timeout=1.0)
        assert app.connected and not app.offline
        assert app.renderer.drawn["status"] == []
        # Every retained state came again (from the broker, and the hub republished): the
        # called counter's state, its service's and the site's are exact replays ...
        assert app.received >= before + every_state and app.replayed >= 3
        assert len(announcer.spoken) == 1  # ... and nothing was spoken twice
    finally:
        for bus in buses:
            bus.stop()
        hub.stop()


def test_after_a_boot_an_old_call_is_shown_but_not_spoken(
    hub: HubService, bus_for, display_app: Factory
) -> None:
    kiosk, caller = bus_for("kiosk-3"), bus_for("caller-03")
    prepare(kiosk, caller, 3, "ktp")
    caller.request(m.CallNext(device="caller-03", counter=3), timeout=5)
    time.sleep(1.2)
    announcer = RecordingAnnouncer()
    app = display_app(hub.site, announcer=announcer, max_age_s=1.0)
    app.run(until=lambda: app.model.shown_ticket(3, time.time()) == "A001", timeout=10)
    app.run(timeout=0.5)
    assert app.renderer.drawn["call"][1].text == "A001"
    assert announcer.spoken == [] and app.highlights.lit(time.monotonic()) == {}


def test_a_muted_zone_shows_the_call_and_says_nothing(
    broker: Mosquitto, display_app: Factory, tmp_path: Path
) -> None:
    text = example_text().replace(
        'name = { id = "Ruang Tunggu", en = "Waiting hall" }\nlang = "id"\nspeech = true',
        'name = { id = "Ruang Tunggu", en = "Waiting hall" }\nlang = "id"\nspeech = false',
    )
    site = make_site(broker.port, text=text, always_open=True, database=tmp_path / "hub.sqlite")
    assert site.zones["lobby"].speech is False
    hub = HubService(site, first_start=True).start()
    buses: list[Bus] = []
    try:
        kiosk, caller = started_bus(site, "kiosk-3", buses), started_bus(site, "caller-03", buses)
        prepare(kiosk, caller, 3, "ktp")
        announcer = RecordingAnnouncer()
        app = display_app(site, announcer=announcer)
        app.run(until=synced(app), timeout=10)
        caller.request(m.CallNext(device="caller-03", counter=3), timeout=5)
        app.run(until=lambda: bool(app.highlights.lit(time.monotonic())), timeout=10)
        assert app.renderer.drawn["call"][1].text == "A001"
        app.run(timeout=1.0)
        assert announcer.spoken == []
        assert app.bus.health.audio == "muted"
    finally:
        for bus in buses:
            bus.stop()
        hub.stop()


def test_malformed_state_payloads_are_ignored_with_a_log(
    site: Site, display_app: Factory, caplog: pytest.LogCaptureFixture
) -> None:
    buses: list[Bus] = []
    publisher = started_bus(site, "hub", buses)
    topics = publisher.topics
    announcer = RecordingAnnouncer()
    app = display_app(site, announcer=announcer)
    app.run(until=lambda: app.connected, timeout=10)
    garbage = [
        (topics.counter_state(3), b"\xff\xfe not json"),
        (topics.counter_state(3), b"[]"),
        (topics.counter_state(3), json.dumps({"v": 9, "seq": 1}).encode()),
        (topics.counter_state(3), json.dumps({"v": 1, "seq": 1, "counter": 3}).encode()),
        (topics.counter_state(4), m.encode(m.CounterState(seq=1, counter=3, open=True,
                                                          call_seq=1, waiting=0))),
        (topics.counter_state(77), m.encode(m.CounterState(seq=1, counter=77, open=True,
                                                           call_seq=1, waiting=0))),
        (topics.service_state("ktp"), b"{}"),
        (topics.site_state(), b"null"),
    ]  # fmt: skip
    try:
        with caplog.at_level(logging.WARNING, logger="mpp.display"):
            for topic, payload in garbage:
                publisher.publish(topic, payload)
            assert publisher.flush(5)
            app.run(until=lambda: app.ignored == len(garbage), timeout=10)
        warnings = [r for r in caplog.records if r.getMessage() == "state message ignored"]
        assert len(warnings) == len(garbage)
        assert {r.error.split(":")[0] for r in warnings} == {
            "bad_json", "unsupported_version", "invalid", "unknown_counter"
        }  # fmt: skip
        assert all(r.device == "tv-lobby-1" for r in warnings)
        assert app.model.counters == {} and announcer.spoken == []
        # The screen lives on: a good state after the garbage is shown and spoken.
        good = m.CounterState(seq=2, counter=3, open=True, call_seq=1, ticket="A001",
                              service="ktp", called_at=time.time(), waiting=0)  # fmt: skip
        publisher.publish(topics.counter_state(3), good, retain=True)
        app.run(until=lambda: len(announcer.spoken) == 1, timeout=10)
        assert announcer.spoken[0].text.startswith("Nomor antrian a satu")
        assert app.renderer.drawn["call"][1].text == "A001"
    finally:
        for bus in buses:
            bus.stop()
