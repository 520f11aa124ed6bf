"""Every MQTT message shape of the protocol, and the one path to encode and decode them.

Payloads are UTF-8 JSON objects with a schema version `v`. A request id and the reply topic
travel inside the payload, so the protocol holds on MQTT 3.1.1 brokers too; on MQTT 5 the same
values are mirrored in the Response Topic / Correlation Data properties.

    cmd = CallNext(request_id="9f2c...", device="caller-03", counter=3)
    raw = encode(cmd)                       # bytes for client.publish
    again = decode(CallNext, raw)           # raises BadMessage on anything off-protocol
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from functools import cached_property
from typing import Annotated, Any, ClassVar, Literal, TypeVar, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    model_validator,
)

from protocol.errors import BadMessage

VERSION = 1
MAX_PAYLOAD_BYTES = 16 * 1024

REQUEST_ID_PATTERN = r"^[A-Za-z0-9_.:-]{8,64}$"
REQUEST_ID_RE = re.compile(REQUEST_ID_PATTERN)
RequestId = Annotated[str, StringConstraints(pattern=REQUEST_ID_PATTERN)]
DeviceId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,39}$")]
Code = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,39}$")]
TicketNumber = Annotated[str, StringConstraints(pattern=r"^[A-Z]{1,2}[0-9]{3}$")]
Score = Annotated[int, Field(ge=1, le=4)]
CounterNo = Annotated[int, Field(ge=1, le=999)]
ShortText = Annotated[str, StringConstraints(max_length=200)]
ClockTime = Annotated[str, StringConstraints(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")]

# Error codes a reply may carry (the table in docs/protocol.md is generated from this).
ERROR_CODES: dict[str, str] = {
    "bad_json": "the payload is not a UTF-8 JSON object",
    "too_large": f"the payload is larger than {MAX_PAYLOAD_BYTES} bytes",
    "unsupported_version": f"the payload's v is not {VERSION}",
    "invalid": "a field is missing, unknown or of the wrong type",
    "unknown_kind": "the command kind in the topic is not one of the protocol's",
    "forbidden": "this device may not send this command (or not for that counter)",
    "device_mismatch": "the payload's device differs from the device in the topic",
    "stale": "the command is older than the hub accepts (it was queued while offline)",
    "unknown_service": "no such service in the site inventory",
    "unknown_counter": "no such counter in the site inventory",
    "unknown_zone": "no such zone in the site inventory",
    "unknown_ticket": "no such ticket today",
    "service_closed": "the service is closed now (outside opening hours or closed by staff)",
    "quota_reached": "the service's daily quota is used up",
    "cutoff_passed": "the service's cut-off time for new tickets has passed",
    "counter_closed": "the counter is closed (no officer on duty)",
    "no_ticket": "the counter has no called ticket for this command",
    "queue_empty": "no ticket is waiting for this counter's services",
    "not_transferable": "the target service is not on this counter's transfer list",
    "bad_state": "the ticket is not in a state that allows this command",
    "already_rated": "this ticket has been rated already",
    "rating_closed": "the rating window for this ticket has closed",
    "paused": "the service (or every service of the counter) is in a pause of the inventory",
    "already_answered": "the satisfaction survey of this ticket has been answered already",
    "cancelled": "the device cancelled this request before the hub received it",
    "unknown_booking": "no booking with that code at this site",
    "other_site": "the booking is for another MPP",
    "booking_cancelled": "the booking was cancelled",
    "booking_expired": "the booking's check-in window has passed (a no-show)",
    "wrong_day": "the booking is for another day",
    "too_early": "the booking's check-in window has not opened yet",
    "booking_used": "the booking's ticket has been served already",
    "clock_unsynced": "the hub's clock is not trustworthy yet (not NTP-synchronised, and behind "
    "its last record): no tickets until it is; try again later",
    "storage_full": "the hub's disk is full: nothing was stored; send the same request again "
    "later (the hub resumes by itself when space is freed)",
    "storage_error": "the hub could not write its database: nothing was stored; send the same "
    "request again later",
    "internal": "the hub failed to apply the command; nothing was changed",
}
# Refusals after which the same request may still succeed: nothing was done, so a report
# (printed, void) refused with one of these is kept and sent again, never counted as delivered.
TRY_AGAIN_CODES = frozenset(
    {"stale", "clock_unsynced", "storage_full", "storage_error", "internal"}
)


def new_request_id() -> str:
    """A fresh, unique request id (UUID4 hex)."""
    return uuid.uuid4().hex


class Part(BaseModel):
    """Base of every payload part: closed (unknown fields are errors) and immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Message(Part):
    """Base of every top-level payload: a Part with the schema version `v`."""

    v: Literal[1] = VERSION


