"""The screen's model of the site: the hub's retained state as last seen, and which calls are new.

A display holds no queue state of its own; it keeps the latest CounterState, ServiceState,
SiteState and its zone's FeaturedState and ZoneSound the hub published and decides when a call
must be announced:

    model = ScreenModel(site, counters=site_counters_of_zone)
    update = model.apply(model.parse(topic, payload), now=time.time())
    for call in update.new_calls:      # spoken exactly once per call_seq
        announcer.announce(...)

A call is new exactly when a counter's `call_seq` grows beyond the last one this screen saw
and `called_at` is within `max_age_s` of now. So a replay of retained state after a reconnect
is shown but never spoken again, a recall (call_seq + 1) is spoken again, and a call this
screen missed while disconnected is spoken if it is recent. The first retained state of a
counter after the screen starts is what was called before it started: shown, never spoken
(a display restarted a second after a call must not announce it a second time).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field

from protocol import messages as m
from protocol.errors import BadMessage
from protocol.site import Site
from protocol.topics import Topics

log = logging.getLogger("mpp.display")

StateMessage = m.CounterState | m.ServiceState | m.SiteState | m.FeaturedState | m.ZoneSound
STATE_TOPICS: dict[str, type[StateMessage]] = {
    "counter_state": m.CounterState,
    "service_state": m.ServiceState,
    "site_state": m.SiteState,
    "featured": m.FeaturedState,
    "zone_sound": m.ZoneSound,
}


@dataclass(frozen=True)
class Call:
    """A ticket called to a counter; `call_seq` tells calls (and recalls) apart."""

    ticket: str
    counter: int
    service: str | None
    call_seq: int
    called_at: float
    priority: bool = False  # a priority ticket (UU 25/2009): marked on the screens
    # Where it sorts among the recent calls (newest highest): its call time, or for a call that
    # arrives live, just above every call known before it (a hub clock stepped back must not
    # put the newest call below older ones).
    order: float | None = field(default=None, compare=False, repr=False)

    @property
    def rank(self) -> float:
        """The sort key of the recent-calls list (higher: newer)."""
        return self.called_at if self.order is None else self.order

    @property
    def key(self) -> tuple[int, int]:
        """(counter, call_seq): unique per call or recall."""
        return (self.counter, self.call_seq)


@dataclass(frozen=True)
class Update:
    """What one state message did to the model: applied or ignored (and why), calls to speak."""

    kind: str
    applied: bool
    new_calls: tuple[Call, ...] = ()
    note: str = ""


class ScreenModel:
    """The last retained state per counter and service, the site summary and recent calls.

    `counters` are the counters this screen follows (shows and announces); default: all.
    """

    def __init__(
        self,
        site: Site,
        counters: Iterable[int] | None = None,
        *,
        max_age_s: float = 30.0,
        recent_limit: int = 6,
    ) -> None:
        self.site = site
        self.topics = Topics(site.site.id)
        self.follows = frozenset(site.counters if counters is None else counters)
        self.max_age_s = max_age_s
        self.recent_limit = recent_limit
        self.counters: dict[int, m.CounterState] = {}
        self.services: dict[str, m.ServiceState] = {}
        self.summary: m.SiteState | None = None
        self.featured: dict[str, m.FeaturedState] = {}  # zone -> the admin's featured products
        self.sound: dict[str, m.ZoneSound] = {}  # zone -> how its screens speak (staff's)
        self.clock_offset = 0.0  # hub clock minus ours, learnt from live site states
        self._call_seq: dict[int, int] = {}
        self._recent: list[Call] = []
        self._newest_rank = 0.0  # the highest rank of a call remembered so far

    # -- input -------------------------------------------------------------------------
    def parse(self, topic: str, payload: bytes) -> StateMessage:
        """Decode a state message and check it against its topic and the inventory.

        Raises BadMessage (with a specific code) for anything a screen must not show.
        """
        parsed = self.topics.parse(topic)
        if parsed is None or parsed[0] not in STATE_TOPICS:
            raise BadMessage("invalid", f"{topic!r} is not a state topic of this site")
        name, parts = parsed
        message = m.decode(STATE_TOPICS[name], payload)
        if isinstance(message, m.CounterState):
            if parts.get("counter") != str(message.counter):
                raise BadMessage("invalid", f"payload counter {message.counter} on topic {topic!r}")
            if message.counter not in self.site.counters:
                raise BadMessage(
                    "unknown_counter", f"counter {message.counter} is not in the inventory"
                )
        elif isinstance(message, m.ServiceState):
            if parts.get("service") != message.service:
                raise BadMessage(
                    "invalid", f"payload service {message.service!r} on topic {topic!r}"
                )
            if message.service not in self.site.services:
                raise BadMessage(
                    "unknown_service", f"service {message.service!r} is not in the inventory"
                )
        elif isinstance(message, m.FeaturedState | m.ZoneSound):
            if parts.get("zone") != message.zone:
                raise BadMessage("invalid", f"payload zone {message.zone!r} on topic {topic!r}")
            if message.zone not in self.site.zones:
                raise BadMessage("invalid", f"zone {message.zone!r} is not in the inventory")
        return message

    def apply(self, message: StateMessage, now: float, retained: bool = False) -> Update:
        """Take in one state message received at `now` (epoch seconds, this screen's clock)."""
        if isinstance(message, m.CounterState):
            return self._apply_counter(message, now, retained)
        if isinstance(message, m.ServiceState):
            known = self.services.get(message.service)
            if known is not None and message.seq <= known.seq:
                return Update("service", False, note=f"seq {message.seq} <= {known.seq}")
            self.services[message.service] = message
            return Update("service", True)
        if isinstance(message, m.FeaturedState | m.ZoneSound):
            kind, held = (
                ("featured", self.featured)
                if isinstance(message, m.FeaturedState)
                else ("sound", self.sound)
            )
            # Equal seq: the hub republished after a restart; it may hold a change it had not
            # sent before it stopped, so take it (an unchanged setting changes nothing).
            known_zone = held.get(message.zone)
            if known_zone is not None and message.seq < known_zone.seq:
                return Update(kind, False, note=f"seq {message.seq} < {known_zone.seq}")
            held[message.zone] = message  # type: ignore[assignment]
            return Update(kind, True)
        known_site = self.summary
        if known_site is not None and message.seq <= known_site.seq:
            return Update("site", False, note=f"seq {message.seq} <= {known_site.seq}")
        self.summary = message
        if not retained:
            self.clock_offset = message.now - now
        if message.day == self.site.business_day(now + self.clock_offset):
            for info in message.recent_calls:
                if info.counter in self.follows:
                    self._remember(
                        Call(
                            info.ticket,
                            info.counter,
                            info.service,
                            info.call_seq,
                            info.called_at,
                            info.priority,
                        )
                    )
        return Update("site", True)

    def _apply_counter(self, state: m.CounterState, now: float, retained: bool) -> Update:
        number = state.counter
        known = self.counters.get(number)
        if known is not None and state.seq <= known.seq:
            return Update("counter", False, note=f"seq {state.seq} <= {known.seq}")
        self.counters[number] = state
        last = self._call_seq.get(number)
        self._call_seq[number] = state.call_seq
        # A lower call_seq in a newer state means the hub's counters were reset: a new series.
        grew = last is None or state.call_seq != last
        if not grew or state.ticket is None or state.called_at is None:
            return Update("counter", True)
        if last is not None and state.call_seq < last:
            log.warning(
                "counter call sequence went back; taking it as a new series",
                extra={"counter": number, "call_seq": state.call_seq, "was": last},
            )
        # A live call is the newest call there is, whatever time the hub's clock stamped on it.
        order = None if retained else max(state.called_at, self._newest_rank + 0.001)
        call = Call(
            state.ticket, number, state.service, state.call_seq, state.called_at, state.priority,
            order,
        )  # fmt: skip
        if number not in self.follows:
            return Update("counter", True)
        self._remember(call)
        if last is None and retained:
            note = f"call {call.ticket} was made before this screen started: not spoken"
            return Update("counter", True, note=note)
        age = now + self.clock_offset - state.called_at
        if -self.max_age_s <= age <= self.max_age_s:
            return Update("counter", True, new_calls=(call,))
        return Update("counter", True, note=f"call {call.ticket} is {age:.0f}s old: not spoken")

    def _remember(self, call: Call) -> None:
        calls = {c.key: c for c in self._recent}
        calls.setdefault(call.key, call)
        self._newest_rank = max(self._newest_rank, call.rank)
        newest_first = sorted(calls.values(), key=lambda c: (-c.rank, -c.call_seq))
        seen: set[str] = set()
        recent: list[Call] = []
        for item in newest_first:
            if item.ticket not in seen:
                seen.add(item.ticket)
                recent.append(item)
        self._recent = recent[: self.recent_limit]

    # -- what the screen shows ---------------------------------------------------------
    def _today(self, moment: float, now: float) -> bool:
        return self.site.business_day(moment) == self.site.business_day(now + self.clock_offset)

    def recent(self, now: float) -> tuple[Call, ...]:
        """Today's latest calls of the followed counters, newest first, one per ticket."""
        return tuple(c for c in self._recent if self._today(c.called_at, now))

    def newest(self, now: float) -> Call | None:
        """The most recent call today, shown very large in the lobby."""
        recent = self.recent(now)
        return recent[0] if recent else None

    def shown_ticket(self, counter: int, now: float) -> str | None:
        """The ticket a counter tile shows: its current call if it was made today."""
        state = self.counters.get(counter)
        if state is None or state.ticket is None or state.called_at is None:
            return None
        return state.ticket if self._today(state.called_at, now) else None
