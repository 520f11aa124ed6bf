"""The queue rules: a pure core with no IO (no SQLite, MQTT or wall clock; `now` is passed in).

`Queue` holds today's tickets and the counters in memory and applies one command at a time.
Each method either raises `Refused` having changed nothing, or changes state and records what
it touched (`dirty_*`) and what happened (`events`) for the store to persist.

    q = Queue(site)
    t = q.issue("ktp", priority=None, device="kiosk-1", now=now, token="...")
    call = q.call_next(3, now)          # -> Ticket now called at counter 3

`now` is the wall clock: it stamps what happened and decides the day and opening hours. It
may step back (a clock corrected, or set by hand): queue order therefore follows the queue's
own sequence (`Ticket.queue_key`), the hold on unprinted tickets a steady clock (`steady`,
e.g. time.monotonic(); `now` when not given), and durations never go below 0.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from datetime import time
from itertools import takewhile

from protocol.errors import MppError
from protocol.pauses import PauseWindow, pause_now, pauses_now, wait_estimates
from protocol.site import Site, parse_hhmm

WAITING, CALLED, DONE, SKIPPED, VOIDED, EXPIRED = (
    "waiting",
    "called",
    "done",
    "skipped",
    "voided",
    "expired",
)
ACTIVE = (WAITING, CALLED, SKIPPED)
MIN_SAMPLE_S, MAX_SAMPLE_S = 10.0, 4 * 3600.0


class Refused(MppError):
    """A command the rules refuse; nothing was changed. Carries citizen-readable texts."""

    def __init__(self, code: str, message: str, text_id: str, text_en: str) -> None:
        self.code = code
        self.message = message
        self.text = {"id": text_id, "en": text_en}
        super().__init__(f"{code}: {message}")


@dataclass
class Ticket:
    """One ticket of the day. `label` (e.g. 'A012') stays the same through transfers.

    `queue_key` is its place in the queue, from the queue's own sequence (never the wall
    clock): a number after every place given before. Once called, it is where a transfer puts
    it back: after the tickets placed before its first call, ahead of those placed after.
    `issued_steady` (not stored) is the steady clock at issue, for the hold on unprinted tickets.
    """

    id: int
    day: str
    issued_service: str
    number: int
    label: str
    service: str
    priority: str | None
    status: str
    queue_key: float
    issued_at: float
    token: str
    source: str
    lang: str = "id"
    counter: int | None = None
    called_at: float | None = None
    started_at: float | None = None
    first_called_at: float | None = None
    finished_at: float | None = None
    call_count: int = 0
    transfers: int = 0
    printed: bool = False
    officer: str | None = None
    booking: str | None = None  # the booking code of a checked-in reservation
    issued_steady: float | None = field(
        default=None, compare=False, repr=False, metadata={"stored": False}
    )


def duration(start: float | None, end: float | None) -> float | None:
    """Seconds from `start` to `end` on the wall clock, never below 0 (a clock stepped back
    between them makes it 0, not negative); None if either is unknown."""
    if start is None or end is None:
        return None
    return max(0.0, end - start)


@dataclass
class CounterNow:
    """A counter's live state. `call_seq` only ever grows (announcements key on it).

    `break_*`: the officer's break, if on one (reason, start, expected return); `idle_since`:
    when it last became free to call (opened, a ticket finished or sent on, a break ended).
    """

    number: int
    open: bool = False
    officer: str | None = None
    call_seq: int = 0
    current: int | None = None
    priority_streak: int = 0
    served_today: int = 0
    last_finished: int | None = None
    last_finished_at: float | None = None
    break_reason: str | None = None
    break_since: float | None = None
    break_until: float | None = None
    idle_since: float | None = None

    @property
    def on_break(self) -> bool:
        """Whether the officer is on a break."""
        return self.break_reason is not None

    @property
    def serving(self) -> bool:
        """Open and not on a break: it takes calls."""
        return self.open and not self.on_break


@dataclass
class Rating:
    """A rating-pad press attached to a ticket and the officer on duty."""

    ticket: int
    label: str
    counter: int
    officer: str | None
    score: int
    at: float


@dataclass
class Event:
    """Something that happened, for the audit log and reports."""

    kind: str
    at: float
    ticket: int | None = None
    counter: int | None = None
    service: str | None = None
    officer: str | None = None
    detail: str | None = None


@dataclass
class AlertRaised:
    """N lowest ratings in a row for one officer."""

    id: str
    counter: int
    officer: str
    count: int
    at: float


@dataclass(frozen=True)
class Sound:
    """How a zone's screens speak calls."""

    speech: bool
    volume: float
    number_reading: str


@dataclass
class Changes:
    """What one command touched, for the store and the publisher."""

    tickets: dict[int, Ticket] = field(default_factory=dict)
    counters: set[int] = field(default_factory=set)
    services: set[str] = field(default_factory=set)
    events: list[Event] = field(default_factory=list)
    ratings: list[Rating] = field(default_factory=list)
    alerts: list[AlertRaised] = field(default_factory=list)
    stats: set[str] = field(default_factory=set)
    day: bool = False  # a new business day started
    closed_services: bool = False
    settings: bool = False  # the staff's counter assignments, service limits or sound changed
    zones: set[str] = field(default_factory=set)  # whose sound settings changed