class Text(Part):
    """A user-facing text in Indonesian and English."""

    id: str
    en: str


# --------------------------------------------------------------------------------------
# Commands: device -> hub on mpp/v1/{site}/cmd/{device}/{kind}
# --------------------------------------------------------------------------------------
class Command(Message):
    """Common fields of every command. `kind` is the last topic level, not a field."""

    kind: ClassVar[str] = ""
    # A report of what became of a ticket (printed, or not printed: void): it is never stale,
    # the hub applies it once whenever it arrives (the ticket's fate does not expire).
    fate_report: ClassVar[bool] = False
    request_id: RequestId = Field(default_factory=new_request_id)
    device: DeviceId
    reply_to: Annotated[str, StringConstraints(max_length=200)] | None = None
    sent_at: float | None = None
    expires_at: float | None = None  # hub clock; past it the sender has given up: never apply


# The categories of priority service (UU 25/2009); their names are in protocol.texts.
Priority = Literal["elderly", "disabled", "pregnant", "child"]
PRIORITIES: tuple[str, ...] = get_args(Priority)


class IssueTicket(Command):
    """A kiosk asks for a ticket for a service (optionally with priority)."""

    kind: ClassVar[str] = "issue"
    service: Code
    priority: Priority | None = None
    lang: Literal["id", "en"] = "id"


class TicketPrinted(Command):
    """A kiosk reports that a confirmed ticket came out of the printer."""

    kind: ClassVar[str] = "printed"
    fate_report: ClassVar[bool] = True
    ticket_id: int


class VoidTicket(Command):
    """A kiosk could not print a ticket: take it out of the queue.

    Either `ticket_id` (a confirmed ticket the printer failed on) or `cancels` (the request id
    of an `issue` whose reply never came: whatever that request created is voided, and if it
    has not reached the hub yet, it never will create a ticket).
    """

    kind: ClassVar[str] = "void"
    fate_report: ClassVar[bool] = True
    ticket_id: int | None = None
    cancels: RequestId | None = None
    reason: ShortText = ""

    @model_validator(mode="after")
    def _one_target(self) -> VoidTicket:
        if (self.ticket_id is None) == (self.cancels is None):
            raise ValueError("give exactly one of ticket_id or cancels")
        return self


class CounterCommand(Command):
    """A command about one counter (the caller box's own counter)."""

    counter: CounterNo


class CallNext(CounterCommand):
    """Call the next waiting ticket to this counter (finishes the current one)."""

    kind: ClassVar[str] = "next"


class Recall(CounterCommand):
    """Call the current ticket again (its call sequence increases)."""

    kind: ClassVar[str] = "recall"


class Skip(CounterCommand):
    """The called citizen did not come: move the ticket to the recallable no-show list."""

    kind: ClassVar[str] = "skip"


class CallSkipped(CounterCommand):
    """Call a ticket from the no-show list back to this counter."""

    kind: ClassVar[str] = "call_skipped"
    ticket: TicketNumber


class Transfer(CounterCommand):
    """Send the current ticket to another service, keeping its number."""

    kind: ClassVar[str] = "transfer"
    service: Code


class Finish(CounterCommand):
    """The current ticket is served; the counter becomes idle."""

    kind: ClassVar[str] = "finish"


class OpenCounter(CounterCommand):
    """An officer is on duty at this counter."""

    kind: ClassVar[str] = "open"
    officer: Annotated[str, StringConstraints(min_length=1, max_length=60)] = "petugas"


class CloseCounter(CounterCommand):
    """The counter is closed (officer away): it gets no calls."""

    kind: ClassVar[str] = "close"


# Why an officer steps away from an open counter; their names are in protocol.texts.
BreakReason = Literal["istirahat", "sholat", "rapat", "lainnya"]
BREAK_REASONS: tuple[str, ...] = get_args(BreakReason)


class StartBreak(CounterCommand):
    """The officer takes a break: the current ticket is finished, no calls come here until
    the break ends (the next NEXT, `end_break`, OPEN or CLOSE). `minutes`: the expected length
    (the return time screens show); unset: the inventory's `hub.break_minutes` for the reason,
    if any."""

    kind: ClassVar[str] = "break"
    reason: BreakReason
    minutes: Annotated[int, Field(ge=1, le=480)] | None = None


