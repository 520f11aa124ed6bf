"""The MQTT bus against a real Mosquitto: round trips, requests, reconnects, presence."""

from __future__ import annotations

import contextlib
import os
import queue
import resource
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest

from protocol import messages as m
from protocol.brokers import Mosquitto
from protocol.errors import BrokerUnavailable, CommandRejected, RequestTimeout
from protocol.mqtt import Bus, Incoming
from tests.timing import wait_until

SITE = "bus-test"


def make_bus(broker: Mosquitto, device: str, role: str = "kiosk", **kw) -> Bus:
    return Bus(SITE + kw.pop("suffix", ""), device, role, port=broker.port, **kw)


@pytest.fixture
def buses() -> Iterator[list[Bus]]:
    made: list[Bus] = []
    yield made
    for bus in made:
        bus.stop()


class EchoHub:
    """A minimal protocol peer on the hub's side: answers every command (test double of the
    hub process, built from the real Bus and messages, not a mock of them)."""

    def __init__(self, bus: Bus, drop_first: int = 0, refuse: bool = False) -> None:
        self.bus = bus
        self.seen: list[str] = []
        self.drop_first = drop_first
        self.refuse = refuse
        bus.subscribe(bus.topics.all_of("command"), self.on_command)

    def on_command(self, incoming: Incoming) -> None:
        data = m.decode_json(incoming.payload)
        self.seen.append(data["request_id"])
        if len(self.seen) <= self.drop_first:
            return
        if self.refuse:
            reply = m.Reply(
                request_id=data["request_id"],
                ok=False,
                hub_time=time.time(),
                error=m.ErrorInfo(
                    code="quota_reached",
                    message="quota used up",
                    text=m.Text(id="Kuota habis", en="Quota used up"),
                ),
            )
        else:
            reply = m.Reply(
                request_id=data["request_id"],
                ok=True,
                hub_time=time.time() + 100,
                result={"echo": data["device"], "corr": (incoming.correlation or b"").decode()},
            )
        self.bus.publish(incoming.response_topic or data["reply_to"], reply)


def test_retained_state_round_trip(broker: Mosquitto, buses: list[Bus]) -> None:
    hub = make_bus(broker, "hub", "hub", suffix="-rt")
    buses.append(hub)
    assert hub.start(wait=5)
    state = m.CounterState(seq=5, counter=3, open=True, call_seq=2, ticket="A012", waiting=4)
    hub.publish(hub.topics.counter_state(3), state, retain=True)
    assert hub.flush(5)
    got: queue.Queue[Incoming] = queue.Queue()
    screen = make_bus(broker, "tv-lobby-1", "display", suffix="-rt")
    buses.append(screen)
    screen.subscribe(screen.topics.all_of("counter_state"), got.put)
    assert screen.start(wait=5)
    incoming = got.get(timeout=5)
    assert incoming.retained
    assert m.decode(m.CounterState, incoming.payload) == state


@pytest.mark.parametrize("version", [5, 3])
def test_request_reply(broker: Mosquitto, buses: list[Bus], version: int) -> None:
    hub = make_bus(broker, "hub", "hub", mqtt_version=version, suffix=f"-rr{version}")
    kiosk = make_bus(broker, "kiosk-1", mqtt_version=version, suffix=f"-rr{version}")
    buses += [hub, kiosk]
    EchoHub(hub)
    assert hub.start(wait=5) and kiosk.start(wait=5)
    command = m.IssueTicket(device="kiosk-1", service="ktp")
    result = kiosk.request(command, timeout=3)
    assert result["echo"] == "kiosk-1"
    # MQTT 5 carries the request id as correlation data too; 3.1.1 only in the payload.
    assert result["corr"] == (command.request_id if version == 5 else "")
    assert 99 < kiosk.clock_offset < 101  # learnt from the reply's hub_time


def test_retry_reuses_the_request_id(broker: Mosquitto, buses: list[Bus]) -> None:
    hub = make_bus(broker, "hub", "hub", suffix="-retry")
    kiosk = make_bus(broker, "kiosk-1", suffix="-retry")
    buses += [hub, kiosk]
    echo = EchoHub(hub, drop_first=1)
    assert hub.start(wait=5) and kiosk.start(wait=5)
    kiosk.request(m.IssueTicket(device="kiosk-1", service="ktp"), timeout=0.5, retries=2)
    assert len(echo.seen) == 2 and echo.seen[0] == echo.seen[1]


