"""A misbehaving WAN cannot stop the site: the bridge runs in the uplink broker, not in the
site broker the kiosks and callers use, and a hung uplink broker is restarted by its watchdog.

To see the arrangement before the uplink fail the chaos test (the bridge in the site broker,
which Mosquitto 2.0.11 lets a resetting WAN hang), run it with MPP_TEST_BRIDGE_IN=site.
"""

from __future__ import annotations

import os
import signal
import statistics
import threading
import time
from collections.abc import Iterator

import pytest

from protocol import messages as m
from protocol.errors import BrokerUnavailable, CommandRejected, RequestTimeout
from protocol.mqtt import Bus
from tests.region.rig import RegionRig, SiteTier, start_rig
from tests.region.sites import assert_same_history, busy_period, hub_head, region_acked
from tests.timing import wait_until

SITE = "bjb"
KIOSK, CALLER, COUNTER = "kiosk-1", "caller-01", 1


@pytest.fixture
def rig(region_dsn: str) -> Iterator[RegionRig]:
    made = start_rig(region_dsn, [SITE])
    yield made
    made.close()


def device_bus(tier: SiteTier, device: str) -> Bus:
    """A kiosk's or caller box's bus on the site broker, logged in with its own account."""
    bus = Bus.for_device(tier.site, device, username=device, password=tier.broker.passwords[device])
    bus.start(wait=10)
    return bus


class Counter:
    """Issues a ticket at the kiosk and calls at the counter, as citizens and officers do,
    timing each request's answer over the site broker."""

    def __init__(self, tier: SiteTier) -> None:
        self.kiosk, self.caller = device_bus(tier, KIOSK), device_bus(tier, CALLER)
        self.kiosk.request(m.IssueTicket(device=KIOSK, service="ktp"), timeout=5)  # warm up

    def visit(self) -> tuple[float | None, float | None]:
        """(issue, call) answer times in seconds; None when the hub's answer never came."""
        return (
            self._timed(self.kiosk, m.IssueTicket(device=KIOSK, service="ktp")),
            self._timed(self.caller, m.CallNext(device=CALLER, counter=COUNTER)),
        )

    @staticmethod
    def _timed(bus: Bus, command: m.Command) -> float | None:
        started = time.monotonic()
        try:
            bus.request(command, timeout=2.0)
        except CommandRejected:  # an answer too (a quota reached, nobody waiting)
            pass
        except (BrokerUnavailable, RequestTimeout):  # no answer: the site has stopped
            return None
        return time.monotonic() - started

    def close(self) -> None:
        self.kiosk.stop()
        self.caller.stop()


def visits(counter: Counter, seconds: float, every_s: float = 0.2) -> list[float | None]:
    """Issue-and-call visits for `seconds`; every request's answer time (None: none came)."""
    times: list[float | None] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        times += counter.visit()
        time.sleep(every_s)
    return times


def caught_up(rig: RegionRig, timeout: float = 90) -> bool:
    database = rig.sites[SITE].database
    return wait_until(lambda: region_acked(rig.dsn, SITE) == hub_head(database), timeout, 0.1)


@pytest.mark.slow
def test_a_resetting_wan_never_stops_the_site_and_loses_nothing(rig: RegionRig) -> None:
    """The WAN accepts the bridge's connections and resets them at once (a middlebox, a
    restarting server) for 25 s of a busy period: the kiosk and the caller box are answered
    all along within their usual time, and afterwards every event is in PostgreSQL once.
    About 45 s here (a third of it the outage)."""
    in_site = os.environ.get("MPP_TEST_BRIDGE_IN") == "site"
    tier = rig.add_site(SITE, bridge_in_site_broker=in_site, region={"window_batches": 4})
    rig.region()
    hub = tier.hub().start()
    counter = Counter(tier)
    stop = threading.Event()

    def traffic() -> None:  # other kiosks and counters keep the outbox busy meanwhile
        seed = 10
        while not stop.is_set():
            busy_period(hub, 30, seed=seed)
            seed += 1

    busy = threading.Thread(target=traffic, name="busy-period")
    try:
        busy.start()
        normal = visits(counter, 4)
        assert caught_up(rig, 60), "the region never caught up before the outage"
        tier.wan.cut()  # from now on every bridge connection is accepted and reset
        during = visits(counter, 25)
        tier.wan.restore()
        answered = [t for t in during if t is not None]
        assert len(answered) == len(during), (
            f"{len(during) - len(answered)} of {len(during)} requests unanswered during the "
            f"outage; site broker log: {tier.broker.broker.log()[-600:]}"
        )
        stop.set()
        busy.join(60)
        counter.close()  # its devices going offline are events too: before the comparison
        assert caught_up(rig), (hub.outbox.acked, hub.outbox.sent, hub_head(tier.database))
    finally:
        stop.set()
        busy.join(60)
        counter.close()
        hub.stop()
    usual = statistics.median(t for t in normal if t is not None)
    outage = statistics.median(answered)
    restarts = tier.broker.uplink.restarts if tier.broker.uplink else "no uplink"
    print(
        f"answer times: median {usual * 1000:.0f} ms before, {outage * 1000:.0f} ms during the "
        f"outage (max {max(answered) * 1000:.0f} ms); uplink broker restarts: {restarts}"
    )
    assert outage <= 3 * usual + 0.1, (usual, outage)
    assert assert_same_history(tier.database, rig.dsn, SITE) == hub_head(tier.database)


def test_a_hung_uplink_broker_is_restarted_and_uploads_resume(rig: RegionRig) -> None:
    """The uplink broker stops answering (SIGSTOP: as hung as Mosquitto's spin, minus the
    CPU): its watchdog kills and restarts it, the site never notices, and the outbox sends
    what the stopped broker held again from the region's acknowledgement. About 10 s."""
    tier = rig.add_site(SITE)
    rig.region()
    hub = tier.hub().start()
    uplink = tier.broker.uplink
    assert uplink is not None and uplink.process is not None
    try:
        busy_period(hub, 10, seed=1)
        assert caught_up(rig, 30)
        hung = uplink.process
        hung.send_signal(signal.SIGSTOP)
        counter = Counter(tier)  # the site broker answers as ever
        try:
            busy_period(hub, 20, seed=2)  # held by the stopped uplink broker, or never taken
            assert all(t is not None for t in visits(counter, 1))
        finally:
            counter.close()
        assert wait_until(lambda: uplink.hangs == 1 and uplink.process is not hung, 20, 0.05)
        assert hung.poll() == -signal.SIGKILL
        assert caught_up(rig, 60), (hub.outbox.acked, hub.outbox.sent)
    finally:
        hub.stop()
    assert assert_same_history(tier.database, rig.dsn, SITE) == hub_head(tier.database)