class EndBreak(CounterCommand):
    """The officer is back from a break; the counter takes calls again."""

    kind: ClassVar[str] = "end_break"


class Rate(CounterCommand):
    """A citizen pressed a rating-pad button (4 = Sangat puas .. 1 = Tidak puas)."""

    kind: ClassVar[str] = "rate"
    score: Score


class RevokePriority(Command):
    """A supervisor takes priority away from a ticket (priority was granted wrongly)."""

    kind: ClassVar[str] = "revoke_priority"
    ticket_id: int
    by: ShortText


class AckAlert(Command):
    """A supervisor acknowledges an alert; it is cleared from the retained alert topic."""

    kind: ClassVar[str] = "ack_alert"
    alert_id: Code
    by: ShortText


class OpenService(Command):
    """Staff reopen a service for new tickets (hub-internal: the web admin)."""

    kind: ClassVar[str] = "open_service"
    service: Code
    by: ShortText


class CloseService(Command):
    """Staff close a service for new tickets; tickets already issued are still served."""

    kind: ClassVar[str] = "close_service"
    service: Code
    by: ShortText


class AssignCounter(Command):
    """Staff change which services a counter serves, in order of preference, for as long as it
    is set (the inventory's list is the default); hub-internal: the web admin sends it."""

    kind: ClassVar[str] = "assign_counter"
    counter: CounterNo
    services: tuple[Code, ...] = Field(min_length=1, max_length=64)
    by: ShortText


class SetServiceLimits(Command):
    """Staff change a service's daily quota and its last time for tickets (the inventory's are
    the default); hub-internal: the web admin sends it. `cutoff` None: until closing time."""

    kind: ClassVar[str] = "service_limits"
    service: Code
    daily_quota: int = Field(ge=1, le=999)
    cutoff: ClockTime | None = None
    by: ShortText


NumberReading = Literal["words", "digits"]


class SetZoneSound(Command):
    """Staff change how a zone's screens speak calls: on or off, volume, numbers read as words
    or digit by digit (the inventory's by default); hub-internal: the web admin sends it."""

    kind: ClassVar[str] = "zone_sound"
    zone: Code
    speech: bool
    volume: float = Field(ge=0.0, le=1.0, allow_inf_nan=False)
    number_reading: NumberReading = "words"
    by: ShortText


SURVEY_ELEMENTS = 9


class SubmitSurvey(Command):
    """A citizen's satisfaction survey (SKM, Permenpan RB 14/2017) for one served ticket.

    `scores` holds the 9 elements in the regulation's order, each 1 (tidak baik) .. 4 (sangat
    baik); hub-internal: the web survey page sends it.
    """

    kind: ClassVar[str] = "survey"
    token: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{16,64}$")]
    scores: Annotated[
        tuple[Score, ...], Field(min_length=SURVEY_ELEMENTS, max_length=SURVEY_ELEMENTS)
    ]
    comment: Annotated[str, StringConstraints(max_length=1000)] = ""


BOOKING_CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read aloud, typed
BOOKING_CODE_PATTERN = rf"^[{BOOKING_CODE_ALPHABET}]{{8}}$"
BookingCode = Annotated[str, StringConstraints(pattern=BOOKING_CODE_PATTERN)]


class CheckIn(Command):
    """A booked citizen checks in at a kiosk (code scanned from the booking's QR, or typed):
    the hub issues an ordinary ticket that joins the queue now, or gives the same ticket again
    for a code already checked in. `site`: the site the scanned QR names (None when typed)."""

    kind: ClassVar[str] = "check_in"
    code: BookingCode
    site: Code | None = None
    lang: Literal["id", "en"] = "id"


COMMANDS: dict[str, type[Command]] = {
    cls.kind: cls
    for cls in (
        IssueTicket,
        TicketPrinted,
        VoidTicket,
        CallNext,
        Recall,
        Skip,
        CallSkipped,
        Transfer,
        Finish,
        OpenCounter,
        CloseCounter,
        StartBreak,
        EndBreak,
        Rate,
        RevokePriority,
        AckAlert,
        OpenService,
        CloseService,
        AssignCounter,
        SetServiceLimits,
        SetZoneSound,
        SubmitSurvey,
        CheckIn,
    )
}


# --------------------------------------------------------------------------------------
# Replies: hub -> device on mpp/v1/{site}/reply/{device}
# --------------------------------------------------------------------------------------
class ErrorInfo(Part):
    """Why a command was refused: a code, a technical message, and a citizen-readable text."""

    code: str
    message: str
    text: Text | None = None


