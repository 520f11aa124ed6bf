"""Property-based: random command sequences keep the queue's invariants, and the database
always holds exactly the queue (a fresh load equals the live state)."""

from __future__ import annotations

import contextlib
import tempfile
from collections import Counter
from dataclasses import asdict
from pathlib import Path

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from hub.rules import ACTIVE, CALLED, SKIPPED, WAITING, Queue, Refused
from hub.store import TICKET_COLUMNS, Store
from tests.conftest import make_site

SITE = make_site(always_open=True)
SERVICES = ["ktp", "kk", "skck"]
COUNTERS = [1, 3, 13]
START = 1795420800.0  # 2026-11-24 00:00 WITA


class QueueMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.tmp = tempfile.TemporaryDirectory()
        self.store = Store(Path(self.tmp.name) / "hub.sqlite", first_start=True)
        self.q = Queue(SITE)
        self.now = START + 9 * 3600
        self.tokens = 0
        self.issued: list[tuple[str, str, int]] = []

    def teardown(self) -> None:
        self.store.close()
        self.tmp.cleanup()

    def apply(self, action) -> None:
        self.now += 7
        with self.store.transaction():
            with contextlib.suppress(Refused):
                action()
            self.store.persist(self.q, self.q.take_changes())

    @rule(service=st.sampled_from(SERVICES), priority=st.sampled_from([None, "elderly"]))
    def issue(self, service: str, priority: str | None) -> None:
        self._issue(service, priority)

    # Issuing and calling are what a day is made of: they get two rules each.
    @rule(service=st.sampled_from(SERVICES))
    def issue_regular(self, service: str) -> None:
        self._issue(service, None)

    def _issue(self, service: str, priority: str | None) -> None:
        self.tokens += 1

        def act() -> None:
            t = self.q.issue(
                service, priority=priority, device="kiosk-1", now=self.now, token=str(self.tokens)
            )
            self.issued.append((t.day, t.issued_service, t.number))

        self.apply(act)

    @rule(counter=st.sampled_from(COUNTERS), officer=st.sampled_from(["Ani", "Budi"]))
    def open_counter(self, counter: int, officer: str) -> None:
        self.apply(lambda: self.q.open_counter(counter, officer, self.now))

    @rule(counter=st.sampled_from(COUNTERS))
    def close_counter(self, counter: int) -> None:
        self.apply(lambda: self.q.close_counter(counter, self.now))

    @rule(counter=st.sampled_from(COUNTERS))
    def call_next(self, counter: int) -> None:
        self._call_next(counter)

    @rule(counter=st.sampled_from(COUNTERS))
    def call_next_again(self, counter: int) -> None:
        self._call_next(counter)

    def _call_next(self, counter: int) -> None:
        before = {t.id for t in self.q.waiting()}

        def act() -> None:
            ticket = self.q.call_next(counter, self.now)
            # No call without a matching waiting ticket of a service the counter serves.
            if ticket is not None:
                assert ticket.id in before
                assert ticket.service in SITE.counters[counter].services

        self.apply(act)

    @rule(counter=st.sampled_from(COUNTERS))
    def recall(self, counter: int) -> None:
        self.apply(lambda: self.q.recall(counter, self.now))

    @rule(counter=st.sampled_from(COUNTERS))
    def skip(self, counter: int) -> None:
        self.apply(lambda: self.q.skip(counter, self.now))

    @rule(counter=st.sampled_from(COUNTERS), data=st.data())
    def call_skipped(self, counter: int, data) -> None:
        skipped = self.q.skipped(SITE.counters[counter].services)
        if skipped:
            label = data.draw(st.sampled_from([t.label for t in skipped]))
            self.apply(lambda: self.q.call_skipped(counter, label, self.now))

    @rule(counter=st.sampled_from(COUNTERS), service=st.sampled_from(SERVICES))
    def transfer(self, counter: int, service: str) -> None:
        self.apply(lambda: self.q.transfer(counter, service, self.now))

    @rule(counter=st.sampled_from(COUNTERS))
    def finish(self, counter: int) -> None:
        self.apply(lambda: self.q.finish(counter, self.now))

    @rule(counter=st.sampled_from(COUNTERS), score=st.integers(1, 4))
    def rate(self, counter: int, score: int) -> None:
        self.apply(lambda: self.q.rate(counter, score, self.now))

    @precondition(lambda self: bool(self.q.tickets))
    @rule(data=st.data())
    def void(self, data) -> None:
        ticket_id = data.draw(st.sampled_from(sorted(self.q.tickets)))
        self.apply(lambda: self.q.void(ticket_id, "kiosk-1", self.now))

    @precondition(lambda self: any(t.priority for t in self.q.tickets.values()))
    @rule(data=st.data())
    def revoke_priority(self, data) -> None:
        ticket_id = data.draw(
            st.sampled_from(sorted(i for i, t in self.q.tickets.items() if t.priority))
        )
        self.apply(lambda: self.q.revoke_priority(ticket_id, "spv-1", self.now))

    @rule(hours=st.sampled_from([0, 1, 1, 20]))
    def time_passes(self, hours: int) -> None:
        self.now += hours * 3600
        self.apply(lambda: self.q.roll_day(self.now))

    @invariant()
    def no_duplicate_numbers(self) -> None:
        assert not [k for k, n in Counter(self.issued).items() if n > 1]

    @invariant()
    def one_counter_per_called_ticket(self) -> None:
        current = [c.current for c in self.q.counters.values() if c.current is not None]
        assert len(current) == len(set(current))
        called = {t.id for t in self.q.tickets.values() if t.status == CALLED}
        assert called == set(current)
        for c in self.q.counters.values():
            if c.current is not None:
                assert self.q.tickets[c.current].counter == c.number

    @invariant()
    def waiting_counts_add_up(self) -> None:
        per_service = sum(len(self.q.waiting(code)) for code in SITE.services)
        total = sum(1 for t in self.q.tickets.values() if t.status == WAITING)
        assert per_service == total == len(self.q.waiting())
        assert self.q.active == {t.id: t for t in self.q.tickets.values() if t.status in ACTIVE}
        assert self.q.missed == {t.id: t for t in self.q.tickets.values() if t.status == SKIPPED}

    @invariant()
    def waiting_indexes_in_queue_order(self) -> None:
        # NEXT reads the heads of these indexes; each must be exactly its service's waiting
        # tickets (the priority one: those with priority) sorted by queue order.
        def in_order(tickets):
            return [t.id for t in sorted(tickets, key=lambda t: (t.queue_key, t.id))]

        for code in SITE.services:
            waiting = [
                t for t in self.q.tickets.values() if t.status == WAITING and t.service == code
            ]
            assert list(self.q.queued[code]) == in_order(waiting)
            assert list(self.q.queued_priority[code]) == in_order(t for t in waiting if t.priority)
            for t in waiting:  # read off the indexes, it must equal the count by definition
                assert self.q.people_ahead(t) == sum(
                    1
                    for o in waiting
                    if o.id != t.id
                    and (
                        bool(o.priority) > bool(t.priority)
                        or (
                            bool(o.priority) == bool(t.priority)
                            and (o.queue_key, o.id) < (t.queue_key, t.id)
                        )
                    )
                )

    @invariant()
    def database_holds_the_queue(self) -> None:
        fresh = Queue(SITE)
        self.store.load(fresh)
        assert fresh.day == self.q.day

        def stored(t):  # the steady clock at issue is not stored (it means nothing later)
            return {k: v for k, v in asdict(t).items() if k in TICKET_COLUMNS}

        assert {i: stored(t) for i, t in fresh.tickets.items()} == {
            i: stored(t) for i, t in self.q.tickets.items()
        }
        assert fresh.counters == self.q.counters
        assert fresh.rated == self.q.rated
        assert fresh.quota_left("ktp") == self.q.quota_left("ktp")


QueueMachine.TestCase.settings = settings(max_examples=80, stateful_step_count=60, deadline=None)
TestQueueProperties = QueueMachine.TestCase
