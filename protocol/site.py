"""The site inventory: one TOML file describing an MPP, loaded into typed, frozen objects.

Everything a device or the hub needs to know about the site (services, counters, zones,
devices and their pins) comes from here, validated once on load. Errors name the file, the
key and the fix::

    site = load_site("examples/banjarbaru.toml")
    site.services["ktp"].prefix          # 'A'
    site.counters[3].services            # ('ktp', 'kk')
"""

from __future__ import annotations

import difflib
import hashlib
import re
from collections.abc import Collection, Mapping
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from protocol import toml_limits
from protocol.errors import InventoryError
from protocol.messages import BreakReason

Lang = Literal["id", "en"]
Slug = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,39}$")]
Pin = int | Annotated[str, StringConstraints(pattern=r"^(GPIO|BCM|BOARD|J8:|WPI)?[0-9A-Za-z:]+$")]
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[str, ...] = get_args(Weekday)
HOURS_RE = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]|24):([0-5]\d)$")
DURATION_RE = re.compile(r"^(\d+)\s*(m|h|d)$")
MAX_TEXT = 2000  # characters of one text (a ticket footer, a requirement line)
MAX_PROBLEMS = 100  # listed of one file; more means it is not an inventory at all


class Model(BaseModel):
    """Base of the inventory: unknown keys are errors (a typo must not pass silently)."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_max_length=MAX_TEXT)


class Text(Model):
    """A user-facing text in Indonesian, with an optional English version."""

    id: str = Field(min_length=1)
    en: str | None = None

    def get(self, lang: str) -> str:
        """The text in `lang`, falling back to Indonesian."""
        return self.en if lang == "en" and self.en else self.id


class TextList(Model):
    """A list of user-facing lines (requirements, procedure) in Indonesian and English."""

    id: tuple[str, ...] = ()
    en: tuple[str, ...] = ()

    def get(self, lang: str) -> tuple[str, ...]:
        """The lines in `lang`, falling back to Indonesian."""
        return self.en if lang == "en" and self.en else self.id


def _text(value: Any) -> Any:
    """Allow a plain string where a Text is expected (Indonesian only)."""
    return {"id": value} if isinstance(value, str) else value


def _text_list(value: Any) -> Any:
    """Allow a plain list of strings where a TextList is expected (Indonesian only)."""
    return {"id": value} if isinstance(value, list) else value


TextIn = Annotated[Text, BeforeValidator(_text)]
TextListIn = Annotated[TextList, BeforeValidator(_text_list)]


def http_url(value: str) -> str:
    """`value` if it is an http(s) base address (no query, no fragment), else ValueError."""
    if not re.fullmatch(r"https?://[^/?#\s]+(/[^?#\s]*)?", value):
        raise ValueError(
            f"{value!r} is not an http(s) address; write e.g. 'http://192.168.10.2:8080'"
        )
    return value


def parse_hhmm(value: str) -> time:
    """'07:30' -> time(7, 30); raises ValueError with the expected form."""
    match = re.fullmatch(r"([01]\d|2[0-3]):([0-5]\d)", value)
    if not match:
        raise ValueError(f"{value!r} is not a time of day; write it as HH:MM, e.g. '14:00'")
    return time(int(match[1]), int(match[2]))


class OpeningHours(Model):
    """Opening hours per weekday; a missing day is closed. Written as 'HH:MM-HH:MM'."""

    mon: str | None = None
    tue: str | None = None
    wed: str | None = None
    thu: str | None = None
    fri: str | None = None
    sat: str | None = None
    sun: str | None = None

    @field_validator(*WEEKDAYS)
    @classmethod
    def _check(cls, value: str | None) -> str | None:
        if value is None or value == "closed":
            return None
        match = HOURS_RE.fullmatch(value)
        if not match:
            raise ValueError(f"{value!r} is not an opening time; write 'HH:MM-HH:MM' or 'closed'")
        if match[3] == "24" and match[4] != "00":
            raise ValueError(f"{value!r} ends after midnight; the latest closing time is 24:00")
        if (int(match[1]), int(match[2])) >= (int(match[3]), int(match[4])):
            raise ValueError(f"{value!r} closes before it opens; put the opening time first")
        return value

    def span(self, day: date) -> tuple[time, time] | None:
        """(open, close) on that calendar day, or None when the site is closed."""
        value = getattr(self, WEEKDAYS[day.weekday()])
        if value is None:
            return None
        start, end = value.split("-")
        return parse_hhmm(start), time.max if end == "24:00" else parse_hhmm(end)


class SiteInfo(Model):
    """The [site] table: who and where this MPP is."""

    id: Slug
    name: str = Field(min_length=1)
    timezone: str
    languages: tuple[Lang, ...] = ("id", "en")
    address: str = ""
    # The web app as citizens' phones reach it: the ticket QR points here.
    public_url: str = "http://127.0.0.1:8080"
    logo: str | None = None
    ticket_footer: TextIn = Text(
        id="Terima kasih atas kunjungan Anda", en="Thank you for your visit"
    )
    hours: OpeningHours = OpeningHours()

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"{value!r} is not a known time zone; use e.g. 'Asia/Jakarta' (WIB), "
                "'Asia/Makassar' (WITA) or 'Asia/Jayapura' (WIT)"
            ) from None
        return value

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str) -> str:
        return http_url(value)

    @field_validator("languages")
    @classmethod
    def _langs(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value or value[0] != "id":
            raise ValueError('Indonesian comes first: write languages = ["id", "en"]')
        return value

    @property
    def tz(self) -> ZoneInfo:
        """The site's time zone object."""
        return ZoneInfo(self.timezone)