class TicketInfo(Part):
    """A ticket as the hub confirmed it (the kiosk prints exactly this)."""

    id: int
    number: TicketNumber
    service: Code
    priority: str | None = None
    issued_at: float
    token: str
    people_ahead: int
    est_wait_s: int | None = None  # None: no counter serves the service now (none expected)
    resumes_at: float | None = None  # a pause of the service in force: when it ends
    booking: str | None = None  # the booking code of a checked-in reservation (reservasi)
    reprint: bool = False  # the same ticket again (a booking code scanned twice)


class CallInfo(Part):
    """One call of a ticket to a counter (`priority`: a priority ticket, marked on screens)."""

    ticket: TicketNumber
    service: Code
    counter: CounterNo
    call_seq: int
    called_at: float
    priority: bool = False


class Reply(Message):
    """The hub's answer to one command; a repeat of a request id gets the first answer."""

    request_id: str
    ok: bool
    result: dict[str, Any] | None = None
    error: ErrorInfo | None = None
    hub_time: float
    sent_at: float | None = None  # echo of the command's sent_at: which attempt this answers


# --------------------------------------------------------------------------------------
# Retained state: hub -> everyone
# --------------------------------------------------------------------------------------
class BreakInfo(Part):
    """An officer's break at a counter: why, since when, and the expected return if given."""

    reason: BreakReason
    since: float
    until: float | None = None


class PauseInfo(Part):
    """A pause of the inventory's `[pauses]` in force now (e.g. Friday prayer): which, and
    when it ends (hub clock, epoch seconds)."""

    id: Code
    name: Text
    since: float
    until: float


class CounterState(Message):
    """What a counter shows now. `call_seq` grows with every call or recall at this counter."""

    seq: int
    counter: CounterNo
    open: bool
    officer: str | None = None
    call_seq: int
    ticket: TicketNumber | None = None
    ticket_id: int | None = None
    service: str | None = None
    priority: bool = False
    called_at: float | None = None
    waiting: int  # for its services when this state was published; live: the services' states
    served_today: int = 0
    # The newest no-shows of its services, oldest first (the caller box offers them to call
    # back); bounded, as every no-show of a long day would outgrow MAX_PAYLOAD_BYTES.
    skipped: Annotated[tuple[TicketNumber, ...], Field(max_length=MAX_SKIPPED_LISTED)] = ()
    services: tuple[Code, ...] = ()  # served here now, in order (the admin may change them)
    on_break: BreakInfo | None = None
    pause: PauseInfo | None = None  # every service of the counter is in this pause


class ServiceState(Message):
    """Queue of one service now.

    `est_wait_s` is the wait of a newcomer, pauses included; None means no counter serves the
    service now and none is expected back (every counter closed, or away without a return
    time): say so instead of a time. `open` says whether kiosks issue tickets now (a pause may
    let them go on issuing: `pause` set and `open` true).
    """

    seq: int
    service: Code
    open: bool
    waiting: int
    priority_waiting: int = 0
    last_issued: TicketNumber | None = None
    now_serving: tuple[TicketNumber, ...] = ()
    est_wait_s: int | None = None
    longest_wait_s: int = 0
    quota_left: int
    open_counters: int = 0  # open counters serving it, those on a break included
    serving_counters: int = 0  # open and not on a break
    on_break: int = 0  # open counters serving it whose officer is on a break
    resumes_at: float | None = None  # none serving: the earliest expected return from a break
    avg_service_s: int = 0  # the learnt average service time (estimates for a given place)
    pause: PauseInfo | None = None
    daily_quota: int = 0  # today's quota and last time for tickets (the admin may change them)
    cutoff: ClockTime | None = None


MAX_SKIPPED_LISTED = 50  # a counter's no-shows it offers to call back: the newest
MAX_QUEUE_LISTED = 1000  # a service takes at most 999 tickets a day (three-digit numbers)