def test_refusal_raises_with_citizen_text(broker: Mosquitto, buses: list[Bus]) -> None:
    hub = make_bus(broker, "hub", "hub", suffix="-refuse")
    kiosk = make_bus(broker, "kiosk-1", suffix="-refuse")
    buses += [hub, kiosk]
    EchoHub(hub, refuse=True)
    assert hub.start(wait=5) and kiosk.start(wait=5)
    with pytest.raises(CommandRejected) as caught:
        kiosk.request(m.IssueTicket(device="kiosk-1", service="ktp"), timeout=3)
    assert caught.value.code == "quota_reached"
    assert caught.value.text == {"id": "Kuota habis", "en": "Quota used up"}


def test_timeout_without_hub(broker: Mosquitto, buses: list[Bus]) -> None:
    kiosk = make_bus(broker, "kiosk-1", suffix="-nohub")
    buses.append(kiosk)
    assert kiosk.start(wait=5)
    started = time.monotonic()
    with pytest.raises(RequestTimeout, match="no reply to issue"):
        kiosk.request(m.IssueTicket(device="kiosk-1", service="ktp"), timeout=0.3, retries=1)
    assert 0.55 < time.monotonic() - started < 2


def test_no_broker_fails_at_once_and_sends_nothing_later(
    own_broker: Mosquitto, buses: list[Bus]
) -> None:
    kiosk = make_bus(own_broker, "kiosk-1", suffix="-down")
    buses.append(kiosk)
    assert kiosk.start(wait=5)
    own_broker.stop()
    wait_until(lambda: not kiosk.connected, 5)
    started = time.monotonic()
    with pytest.raises(BrokerUnavailable):
        kiosk.request(m.IssueTicket(device="kiosk-1", service="ktp"), timeout=3)
    assert time.monotonic() - started < 0.1


def test_a_request_caught_by_a_connection_drop_waits_sends_again_and_is_answered(
    own_broker: Mosquitto, buses: list[Bus]
) -> None:
    # The hub is back before the kiosk (it sits next to the broker), as on a site.
    kiosk = make_bus(own_broker, "kiosk-1", suffix="-drop", min_delay=0.6, max_delay=1.0)
    hub = make_bus(own_broker, "hub", "hub", suffix="-drop", min_delay=0.05, max_delay=0.2)
    buses += [kiosk, hub]
    echo = EchoHub(hub)
    assert kiosk.start(wait=5) and hub.start(wait=5)
    assert own_broker.process is not None
    own_broker.process.send_signal(signal.SIGSTOP)  # the command sits in the broker's socket
    answers: queue.Queue[object] = queue.Queue()

    def ask() -> None:
        try:
            answers.put(kiosk.request(m.IssueTicket(device="kiosk-1", service="ktp"), timeout=4))
        except Exception as exc:
            answers.put(exc)

    threading.Thread(target=ask, daemon=True).start()
    time.sleep(0.3)
    own_broker.stop(kill=True)  # the connection drops under the waiting request
    own_broker.start()
    answer = answers.get(timeout=10)
    assert isinstance(answer, dict) and answer["echo"] == "kiosk-1", answer
    assert len(set(echo.seen)) == 1  # one request id, however many copies arrived


def test_reconnects_and_resubscribes_after_broker_restart(
    own_broker: Mosquitto, buses: list[Bus]
) -> None:
    screen = make_bus(own_broker, "tv-lobby-1", "display", suffix="-re")
    hub = make_bus(own_broker, "hub", "hub", suffix="-re")
    buses += [screen, hub]
    got: queue.Queue[Incoming] = queue.Queue()
    changes: list[bool] = []
    screen.subscribe(screen.topics.site_state(), got.put)

    def faulty(connected: bool) -> None:  # a listener's bug must not stop the reconnecting
        raise RuntimeError("cannot join thread before it is started")

    screen.on_connection_change(faulty)
    screen.on_connection_change(changes.append)
    assert screen.start(wait=5) and hub.start(wait=5)
    own_broker.restart(down_for=1.0)
    back = time.monotonic()
    assert screen.wait_connected(8) and hub.wait_connected(8)
    reconnect_s = time.monotonic() - back
    assert reconnect_s < 4, f"took {reconnect_s:.1f}s to reconnect"
    state = m.SiteState(
        seq=1, day="2026-11-23", now=1.0, config_version="x", issued=0, served=0, waiting=0
    )
    hub.publish(hub.topics.site_state(), state, retain=True)
    assert m.decode(m.SiteState, got.get(timeout=5).payload) == state
    assert changes[:3] == [True, False, True]