class Broker(Model):
    """Where devices and the hub reach the MQTT broker."""

    host: str = "127.0.0.1"
    port: int = Field(default=1883, ge=1, le=65535)
    tls: bool = False
    ca_file: str | None = None
    mqtt_version: Literal[5, 3] = 5
    keepalive_s: int = Field(default=15, ge=5, le=300)


class HubSettings(Model):
    """Queue rules and hub process settings."""

    database: str = "mpp-hub.sqlite"
    # Where the daily copies of the database go (unset: a `backups` directory beside it); a
    # second disk keeps them when the first one fails.
    backup_dir: str | None = None
    call_policy: Literal["oldest_first", "counter_order"] = "oldest_first"
    priority_ratio: int = Field(default=2, ge=1, le=20)
    transfer_placement: Literal["after_first_call", "front", "back"] = "after_first_call"
    service_time_window: int = Field(default=20, ge=1, le=500)
    command_max_age_s: float = Field(default=10.0, gt=0, le=600)
    rating_window_s: int = Field(default=180, ge=10, le=3600)
    complaint_alert_after: int = Field(default=3, ge=1, le=20)
    # A kiosk ticket not yet reported printed is not called for this long: after a hub crash
    # its kiosk may still cancel it (the citizen never got it); after that it is called anyway.
    unprinted_hold_s: float = Field(default=20.0, ge=0, le=600)
    # Expected length of a break started from a caller box, by reason (minutes): screens show
    # the return time; a reason not listed shows none. The web caller asks for the length.
    break_minutes: dict[BreakReason, Annotated[int, Field(ge=1, le=480)]] = {}
    # The web app's address as the display Pis reach it (they download featured-product images
    # from it, and from nowhere else); unset: site.public_url.
    media_url: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _moved(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for old, new in (("web_host", "host"), ("web_port", "port")):
                if old in data:
                    raise ValueError(
                        f"hub.{old} moved: the web app is its own process now; "
                        f"write it as {new} in a [web] table"
                    )
        return data

    @field_validator("media_url")
    @classmethod
    def _media_url(cls, value: str | None) -> str | None:
        return None if value is None else http_url(value)


class RegionLink(Model):
    """The [region] table: this site sends its history to a regional server (through the
    site broker's bridge, see docs/region.md). Without it nothing leaves the site."""

    # The regional web as citizens reach it from the internet: with it, the ticket QR points
    # to the region's public ticket page (the site server is never exposed to the internet).
    public_url: str | None = None
    upload: bool = True
    batch_events: int = Field(default=200, ge=1, le=500)  # per batch (and at most 16 KiB)
    window_batches: int = Field(default=8, ge=1, le=64)  # sent ahead of the acknowledgement
    heartbeat_s: float = Field(default=10.0, ge=0.5, le=600)
    resend_after_s: float = Field(default=15.0, ge=1, le=3600)  # no acknowledgement: send again

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str | None) -> str | None:
        return None if value is None else http_url(value)


class BookingSettings(Model):
    """The [booking] table: how online bookings (reservasi) of this site work. The sessions
    are per service ([services.ID.booking]); the region offers them, the site checks in."""

    days_ahead: int = Field(default=7, ge=1, le=60)  # how far ahead a citizen may book
    check_in_before_min: int = Field(default=30, ge=0, le=240)  # check-in opens before start
    check_in_after_min: int = Field(default=15, ge=0, le=240)  # and closes after start
    retention_days: int = Field(default=90, ge=1, le=3650)  # bookings older are deleted