class ServiceQueue(Message):
    """The waiting tickets of one service in the hub's call order, each with the hub's
    estimated wait: a ticket's people ahead is its position. The citizen's ticket page shows
    exactly these figures (one computation, at the queue authority); an estimate is None when
    no counter serves the service now (the page says so instead of a time)."""

    seq: int
    service: Code
    order: Annotated[tuple[int, ...], Field(max_length=MAX_QUEUE_LISTED)] = ()  # ticket ids
    est_wait_s: Annotated[tuple[int | None, ...], Field(max_length=MAX_QUEUE_LISTED)] = ()

    @model_validator(mode="after")
    def _same_length(self) -> ServiceQueue:
        if len(self.order) != len(self.est_wait_s):
            raise ValueError("order and est_wait_s must have one entry per waiting ticket")
        return self

    def position(self, ticket_id: int) -> tuple[int, int | None] | None:
        """(people ahead, estimated wait in s) of a waiting ticket; None if it is not waiting
        (or listed beyond MAX_QUEUE_LISTED)."""
        index = self._positions.get(ticket_id)
        return None if index is None else (index, self.est_wait_s[index])

    @cached_property
    def _positions(self) -> dict[int, int]:
        return {ticket: i for i, ticket in enumerate(self.order)}


class SiteState(Message):
    """Summary of the whole site, with the latest calls for canteen and lobby screens."""

    seq: int
    day: str
    now: float
    config_version: str  # the inventory the hub runs (its version: a hash of the file)
    # Why the hub refused the latest inventory it was given ("VERSION: reason"); it keeps
    # running config_version.
    config_refused: ShortText | None = None
    issued: int
    served: int
    waiting: int
    recent_calls: tuple[CallInfo, ...] = ()
    # False while the hub does not trust its clock (not NTP-synchronised and behind its last
    # record): it issues no tickets, and kiosks and screens say so.
    clock_ok: bool = True
    pauses: tuple[PauseInfo, ...] = ()  # pauses in force now (site-wide or of some services)


class Health(Part):
    """Device health details; unset fields are unknown or not applicable."""

    printer: Literal["ok", "paper_low", "paper_out", "offline", "error", "unknown"] | None = None
    detail: ShortText | None = None
    audio: Literal["ok", "muted", "error"] | None = None
    lcd: Literal["ok", "error"] | None = None
    storage: Literal["ok", "full", "error"] | None = None  # the hub's database disk


class DeviceStatus(Message):
    """Presence of a device: retained, and its last will says offline."""

    device: str
    role: str
    online: bool
    sw: str = ""
    boot_id: str = ""
    since: float | None = None
    health: Health = Health()


# Service-level alerts: raised once when their condition becomes true, cleared when it ends
# (an acknowledgement records who saw it; the alert stays until its condition ends).
CONDITION_ALERTS: tuple[str, ...] = ("long_wait", "no_counter", "idle_counter", "quota_nearly_used")
AlertKind = Literal[
    "consecutive_complaints",
    "printer",
    "device_offline",
    "storage",
    "long_wait",
    "no_counter",
    "idle_counter",
    "quota_nearly_used",
]


class Alert(Message):
    """Something a supervisor must see. One-off alerts (complaints) are retained until
    acknowledged; service-level alerts (`CONDITION_ALERTS`) until their condition ends, and an
    acknowledgement adds who saw it (`acked_by`, `acked_at`)."""

    id: Code
    kind: AlertKind
    raised_at: float
    text: Text
    counter: int | None = None
    officer: str | None = None
    device: str | None = None
    service: Code | None = None
    acked_by: ShortText | None = None
    acked_at: float | None = None


MAX_FEATURED_SLIDES = 10  # per zone; keeps a FeaturedState far below MAX_PAYLOAD_BYTES
Sha256 = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
CAPTION_CHARS = 120


class SlideCaption(Part):
    """A slide's caption in Indonesian and English (English empty: show the Indonesian)."""

    # One line of text: no control characters (JSON would also inflate each to 6 bytes).
    id: Annotated[
        str,
        StringConstraints(min_length=1, max_length=CAPTION_CHARS, pattern=r"^[^\x00-\x1f\x7f]*$"),
    ]
    en: Annotated[
        str, StringConstraints(max_length=CAPTION_CHARS, pattern=r"^[^\x00-\x1f\x7f]*$")
    ] = ""

    def get(self, lang: str) -> str:
        """The caption in `lang`, falling back to Indonesian."""
        return self.en if lang == "en" and self.en else self.id


class FeaturedSlide(Part):
    """One featured local product (UMKM): its caption and its image on the hub's web app.

    Images never travel over MQTT: a display downloads `image_url` once (only from the hub's
    configured address), checks it against `image_sha256` and keeps it by that hash.
    """

    order: Annotated[int, Field(ge=0, le=999)]
    caption: SlideCaption
    image_url: Annotated[str, StringConstraints(pattern=r"^https?://[^\s?#]{1,200}$")]
    image_sha256: Sha256


