"""Scenario 3 of issue 11: the broker is restarted 20 times under steady load.

Invariant: while kiosks issue tickets and caller boxes call them, Mosquitto is stopped and
started again 20 times (about a second down each time). Every device reconnects each time
(the p99 of its delay after the broker is back is reported). Each screen (the lobby TV and
the caller boxes' displays) holds, within 1 s of reconnecting, at least the state the hub
had published when it reconnected; the TV is made to return the moment the broker does,
before the hub, whose republished state is then what it waits for. No call is announced
twice and every call the hub's database records is announced once; every ticket a kiosk
took is either printed whole (exactly once, marked printed in the database) or voided.
Checked from the hub's SQLite file, the TV's announcer record and drawn tiles, the boxes'
displays and the printers' bytes.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from escpos.printer import Dummy

from bench.figures import figure
from hub.service import HubService
from kiosk.printer import TicketPrinter
from protocol.brokers import Mosquitto
from protocol.mqtt import Bus
from protocol.site import KioskDevice, Site
from tests.chaos.device_rigs import (
    CallerRig,
    DisplayRig,
    KioskRig,
    Timeline,
    caller_rig,
    display_rig,
    expected_tiles,
    kiosk_rig,
    percentile,
    stored_calls,
    stored_tickets,
)
from tests.conftest import make_site
from tests.kiosk.escpos_bytes import parse
from tests.timing import wait_until

RESTARTS = 20
DOWN_S = 1.0
STEADY_S = 1.5  # load runs on between restarts (after every device is back)
RESYNC_LIMIT_S = 1.0
COUNTERS = (1, 2, 3, 4)
KIOSK_SERVICES = {"kiosk-3": ("ktp", "kk"), "kiosk-4": ("nib", "paspor")}
KIOSK_EVERY_S = 0.25  # one press, alternating kiosks: about 4 presses a second
CALLER_EVERY_S = 1.5  # one NEXT, boxes in turn: each counter calls every 6 s
MAX_LOAD_PRESSES = 2000


@dataclass
class Resync:
    """One screen's resyncs: at each reconnect, the seq per topic the hub had published by
    then; how long until the screen held at least that."""

    name: str
    hub: HubService
    topics: tuple[str, ...]
    held: Callable[[], dict[str, int]]
    waiting: list[tuple[float, dict[str, int]]] = field(default_factory=list)
    took: list[float] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def watch(self, bus: Bus) -> None:
        """Snapshot the hub's published state at every connect of `bus` (paho's thread)."""

        def on_change(connected: bool) -> None:
            if connected:
                published = dict(self.hub.retained)
                want = {t: published[t].seq for t in self.topics if t in published}  # type: ignore[attr-defined]
                with self.lock:
                    self.waiting.append((time.monotonic(), want))

        bus.on_connection_change(on_change)

    def check(self) -> None:
        """Record the resyncs the screen has completed by now."""
        held = self.held()
        now = time.monotonic()
        with self.lock:
            left = []
            for at, want in self.waiting:
                if all(held.get(t, -1) >= seq for t, seq in want.items()):
                    self.took.append(now - at)
                else:
                    left.append((at, want))
            self.waiting = left


def display_held(screen: DisplayRig) -> Callable[[], dict[str, int]]:
    """The seq of each counter and service state the TV's model holds."""
    topics = screen.app.bus.topics
    model = screen.app.model

    def held() -> dict[str, int]:
        got = {topics.counter_state(n): s.seq for n, s in list(model.counters.items())}
        got.update({topics.service_state(c): s.seq for c, s in list(model.services.items())})
        return got

    return held


def box_held(rig: CallerRig) -> Callable[[], dict[str, int]]:
    """The seq of the counter state a caller box's display shows."""
    topic = rig.bus.topics.counter_state(rig.counter)
    return lambda: {} if rig.box.state is None else {topic: rig.box.state.seq}


def dummy_printer(site: Site, device: str) -> TicketPrinter:
    """The kiosk's printer as an escpos Dummy with its profile and paper (bytes kept)."""
    spec = site.devices[device]
    assert isinstance(spec, KioskDevice) and spec.printer is not None
    network = spec.printer.model_copy(update={"connection": "dummy"})
    return TicketPrinter(Dummy(profile=network.profile), network)


def load(stop: threading.Event, every_s: float, press: Callable[[int], None]) -> None:
    """Call `press(i)` every `every_s` until stopped (bounded by MAX_LOAD_PRESSES)."""
    for i in range(MAX_LOAD_PRESSES):
        if stop.wait(every_s):
            return
        press(i)