class WebSettings(Model):
    """The site web process (`mpp web`): addresses, its own database, live-stream limits."""

    host: str = "127.0.0.1"  # "0.0.0.0" serves the LAN
    port: int = Field(default=8080, ge=1, le=65535)  # http: ticket pages, TV screens, images
    tls_port: int = Field(default=8443, ge=1, le=65535)  # https for staff, with tls_cert/key
    tls_cert: str | None = None  # the web's certificate from the site CA (mpp-provision init)
    tls_key: str | None = None
    # Staff accounts, sessions, featured products; unset: mpp-web.sqlite beside the hub's.
    database: str | None = None
    max_streams: int = Field(default=4000, ge=1, le=50000)
    max_streams_per_client: int = Field(default=12, ge=1, le=10000)
    keepalive_s: float = Field(default=15.0, ge=1, le=60)

    def database_path(self, hub_database: str | Path) -> Path:
        """The web's own database file."""
        if self.database is not None:
            return Path(self.database)
        return Path(hub_database).with_name("mpp-web.sqlite")

    @model_validator(mode="after")
    def _tls_pair(self) -> WebSettings:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("web: give both tls_cert and tls_key, or neither")
        if self.tls_cert is not None and self.tls_port == self.port:
            raise ValueError("web: port and tls_port must differ")
        return self


class AlertSettings(Model):
    """The [alerts] table: when the supervisors' dashboard is told about service levels."""

    # A citizen waiting longer than this (a service's own `wait_target_minutes` wins).
    wait_target_minutes: int = Field(default=30, ge=1, le=600)
    # A counter open and idle while its queue has waited this long.
    idle_minutes: int = Field(default=10, ge=1, le=240)
    # This share of a service's daily quota used before `quota_before` (local time).
    quota_share: float = Field(default=0.9, gt=0, le=1)
    quota_before: str = "12:00"

    @field_validator("quota_before")
    @classmethod
    def _before(cls, value: str) -> str:
        parse_hhmm(value)
        return value


class Pause(Model):
    """A pause at set times, of the whole site or of some services (the `[pauses.ID]` tables),
    e.g. the Friday prayer: counters take no calls, screens and kiosks say when service
    resumes, estimates count it. `keep_issuing`: kiosks go on issuing for every paused service
    (true), for none (false), or only for the services listed."""

    name: TextIn
    days: tuple[Weekday, ...] = Field(min_length=1)
    time: str
    services: tuple[str, ...] = ()  # empty: every service of the site
    keep_issuing: bool | tuple[str, ...] = True

    @field_validator("time")
    @classmethod
    def _span(cls, value: str) -> str:
        match = HOURS_RE.fullmatch(value)
        if not match or match[3] == "24":
            raise ValueError(
                f"{value!r} is not a time span within a day; write 'HH:MM-HH:MM', "
                "e.g. '11:30-13:00'"
            )
        if (int(match[1]), int(match[2])) >= (int(match[3]), int(match[4])):
            raise ValueError(f"{value!r} ends before it starts; put the start first")
        return value

    @property
    def span(self) -> tuple[time, time]:
        """(start, end) local times of day."""
        start, end = self.time.split("-")
        return parse_hhmm(start), parse_hhmm(end)

    def covers(self, service: str) -> bool:
        """Whether the pause stops `service`."""
        return not self.services or service in self.services

    def issuing(self, service: str) -> bool:
        """Whether kiosks issue tickets for `service` during the pause."""
        if isinstance(self.keep_issuing, bool):
            return self.keep_issuing
        return service in self.keep_issuing


class TimeClass(Model):
    """A service's completion-time class, e.g. fast = done within 3 hours."""

    within: str

    @field_validator("within")
    @classmethod
    def _dur(cls, value: str) -> str:
        if not DURATION_RE.fullmatch(value):
            raise ValueError(f"{value!r} is not a duration; write e.g. '3h', '3d' or '45m'")
        return value

    @property
    def amount(self) -> int:
        """The number part of `within` (3 for '3h')."""
        return int(DURATION_RE.fullmatch(self.within)[1])  # type: ignore[index]

    @property
    def unit(self) -> str:
        """'m', 'h' or 'd'."""
        return DURATION_RE.fullmatch(self.within)[2]  # type: ignore[index]

    @property
    def max_duration(self) -> timedelta:
        """The longest time the service may take."""
        return timedelta(minutes=self.amount * {"m": 1, "h": 60, "d": 1440}[self.unit])


