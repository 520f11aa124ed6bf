"""The hub killed with SIGKILL in the middle of a burst, then restarted: nothing confirmed is
lost, nothing is applied twice, numbering continues without a gap or repeat, and the screens
show exactly what the database holds."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from protocol import messages as m
from protocol.errors import BrokerUnavailable, CommandRejected, RequestTimeout
from protocol.mqtt import Bus
from protocol.site import Site
from tests.conftest import ROOT, make_site, write_site

KIOSKS = ["kiosk-1", "kiosk-2"]
PER_KIOSK = 150


def start_hub(site_file: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "protocol.cli",
                "hub",
                "--site",
                str(site_file),
                "--first-start",
                "--log-level",
                "WARNING",
            ],
            cwd=ROOT,
            stdout=out,
            stderr=out,
        )


def wait_for_reply(bus: Bus, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            bus.request(m.OpenCounter(device="caller-03", counter=3), timeout=1)
            return
        except (RequestTimeout, BrokerUnavailable):
            time.sleep(0.2)
    raise AssertionError("the hub did not come back")


def retained_states(site: Site, topics: list[str], timeout: float = 10) -> dict[str, bytes]:
    """What a screen connecting now receives on `topics` (each a retained message)."""
    got: dict[str, bytes] = {}
    screen = Bus.for_device(site, "tv-lobby-2")
    assert screen.start(wait=5)
    try:
        for topic in topics:
            screen.subscribe(
                topic, lambda incoming: got.setdefault(incoming.topic, incoming.payload)
            )
        deadline = time.monotonic() + timeout
        while len(got) < len(topics) and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        screen.stop()
    assert set(got) == set(topics), f"no retained state on {set(topics) - set(got)}"
    return got


@pytest.mark.slow
def test_sigkill_mid_burst(broker, tmp_path: Path) -> None:
    db = tmp_path / "hub.sqlite"
    site_file = write_site(tmp_path / "site.toml", broker.port, always_open=True, database=db)
    site: Site = make_site(broker.port, text=site_file.read_text())
    log = tmp_path / "hub.log"
    hub = start_hub(site_file, log)
    caller = Bus.for_device(site, "caller-03")
    caller.start(wait=5)
    wait_for_reply(caller)
    front = Bus.for_device(site, "kiosk-1")
    front.start(wait=5)
    front.request(m.IssueTicket(device="kiosk-1", service="ktp"), timeout=5)
    front.stop()
    before_call = retained_states(site, [caller.topics.counter_state(3)])
    caller.request(m.CallNext(device="caller-03", counter=3), timeout=5)  # serving A001

    confirmed: dict[str, list[tuple[str, str, int]]] = {k: [] for k in KIOSKS}
    retried = Counter()

    def kiosk(device: str) -> None:
        bus = Bus.for_device(site, device)
        bus.start(wait=5)
        try:
            for _ in range(PER_KIOSK):
                command = m.IssueTicket(device=device, service="bank")
                for _attempt in range(60):  # the same request id until the hub answers
                    try:
                        ticket = bus.request(command, timeout=0.5)["ticket"]
                        confirmed[device].append(
                            (command.request_id, ticket["number"], ticket["id"])
                        )
                        break
                    except (RequestTimeout, BrokerUnavailable):
                        retried[device] += 1
                        time.sleep(0.1)
                    except CommandRejected as exc:  # an attempt that arrived after its deadline
                        assert exc.code == "stale", exc
                        retried[device] += 1
                else:
                    raise AssertionError(f"{device}: request {command.request_id} never answered")
        finally:
            bus.stop()

    threads = [threading.Thread(target=kiosk, args=(d,)) for d in KIOSKS]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 20
    while sum(len(v) for v in confirmed.values()) < 60 and time.monotonic() < deadline:
        time.sleep(0.01)
    hub.send_signal(signal.SIGKILL)
    hub.wait()
    killed_after = sum(len(v) for v in confirmed.values())
    # As if the kill had come between the COMMIT of that NEXT and its publish: the broker
    # still holds the counter's state from before the call.
    for topic, payload in before_call.items():
        caller.publish(topic, payload, retain=True)
    assert caller.flush(5)
    time.sleep(0.5)
    hub = start_hub(site_file, log)
    try:
        for t in threads:
            t.join(60)
        assert not any(t.is_alive() for t in threads)
        topics = caller.topics
        shown = retained_states(site, [topics.counter_state(3), topics.service_state("bank")])
    finally:
        hub.send_signal(signal.SIGTERM)
        hub.wait(10)
        caller.stop()

    assert 0 < killed_after < len(KIOSKS) * PER_KIOSK, "the kill must land mid-burst"
    assert sum(retried.values()) > 0, "some requests must have been retried across the restart"
    everything = [c for v in confirmed.values() for c in v]
    with sqlite3.connect(db) as conn:
        stored = dict(
            conn.execute("SELECT id, label FROM tickets WHERE service = 'bank'").fetchall()
        )
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    # every confirmed (so printed) ticket is in the database exactly once, as confirmed
    assert len(everything) == len(KIOSKS) * PER_KIOSK
    assert all(stored.get(ticket_id) == number for _, number, ticket_id in everything)
    # no repeat and no gap: numbers are exactly R001..R300
    assert sorted(number for _, number, _ in everything) == [
        f"R{i:03d}" for i in range(1, len(everything) + 1)
    ]
    assert len(stored) == len(everything)
    # what a screen is shown after the restart is what the database holds
    counter = m.decode(m.CounterState, shown[topics.counter_state(3)])
    bank = m.decode(m.ServiceState, shown[topics.service_state("bank")])
    with sqlite3.connect(db) as conn:
        ((current, call_seq, is_open),) = conn.execute(
            "SELECT t.label, c.call_seq, c.open FROM counters c JOIN tickets t ON t.id = c.current"
            " WHERE c.number = 3"
        )
        ((waiting, last),) = conn.execute(
            "SELECT COUNT(*) FILTER (WHERE status = 'waiting'), MAX(label) FROM tickets"
            " WHERE service = 'bank'"
        )
    assert (counter.ticket, counter.call_seq, counter.open) == (current, call_seq, bool(is_open))
    assert counter.ticket == "A001" and counter.call_seq >= 1
    assert (bank.waiting, bank.last_issued) == (waiting, last) == (len(everything), "R300")
