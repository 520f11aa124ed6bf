"""Property-based, end to end: random command sequences sent by a kiosk and caller boxes through
the real Mosquitto to a real hub (SQLite file). After every sequence the database keeps the
queue's invariants, and what a screen connecting now is shown equals what the database holds.

(tests/hub/test_properties.py drives the pure rules and the store with many more steps; this one
adds the hub's command path, its publishing and the broker.)"""

from __future__ import annotations

import sqlite3
import tempfile
import threading
from contextlib import closing
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub.service import HubService
from protocol import messages as m
from protocol.errors import CommandRejected
from protocol.mqtt import Bus
from tests.conftest import make_site

pytestmark = pytest.mark.slow

COUNTERS = (1, 3, 4)  # ktp + kk, ktp, kk + pindah: they share queues
SERVICES = ("ktp", "kk", "pindah")
STEP = st.one_of(
    st.tuples(
        st.just("issue"),
        st.sampled_from(SERVICES),
        st.sampled_from([None, None, "elderly", "pregnant"]),
        st.sampled_from(["printed", "printed", "printed", "void"]),
    ),
    st.tuples(
        st.sampled_from(["next", "next", "next", "recall", "skip", "finish"]),
        st.sampled_from(COUNTERS),
    ),
    st.tuples(st.sampled_from(["open", "close"]), st.sampled_from(COUNTERS)),
    st.tuples(st.just("call_skipped"), st.sampled_from(COUNTERS), st.integers(0, 5)),
    st.tuples(st.just("transfer"), st.sampled_from(COUNTERS), st.sampled_from(SERVICES)),
    st.tuples(st.just("revoke"), st.integers(0, 30)),
)


class Devices:
    """A kiosk and the caller boxes of COUNTERS, connected to the test broker."""

    def __init__(self, site) -> None:
        self.kiosk = Bus.for_device(site, "kiosk-1")
        self.callers = {n: Bus.for_device(site, f"caller-{n:02d}") for n in COUNTERS}
        started = [bus.start(wait=10) for bus in (self.kiosk, *self.callers.values())]
        if not all(started):
            self.stop()
            raise AssertionError("a device could not connect to the test broker")

    def stop(self) -> None:
        for bus in (self.kiosk, *self.callers.values()):
            bus.stop()


def send(bus: Bus, command: m.Command) -> dict | None:
    """The result, or None when the hub refused (a refusal is a normal answer here)."""
    try:
        return bus.request(command, timeout=5)
    except CommandRejected as refused:
        assert refused.code not in ("internal", "bad_json", "bad_schema", "forbidden"), refused
        return None


def play(hub: HubService, devices: Devices, steps: list[tuple]) -> None:
    issued: list[int] = []
    for step in steps:
        kind = step[0]
        if kind == "issue":
            _, service, priority, outcome = step
            got = send(
                devices.kiosk, m.IssueTicket(device="kiosk-1", service=service, priority=priority)
            )
            assert got is not None  # always open, quota 999: an issue is never refused here
            ticket_id = got["ticket"]["id"]
            issued.append(ticket_id)
            report = m.TicketPrinted if outcome == "printed" else m.VoidTicket
            send(devices.kiosk, report(device="kiosk-1", ticket_id=ticket_id))
            continue
        if kind == "revoke":
            if issued:
                ticket_id = issued[step[1] % len(issued)]
                reply = hub.submit(m.RevokePriority(device="hub", ticket_id=ticket_id, by="spv"))
                assert reply.ok or reply.error.code == "bad_state", reply.error  # type: ignore[union-attr]
                if reply.ok:
                    with closing(sqlite3.connect(hub.database)) as conn:
                        row = conn.execute(
                            "SELECT priority FROM tickets WHERE id = ?", (ticket_id,)
                        )
                        assert row.fetchone() == (None,)
            continue
        counter = step[1]
        bus = devices.callers[counter]
        device = f"caller-{counter:02d}"
        if kind == "open":
            command: m.Command = m.OpenCounter(
                device=device, counter=counter, officer=f"petugas {counter}"
            )
        elif kind == "call_skipped":
            with closing(sqlite3.connect(hub.database)) as conn:
                skipped = [
                    r[0]
                    for r in conn.execute(
                        "SELECT label FROM tickets WHERE status = 'skipped' ORDER BY id"
                    )
                ]
            if not skipped:
                continue
            command = m.CallSkipped(
                device=device, counter=counter, ticket=skipped[step[2] % len(skipped)]
            )
        elif kind == "transfer":
            command = m.Transfer(device=device, counter=counter, service=step[2])
        else:
            model = {
                "next": m.CallNext,
                "recall": m.Recall,
                "skip": m.Skip,
                "finish": m.Finish,
                "close": m.CloseCounter,
            }[kind]
            command = model(device=device, counter=counter)
        send(bus, command)