class Agency(Model):
    """A government agency (or bank, utility) with counters in the MPP."""

    name: str = Field(min_length=1)
    short: str = Field(min_length=1, max_length=24)


class BookingSession(Model):
    """A session citizens may book online: on `days`, from `start` to `end`, with
    `online_quota` seats. Walk-ins keep the service's own `daily_quota`: a booking never uses
    it, nor does a walk-in use a booking's seat."""

    days: tuple[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"], ...] = Field(min_length=1)
    start: str
    end: str
    online_quota: int = Field(ge=1, le=999)

    @field_validator("start", "end")
    @classmethod
    def _time(cls, value: str) -> str:
        parse_hhmm(value)
        return value

    @model_validator(mode="after")
    def _order(self) -> BookingSession:
        if self.start >= self.end:
            raise ValueError(f"session {self.start}-{self.end} ends before it starts")
        return self

    @property
    def id(self) -> str:
        """'08:00-10:00': a session is known by its times (unique per service and day)."""
        return f"{self.start}-{self.end}"


class ServiceBooking(Model):
    """[services.ID.booking]: the service may be booked online (reservasi) in these sessions;
    `bring`: what the citizen brings besides the requirements (shown with the booking)."""

    sessions: tuple[BookingSession, ...] = Field(min_length=1)
    bring: TextListIn = TextList()


class Service(Model):
    """One public service with its published standard (standar pelayanan)."""

    agency: str
    prefix: Annotated[str, StringConstraints(pattern=r"^[A-Z]{1,2}$")]
    name: TextIn
    time_class: str
    cost: int = Field(default=0, ge=0)
    cost_note: TextIn | None = None
    requirements: TextListIn = TextList()
    procedure: TextListIn = TextList()
    daily_quota: int = Field(default=999, ge=1, le=999)
    cutoff: str | None = None
    avg_minutes: float = Field(default=10.0, gt=0, le=600)
    booking: ServiceBooking | None = None
    wait_target_minutes: int | None = Field(default=None, ge=1, le=600)  # else [alerts]'s

    @field_validator("cutoff")
    @classmethod
    def _cut(cls, value: str | None) -> str | None:
        if value is not None:
            parse_hhmm(value)
        return value

    @property
    def cutoff_time(self) -> time | None:
        """Last time of day a ticket may be issued, if any."""
        return parse_hhmm(self.cutoff) if self.cutoff else None


class Counter(Model):
    """A counter (loket) where officers serve the listed services, in order of preference."""

    name: TextIn | None = None
    services: tuple[str, ...] = Field(min_length=1)
    zone: str
    transfer_to: tuple[str, ...] = ()


class Featured(Model):
    """A slide: an image (path relative to the inventory) and its caption."""

    image: str
    caption: TextIn


class Zone(Model):
    """An area of the MPP with its own screens: entrance, lobby, canteen, ..."""

    kind: Literal["entrance", "lobby", "canteen"]
    name: TextIn
    lang: Lang = "id"
    speech: bool = True
    volume: float = Field(default=0.8, ge=0.0, le=1.0)
    number_reading: Literal["words", "digits"] = "words"
    featured: tuple[Featured, ...] = ()
    menu: tuple[str, ...] = ()


class Screen(Model):
    """The screen a display (or a kiosk with a touchscreen) drives."""

    width: int = Field(default=1920, ge=320, le=7680)
    height: int = Field(default=1080, ge=240, le=4320)
    fullscreen: bool = True


class Printer(Model):
    """How a kiosk reaches its thermal printer (python-escpos connection and profile)."""

    connection: Literal["usb", "network", "serial", "file", "dummy"]
    profile: str = "TM-T20II"
    vendor_id: int | None = None
    product_id: int | None = None
    host: str | None = None
    port: int = 9100
    device: str | None = None
    baudrate: int = 19200
    path: str | None = None
    width_mm: Literal[58, 80] = 80
    timeout_s: float = Field(default=3.0, gt=0, le=60)

    @model_validator(mode="after")
    def _needs(self) -> Printer:
        needed = {
            "usb": ("vendor_id", "product_id"),
            "network": ("host",),
            "serial": ("device",),
            "file": ("path",),
            "dummy": (),
        }[self.connection]
        missing = [name for name in needed if getattr(self, name) is None]
        if missing:
            raise ValueError(
                f"a {self.connection} printer needs {', '.join(missing)}; add "
                + ", ".join(f"{name} = ..." for name in missing)
            )
        return self


class Leds(Model):
    """Status LEDs on a kiosk or caller box (any may be absent)."""

    ready: Pin | None = None
    busy: Pin | None = None
    fault: Pin | None = None


class DeviceBase(Model):
    """What every edge device has."""

    lang: Lang = "id"
    hostname: str | None = None


class KioskDevice(DeviceBase):
    """A ticket kiosk: service buttons and/or a touch menu, a priority button, a printer.

    `services` limits the touch menu (empty: every service of the site).
    """

    role: Literal["kiosk"]
    zone: str
    buttons: dict[str, Pin] = {}
    services: tuple[str, ...] = ()
    priority_button: Pin | None = None
    leds: Leds = Leds()
    buzzer: Pin | None = None
    printer: Printer | None = None
    screen: Screen | None = None
    # A USB 2D barcode scanner for booking check-in: its input device (evdev), e.g.
    # "/dev/input/by-id/usb-SCANNER-event-kbd"; without one, codes are typed on the screen.
    scanner: str | None = None


class CallerButtons(Model):
    """The caller box buttons an officer presses."""

    next: Pin
    recall: Pin | None = None
    skip: Pin | None = None
    transfer: Pin | None = None
    open_close: Pin | None = None


class RatingButtons(Model):
    """The four rating-pad buttons, from Sangat puas (4) to Tidak puas (1)."""

    very_satisfied: Pin
    satisfied: Pin
    dissatisfied: Pin
    very_dissatisfied: Pin


class Lcd(Model):
    """An HD44780 character display on an I2C backpack (RPLCD)."""

    expander: Literal["PCF8574", "MCP23008", "MCP23017"] = "PCF8574"
    address: int = Field(default=0x27, ge=0x03, le=0x77)
    port: int = 1
    cols: Literal[16, 20] = 16
    rows: Literal[2, 4] = 2


class CallerDevice(DeviceBase):
    """A caller box (and rating pad) at one counter."""

    role: Literal["caller"]
    counter: int
    buttons: CallerButtons
    rating: RatingButtons | None = None
    leds: Leds = Leds()
    buzzer: Pin | None = None
    lcd: Lcd | None = None


class DisplayDevice(DeviceBase):
    """A Pi driving a TV in a zone."""

    role: Literal["display"]
    zone: str
    screen: Screen = Screen()
    lang: Lang | None = None  # type: ignore[assignment]  # None: the zone's language


Device = Annotated[KioskDevice | CallerDevice | DisplayDevice, Field(discriminator="role")]
Role = Literal["kiosk", "caller", "display", "hub"]
ROLES: tuple[str, ...] = ("kiosk", "caller", "display", "hub")


class Site(Model):
    """The whole inventory of one MPP."""

    site: SiteInfo
    broker: Broker = Broker()
    hub: HubSettings = HubSettings()
    region: RegionLink | None = None
    booking: BookingSettings = BookingSettings()
    web: WebSettings = WebSettings()
    alerts: AlertSettings = AlertSettings()
    pauses: dict[Slug, Pause] = {}
    time_classes: dict[Slug, TimeClass] = Field(min_length=1)
    agencies: dict[Slug, Agency] = Field(min_length=1)
    services: dict[Slug, Service] = Field(min_length=1)
    counters: dict[int, Counter] = Field(min_length=1)
    zones: dict[Slug, Zone] = Field(min_length=1)
    devices: dict[Slug, Device] = {}
    version: str = ""
    source: str = ""

    @model_validator(mode="after")
    def _cross_check(self) -> Site:
        problems = cross_check(self)
        if problems:
            raise ValueError("\n".join(problems))
        return self

    # -- lookups used everywhere -------------------------------------------------------
    def counter_name(self, number: int, lang: str = "id") -> str:
        """'Loket 3' / 'Counter 3', or the counter's own name."""
        counter = self.counters.get(number)
        if counter is not None and counter.name is not None:
            return counter.name.get(lang)
        return f"{'Counter' if lang == 'en' else 'Loket'} {number}"

    def counters_serving(self, service: str) -> tuple[int, ...]:
        """Counter numbers that serve `service`."""
        return tuple(n for n, c in self.counters.items() if service in c.services)

    def service_by_prefix(self, prefix: str) -> str | None:
        """The service code whose ticket prefix is `prefix`."""
        return next((code for code, s in self.services.items() if s.prefix == prefix), None)

    def local_now(self, now: float) -> datetime:
        """Wall-clock epoch seconds as an aware datetime in the site's time zone."""
        return datetime.fromtimestamp(now, self.site.tz)

    def media_url(self) -> str:
        """The hub web app's base URL for devices (hub.media_url, else site.public_url)."""
        return (self.hub.media_url or self.site.public_url).rstrip("/")

    def business_day(self, now: float) -> str:
        """The local calendar day (YYYY-MM-DD) a moment belongs to; numbering resets with it."""
        return self.local_now(now).date().isoformat()

    def day_start(self, day: str) -> float:
        """Epoch seconds of local midnight at the start of business day `day` (YYYY-MM-DD)."""
        return datetime.combine(date.fromisoformat(day), time(0), self.site.tz).timestamp()

    def wait_target_s(self, service: str) -> int:
        """How long a citizen of `service` may wait before the supervisors are alerted."""
        own = self.services[service].wait_target_minutes
        return 60 * (own if own is not None else self.alerts.wait_target_minutes)


def cross_check(
    site: Site,
    present: Mapping[str, Collection[str]] | None = None,
    partial: Collection[str] = (),
) -> list[str]:
    """Consistency rules that span tables; each problem names the key and the fix.

    On an inventory with other problems (see `parse_site`) `site` holds what passed its own
    rules, a field that did not being None; `present` names every entry written, valid or not
    (a reference to an entry with a problem of its own is not dangling); `partial` keys the
    entries with such a field, whose own shape is judged once it is fixed.
    """
    problems: list[str] = []
    present = present or {}

    def must_exist(key: str, value: str | int | None, table: dict, table_name: str) -> None:
        written = present.get(table_name)
        if value is None or value in table or (written and str(value) in written):
            return
        names = sorted(written) if written else [str(k) for k in table]
        hint = difflib.get_close_matches(str(value), names, n=1)
        fix = f"did you mean {hint[0]!r}?" if hint else f"use one of: {', '.join(names)}"
        problems.append(f"{key}: {value!r} is not in [{table_name}]; {fix}")

    prefixes: dict[str, str] = {}
    for code, service in site.services.items():
        must_exist(f"services.{code}.agency", service.agency, site.agencies, "agencies")
        must_exist(
            f"services.{code}.time_class", service.time_class, site.time_classes, "time_classes"
        )
        if service.prefix is not None and service.prefix in prefixes:
            problems.append(
                f"services.{code}.prefix: {service.prefix!r} is already used by "
                f"services.{prefixes[service.prefix]}; give each service its own prefix"
            )
        prefixes.setdefault(service.prefix, code)
    for number, counter in site.counters.items():
        if number < 1 or number > 999:
            problems.append(f"counters.{number}: counter numbers run from 1 to 999")
        for i, code in enumerate(counter.services or ()):
            must_exist(f"counters.{number}.services[{i}]", code, site.services, "services")
        for i, code in enumerate(counter.transfer_to or ()):
            must_exist(f"counters.{number}.transfer_to[{i}]", code, site.services, "services")
        must_exist(f"counters.{number}.zone", counter.zone, site.zones, "zones")
    languages = site.site.languages if site.site is not None else None
    for lang_key, zone in site.zones.items():
        if languages is not None and zone.lang is not None and zone.lang not in languages:
            problems.append(
                f"zones.{lang_key}.lang: {zone.lang!r} is not in site.languages; add it there"
            )
    for device_id, device in site.devices.items():
        key = f"devices.{device_id}"
        if device_id == "hub":
            problems.append(f"{key}: 'hub' is reserved for the hub's own identity; rename it")
        if isinstance(device, KioskDevice | DisplayDevice):
            must_exist(f"{key}.zone", device.zone, site.zones, "zones")
        if isinstance(device, KioskDevice):
            for code in device.buttons or {}:
                must_exist(f"{key}.buttons.{code}", code, site.services, "services")
            for i, code in enumerate(device.services or ()):
                must_exist(f"{key}.services[{i}]", code, site.services, "services")
            if key not in partial and not device.buttons and device.screen is None:
                problems.append(
                    f"{key}: a kiosk needs service buttons or a touchscreen; "
                    "add [devices.ID.buttons] or [devices.ID.screen]"
                )
        if isinstance(device, CallerDevice):
            must_exist(f"{key}.counter", device.counter, site.counters, "counters")
        problems.extend(duplicate_pins(key, device))
    for pause_id, pause in site.pauses.items():
        for i, code in enumerate(pause.services or ()):
            must_exist(f"pauses.{pause_id}.services[{i}]", code, site.services, "services")
        if isinstance(pause.keep_issuing, tuple):
            for i, code in enumerate(pause.keep_issuing):
                key = f"pauses.{pause_id}.keep_issuing[{i}]"
                must_exist(key, code, site.services, "services")
                if code in site.services and pause.services is not None and not pause.covers(code):
                    problems.append(
                        f"{key}: {code!r} is not paused by pauses.{pause_id}; list it in its "
                        "services or remove it here"
                    )
    hours = site.site.hours if site.site is not None else None
    if hours is None:  # wrong itself: its problems are listed already
        return problems
    spans = [getattr(hours, day) for day in WEEKDAYS if getattr(hours, day)]
    if not spans:
        problems.append('site.hours: the site is closed every day; add e.g. mon = "08:00-15:00"')
    for code, service in site.services.items():
        problems.extend(_session_problems(code, service, hours))
        if spans and service.cutoff and not any(s[:5] < service.cutoff <= s[6:] for s in spans):
            problems.append(
                f"services.{code}.cutoff: {service.cutoff} is outside the opening hours of "
                "every day; set a cut-off within opening hours"
            )
    return problems


def _session_problems(code: str, service: Service, hours: OpeningHours) -> list[str]:
    """Booking sessions must lie within the opening hours of each of their days, once each."""
    problems: list[str] = []
    booking = service.booking if isinstance(service, Service) else None
    seen: set[tuple[str, str]] = set()
    for i, session in enumerate(booking.sessions if booking else ()):
        key = f"services.{code}.booking.sessions[{i}]"
        for day in session.days:
            span = getattr(hours, day, None)
            if (day, session.id) in seen:
                problems.append(f"{key}: {day} {session.id} is listed twice; list it once")
            seen.add((day, session.id))
            if span is None:
                problems.append(f"{key}: the site is closed on {day}; remove {day!r} from days")
            elif not (span[:5] <= session.start and session.end <= span[6:]):
                problems.append(
                    f"{key}: {session.id} on {day} is outside the opening hours ({span}); "
                    "move the session within them"
                )
    return problems


def device_pins(device: KioskDevice | CallerDevice | DisplayDevice) -> dict[str, Pin]:
    """Every GPIO pin a device uses, keyed by its inventory key (e.g. 'buttons.next')."""
    pins: dict[str, Pin] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, BaseModel):
            for name in type(value).model_fields:
                walk(f"{prefix}.{name}" if prefix else name, getattr(value, name))
        elif isinstance(value, dict):
            for name, item in value.items():
                walk(f"{prefix}.{name}", item)
        elif isinstance(value, int | str) and prefix.split(".", maxsplit=1)[0] in PIN_FIELDS:
            pins[prefix] = value

    walk("", device)
    return pins


