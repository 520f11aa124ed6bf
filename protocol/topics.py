"""Every MQTT topic of the protocol: the table (who publishes, who subscribes) and the builders.

This is the only module that spells a topic. The broker ACL and `docs/protocol.md` are
generated from `TOPICS` and `COMMAND_ROLES`, so the rules are written once.

    t = Topics("mpp-banjarbaru")
    t.command("caller-03", "next")   # 'mpp/v1/mpp-banjarbaru/cmd/caller-03/next'
    t.counter_state(3)               # 'mpp/v1/mpp-banjarbaru/counter/3/state'
"""

from __future__ import annotations

from dataclasses import dataclass

from protocol import messages as m

ROOT = "mpp/v1"


@dataclass(frozen=True)
class TopicSpec:
    """One row of the topic table."""

    name: str
    template: str  # relative to mpp/v1/{site}/
    qos: int
    retained: bool
    payload: type[m.Message]
    publishers: tuple[str, ...]
    subscribers: tuple[str, ...]
    own_only: bool  # the {device} level must be the publishing/subscribing device itself
    about: str
    # Roles that, on an own_only row, read every device's topic, not just their own.
    reads_every_device: tuple[str, ...] = ()


TOPICS: tuple[TopicSpec, ...] = (
    TopicSpec(
        "command",
        "cmd/{device}/{kind}",
        1,
        False,
        m.Command,
        ("kiosk", "caller", "hub", "web"),
        ("hub",),
        True,
        "A device asks the hub to do something; the kind is the last level.",
    ),
    TopicSpec(
        "reply",
        "reply/{device}",
        0,  # a lost reply only makes the device retry, with the same request id
        False,
        m.Reply,
        ("hub",),
        ("kiosk", "caller", "display", "hub", "web"),
        True,
        "The hub's answer to a command, to the device that sent it.",
    ),
    TopicSpec(
        "counter_state",
        "counter/{counter}/state",
        1,
        True,
        m.CounterState,
        ("hub",),
        ("kiosk", "caller", "display", "hub", "web"),
        False,
        "What a counter shows now; call_seq grows with each call or recall.",
    ),
    TopicSpec(
        "service_state",
        "service/{service}/state",
        1,
        True,
        m.ServiceState,
        ("hub",),
        ("kiosk", "caller", "display", "hub", "web"),
        False,
        "Queue of one service: waiting, estimate, quota left, open or closed.",
    ),
    TopicSpec(
        "service_queue",
        "service/{service}/queue",
        1,
        True,
        m.ServiceQueue,
        ("hub",),
        ("web",),
        False,
        "Every waiting ticket of a service in the hub's call order with its estimated wait: "
        "what a citizen's ticket page shows (people ahead = position).",
    ),
    TopicSpec(
        "site_state",
        "site/state",
        1,
        True,
        m.SiteState,
        ("hub",),
        ("kiosk", "caller", "display", "hub", "web"),
        False,
        "Summary of the site and the most recent calls.",
    ),
    TopicSpec(
        "featured",
        "zone/{zone}/featured",
        1,
        True,
        m.FeaturedState,
        ("web",),
        ("display", "web"),
        False,
        "The admin's featured products (UMKM) of a zone's slideshow; images are fetched over "
        "HTTP from the web app.",
    ),
    TopicSpec(
        "zone_sound",
        "zone/{zone}/sound",
        1,
        True,
        m.ZoneSound,
        ("hub",),
        ("display", "hub", "web"),
        False,
        "How a zone's screens speak calls: on or off, volume, numbers as words or digits.",
    ),
    TopicSpec(
        "status",
        "device/{device}/status",
        1,
        True,
        m.DeviceStatus,
        ("kiosk", "caller", "display", "hub", "web"),
        ("hub", "web"),
        True,
        "Presence and health of a device; its last will publishes online=false.",
        ("hub", "web"),
    ),
    TopicSpec(
        "alert",
        "alert/{alert}",
        1,
        True,
        m.Alert,
        ("hub",),
        ("display", "hub", "web"),
        False,
        "An alert for supervisors and any screen that shows them: a one-off one is retained "
        "until acknowledged, a service-level one until its condition ends.",
    ),
    TopicSpec(
        "events",
        "up/events",
        1,
        False,
        m.EventBatch,
        ("hub",),
        ("region",),
        False,
        "The hub's outbox: committed events in numbered batches, to the region over the bridge.",
    ),
    TopicSpec(
        "catalog",
        "up/catalog",
        1,
        True,
        m.SiteCatalog,
        ("hub",),
        ("region",),
        False,
        "The site's names and service standards, for the region's pages and reports.",
    ),
    TopicSpec(
        "ack",
        "down/ack",
        1,
        False,
        m.EventAck,
        ("region",),
        ("hub",),
        False,
        "The region has stored every event up to `acked`: the hub sends on from there.",
    ),
    TopicSpec(
        "queue_view",
        "up/queue",
        1,
        False,
        m.QueueView,
        ("hub",),
        ("region",),
        False,
        "A service's queue as citizens' ticket pages on the region show it (newest seq wins).",
    ),
    TopicSpec(
        "booking_offer",
        "up/booking",
        1,
        True,
        m.BookingOffer,
        ("hub",),
        ("region",),
        False,
        "The site's bookable services and sessions, for the region's online booking.",
    ),
    TopicSpec(
        "down_messages",
        "down/messages",
        1,
        False,
        m.DownBatch,
        ("region",),
        ("hub",),
        False,
        "Bookings, cancellations and survey answers from the region, numbered, applied once.",
    ),
    TopicSpec(
        "down_ack",
        "up/received",
        1,
        False,
        m.DownAck,
        ("hub",),
        ("region",),
        False,
        "The hub has applied every region message up to `applied`: the region sends on from there.",
    ),
)
TOPIC: dict[str, TopicSpec] = {spec.name: spec for spec in TOPICS}