class Queue:
    """Today's queue of the site: tickets, counters, service-time averages."""

    def __init__(self, site: Site) -> None:
        self.site = site
        self.day = ""
        self.tickets: dict[int, Ticket] = {}
        # Indexes kept in step by _touch/issue/void, so no command scans the whole day.
        self.active: dict[int, Ticket] = {}  # waiting, called or skipped
        # Waiting tickets per service in queue order (and the priority ones again, apart), so
        # NEXT reads the heads instead of scanning the queues.
        self.queued: dict[str, dict[int, Ticket]] = {code: {} for code in site.services}
        self.queued_priority: dict[str, dict[int, Ticket]] = {code: {} for code in site.services}
        self.missed: dict[int, Ticket] = {}  # skipped (no-show), recallable
        self.serving: dict[str, tuple[int, ...]] = {
            code: site.counters_serving(code) for code in site.services
        }  # counter numbers serving each service (kept in step by `assign`)
        self.last_number: dict[str, int] = {}
        self.issued_count: dict[str, int] = {}  # not voided
        self.counters: dict[int, CounterNow] = {n: CounterNow(n) for n in site.counters}
        self.avg_service_s: dict[str, float] = {
            code: s.avg_minutes * 60 for code, s in site.services.items()
        }
        self.closed_services: set[str] = set()
        # The staff's changes over the inventory, kept until changed back (see `assign`).
        self.assigned: dict[int, tuple[str, ...]] = {}
        self.limits: dict[str, tuple[int, str | None]] = {}  # daily quota, cut-off "HH:MM"
        self.sound: dict[str, Sound] = {}  # zone -> how its screens speak
        self.complaint_streak: dict[str, int] = {}
        self.rated: set[int] = set()
        self.recent_calls: list[tuple[int, int, int, float]] = []  # ticket, counter, seq, at
        self.active_pauses: set[str] = set()  # the inventory's pauses in force (see update_pauses)
        self.next_id = 1
        self.order = 0.0  # the queue sequence reached: a new place in a queue comes after it
        self.changes = Changes()

    # -- bookkeeping -------------------------------------------------------------------
    def take_changes(self) -> Changes:
        """Hand over what changed since the last call, and start afresh."""
        changes, self.changes = self.changes, Changes()
        return changes

    def _touch(self, ticket: Ticket) -> None:
        self.changes.tickets[ticket.id] = ticket
        self.changes.services.add(ticket.service)
        if ticket.status in ACTIVE:
            self.active[ticket.id] = ticket
        else:
            self.active.pop(ticket.id, None)
        waiting = ticket.status == WAITING
        for code, queued in self.queued.items():  # a transfer moves it between services
            if not (waiting and code == ticket.service):
                queued.pop(ticket.id, None)
                self.queued_priority[code].pop(ticket.id, None)
        if waiting:
            _insert_in_order(self.queued[ticket.service], ticket)
            if ticket.priority:
                _insert_in_order(self.queued_priority[ticket.service], ticket)
            else:
                self.queued_priority[ticket.service].pop(ticket.id, None)
        if ticket.status == SKIPPED:
            self.missed[ticket.id] = ticket
        else:
            self.missed.pop(ticket.id, None)

    def _index(self) -> None:
        self.active = {t.id: t for t in self.tickets.values() if t.status in ACTIVE}
        self.queued = {code: {} for code in self.site.services}
        self.queued_priority = {code: {} for code in self.site.services}
        self.missed = {t.id: t for t in self.active.values() if t.status == SKIPPED}
        for t in sorted(self.active.values(), key=_queue_order):
            if t.status == WAITING:
                self.queued[t.service][t.id] = t
                if t.priority:
                    self.queued_priority[t.service][t.id] = t
        self.last_number, self.issued_count = {}, {}
        for t in self.tickets.values():
            code = t.issued_service
            self.last_number[code] = max(self.last_number.get(code, 0), t.number)
            if t.status != VOIDED and not t.booking:  # bookings have their own quota
                self.issued_count[code] = self.issued_count.get(code, 0) + 1

    def _event(self, kind: str, now: float, ticket: Ticket | None = None, **kw: object) -> None:
        self.changes.events.append(
            Event(
                kind,
                now,
                ticket=ticket.id if ticket else None,
                service=ticket.service if ticket else kw.pop("service", None),  # type: ignore[arg-type]
                **kw,  # type: ignore[arg-type]
            )
        )

    def roll_day(self, now: float) -> None:
        """Start a new business day at local midnight: leftovers expire, numbering restarts.
        The day only moves forward: a clock stepped back across midnight changes nothing."""
        day = self.site.business_day(now)
        if day <= self.day:
            return
        for ticket in self.tickets.values():
            if ticket.status in (WAITING, CALLED, SKIPPED):
                ticket.status = EXPIRED
                self._touch(ticket)
                self._event("expired", now, ticket)
        for counter in self.counters.values():
            self._end_break(counter, now)
            counter.current = None
            counter.priority_streak = 0
            counter.served_today = 0
            counter.last_finished = None
            self.changes.counters.add(counter.number)
        self.changes.services.update(self.site.services)
        self.day = day
        self.changes.day = True
        self.tickets = {}
        self._index()
        self.rated = set()
        self.recent_calls = []

    def load(self, day: str, tickets: list[Ticket], next_id: int) -> None:
        """Restore today's tickets (from the store) after a restart."""
        self.day = day
        self.tickets = {t.id: t for t in tickets}
        self._index()
        self.next_id = next_id
        self.order = max((t.queue_key for t in tickets), default=0.0)

    def resume_holds(self, now: float, steady: float) -> None:
        """After a restart: each unprinted ticket keeps what was left of its hold, counted on
        the steady clock from here (its age by the wall clock, between 0 and the hold)."""
        hold = self.site.hub.unprinted_hold_s
        for ticket in self.active.values():
            if ticket.issued_steady is None:
                age = duration(ticket.issued_at, now) or 0.0
                ticket.issued_steady = steady - min(age, hold)

    def _next_place(self) -> float:
        """A place in a queue after every place given so far (the queue's own sequence)."""
        self.order = math.floor(self.order) + 1
        return self.order

    # -- lookups -----------------------------------------------------------------------
    def ticket(self, ticket_id: int) -> Ticket:
        """Today's ticket by id, or Refused(unknown_ticket)."""
        ticket = self.tickets.get(ticket_id)
        if ticket is None:
            raise Refused(
                "unknown_ticket",
                f"no ticket {ticket_id} today",
                "Tiket tidak ditemukan",
                "Ticket not found",
            )
        return ticket

    def by_label(self, label: str) -> Ticket | None:
        """Today's ticket with that printed number."""
        found = (t for t in self.active.values() if t.label == label)
        return next(found, None) or next(
            (t for t in self.tickets.values() if t.label == label), None
        )

    def counter(self, number: int) -> CounterNow:
        """A counter by number, or Refused(unknown_counter)."""
        counter = self.counters.get(number)
        if counter is None:
            raise Refused(
                "unknown_counter",
                f"counter {number} is not in the inventory",
                f"Loket {number} tidak dikenal",
                f"Unknown counter {number}",
            )
        return counter

    def _service_name(self, code: str, lang: str = "id") -> str:
        return self.site.services[code].name.get(lang)

    def _check_service(self, code: str) -> None:
        if code not in self.site.services:
            raise Refused(
                "unknown_service",
                f"service {code!r} is not in the inventory",
                "Layanan tidak dikenal",
                "Unknown service",
            )

    def waiting(self, service: str | None = None) -> list[Ticket]:
        """Waiting tickets (of one service), in queue order."""
        if service is not None:
            return list(self.queued[service].values())
        found = [t for queued in self.queued.values() for t in queued.values()]
        return sorted(found, key=_queue_order)

    def waiting_count(self, service: str) -> int:
        """How many wait for `service` (without sorting them)."""
        return len(self.queued[service])

    def skipped(self, services: tuple[str, ...]) -> list[Ticket]:
        """Skipped (no-show) tickets of these services, oldest first."""
        found = [t for t in self.missed.values() if t.service in services]
        return sorted(found, key=lambda t: t.called_at or 0)

    def services_of(self, number: int) -> tuple[str, ...]:
        """The services counter `number` serves now, in order of preference."""
        return self.assigned.get(number) or self.site.counters[number].services

    def daily_quota(self, service: str) -> int:
        """Today's ticket quota of `service` (the staff's, else the inventory's)."""
        limits = self.limits.get(service)
        return limits[0] if limits else self.site.services[service].daily_quota

    def cutoff(self, service: str) -> time | None:
        """Last time of day a ticket for `service` may be issued, if any."""
        limits = self.limits.get(service)
        if limits is None:
            return self.site.services[service].cutoff_time
        return parse_hhmm(limits[1]) if limits[1] else None

    def open_counters(self, service: str) -> int:
        """How many open counters serve `service` now (those on a break included)."""
        return sum(1 for n in self.serving[service] if self.counters[n].open)

    def serving_counters(self, service: str) -> int:
        """How many open counters serve `service` now and are not on a break."""
        return sum(1 for n in self.serving[service] if self.counters[n].serving)

    def on_break(self, service: str) -> int:
        """How many open counters of `service` have their officer on a break."""
        return sum(1 for n in self.serving[service] if self.counters[n].on_break)

    def break_return(self, service: str) -> float | None:
        """The earliest expected return from a break among the counters of `service` (None
        when none of its counters on a break gave a return time)."""
        times = [
            c.break_until
            for n in self.serving[service]
            if (c := self.counters[n]).open and c.on_break and c.break_until is not None
        ]
        return min(times, default=None)

    def pause_of(self, service: str, now: float) -> PauseWindow | None:
        """The inventory's pause of `service` in force at `now`, if any."""
        return pause_now(self.site, service, now)

    def counter_pause(self, number: int, now: float) -> PauseWindow | None:
        """The pause holding every service counter `number` serves (it can call nobody)."""
        found = [self.pause_of(code, now) for code in self.services_of(number)]
        if not found or any(w is None for w in found):
            return None
        return min(found, key=lambda w: w.end)  # type: ignore[union-attr]

    def service_open(self, code: str, now: float) -> Refused | None:
        """None when tickets may be issued for `code` now, else the refusal to give."""
        name_id, name_en = self._service_name(code), self._service_name(code, "en")
        local = self.site.local_now(now)
        span = self.site.site.hours.span(local.date())
        if code in self.closed_services or span is None:
            return Refused(
                "service_closed",
                f"service {code} is closed now",
                f"Layanan {name_id} sedang tutup",
                f"{name_en} is closed now",
            )
        opens, closes = span
        if local.time() < opens:
            at = opens.strftime("%H:%M")
            return Refused(
                "service_closed",
                f"service {code} opens at {at}",
                f"Layanan {name_id} buka pukul {at}",
                f"{name_en} opens at {at}",
            )
        cutoff = self.cutoff(code)
        last = min(closes, cutoff) if cutoff else closes
        if local.time() >= last:
            at = last.strftime("%H:%M")
            return Refused(
                "cutoff_passed",
                f"tickets for {code} end at {at}",
                f"Pengambilan antrian {name_id} ditutup pukul {at}",
                f"Tickets for {name_en} end at {at}",
            )
        pause = self.pause_of(code, now)
        if pause is not None and not pause.pause.issuing(code):
            return self._paused(code, pause)
        return None

    def _paused(self, code: str, pause: PauseWindow) -> Refused:
        at = self.site.local_now(pause.end).strftime("%H:%M")
        name = pause.pause.name
        return Refused(
            "paused",
            f"service {code} is in pause {pause.id!r} until {at}",
            f"{name.get('id')}: layanan {self._service_name(code)} dilanjutkan pukul {at}",
            f"{name.get('en')}: {self._service_name(code, 'en')} resumes at {at}",
        )

    def issued_today(self, service: str) -> int:
        """Tickets issued today for `service` (voided ones give their quota back)."""
        return self.issued_count.get(service, 0)

    def quota_left(self, service: str) -> int:
        """How many more tickets `service` may issue today (never beyond number 999)."""
        quota = self.daily_quota(service)
        numbers_left = 999 - self.last_number.get(service, 0)
        return max(0, min(quota - self.issued_today(service), numbers_left))

    def estimate(self, service: str, ahead: int, now: float) -> int | None:
        """Seconds of waiting for someone with `ahead` people before them, the inventory's
        pauses counted (protocol.pauses.wait_estimate). None when no counter serves the
        service now and none is expected back from a break: no time is promised then."""
        return self.estimates(service, 1, now, first=ahead)[0]

    def estimates(
        self, service: str, places: int, now: float, first: int = 0
    ) -> tuple[int | None, ...]:
        """`estimate` for the places `first`, `first` + 1, ... of the queue (one walk)."""
        return wait_estimates(
            self.site,
            service,
            places=places,
            first=first,
            avg_service_s=self.avg_service_s[service],
            serving=self.serving_counters(service),
            now=now,
            resumes_at=self.break_return(service),
        )

    # -- commands ----------------------------------------------------------------------
    def issue(
        self,
        service: str,
        *,
        priority: str | None,
        device: str,
        now: float,
        token: str,
        lang: str = "id",
        steady: float | None = None,
        booking: str | None = None,
    ) -> Ticket:
        """A new ticket: the service's prefix + 3 digits, numbered per service per day, placed
        after every ticket in the queue. `steady`: the steady clock now (for the hold).
        `booking`: a checked-in reservation's code: its seat was its quota (the walk-in quota
        and the cut-off are not its), it still needs the service open and a number left."""
        self.roll_day(now)
        self._check_service(service)
        refusal = self.service_open(service, now)
        if refusal is not None and not (booking and refusal.code == "cutoff_passed"):
            raise refusal
        if booking and self.last_number.get(service, 0) >= 999:
            raise Refused(
                "quota_reached",
                f"{service} has used every ticket number today",
                f"Nomor antrian {self._service_name(service)} hari ini sudah habis",
                f"{self._service_name(service, 'en')} has no numbers left today",
            )
        if not booking and self.quota_left(service) <= 0:
            quota = self.daily_quota(service)
            raise Refused(
                "quota_reached",
                f"daily quota of {quota} for {service} is used up",
                f"Kuota antrian {self._service_name(service)} hari ini sudah habis",
                f"Today's quota for {self._service_name(service, 'en')} is used up",
            )
        number = self.last_number.get(service, 0) + 1
        prefix = self.site.services[service].prefix
        ticket = Ticket(
            id=self.next_id,
            day=self.day,
            issued_service=service,
            number=number,
            label=f"{prefix}{number:03d}",
            service=service,
            priority=priority,
            status=WAITING,
            queue_key=self._next_place(),
            issued_at=now,
            token=token,
            source=device,
            lang=lang,
            booking=booking,
            issued_steady=now if steady is None else steady,
        )
        self.next_id += 1
        self.tickets[ticket.id] = ticket
        self.last_number[service] = number
        if not booking:
            self.issued_count[service] = self.issued_count.get(service, 0) + 1
        self._touch(ticket)
        self._event("issued", now, ticket, detail=device)
        if booking:
            self._event("checked_in", now, ticket, detail=booking)
        if priority:
            self._event("priority_granted", now, ticket, detail=f"{priority} by {device}")
        return ticket

    def people_ahead(self, ticket: Ticket) -> int:
        """Waiting tickets of the same service that will be called before this one."""
        queued, priority = self.queued[ticket.service], self.queued_priority[ticket.service]
        if ticket.id in queued:  # read off the ordered indexes (a new ticket is their last)
            if ticket.priority:
                return _before(priority, ticket.id)
            if next(reversed(queued)) == ticket.id:
                return len(queued) - 1  # everybody waiting is ahead of the newest regular one
            earlier = takewhile(lambda t: t.id != ticket.id, queued.values())
            return len(priority) + sum(1 for t in earlier if not t.priority)
        mine = _queue_order(ticket)
        return sum(
            1
            for t in self.queued[ticket.service].values()
            if t.id != ticket.id
            and (
                bool(t.priority) > bool(ticket.priority)
                or (bool(t.priority) == bool(ticket.priority) and _queue_order(t) < mine)
            )
        )

    def call_order(self, service: str) -> list[Ticket]:
        """The service's waiting tickets in the order people_ahead counts them: each one's
        index is its people_ahead (priority ones first, then the regular ones)."""
        priority = list(self.queued_priority[service].values())
        return priority + [t for t in self.queued[service].values() if not t.priority]

    def _open_counter(self, number: int) -> CounterNow:
        counter = self.counter(number)
        if not counter.open:
            raise Refused(
                "counter_closed",
                f"counter {number} is closed; open it first",
                f"Loket {number} tutup. Tekan BUKA dahulu.",
                f"Counter {number} is closed. Press OPEN first.",
            )
        return counter

    def _current(self, counter: CounterNow) -> Ticket:
        if counter.current is None:
            raise Refused(
                "no_ticket",
                f"counter {counter.number} has no called ticket",
                "Belum ada nomor yang dipanggil",
                "No ticket is called at this counter",
            )
        return self.tickets[counter.current]

    def _finish_current(self, counter: CounterNow, now: float) -> None:
        if counter.current is None:
            return
        ticket = self.tickets[counter.current]
        ticket.status = DONE
        ticket.finished_at = now
        counter.current = None
        counter.idle_since = now
        counter.served_today += 1
        counter.last_finished, counter.last_finished_at = ticket.id, now
        self._touch(ticket)
        self.changes.counters.add(counter.number)
        self._event("finished", now, ticket, counter=counter.number, officer=counter.officer)
        served = duration(ticket.started_at, now)
        if served is not None:
            self._learn(ticket.service, served)

    def _learn(self, service: str, sample: float) -> None:
        sample = min(max(sample, MIN_SAMPLE_S), MAX_SAMPLE_S)
        alpha = 2 / (self.site.hub.service_time_window + 1)
        self.avg_service_s[service] += alpha * (sample - self.avg_service_s[service])
        self.changes.stats.add(service)

    def _call(self, counter: CounterNow, ticket: Ticket, now: float, kind: str) -> Ticket:
        ticket.status = CALLED
        ticket.counter = counter.number
        ticket.officer = counter.officer
        ticket.called_at = now
        if kind != "recalled":
            ticket.started_at = now
        if ticket.first_called_at is None:
            ticket.first_called_at = now
            ticket.queue_key = math.floor(self.order) + 0.5  # see Ticket: a transfer's place
        ticket.call_count += 1
        counter.current = ticket.id
        counter.call_seq += 1
        self._touch(ticket)
        self.changes.counters.add(counter.number)
        self._event(
            kind,
            now,
            ticket,
            counter=counter.number,
            officer=counter.officer,
            detail=str(counter.call_seq),
        )
        others = [c for c in self.recent_calls if c[0] != ticket.id][:9]
        self.recent_calls = [(ticket.id, counter.number, counter.call_seq, now), *others]
        return ticket

    def callable_now(self, ticket: Ticket, steady: float) -> bool:
        """False for a kiosk's ticket not yet reported printed, during the hold after issue
        (measured on the steady clock: a wall clock stepped back does not lengthen it)."""
        hold = self.site.hub.unprinted_hold_s
        if ticket.printed or ticket.issued_steady is None or hold <= 0:
            return True
        if steady - ticket.issued_steady >= hold:
            return True
        device = self.site.devices.get(ticket.source)
        return device is None or device.role != "kiosk"

    def _firsts(
        self, number: int, steady: float, now: float
    ) -> tuple[Ticket | None, Ticket | None]:
        """The first callable priority ticket and the first callable regular one for counter
        `number`, in the call policy's order (one pass over its services' queues; services
        in a pause are not called)."""
        by_counter_order = self.site.hub.call_policy == "counter_order"
        best: list[Ticket | None] = [None, None]  # regular, priority
        keys: list[tuple[int, float, int] | None] = [None, None]
        for order, code in enumerate(self.services_of(number)):
            if self.site.pauses and self.pause_of(code, now) is not None:
                continue
            rank = order if by_counter_order else 0
            for slot, in_order in ((1, self.queued_priority[code]), (0, self.queued[code])):
                for t in in_order.values():
                    if (slot == 0 and t.priority) or not self.callable_now(t, steady):
                        continue
                    key = (rank, t.queue_key, t.id)
                    known = keys[slot]
                    if known is None or key < known:
                        best[slot], keys[slot] = t, key
                    break  # the first callable one is this service's best of its kind
        return best[1], best[0]

    def call_next(self, number: int, now: float, steady: float | None = None) -> Ticket | None:
        """Finish the current ticket and call the next one (None: nobody is waiting).
        `steady`: the steady clock now (for the hold on unprinted tickets; default `now`)."""
        self.roll_day(now)
        counter = self._open_counter(number)
        priority, regular = self._firsts(number, now if steady is None else steady, now)
        nothing = priority is None and regular is None
        if counter.current is None and nothing and not counter.on_break:
            pause = self.counter_pause(number, now)
            if pause is not None:
                raise self._paused(self.services_of(number)[0], pause)
            raise Refused(
                "queue_empty",
                f"nobody waits for counter {number}'s services",
                "Tidak ada antrian menunggu",
                "Nobody is waiting",
            )
        self._end_break(counter, now)  # NEXT is the officer back at the counter
        self._finish_current(counter, now)
        self.changes.counters.add(number)
        if priority is None and regular is None:
            return None
        # Priority tickets go first, but after `priority_ratio` of them in a row a regular one.
        take_priority = priority is not None and (
            regular is None or counter.priority_streak < self.site.hub.priority_ratio
        )
        counter.priority_streak = counter.priority_streak + 1 if take_priority else 0
        ticket = priority if take_priority else regular
        assert ticket is not None
        return self._call(counter, ticket, now, "called")

    def recall(self, number: int, now: float) -> Ticket:
        """Call the current ticket again; the call sequence grows so screens announce it."""
        counter = self._open_counter(number)
        return self._call(counter, self._current(counter), now, "recalled")

    def skip(self, number: int, now: float) -> Ticket:
        """The called citizen did not come: the ticket goes to the recallable no-show list."""
        counter = self._open_counter(number)
        ticket = self._current(counter)
        ticket.status = SKIPPED
        counter.current, counter.idle_since = None, now
        self._touch(ticket)
        self.changes.counters.add(number)
        self._event("skipped", now, ticket, counter=number, officer=counter.officer)
        return ticket

    def call_skipped(self, number: int, label: str, now: float) -> Ticket:
        """Call a no-show ticket back to this counter (finishing the current one)."""
        counter = self._open_counter(number)
        ticket = self.by_label(label)
        services = self.services_of(number)
        if ticket is None or ticket.status != SKIPPED or ticket.service not in services:
            raise Refused(
                "bad_state",
                f"{label} is not on counter {number}'s no-show list",
                f"Nomor {label} tidak ada di daftar terlewat",
                f"{label} is not on the missed list",
            )
        pause = self.pause_of(ticket.service, now)
        if pause is not None:
            raise self._paused(ticket.service, pause)
        self._end_break(counter, now)
        self._finish_current(counter, now)
        return self._call(counter, ticket, now, "called_back")

    def transfer(self, number: int, service: str, now: float) -> Ticket:
        """Send the current ticket to another service; it keeps its number."""
        counter = self._open_counter(number)
        self._check_service(service)
        ticket = self._current(counter)
        if service not in self.site.counters[number].transfer_to:
            raise Refused(
                "not_transferable",
                f"counter {number} may not transfer to {service}",
                f"Tidak dapat dialihkan ke {self._service_name(service)}",
                f"Cannot transfer to {self._service_name(service, 'en')}",
            )
        self.changes.services.add(ticket.service)
        placement = self.site.hub.transfer_placement
        if placement == "front":
            ahead = self.waiting(service)
            ticket.queue_key = (ahead[0].queue_key - 1) if ahead else self._next_place()
        elif placement == "back":
            ticket.queue_key = self._next_place()
        # after_first_call: its queue_key from its first call (ahead of tickets issued after)
        ticket.service = service
        ticket.status = WAITING
        ticket.counter = None
        ticket.transfers += 1
        counter.current, counter.idle_since = None, now
        self._touch(ticket)
        self.changes.counters.add(number)
        self._event("transferred", now, ticket, counter=number, officer=counter.officer)
        return ticket

    def finish(self, number: int, now: float) -> Ticket:
        """The current ticket is served; the counter is idle."""
        counter = self._open_counter(number)
        ticket = self._current(counter)
        self._finish_current(counter, now)
        return ticket

    def void(self, ticket_id: int, device: str, now: float) -> Ticket:
        """The kiosk could not print this ticket: it leaves the queue, its quota comes back."""
        ticket = self.ticket(ticket_id)
        if device not in ("hub", ticket.source):
            raise Refused(
                "forbidden",
                f"{device} did not issue ticket {ticket_id}",
                "Tiket bukan dari perangkat ini",
                "Ticket not issued by this device",
            )
        if ticket.status == VOIDED:
            return ticket
        if ticket.status != WAITING:
            raise Refused(
                "bad_state",
                f"ticket {ticket.label} is {ticket.status}; only waiting tickets can be voided",
                "Tiket sudah diproses",
                "Ticket is already being served",
            )
        ticket.status = VOIDED
        if not ticket.booking:
            self.issued_count[ticket.issued_service] -= 1
        self._touch(ticket)
        self._event("voided", now, ticket, detail=device)
        return ticket

    def printed(self, ticket_id: int) -> Ticket:
        """The kiosk confirms the ticket came out of the printer."""
        ticket = self.ticket(ticket_id)
        ticket.printed = True
        self.changes.tickets[ticket.id] = ticket
        return ticket

    def open_counter(self, number: int, officer: str, now: float) -> CounterNow:
        """An officer is on duty here; the counter takes calls."""
        self.roll_day(now)
        counter = self.counter(number)
        self._end_break(counter, now)
        if not counter.open or counter.idle_since is None:
            counter.idle_since = now
        counter.open, counter.officer = True, officer
        self.changes.counters.add(number)
        self.changes.services.update(self.services_of(number))
        self._event("opened", now, counter=number, officer=officer)
        return counter

    def close_counter(self, number: int, now: float) -> CounterNow:
        """The officer is away: the current ticket is finished and no calls come here."""
        counter = self.counter(number)
        self._end_break(counter, now)
        self._finish_current(counter, now)
        counter.open = False
        self.changes.counters.add(number)
        self.changes.services.update(self.services_of(number))
        self._event("closed", now, counter=number, officer=counter.officer)
        return counter

    def start_break(
        self, number: int, reason: str, now: float, minutes: int | None = None
    ) -> CounterNow:
        """The officer steps away: the current ticket is finished and no calls come here until
        the break ends. `minutes`: the expected length (else the inventory's for the reason)."""
        counter = self._open_counter(number)
        self._end_break(counter, now)  # a new reason or return time replaces the break
        self._finish_current(counter, now)
        if minutes is None:
            minutes = self.site.hub.break_minutes.get(reason)  # type: ignore[call-overload]
        counter.break_reason, counter.break_since = reason, now
        counter.break_until = now + minutes * 60 if minutes else None
        self.changes.counters.add(number)
        self.changes.services.update(self.services_of(number))
        detail = reason if minutes is None else f"{reason},{minutes}"
        self._event("break_started", now, counter=number, officer=counter.officer, detail=detail)
        return counter

    def end_break(self, number: int, now: float) -> CounterNow:
        """The officer is back: the counter takes calls again."""
        counter = self._open_counter(number)
        if not counter.on_break:
            raise Refused(
                "bad_state",
                f"counter {number} is not on a break",
                f"Loket {number} tidak sedang istirahat",
                f"Counter {number} is not on a break",
            )
        self._end_break(counter, now)
        return counter

    def _end_break(self, counter: CounterNow, now: float) -> None:
        if not counter.on_break:
            return
        took = round(duration(counter.break_since, now) or 0)
        self._event(
            "break_ended",
            now,
            counter=counter.number,
            officer=counter.officer,
            detail=f"{counter.break_reason},{took}",
        )
        counter.break_reason = counter.break_since = counter.break_until = None
        counter.idle_since = now
        self.changes.counters.add(counter.number)
        self.changes.services.update(self.services_of(counter.number))

    def update_pauses(self, now: float) -> bool:
        """Note the inventory's pauses that began or ended since the last look (events
        `pause_started` / `pause_ended`; the states of the services and counters concerned
        change). True when any did."""
        current = {w.id: w for w in pauses_now(self.site, now)}
        started = set(current) - self.active_pauses
        ended = self.active_pauses - set(current)
        for pause_id in sorted(started):
            self._event("pause_started", now, detail=pause_id)
        for pause_id in sorted(ended):
            self._event("pause_ended", now, detail=pause_id)
        changed = started | ended
        for pause_id in changed:
            pause = self.site.pauses.get(pause_id)
            codes = [c for c in self.site.services if pause is None or pause.covers(c)]
            self.changes.services.update(codes)
            self.changes.counters.update(n for c in codes for n in self.serving[c])
        self.active_pauses = set(current)
        return bool(changed)

    def revoke_priority(self, ticket_id: int, by: str, now: float) -> Ticket:
        """A supervisor takes priority away; the ticket waits among the regular ones."""
        ticket = self.ticket(ticket_id)
        if not ticket.priority:
            raise Refused(
                "bad_state",
                f"ticket {ticket.label} has no priority",
                "Tiket ini bukan prioritas",
                "This ticket has no priority",
            )
        if ticket.status not in (WAITING, SKIPPED):
            raise Refused(
                "bad_state",
                f"ticket {ticket.label} is {ticket.status}; only a waiting one can lose priority",
                "Hanya tiket yang masih menunggu yang dapat dicabut prioritasnya",
                "Only a waiting ticket can lose its priority",
            )
        ticket.priority = None
        self._touch(ticket)
        self._event("priority_revoked", now, ticket, detail=by)
        return ticket

    def rate(self, number: int, score: int, now: float) -> Rating:
        """A rating-pad press: for the ticket being served, or the one just finished."""
        counter = self.counter(number)
        window = self.site.hub.rating_window_s
        if counter.current is not None:
            ticket = self.tickets[counter.current]
        elif (
            counter.last_finished is not None
            and counter.last_finished_at is not None
            and now - counter.last_finished_at <= window
        ):
            ticket = self.tickets[counter.last_finished]
        else:
            raise Refused(
                "rating_closed",
                f"no ticket to rate at counter {number}",
                "Waktu penilaian sudah habis",
                "The rating time is over",
            )
        if ticket.id in self.rated:
            raise Refused(
                "already_rated",
                f"ticket {ticket.label} was rated already",
                "Terima kasih, penilaian Anda sudah tercatat",
                "Thank you, your rating is already recorded",
            )
        officer = ticket.officer or counter.officer
        rating = Rating(ticket.id, ticket.label, number, officer, score, now)
        self.rated.add(ticket.id)
        self.changes.ratings.append(rating)
        self._event("rated", now, ticket, counter=number, officer=officer, detail=str(score))
        key = officer or f"counter-{number}"
        streak = self.complaint_streak.get(key, 0) + 1 if score == 1 else 0
        self.complaint_streak[key] = streak
        limit = self.site.hub.complaint_alert_after
        if streak and streak % limit == 0:
            alert = AlertRaised(complaint_alert_id(number, key, now), number, key, streak, now)
            self.changes.alerts.append(alert)
            self._event("alert_raised", now, counter=number, officer=key, detail=alert.id)
        return rating

    def close_service(self, code: str, closed: bool, now: float, by: str = "") -> None:
        """Staff close (or reopen) a service for new tickets."""
        self._check_service(code)
        (self.closed_services.add if closed else self.closed_services.discard)(code)
        self.changes.services.add(code)
        self.changes.closed_services = True
        kind = "service_closed" if closed else "service_opened"
        self._event(kind, now, service=code, officer=by or None)

    def assign(self, number: int, services: tuple[str, ...], now: float, by: str = "") -> None:
        """Staff change the services counter `number` serves, in order of preference (the
        inventory's list again clears the change). Its current ticket stays with it."""
        self.counter(number)
        for code in services:
            self._check_service(code)
        if not services or len(set(services)) != len(services):
            raise Refused(
                "invalid",
                f"counter {number} needs one or more services, each once: {list(services)}",
                "Pilih satu layanan atau lebih, masing-masing sekali",
                "Choose one or more services, each once",
            )
        before = self.services_of(number)
        if services == self.site.counters[number].services:
            self.assigned.pop(number, None)
        else:
            self.assigned[number] = services
        self.serving = {code: self._serving(code) for code in self.site.services}
        self.changes.counters.add(number)
        self.changes.services.update(before, services)
        self.changes.settings = True
        self._event("assigned", now, counter=number, officer=by or None, detail=",".join(services))

    def set_limits(
        self, code: str, daily_quota: int, cutoff: str | None, now: float, by: str = ""
    ) -> None:
        """Staff change a service's daily quota and cut-off (the inventory's clear the change)."""
        self._check_service(code)
        if not 1 <= daily_quota <= 999:
            raise Refused(
                "invalid",
                f"daily quota {daily_quota} of {code} is not within 1..999",
                "Kuota harian harus antara 1 dan 999",
                "The daily quota must be within 1..999",
            )
        if cutoff is not None:
            parse_hhmm(cutoff)
        spec = self.site.services[code]
        if (daily_quota, cutoff) == (spec.daily_quota, spec.cutoff):
            self.limits.pop(code, None)
        else:
            self.limits[code] = (daily_quota, cutoff)
        self.changes.services.add(code)
        self.changes.settings = True
        self._event(
            "limits", now, service=code, officer=by or None, detail=f"{daily_quota},{cutoff or ''}"
        )

    def sound_of(self, zone: str) -> Sound:
        """How zone `zone`'s screens speak now (the staff's settings, else the inventory's)."""
        return self.sound.get(zone) or self._inventory_sound(zone)

    def _inventory_sound(self, zone: str) -> Sound:
        spec = self.site.zones[zone]
        return Sound(spec.speech, spec.volume, spec.number_reading)

    def set_sound(self, zone: str, sound: Sound, now: float, by: str = "") -> None:
        """Staff change how a zone's screens speak (the inventory's values clear the change)."""
        if zone not in self.site.zones:
            raise Refused(
                "unknown_zone",
                f"zone {zone!r} is not in the inventory",
                "Zona tidak dikenal",
                "Unknown zone",
            )
        if sound == self._inventory_sound(zone):
            self.sound.pop(zone, None)
        else:
            self.sound[zone] = sound
        self.changes.zones.add(zone)
        self.changes.settings = True
        detail = f"{'on' if sound.speech else 'off'},{sound.volume:.2f},{sound.number_reading}"
        self._event("sound", now, officer=by or None, detail=f"{zone}:{detail}")

    def restore_settings(
        self,
        assigned: dict[int, tuple[str, ...]],
        limits: dict[str, tuple[int, str | None]],
        sound: dict[str, Sound],
    ) -> list[str]:
        """Put back the staff's changes kept in the store; those the inventory no longer
        allows (a counter, service or zone removed since) are left out and described."""
        dropped = []
        self.assigned, self.limits, self.sound = {}, {}, {}
        for number, services in assigned.items():
            unknown = [c for c in services if c not in self.site.services]
            if number not in self.site.counters or unknown or not services:
                dropped.append(f"counter {number} serving {list(services)}")
            else:
                self.assigned[number] = services
        for code, value in limits.items():
            if code in self.site.services:
                self.limits[code] = value
            else:
                dropped.append(f"limits of service {code!r}")
        for zone, value in sound.items():
            if zone in self.site.zones:
                self.sound[zone] = value
            else:
                dropped.append(f"sound of zone {zone!r}")
        self.serving = {code: self._serving(code) for code in self.site.services}
        return dropped

    def _serving(self, code: str) -> tuple[int, ...]:
        return tuple(n for n in self.site.counters if code in self.services_of(n))