PIN_FIELDS = {"buttons", "priority_button", "leds", "buzzer", "rating"}


def duplicate_pins(key: str, device: KioskDevice | CallerDevice | DisplayDevice) -> list[str]:
    """Problems for GPIO pins used twice on one device."""
    seen: dict[str, str] = {}
    problems = []
    for name, pin in device_pins(device).items():
        norm = str(pin).upper().removeprefix("GPIO").removeprefix("BCM")
        if norm in seen:
            problems.append(
                f"{key}.{name}: pin {pin} is already used by {key}.{seen[norm]}; "
                "wire it to a free GPIO pin"
            )
        seen.setdefault(norm, name)
    return problems


def _known_keys() -> set[str]:
    keys: set[str] = set()
    for model in [*Model.__subclasses__(), SiteInfo, Site]:
        keys.update(model.model_fields)
    for model in (KioskDevice, CallerDevice, DisplayDevice):
        keys.update(model.model_fields)
    return keys


def _problem(error: dict[str, Any]) -> str:
    """One pydantic error as 'key: what is wrong; how to fix it'."""
    loc = [str(part) for part in error["loc"] if not str(part).startswith("function-")]
    if loc[:1] == ["devices"] and len(loc) > 2 and loc[2] in ROLES:
        del loc[2]  # the discriminator tag pydantic inserts
    key = ".".join(loc) or "(top level)"
    kind = error["type"]
    if kind == "missing":
        return f"{key}: required key is missing; add it"
    if kind == "extra_forbidden":
        name = loc[-1] if loc else "?"
        hint = difflib.get_close_matches(name, sorted(_known_keys()), n=1)
        fix = f"did you mean {hint[0]!r}?" if hint else "remove it (see examples/ for the keys)"
        return f"{key}: unknown key {name!r}; {fix}"
    if kind == "union_tag_invalid":
        return f"{key}.role: must be one of kiosk, caller, display; fix the role"
    if kind == "value_error" and not loc:
        return error["msg"].removeprefix("Value error, ")
    message = error["msg"].removeprefix("Value error, ")
    if kind == "string_too_long":
        return f"{key}: {message}; shorten it"
    got = repr(error.get("input"))
    if kind.endswith("_type") or kind.endswith("_parsing"):
        return (
            f"{key}: {message} (got {got if len(got) <= 60 else got[:57] + '...'}); fix the value"
        )
    return f"{key}: {message}"