# Which roles may send which command kind. The hub checks the device's role from the
# inventory; a caller box may in addition only command its own counter.
COMMAND_ROLES: dict[str, tuple[str, ...]] = {
    "issue": ("kiosk", "hub"),
    "printed": ("kiosk", "hub"),
    "void": ("kiosk", "hub"),
    "next": ("caller", "hub", "web"),
    "recall": ("caller", "hub", "web"),
    "skip": ("caller", "hub", "web"),
    "call_skipped": ("caller", "hub", "web"),
    "transfer": ("caller", "hub", "web"),
    "finish": ("caller", "hub", "web"),
    "open": ("caller", "hub", "web"),
    "close": ("caller", "hub", "web"),
    "break": ("caller", "hub", "web"),
    "end_break": ("caller", "hub", "web"),
    "rate": ("caller", "hub"),
    "revoke_priority": ("hub", "web"),
    "ack_alert": ("hub", "web"),
    "open_service": ("hub", "web"),
    "close_service": ("hub", "web"),
    "assign_counter": ("hub", "web"),
    "service_limits": ("hub", "web"),
    "zone_sound": ("hub", "web"),
    "survey": ("hub", "web"),
    "check_in": ("kiosk", "hub"),
}
assert set(COMMAND_ROLES) == set(m.COMMANDS), "every command kind needs its roles"


class Topics:
    """Topic builders and parsers for one site (under `root`: a region may remap the sites'
    up/ and down/ topics under a prefix of its own, see `every_site`)."""

    def __init__(self, site_id: str, root: str = ROOT) -> None:
        self.site_id = site_id
        self.root = root
        self.prefix = f"{root}/{site_id}/"

    def _build(self, name: str, **parts: object) -> str:
        return self.prefix + TOPIC[name].template.format(**parts)

    def command(self, device: str, kind: str) -> str:
        """Where `device` sends a command of `kind`."""
        return self._build("command", device=device, kind=kind)

    def reply(self, device: str) -> str:
        """Where the hub answers `device`."""
        return self._build("reply", device=device)

    def counter_state(self, counter: int) -> str:
        """Retained state of one counter."""
        return self._build("counter_state", counter=counter)

    def service_state(self, service: str) -> str:
        """Retained state of one service."""
        return self._build("service_state", service=service)

    def service_queue(self, service: str) -> str:
        """Retained waiting order (and estimates) of one service."""
        return self._build("service_queue", service=service)

    def site_state(self) -> str:
        """Retained site summary."""
        return self._build("site_state")

    def featured(self, zone: str) -> str:
        """Retained featured products of one zone."""
        return self._build("featured", zone=zone)

    def zone_sound(self, zone: str) -> str:
        """Retained sound settings of one zone's screens."""
        return self._build("zone_sound", zone=zone)

    def status(self, device: str) -> str:
        """Retained presence/health of one device."""
        return self._build("status", device=device)

    def alert(self, alert_id: str) -> str:
        """Retained alert."""
        return self._build("alert", alert=alert_id)

    def events(self) -> str:
        """The outbox's batches to the region."""
        return self._build("events")

    def catalog(self) -> str:
        """The site's catalog for the region (retained)."""
        return self._build("catalog")

    def ack(self) -> str:
        """The region's acknowledgements of the outbox."""
        return self._build("ack")

    def queue_view(self) -> str:
        """The public view of a service's queue, to the region."""
        return self._build("queue_view")

    def booking_offer(self) -> str:
        """The site's bookable services, to the region (retained)."""
        return self._build("booking_offer")

    def down_messages(self) -> str:
        """The region's numbered messages to the site (bookings, cancellations, surveys)."""
        return self._build("down_messages")

    def down_ack(self) -> str:
        """The hub's acknowledgement of the region's messages."""
        return self._build("down_ack")

    # Filters for subscriptions ---------------------------------------------------------
    def all_of(self, name: str) -> str:
        """A subscription filter matching every topic of table row `name`."""
        spec = TOPIC[name]
        levels = ["+" if "{" in level else level for level in spec.template.split("/")]
        return self.prefix + "/".join(levels)

    def parse(self, topic: str) -> tuple[str, dict[str, str]] | None:
        """(row name, {placeholder: value}) for a topic of this site, or None."""
        if not topic.startswith(self.prefix):
            return None
        levels = topic[len(self.prefix) :].split("/")
        for spec in TOPICS:
            template = spec.template.split("/")
            if len(template) != len(levels):
                continue
            values: dict[str, str] = {}
            for want, got in zip(template, levels, strict=True):
                if want.startswith("{"):
                    if not got:
                        break
                    values[want[1:-1]] = got
                elif want != got:
                    break
            else:
                return spec.name, values
        return None


def every_site(name: str, root: str = ROOT) -> str:
    """A filter matching row `name` of every site under `root` (the region's subscriptions)."""
    return Topics("+", root).all_of(name)


def site_of(topic: str, root: str = ROOT) -> tuple[str, str] | None:
    """(site id, row name) of a topic under `root`, or None if it is no row of the table."""
    if not topic.startswith(root + "/"):
        return None
    site = topic[len(root) + 1 :].split("/", 1)[0]
    parsed = Topics(site, root).parse(topic) if site else None
    return (site, parsed[0]) if parsed else None