def test_presence_online_then_last_will(broker: Mosquitto, buses: list[Bus]) -> None:
    watcher = make_bus(broker, "hub", "hub", suffix="-will")
    buses.append(watcher)
    statuses: queue.Queue[m.DeviceStatus] = queue.Queue()
    watcher.subscribe(
        watcher.topics.all_of("status"),
        lambda i: statuses.put(m.decode(m.DeviceStatus, i.payload)) if i.payload else None,
    )
    assert watcher.start(wait=5)
    assert statuses.get(timeout=5).device == "hub"
    # A device process that dies without saying goodbye: the broker publishes its last will.
    code = (
        "import sys, time; sys.path.insert(0, '.');"
        "from protocol.mqtt import Bus;"
        f"b = Bus('{SITE}-will', 'kiosk-9', 'kiosk', port={broker.port});"
        "b.start(wait=5); b.set_health(printer='paper_low'); b.flush(5); print('up', flush=True); time.sleep(60)"
    )
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    try:
        assert child.stdout.readline().strip() == b"up"
        seen = [statuses.get(timeout=5), statuses.get(timeout=5)]
        assert all(s.device == "kiosk-9" and s.online for s in seen)
        assert seen[-1].health.printer == "paper_low"
        child.kill()
        dead = statuses.get(timeout=5)
        assert dead.device == "kiosk-9" and dead.online is False and dead.role == "kiosk"
    finally:
        child.kill()
        child.wait()
        child.stdout.close()


def test_clean_stop_says_offline(broker: Mosquitto, buses: list[Bus]) -> None:
    watcher = make_bus(broker, "hub", "hub", suffix="-stop")
    buses.append(watcher)
    statuses: queue.Queue[m.DeviceStatus] = queue.Queue()
    watcher.subscribe(
        watcher.topics.status("caller-01"),
        lambda i: statuses.put(m.decode(m.DeviceStatus, i.payload)),
    )
    assert watcher.start(wait=5)
    caller = make_bus(broker, "caller-01", "caller", suffix="-stop")
    assert caller.start(wait=5)
    assert statuses.get(timeout=5).online
    caller.stop()
    assert statuses.get(timeout=5).online is False


def test_burst_is_not_lost(broker: Mosquitto, buses: list[Bus]) -> None:
    """Back-pressure: 5,000 QoS 1 messages from one thread all arrive."""
    sender = make_bus(broker, "hub", "hub", suffix="-burst")
    receiver = make_bus(broker, "tv-lobby-1", "display", suffix="-burst")
    buses += [sender, receiver]
    count = 0
    done = threading.Event()

    def on_message(_i: Incoming) -> None:
        nonlocal count
        count += 1
        if count == 5000:
            done.set()

    receiver.subscribe(receiver.topics.all_of("counter_state"), on_message)
    assert receiver.start(wait=5) and sender.start(wait=5)
    for i in range(5000):
        sender.publish(sender.topics.counter_state(1 + i % 100), b"{}")
    assert done.wait(30), f"received {count} of 5000"
    assert sender.flush(10)


class Poller:
    """Runs a bus in polled mode on a thread of its own, as the hub's worker does."""

    def __init__(self, bus: Bus, wait_s: float = 0.5) -> None:
        self.bus = bus
        self.wait_s = wait_s
        self.running = True
        bus.start_polled()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while self.running:
            self.bus.poll(self.wait_s)

    def stop(self) -> None:
        self.running = False
        self.bus.wake()
        self.thread.join(5)
        self.bus.stop()


def test_polled_bus_serves_requests_on_the_pollers_thread(
    broker: Mosquitto, buses: list[Bus]
) -> None:
    hub_bus = make_bus(broker, "hub", "hub", suffix="-poll")
    hub = EchoHub(hub_bus)
    handled_on: set[int] = set()
    hub_bus.subscribe(
        hub_bus.topics.all_of("command"), lambda _i: handled_on.add(threading.get_ident())
    )
    poller = Poller(hub_bus)
    kiosk = make_bus(broker, "kiosk-1", suffix="-poll")
    watcher = make_bus(broker, "tv-1", "display", suffix="-poll")
    buses += [kiosk, watcher]
    statuses: queue.Queue[m.DeviceStatus] = queue.Queue()
    watcher.subscribe(
        watcher.topics.status("hub"), lambda i: statuses.put(m.decode(m.DeviceStatus, i.payload))
    )
    try:
        assert hub_bus.wait_connected(5) and kiosk.start(wait=5) and watcher.start(wait=5)
        assert statuses.get(timeout=5).online
        for _ in range(20):
            result = kiosk.request(m.IssueTicket(device="kiosk-1", service="ktp"), timeout=2)
            assert result["echo"] == "kiosk-1"
        assert len(hub.seen) == 20
        # Handlers ran on the poller's thread, and paho started no network thread of its own.
        assert handled_on == {poller.thread.ident}
        assert not [t for t in threading.enumerate() if t.name == "paho-mqtt-client-hub"]
    finally:
        poller.stop()
    assert statuses.get(timeout=5).online is False  # stop() flushed its goodbye by polling


