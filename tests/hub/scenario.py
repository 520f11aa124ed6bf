"""A day at the counters played through the real hub on a settable clock (for report tests).

Timeline (seconds after 09:00 WITA, Monday 23 November 2026):
  0  A001, A002 (ktp), B001 (kk), H001 (skck) issued      10  H001 voided
 60  counter 3 opened by Siti, counter 4 by Budi        300  counter 4 calls B001
400  counter 4 transfers B001 to ktp                    600  counter 3 calls A001
900  counter 3 finishes A001                            910  rating 4 for A001
1200 counter 3 calls A002                              1260  A002 skipped (no-show)
1300 counter 3 calls B001                              1800  counter 3 finishes B001
1810 rating 1 for B001
 500 Budi (counter 4) on a break (istirahat)            1400 his NEXT ends it (nobody waits)
1900 Siti (counter 3) on a break (sholat, 20 min)       2500 she ends it
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from hub.service import HubService
from protocol import messages as m

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=ZoneInfo("Asia/Makassar")).timestamp()


@dataclass
class Clock:
    """A wall clock the test sets."""

    now: float = T0

    def __call__(self) -> float:
        return self.now

    def at(self, offset: float) -> None:
        """Move to T0 + offset seconds."""
        self.now = T0 + offset


def ok(service: HubService, command: m.Command) -> dict:
    """Submit through the hub's command path and insist on success."""
    reply = service.submit(command)
    assert reply.ok, reply.error
    return reply.result or {}


def play_day(service: HubService, clock: Clock) -> dict[str, m.TicketInfo]:
    """Play the timeline; returns the issued tickets by label."""
    clock.at(0)
    tickets: dict[str, m.TicketInfo] = {}
    for code in ("ktp", "ktp", "kk", "skck"):
        result = m.IssueResult.model_validate(
            ok(service, m.IssueTicket(device="hub", service=code))
        )
        tickets[result.ticket.number] = result.ticket
    steps: list[tuple[float, m.Command]] = [
        (10, m.VoidTicket(device="hub", ticket_id=tickets["H001"].id, reason="paper out")),
        (60, m.OpenCounter(device="hub", counter=3, officer="Siti")),
        (60, m.OpenCounter(device="hub", counter=4, officer="Budi")),
        (300, m.CallNext(device="hub", counter=4)),
        (400, m.Transfer(device="hub", counter=4, service="ktp")),
        (500, m.StartBreak(device="hub", counter=4, reason="istirahat")),
        (600, m.CallNext(device="hub", counter=3)),
        (900, m.Finish(device="hub", counter=3)),
        (910, m.Rate(device="hub", counter=3, score=4)),
        (1200, m.CallNext(device="hub", counter=3)),
        (1260, m.Skip(device="hub", counter=3)),
        (1300, m.CallNext(device="hub", counter=3)),
        (1400, m.CallNext(device="hub", counter=4)),
        (1800, m.Finish(device="hub", counter=3)),
        (1810, m.Rate(device="hub", counter=3, score=1)),
        (1900, m.StartBreak(device="hub", counter=3, reason="sholat", minutes=20)),
        (2500, m.EndBreak(device="hub", counter=3)),
    ]
    for offset, command in steps:
        clock.at(offset)
        ok(service, command)
    return tickets