def parse_site(text: str, source: str = "<site inventory>") -> Site:
    """Validate inventory TOML text; raises InventoryError listing every problem.

    Every problem in one run: when fields are wrong the rules across tables still run, on what
    is right (pydantic alone skips them until every field is).
    """
    data = toml_limits.loads(text, source)
    data["version"] = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:12]
    data["source"] = source
    try:
        return Site.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
    problems: list[str] = []
    for error in errors[:MAX_PROBLEMS]:
        problems.extend(_problem(error).split("\n"))
    if len(errors) <= MAX_PROBLEMS and any(error["loc"] for error in errors):
        site, present, partial = _partial_site(data)
        problems += [p for p in cross_check(site, present, partial) if p not in problems]
    raise InventoryError(source, _at_most(problems, max(0, len(errors) - MAX_PROBLEMS)))


def _at_most(problems: list[str], more: int = 0) -> list[str]:
    """The first MAX_PROBLEMS problems and how many more there are (`more` not yet listed)."""
    more += max(0, len(problems) - MAX_PROBLEMS)
    if more <= 0:
        return problems
    return [
        *problems[:MAX_PROBLEMS],
        f"... and {more:,} more problems: is it an MPP site inventory? (see "
        "examples/banjarbaru.toml)",
    ]


def _partial_site(data: dict[str, Any]) -> tuple[Site, dict[str, set[str]], set[str]]:
    """What of `data` passes its own rules, the names in each table, entries with a bad field."""
    present: dict[str, set[str]] = {}
    partial: set[str] = set()
    parts: dict[str, Any] = {}
    for name, model in (("site", SiteInfo), ("broker", Broker), ("hub", HubSettings)):
        parts[name], _ = _lenient(model, data.get(name, {}))
    for name, entry_model in TABLES.items():
        raw = data.get(name)
        raw = raw if isinstance(raw, dict) else {}
        present[name] = {str(key) for key in raw}
        entries: dict[str | int, Any] = {}
        for key, value in raw.items():
            model = entry_model or DEVICE_MODELS.get(
                value.get("role") if isinstance(value, dict) else None
            )
            entry, complete = _lenient(model, value) if model else (None, False)
            if entry is None or (name == "counters" and not key.isdigit()):
                continue
            entries[int(key) if name == "counters" else key] = entry
            if not complete:
                partial.add(f"{name}.{key}")
        parts[name] = entries
    return Site.model_construct(**parts), present, partial