def _queue_order(ticket: Ticket) -> tuple[float, int]:
    return ticket.queue_key, ticket.id


def _before(queued: dict[int, Ticket], ticket_id: int) -> int:
    """How many tickets stand before `ticket_id` in `queued` (kept in queue order)."""
    if next(reversed(queued)) == ticket_id:
        return len(queued) - 1
    return sum(1 for _ in takewhile(lambda t: t.id != ticket_id, queued.values()))


def _insert_in_order(queued: dict[int, Ticket], ticket: Ticket) -> None:
    """Put a waiting ticket into its place in `queued` (kept in queue order). New tickets
    go to the end at once; a transferred one placed ahead re-sorts the queue."""
    if ticket.id in queued:
        return  # still waiting where it was: its queue key has not changed
    if queued and _queue_order(queued[next(reversed(queued))]) > _queue_order(ticket):
        ordered = sorted([*queued.values(), ticket], key=_queue_order)
        queued.clear()
        queued.update((t.id, t) for t in ordered)
    else:
        queued[ticket.id] = ticket


def complaint_alert_id(counter: int, officer: str, at: float) -> str:
    """The id of a complaints alert: within the protocol's 40 characters of [a-z0-9_-] for
    any officer name (the name itself is in the alert's text), distinct per officer."""
    digest = hashlib.sha256(officer.encode()).hexdigest()[:8]
    return f"complaints-{counter}-{round(at)}-{digest}"