def test_a_stopped_bus_holds_no_descriptors(broker: Mosquitto) -> None:
    def descriptors() -> set[str]:
        return set(os.listdir("/proc/self/fd"))

    before = descriptors()
    kept = []  # still referenced after stop(), as a traceback or a test would
    for suffix in ("-fd1", "-fd2", "-fd3"):
        bus = make_bus(broker, "kiosk-1", suffix=suffix)
        assert bus.start(wait=5)
        bus.stop()
        kept.append(bus)
    assert descriptors() - before == set()
    assert len(kept) == 3


def test_polled_bus_works_with_descriptors_numbered_above_1024(
    broker: Mosquitto, buses: list[Bus]
) -> None:
    # A hub holding a thousand web clients' connections gets sockets numbered past select()'s
    # limit of 1024; its broker connection must still be read and written.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 1200:
        pytest.skip(f"the hard limit of open files is {hard}; this needs 1,200")
    kiosk = make_bus(broker, "kiosk-1", suffix="-fd")  # paho's own thread uses select()
    buses.append(kiosk)
    assert kiosk.start(wait=5)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 1200), hard))
    filler = [os.open(os.devnull, os.O_RDONLY) for _ in range(1030)]
    poller = None
    try:
        hub_bus = make_bus(broker, "hub", "hub", suffix="-fd")
        hub = EchoHub(hub_bus)
        poller = Poller(hub_bus)
        assert hub_bus.wait_connected(5)
        assert hub_bus._client.socket().fileno() > 1024
        # Connected is not yet subscribed: the first request is sent again until the hub's
        # subscription is in place (a clean-clone run once lost it to that race).
        kiosk.request(m.IssueTicket(device="kiosk-1", service="ktp"), timeout=0.5, retries=8)
        sent = []
        for _ in range(5):
            command = m.IssueTicket(device="kiosk-1", service="ktp")
            sent.append(command.request_id)
            assert kiosk.request(command, timeout=2)["echo"] == "kiosk-1"
        assert set(sent) <= set(hub.seen) and poller.thread.is_alive()
    finally:
        if poller is not None:
            poller.stop()
        for fd in filler:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_polled_bus_wakes_for_a_publish_from_another_thread(
    broker: Mosquitto, buses: list[Bus]
) -> None:
    hub_bus = make_bus(broker, "hub", "hub", suffix="-wake")
    screen = make_bus(broker, "tv-1", "display", suffix="-wake")
    buses.append(screen)
    got: queue.Queue[tuple[float, Incoming]] = queue.Queue()
    screen.subscribe(screen.topics.site_state(), lambda i: got.put((time.monotonic(), i)))
    assert screen.start(wait=5)
    poller = Poller(hub_bus, wait_s=30)
    try:
        assert hub_bus.wait_connected(5)
        time.sleep(0.2)  # the poller now waits in a 30 s poll
        state = m.SiteState(
            seq=1, day="2026-11-23", now=1.0, config_version="x", issued=0, served=0, waiting=0
        )
        sent = time.monotonic()
        hub_bus.publish(hub_bus.topics.site_state(), state, retain=True)
        at, incoming = got.get(timeout=5)
        assert m.decode(m.SiteState, incoming.payload) == state
        assert at - sent < 1.0  # written by the woken poller, not after its 30 s wait
    finally:
        poller.stop()
    assert not poller.thread.is_alive()


def test_polled_bus_reconnects_and_resubscribes_after_broker_restart(
    own_broker: Mosquitto, buses: list[Bus]
) -> None:
    hub_bus = make_bus(own_broker, "hub", "hub", suffix="-pre")
    screen = make_bus(own_broker, "tv-lobby-1", "display", suffix="-pre")
    buses.append(screen)
    commands: queue.Queue[Incoming] = queue.Queue()
    changes: list[bool] = []
    hub_bus.subscribe(hub_bus.topics.all_of("command"), commands.put)
    hub_bus.on_connection_change(changes.append)
    poller = Poller(hub_bus)
    try:
        assert hub_bus.wait_connected(5) and screen.start(wait=5)
        own_broker.restart(down_for=1.0)
        back = time.monotonic()
        assert hub_bus.wait_connected(8) and screen.wait_connected(8)
        assert time.monotonic() - back < 2, "the hub reconnects within its short back-off"
        # Its subscription may still be on the way to the broker: send until one arrives.
        for _ in range(25):
            screen.publish(screen.topics.command("tv-lobby-1", "next"), b"{}")
            with contextlib.suppress(queue.Empty):
                assert commands.get(timeout=0.2).topic.endswith("/cmd/tv-lobby-1/next")
                break
        else:
            pytest.fail("the polled bus did not subscribe again after the restart")
        assert changes[:3] == [True, False, True]
    finally:
        poller.stop()