TABLES: dict[str, type[Model] | None] = {
    "time_classes": TimeClass,
    "agencies": Agency,
    "services": Service,
    "counters": Counter,
    "zones": Zone,
    "pauses": Pause,
    "devices": None,  # by role
}
DEVICE_MODELS: dict[Any, type[Model]] = {
    "kiosk": KioskDevice,
    "caller": CallerDevice,
    "display": DisplayDevice,
}
_field_adapters: dict[tuple[type, str], TypeAdapter] = {}


def _lenient(model: type[Model], raw: Any) -> tuple[Any, bool]:
    """(`raw` as a `model`, True), or with each field that fails its rules None, False."""
    if not isinstance(raw, dict):
        return None, False
    try:
        return model.model_validate(raw), True
    except ValidationError as exc:
        bad = {error["loc"][0] for error in exc.errors() if error["loc"]}
    values: dict[str, Any] = {}
    for name, field in model.model_fields.items():
        if name in bad or (name not in raw and field.is_required()):
            values[name] = None
        elif name not in raw:
            values[name] = field.get_default(call_default_factory=True)
        else:
            adapter = _field_adapters.get((model, name))
            if adapter is None:
                annotation = field.annotation
                if field.metadata:
                    annotation = Annotated[annotation, *field.metadata]  # type: ignore[assignment]
                adapter = TypeAdapter(annotation)
                _field_adapters[(model, name)] = adapter
            try:
                values[name] = adapter.validate_python(raw[name])
            except ValidationError:
                values[name] = None
    return model.model_construct(**values), False


def load_site(path: str | Path) -> Site:
    """Load and validate the inventory file at `path`."""
    path = Path(path)
    return parse_site(toml_limits.read(path), str(path))