def shown_to_a_screen(site, hub: HubService) -> dict[str, m.Message]:
    """Every retained counter, service and site state a screen connecting now receives."""
    got: dict[str, m.Message] = {}
    topics = hub.bus.topics
    wanted = {topics.counter_state(n) for n in site.counters}
    wanted |= {topics.service_state(c) for c in site.services} | {topics.site_state()}
    done = threading.Event()
    models = {
        "counter_state": m.CounterState,
        "service_state": m.ServiceState,
        "site_state": m.SiteState,
    }

    def on(incoming) -> None:
        name = topics.parse(incoming.topic)[0]  # type: ignore[index]
        got[incoming.topic] = m.decode(models[name], incoming.payload)
        if wanted <= set(got):
            done.set()

    screen = Bus.for_device(site, "tv-lobby-2")
    assert screen.start(wait=10)
    try:
        for name in models:
            screen.subscribe(topics.all_of(name), on)
        assert done.wait(10), f"no retained state on {sorted(wanted - set(got))[:5]}"
    finally:
        screen.stop()
    return got


def forget_retained(site, bus: Bus) -> None:
    """Delete every retained state on the broker (an empty retained payload)."""
    topics = bus.topics
    for topic in (
        [topics.counter_state(n) for n in site.counters]
        + [topics.service_state(c) for c in site.services]
        + [topics.site_state()]
    ):
        bus.publish(topic, b"", retain=True)
    assert bus.flush(5)


def check(site, hub: HubService) -> None:
    shown = shown_to_a_screen(site, hub)
    topics = hub.bus.topics
    with closing(sqlite3.connect(hub.database)) as conn:
        tickets = conn.execute(
            "SELECT id, label, issued_service, number, service, status, counter, priority FROM tickets"
        ).fetchall()
        counters = dict(conn.execute("SELECT number, current FROM counters"))
        call_seqs = dict(conn.execute("SELECT number, call_seq FROM counters"))
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    by_id = {t[0]: t for t in tickets}
    # no duplicate numbers: one ticket per (service it was issued for, number)
    assert len({(t[2], t[3]) for t in tickets}) == len(tickets)
    # no ticket called at two counters; every call has a matching called ticket
    current = [c for c in counters.values() if c is not None]
    assert len(current) == len(set(current))
    for number, ticket_id in counters.items():
        if ticket_id is not None:
            assert by_id[ticket_id][5] == "called" and by_id[ticket_id][6] == number
    assert sum(t[5] == "called" for t in tickets) == len(current)
    # screens are shown exactly what the database holds, and the waiting counts add up
    for number in site.counters:
        state = shown[topics.counter_state(number)]
        assert isinstance(state, m.CounterState)
        ticket_id = counters.get(number)
        assert state.ticket == (by_id[ticket_id][1] if ticket_id else None), number
        assert state.call_seq == call_seqs.get(number, 0), number
    waiting_total = 0
    for code in site.services:
        state = shown[topics.service_state(code)]
        assert isinstance(state, m.ServiceState)
        waiting = [t for t in tickets if t[4] == code and t[5] == "waiting"]
        assert state.waiting == len(waiting), code
        assert state.priority_waiting == sum(t[7] is not None for t in waiting), code
        called = {t[1] for t in tickets if t[4] == code and t[5] == "called"}
        assert set(state.now_serving) == called, code
        waiting_total += state.waiting
    summary = shown[topics.site_state()]
    assert isinstance(summary, m.SiteState) and summary.waiting == waiting_total


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=st.lists(STEP, min_size=5, max_size=40))
def test_random_command_sequences_over_the_broker(broker, steps: list[tuple]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        site = make_site(broker.port, always_open=True, database=Path(tmp) / "hub.sqlite")
        hub = HubService(site, first_start=True).start()
        devices = None
        try:
            devices = Devices(site)
            play(hub, devices, steps)
            check(site, hub)
            hub.stop()
            forget_retained(site, devices.kiosk)  # as if the broker had restarted empty
            hub = HubService(
                site, first_start=True
            ).start()  # republishes everything from the database
            check(site, hub)
        finally:
            if devices is not None:
                devices.stop()
            hub.stop()
