"""Scenario 6 of issue 11: network loss between a caller box and the broker.

Invariant: presses on a caller box while its link to the broker is gone call no one, then or
later: each gets fault feedback at once or after its timeout; the NEXT commands TCP or paho
still deliver when the link returns (late retransmissions, QoS 1 re-sends after a reconnect)
are refused by the hub as stale; and after the loss the box shows the counter's true state
and its next press calls exactly one ticket. Checked from the hub's database (no call made
during or after the loss), the replies the hub sent to the box, the box's display and the
hub's fleet view (the box shown offline while it is cut off).

The caller box runs in its own network namespace (made by the test with `ip netns`, joined
by a veth pair whose addresses the test chooses): its MQTT connection crosses a real link
that the test takes down and up, while the hub and the broker stay on the host.
"""

from __future__ import annotations

import signal
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bench.figures import figure
from hub.service import HubService
from protocol import messages as m
from protocol.brokers import Mosquitto, free_port
from protocol.mqtt import Bus, Incoming
from tests.chaos.device_rigs import CallerRig, caller_rig, stored_calls
from tests.chaos.netns import Link
from tests.conftest import make_site
from tests.timing import wait_until

CALLER = "caller-03"
SHORT_LOSS_S = 4.0  # under the broker's keepalive limit: the TCP connection survives
LONG_LOSS_MAX_S = 20.0  # until both ends gave the connection up (bounded)
PRESS_EVERY_S = 1.2
KEEPALIVE_S = 5  # the box's MQTT keepalive (the inventory's minimum)
IN_FLIGHT_ROUNDS = 4


@dataclass
class Replies:
    """The hub's replies to the caller box, as a test client on the host sees them."""

    got: dict[str, m.Reply]

    def stale(self, request_ids: set[str]) -> set[str]:
        """Which of `request_ids` the hub answered with a stale refusal."""
        return {
            rid
            for rid in request_ids
            if rid in self.got and self.got[rid].error and self.got[rid].error.code == "stale"
        }


def during(rig: CallerRig, since: float) -> list[Any]:
    """The box's press outcomes (sent or not) since `since` (its clock)."""
    return [o for o in rig.box.recent if o.button == "next" and o.at >= since]


def press_while_down(rig: CallerRig, until: Callable[[], bool], max_s: float) -> None:
    """Press NEXT every PRESS_EVERY_S (not waiting for answers) until `until()` or `max_s`."""
    deadline = time.monotonic() + max_s
    while time.monotonic() < deadline and not until():
        rig.press("next", wait_s=None)
        time.sleep(PRESS_EVERY_S)


@pytest.mark.chaos
@pytest.mark.slow
def test_presses_during_a_network_loss_call_no_one_later(link: Link, tmp_path: Path) -> None:
    device_port = free_port(link.host_ip)  # the broker's second listener, for the box
    with Mosquitto(extra=f"listener {device_port} {link.host_ip}") as broker:
        site = make_site(broker.port, always_open=True, database=tmp_path / "hub.sqlite")
        hub = HubService(site, first_start=True).start()
        watcher = Bus(site.site.id, "chaos-reply-watch", "hub", port=broker.port)
        replies = Replies({})

        def keep(incoming: Incoming) -> None:
            reply = m.decode(m.Reply, incoming.payload)
            replies.got[reply.request_id] = reply

        watcher.subscribe(watcher.topics.reply(CALLER), keep)
        assert watcher.start(wait=10)
        bus = Bus.for_device(
            site, CALLER, host=link.host_ip, port=device_port, keepalive=KEEPALIVE_S
        )
        rig = link.run(lambda: caller_rig(site, CALLER, "Sari", bus=bus, request_timeout_s=1.0))
        try:
            assert rig.bus.connected, "the box could not reach the broker across the link"
            for _ in range(20):
                assert hub.submit(m.IssueTicket(device="hub", service="ktp")).ok
            rig.press("open_close")
            rig.press("next")
            assert rig.box.recent[-1].status == "ok" and rig.lcd.lines[0].startswith("A001")
            calls_before = stored_calls(hub.database)
            sent_in_loss: set[str] = set()
            presses_in_loss = 0

            # 1. A short loss: the connection survives; what the box sent arrives late.
            started = rig.box.clock()
            link.set(up=False)
            press_while_down(rig, lambda: False, SHORT_LOSS_S - 1.5)
            assert rig.box.wait_idle(5)
            time.sleep(max(0.0, SHORT_LOSS_S - (rig.box.clock() - started)))
            link.set(up=True)
            short = during(rig, started)
            presses_in_loss += len(short)
            assert short and all(o.status in ("fault", "ignored") for o in short), short
            late = {o.request_id for o in short if o.status == "fault"}
            assert late and all(o.code == "timeout" for o in short if o.status == "fault")
            assert wait_until(lambda: replies.stale(late) == late, 20), (
                "a NEXT held in the dead link never reached the hub"
            )
            sent_in_loss |= late

            # 2. A long loss: both ends give the connection up; the hub sees the box offline.
            started = rig.box.clock()
            link.set(up=False)

            def shown_offline() -> bool:
                return not rig.bus.connected and not hub.fleet[CALLER].status.online

            press_while_down(rig, shown_offline, LONG_LOSS_MAX_S)
            assert shown_offline(), "the hub never noticed the box was cut off"
            assert "Tidak terhubung" in rig.lcd.text
            rig.press("next")  # while the box knows it is offline: refused at once
            assert rig.box.recent[-1].code == "offline"
            link.set(up=True)
            assert rig.bus.wait_connected(15), "the box did not reconnect after the loss"
            long = during(rig, started)
            presses_in_loss += len(long)
            assert all(o.status in ("fault", "ignored") for o in long), long
            failed = {o.request_id for o in long if o.status == "fault"}
            sent_in_loss |= failed
            # Anything paho re-sends after reconnecting is refused as stale, never applied.
            assert wait_until(lambda: hub.fleet[CALLER].status.online, 10)
            time.sleep(2.0)
            assert set(replies.got) & failed == replies.stale(failed)

            calls_after = stored_calls(hub.database)
            assert calls_after == calls_before, "a press made during the loss called someone"
            assert hub.queue.counters[3].call_seq == calls_before[-1].call_seq
            shown = "A001 -> Loket 3|Menunggu: 19"  # the true state, once feedback lapsed
            assert wait_until(lambda: rig.shows(shown), 10), rig.lcd.text
            rig.press("next")  # the box and the link work again: exactly one call
            assert rig.box.recent[-1].status == "ok"
            assert len(stored_calls(hub.database)) == len(calls_before) + 1
            assert stored_calls(hub.database)[-1].ticket == "A002"
            figure("caller network loss: presses during the loss", presses_in_loss, "presses")
            figure("caller network loss: sent presses refused late as stale",
                   len(replies.stale(sent_in_loss)), "presses")  # fmt: skip
            figure("caller network loss: calls made by those presses",
                   len(calls_after) - len(calls_before), "calls", "0")  # fmt: skip
        finally:
            rig.close()
            watcher.stop()
            hub.stop()