@pytest.mark.chaos
@pytest.mark.slow
def test_twenty_broker_restarts_under_load_lose_nothing_and_repeat_nothing(
    own_broker: Mosquitto, tmp_path: Path
) -> None:
    site = make_site(own_broker.port, always_open=True, database=tmp_path / "hub.sqlite")
    hub = HubService(site, first_start=True).start()
    rng = random.Random(3)
    kiosks: list[KioskRig] = []
    callers: list[CallerRig] = []
    screen: DisplayRig | None = None
    stop = threading.Event()
    threads: list[threading.Thread] = []
    try:
        kiosks = [kiosk_rig(site, k, dummy_printer(site, k)) for k in KIOSK_SERVICES]
        callers = [caller_rig(site, f"caller-{n:02d}", f"Petugas {n}") for n in COUNTERS]
        for rig in callers:
            assert wait_until(lambda rig=rig: rig.box.state is not None, 10)
            rig.press("open_close")
        # The TV backs off briefly: back the moment the broker is, before the hub (the worst
        # case for the hub, whose republished state is what a screen may be waiting for).
        fast = Bus.for_device(site, "tv-lobby-1", min_delay=0.02, max_delay=0.1)
        screen = display_rig(site, bus=fast)
        tv = screen
        tv.app.run(until=lambda: len(tv.app.model.services) == len(site.services), timeout=10)
        hub_line = Timeline(hub.bus)
        timelines = [hub_line, tv.timeline, *(k.timeline for k in kiosks)]
        timelines += [c.timeline for c in callers]
        topics = hub.bus.topics
        tv_topics = tuple(topics.counter_state(n) for n in site.counters)
        tv_topics += tuple(topics.service_state(c) for c in site.services)
        resyncs = [Resync("lobby TV", hub, tv_topics, display_held(tv))]
        resyncs += [
            Resync(c.bus.device, hub, (topics.counter_state(c.counter),), box_held(c))
            for c in callers
        ]
        resyncs[0].watch(tv.app.bus)
        for resync, rig in zip(resyncs[1:], callers, strict=True):
            resync.watch(rig.bus)

        def kiosk_press(i: int) -> None:
            rig = kiosks[i % len(kiosks)]
            rig.press(rng.choice(KIOSK_SERVICES[rig.app.device_id]))

        def caller_press(i: int) -> None:
            callers[i % len(callers)].press("next", wait_s=None)

        threads = [
            threading.Thread(target=load, args=(stop, KIOSK_EVERY_S, kiosk_press), daemon=True),
            threading.Thread(target=load, args=(stop, CALLER_EVERY_S, caller_press), daemon=True),
        ]
        for thread in threads:
            thread.start()

        downs: list[float] = []
        ups: list[float] = []
        reconnects: list[float] = []
        restarter = threading.Thread(
            target=_restart_loop, args=(own_broker, downs, ups, timelines, reconnects, stop)
        )
        restarter.start()
        # The TV's loop runs on this thread (pygame's); the resyncs are checked as it goes.
        deadline = time.monotonic() + RESTARTS * 20 + 30
        while restarter.is_alive() and time.monotonic() < deadline:
            tv.app.step(0.01)
            for resync in resyncs:
                resync.check()
        restarter.join(1)
        assert not restarter.is_alive(), "the restarts did not finish in time"
        assert len(ups) == RESTARTS, f"only {len(ups)} restarts done"
        tv.app.run(timeout=STEADY_S)
        stop.set()
        for thread in threads:
            thread.join(10)

        # Quiet now: let every press land, every kept report reach the hub, every screen settle.
        for rig in callers:
            assert rig.box.wait_idle(10)
        for rig in kiosks:
            assert rig.app.wait_idle(15)
            assert wait_until(lambda rig=rig: not rig.app.pending_reports, 20), "reports kept"
        tv.app.run(timeout=2.0)
        for resync in resyncs:
            resync.check()

        # Devices came back after every restart.
        assert len(reconnects) == RESTARTS * len(timelines)
        # Screens held what the hub had published within 1 s of reconnecting.
        for resync in resyncs:
            assert not resync.waiting, f"{resync.name} never caught up after a reconnect"
            assert len(resync.took) >= RESTARTS, f"{resync.name}: {len(resync.took)} resyncs"
        resync_took = [t for r in resyncs for t in r.took]
        late = [(r.name, round(t, 2)) for r in resyncs for t in r.took if t > RESYNC_LIMIT_S]
        assert late == [], f"screens behind the hub after reconnecting: {late}"

        # Calls: each announced once by the TV, none lost; boxes show what the hub holds.
        calls = stored_calls(hub.database)
        keys = [(c.counter, c.call_seq) for c in calls]
        spoken = Counter(tv.spoken_keys)
        twice = [k for k, n in spoken.items() if n > 1]
        lost = [k for k in keys if k not in spoken]
        assert twice == [], f"announced twice: {twice}"
        assert lost == [], f"calls never announced: {lost}"
        assert set(spoken) <= set(keys), "announced a call the hub never made"
        want = expected_tiles(hub.database, tuple(sorted(tv.tile_texts())))
        assert tv.run_until_tiles(want, 5), "the TV does not show what the hub holds"
        tv.app.renderer.save_png(tmp_path / "lobby-after-restarts.png")  # type: ignore[attr-defined]
        for rig in callers:
            name = site.counter_name(rig.counter)
            current = want[rig.counter]
            headline = f"{current} -> {name}" if current != "—" else f"{name} - Buka"
            assert wait_until(lambda rig=rig, h=headline: rig.headline() == h, 10), rig.lcd.text
        outcomes = Counter((o.status, o.code) for r in callers for o in r.box.recent)
        answered = {
            (r.counter, o.result["counter"]["call_seq"])
            for r in callers
            for o in r.box.recent
            if o.status == "ok" and o.kind == "next" and o.result.get("call")
        }
        assert answered <= set(keys), "a box was told of a call the database does not hold"

        # Tickets: printed whole exactly once and marked printed, or voided. Nothing else.
        rows = [r for r in stored_tickets(hub.database) if r["source"] in KIOSK_SERVICES]
        on_paper = Counter()
        for rig in kiosks:
            printed = parse(rig.printer.device.output)
            on_paper.update(line.text for line in printed.lines if line.width > 2)
            assert len(printed.cuts) == len(rig.app.printed)
        phantoms = [r["label"] for r in rows if r["status"] != "voided" and not r["printed"]]
        assert phantoms == [], f"tickets neither printed nor voided: {phantoms}"
        assert sorted(on_paper) == sorted(r["label"] for r in rows if r["printed"])
        assert all(n == 1 for n in on_paper.values()), "a number printed twice"

        figure("broker restarts under load", len(ups), "restarts")
        figure("broker down per restart", DOWN_S, "s")
        figure("device reconnect after broker back, p50", percentile(reconnects, 50), "s")
        figure("device reconnect after broker back, p99", percentile(reconnects, 99), "s")
        figure("device reconnect after broker back, max", max(reconnects), "s")
        hub_back = reconnects[:: len(timelines)]  # the hub's timeline comes first
        figure("hub reconnect after broker back, max", max(hub_back), "s")
        figure("screen resync after reconnect, p99", percentile(resync_took, 99), "s", "<= 1")
        figure("screen resync after reconnect, max", max(resync_took), "s", "<= 1")
        figure("calls made during the restarts", len(keys), "calls")
        figure("calls announced twice", len(twice), "calls", "0")
        figure("calls lost (never announced)", len(lost), "calls", "0")
        figure("kiosk presses during the restarts", sum(k.presses for k in kiosks), "presses")
        figure("tickets printed", sum(on_paper.values()), "tickets")
        figure("tickets voided", sum(r["status"] == "voided" for r in rows), "tickets")
        figure("tickets neither printed nor voided", len(phantoms), "tickets", "0")
        figure("caller presses answered ok", outcomes[("ok", "")], "presses")
        figure("caller presses refused offline", outcomes[("fault", "offline")], "presses")
    finally:
        stop.set()
        for thread in threads:
            thread.join(10)
        for rig in kiosks:
            rig.close()
        for rig in callers:
            rig.close()
        if screen is not None:
            screen.close()
        hub.stop()


def _restart_loop(
    broker: Mosquitto,
    downs: list[float],
    ups: list[float],
    timelines: list[Timeline],
    reconnects: list[float],
    stop: threading.Event,
) -> None:
    """Stop and start the broker RESTARTS times; after each start, wait until every device
    is back (bounded), record how long each took, let the load run STEADY_S."""
    for _ in range(RESTARTS):
        if stop.is_set():
            return
        downs.append(time.monotonic())
        broker.stop()
        time.sleep(DOWN_S)
        broker.start()
        up = time.monotonic()
        ups.append(up)
        down = downs[-1]
        back = wait_until(lambda down=down: all(t.connects(down) for t in timelines), 20)
        if not back:
            return
        reconnects.extend(max(0.0, t.connects(down)[0] - up) for t in timelines)
        time.sleep(STEADY_S)