class FeaturedState(Message):
    """The featured products an admin uploaded for one zone's slideshow; no slides: the
    screens show the inventory's `featured` list instead."""

    seq: int
    zone: Code
    slides: Annotated[tuple[FeaturedSlide, ...], Field(max_length=MAX_FEATURED_SLIDES)] = ()


class ZoneSound(Message):
    """How one zone's screens speak calls now (the inventory's, or as staff set it)."""

    seq: int
    zone: Code
    speech: bool
    volume: float = Field(ge=0.0, le=1.0, allow_inf_nan=False)
    number_reading: NumberReading = "words"

    @classmethod
    def of_inventory(cls, zone_id: str, zone: Any) -> ZoneSound:
        """The sound the inventory gives zone `zone_id` (a `protocol.site.Zone`), before the
        hub has said anything else (seq 0)."""
        return cls(
            seq=0,
            zone=zone_id,
            speech=zone.speech,
            volume=zone.volume,
            number_reading=zone.number_reading,
        )


# --------------------------------------------------------------------------------------
# Site -> region (up/) and region -> site (down/), over the site broker's bridge
# --------------------------------------------------------------------------------------
MAX_BATCH_EVENTS = 500
SiteId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,39}$")]
EventKind = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z_]{0,39}$")]
Sha256Hex = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
Day = Annotated[str, StringConstraints(pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")]


def token_sha256(token: str) -> str:
    """How a ticket's token leaves the site: its SHA-256 (the region never holds a token)."""
    return hashlib.sha256(token.encode()).hexdigest()


class OutboxEvent(Part):
    """One row of the hub's `events` table, as it leaves the site (its id is the hub's).

    The ticket's facts that never change (`label`, `day`, `issued_service`, and its token only
    as a SHA-256 hash) travel with its `issued` event; every other event names the ticket by id.
    """

    id: Annotated[int, Field(ge=1)]
    at: float = Field(allow_inf_nan=False)
    kind: EventKind
    ticket: int | None = None
    counter: int | None = None
    service: Annotated[str, StringConstraints(max_length=40)] | None = None
    officer: Annotated[str, StringConstraints(max_length=200)] | None = None
    detail: Annotated[str, StringConstraints(max_length=4000)] | None = None
    label: TicketNumber | None = None
    day: Day | None = None
    issued_service: Code | None = None
    token_sha256: Sha256Hex | None = None


class EventBatch(Message):
    """Numbered events of one site, in commit order: every event the hub holds with an id in
    (`after`, `last`] is in `events`. No events: a heartbeat (`after` = `last`), which the
    region answers with its acknowledgement like any batch. `head` is the hub's newest event id
    when it sent this (the region shows `head` - acknowledged as the events behind)."""

    site: SiteId
    after: Annotated[int, Field(ge=0)]
    last: Annotated[int, Field(ge=0)]
    head: Annotated[int, Field(ge=0)]
    sent_at: float = Field(allow_inf_nan=False)
    events: Annotated[tuple[OutboxEvent, ...], Field(max_length=MAX_BATCH_EVENTS)] = ()

    @model_validator(mode="after")
    def _numbered(self) -> EventBatch:
        previous = self.after
        for event in self.events:
            if event.id <= previous:
                raise ValueError(f"event ids must grow after {previous}; got {event.id}")
            previous = event.id
        if previous != self.last:
            raise ValueError(f"last is {self.last} but the events end at {previous}")
        if self.head < self.last:
            raise ValueError(f"head {self.head} is older than the batch's last event {self.last}")
        return self


class EventAck(Message):
    """The region has stored every event of `site` up to `acked` (contiguously, with nothing
    missing before it): the hub sends from `acked` + 1 on."""

    site: SiteId
    acked: Annotated[int, Field(ge=0)]
    at: float = Field(allow_inf_nan=False)


class CatalogService(Part):
    """A service as the region shows and reports it."""

    name: Text
    agency: Code
    time_class_s: Annotated[int, Field(ge=1)]  # the published completion time (SLA), seconds


class SiteCatalog(Message):
    """The site's names and service standards for the region's pages and reports (retained;
    sent again when the inventory changes)."""

    site: SiteId
    name: ShortText
    timezone: ShortText
    version: ShortText
    agencies: dict[Code, ShortText]
    services: dict[Code, CatalogService]
    counters: Annotated[int, Field(ge=0)]
    counter_names: dict[Annotated[str, StringConstraints(pattern=r"^[0-9]{1,3}$")], Text] = {}


class TextLines(Part):
    """User-facing lines in Indonesian and English (English empty: show the Indonesian)."""

    id: tuple[ShortText, ...] = ()
    en: tuple[ShortText, ...] = ()


class OfferSession(Part):
    """A bookable session of a service on some weekdays (times in the site's time zone)."""

    days: tuple[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"], ...]
    start: ClockTime
    end: ClockTime
    online_quota: Annotated[int, Field(ge=1, le=999)]


class OfferService(Part):
    """What the region shows a citizen booking one service, and its sessions."""

    requirements: TextLines = TextLines()
    bring: TextLines = TextLines()
    cost: Text
    sessions: tuple[OfferSession, ...]


class BookingOffer(Message):
    """The site's online booking rules and bookable services (retained on `up/booking`;
    sent again when the inventory changes). No bookable service: bookings are closed."""

    site: SiteId
    version: ShortText
    days_ahead: Annotated[int, Field(ge=1, le=60)]
    check_in_before_min: Annotated[int, Field(ge=0, le=240)]
    check_in_after_min: Annotated[int, Field(ge=0, le=240)]
    retention_days: Annotated[int, Field(ge=1, le=3650)]
    closed_days: tuple[Day, ...] = ()  # reserved: holidays (none from the inventory yet)
    services: dict[Code, OfferService] = {}


class CalledTicket(Part):
    """A ticket of the service at a counter now."""

    ticket: int
    counter: CounterNo
    call_seq: int


class QueueView(Message):
    """The public view of one service's queue for the region's ticket pages (site -> region,
    on `up/queue`; the newest `seq` wins). `waiting` holds ticket ids in the hub's call order,
    so a ticket's index is its number of people ahead, and `est_wait_s` the hub's estimate at
    that index (None: no counter serves the service now); `called` the tickets at a
    counter. No personal data: ids only (the region knows a ticket's label, service and token
    hash from its `issued` event). `more`: waiting tickets beyond what fits one message."""

    site: SiteId
    service: Code
    seq: Annotated[int, Field(ge=0)]
    at: float = Field(allow_inf_nan=False)
    open: bool
    waiting: tuple[int, ...] = ()
    est_wait_s: tuple[int | None, ...] = ()
    called: tuple[CalledTicket, ...] = ()
    more: Annotated[int, Field(ge=0)] = 0

    @model_validator(mode="after")
    def _parallel(self) -> QueueView:
        if len(self.est_wait_s) != len(self.waiting):
            raise ValueError("est_wait_s must give one estimate per waiting ticket")
        return self


class BookingMade(Part):
    """A citizen booked a session online: the site keeps it for check-in on its day."""

    kind: Literal["booking"] = "booking"
    code: BookingCode
    service: Code
    day: Day
    start: ClockTime
    end: ClockTime
    lang: Literal["id", "en"] = "id"


class BookingCancelled(Part):
    """A citizen cancelled a booking (by its link): it can no longer be checked in."""

    kind: Literal["cancel"] = "cancel"
    code: BookingCode


class SurveyAnswered(Part):
    """A citizen answered the satisfaction survey on the region's ticket page: the hub records
    it as if answered on its own page (the ticket by id, checked against its token's hash)."""

    kind: Literal["survey"] = "survey"
    ticket: Annotated[int, Field(ge=1)]
    token_sha256: Sha256Hex
    scores: Annotated[
        tuple[Score, ...], Field(min_length=SURVEY_ELEMENTS, max_length=SURVEY_ELEMENTS)
    ]
    comment: Annotated[str, StringConstraints(max_length=1000)] = ""


class DownMessage(Part):
    """One message of the region to a site, numbered per site (applied once, in order)."""

    id: Annotated[int, Field(ge=1)]
    at: float = Field(allow_inf_nan=False)
    body: Annotated[BookingMade | BookingCancelled | SurveyAnswered, Field(discriminator="kind")]


MAX_DOWN_MESSAGES = 100


class DownBatch(Message):
    """The region's messages to one site with ids in (`after`, `last`], in order, on
    `down/messages`; the hub applies each once and answers with a `DownAck`."""

    site: SiteId
    after: Annotated[int, Field(ge=0)]
    last: Annotated[int, Field(ge=0)]
    messages: Annotated[tuple[DownMessage, ...], Field(max_length=MAX_DOWN_MESSAGES)] = ()

    @model_validator(mode="after")
    def _numbered(self) -> DownBatch:
        previous = self.after
        for message in self.messages:
            if message.id != previous + 1:
                raise ValueError(f"message ids must follow {previous} one by one; got {message.id}")
            previous = message.id
        if previous != self.last:
            raise ValueError(f"last is {self.last} but the messages end at {previous}")
        return self


class DownAck(Message):
    """The site has applied (or refused for good) every region message up to `applied`: the
    region sends from `applied` + 1 on. Sent after each batch and on every (re)connect."""

    site: SiteId
    applied: Annotated[int, Field(ge=0)]
    at: float = Field(allow_inf_nan=False)


# --------------------------------------------------------------------------------------
# Reply results (reply.result), one shape per command family
# --------------------------------------------------------------------------------------
class IssueResult(Part):
    """Result of `issue`: the confirmed ticket."""

    ticket: TicketInfo


class CounterResult(Part):
    """Result of every counter command: the counter's new state and, for calls, the call."""

    counter: CounterState
    call: CallInfo | None = None


class TicketResult(Part):
    """Result of `printed`, `void` and `revoke_priority` (no ticket: a cancelled request)."""

    ticket_id: int | None
    number: TicketNumber | None
    status: str


class RateResult(Part):
    """Result of `rate`: which ticket and officer the rating was attached to."""

    ticket: TicketNumber
    counter: CounterNo
    officer: str | None
    score: Score


class AckResult(Part):
    """Result of `ack_alert`."""

    alert_id: str


class ServiceResult(Part):
    """Result of `open_service` and `close_service`: whether the service takes tickets."""

    service: str
    closed: bool


class LimitsResult(Part):
    """Result of `service_limits`: the service's daily quota and cut-off now."""

    service: str
    daily_quota: int
    cutoff: str | None


class SurveyResult(Part):
    """Result of `survey`: the ticket the response was recorded for."""

    ticket: TicketNumber
    service: str


M = TypeVar("M", bound=Message)


def encode(message: Message) -> bytes:
    """The wire form of a message: compact UTF-8 JSON without unset optional noise."""
    return message.model_dump_json(exclude_none=True).encode()


def _not_a_number(name: str) -> Any:
    # Python's json reads NaN and Infinity; JSON has no such numbers (RFC 8259), and a NaN
    # time slips past every comparison (it is never stale).
    raise BadMessage("bad_json", f"{name} is not a JSON number")


def decode_json(payload: bytes | str) -> dict[str, Any]:
    """Parse a payload into a JSON object, checking size; raises BadMessage."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise BadMessage("too_large", f"payload of {len(payload)} bytes; limit {MAX_PAYLOAD_BYTES}")
    try:
        if isinstance(payload, bytes):
            payload = payload.decode("utf-8")  # strictly: json would let lone surrogates in
        data = json.loads(payload, parse_constant=_not_a_number)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadMessage("bad_json", f"not JSON: {exc}") from None
    except RecursionError:
        raise BadMessage("bad_json", "JSON nested too deeply") from None
    if not isinstance(data, dict):
        raise BadMessage("bad_json", f"expected a JSON object, got {type(data).__name__}")
    return data


def decode(model: type[M], payload: bytes | str | dict[str, Any]) -> M:
    """Validate a payload against `model`; raises BadMessage with a specific code."""
    data = payload if isinstance(payload, dict) else decode_json(payload)
    version = data.get("v")
    if type(version) is not int or version != VERSION:  # true and 1.0 equal 1 in Python
        raise BadMessage("unsupported_version", f"v={version!r}; this hub speaks v={VERSION}")
    try:
        # JSON's own types, strictly: "3" is no counter number and true is no 1. The payload
        # itself is validated (decode_json has checked it; writing it again cost a third).
        raw = json.dumps(data) if isinstance(payload, dict) else payload
        message = model.model_validate_json(raw, strict=True)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"]) or "payload"
        raise BadMessage("invalid", f"{where}: {first['msg']}") from None
    if isinstance(message, Command) and "request_id" not in data:
        raise BadMessage(
            "invalid", "request_id: missing (a command is applied once by its request id)"
        )
    return message


def request_fields(data: dict[str, Any]) -> tuple[str | None, str | None]:
    """(request_id, reply_to) of a raw payload, if they look right, for answering bad input."""
    rid, reply_to = data.get("request_id"), data.get("reply_to")
    # Echo only a well-formed id: anything else (a lone surrogate...) could not even be sent.
    rid_ok = isinstance(rid, str) and REQUEST_ID_RE.fullmatch(rid) is not None
    return (rid if rid_ok else None), (reply_to if isinstance(reply_to, str) else None)