@pytest.mark.chaos
@pytest.mark.slow
def test_a_next_in_flight_when_the_connection_drops_calls_someone_only_if_the_box_says_so(
    own_broker: Mosquitto, tmp_path: Path
) -> None:
    """The NEXT is on its way when the connection drops (the broker hangs, then dies and is
    started again): the box either shows the call it made or a fault, and after a fault the
    command paho still holds (and re-sends on reconnecting) calls no one, then or later.

    Who is back first decides what happens to that command, so both orders are played: the
    hub (next to the broker) reconnects quickly; one box reconnects after it, one before."""
    site = make_site(own_broker.port, always_open=True, database=tmp_path / "hub.sqlite")
    hub = HubService(
        site, bus=Bus.for_device(site, "hub", min_delay=0.2, max_delay=0.5), first_start=True
    ).start()
    rigs = [
        caller_rig(
            site, name, "Sari", bus=Bus.for_device(site, name, **delays), request_timeout_s=1.5
        )
        for name, delays in (
            ("caller-03", {"min_delay": 1.0, "max_delay": 2.0}),  # back after the hub
            ("caller-04", {"min_delay": 0.02, "max_delay": 0.1}),  # back before the hub
        )
    ]
    told: Counter[tuple[str, str]] = Counter()
    try:
        for service in ("ktp", "kk"):
            for _ in range(IN_FLIGHT_ROUNDS):
                assert hub.submit(m.IssueTicket(device="hub", service=service)).ok
        for rig in rigs:
            rig.press("open_close")
        for round_no in range(IN_FLIGHT_ROUNDS):
            rig = rigs[round_no % len(rigs)]
            before = stored_calls(hub.database)
            assert own_broker.process is not None
            own_broker.process.send_signal(signal.SIGSTOP)  # the NEXT will sit in its socket
            rig.press("next", wait_s=None)
            time.sleep(0.3)
            own_broker.stop(kill=True)  # ... and the connection drops under it
            own_broker.start()
            assert rig.box.wait_idle(10)
            outcome = rig.box.recent[-1]
            told[(rig.bus.device, outcome.status)] += 1
            assert rig.bus.wait_connected(10) and hub.bus.wait_connected(10)
            time.sleep(1.0)  # past the command's deadline: anything re-sent has been refused
            made = stored_calls(hub.database)[len(before) :]
            if outcome.status == "ok":
                call = outcome.result["call"]
                assert [(c.counter, c.ticket, c.call_seq) for c in made] == [
                    (rig.counter, call["ticket"], call["call_seq"])
                ]
            else:
                assert made == [], f"told {outcome.code}, yet {made[0].ticket} was called"
        for rig in rigs:
            rig.press("next")  # and the boxes work on: one call each
            assert rig.box.recent[-1].status == "ok"
        for (device, status), count in sorted(told.items()):
            figure(f"NEXT in flight at a connection drop: {device} told {status}", count,
                   "presses")  # fmt: skip
    finally:
        for rig in rigs:
            rig.close()
        hub.stop()
