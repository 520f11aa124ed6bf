"""Readiness of a site before it opens: every problem named by its inventory key, with the fix.

The inventory loader already refuses what is inconsistent (a dangling reference, a pin used
twice, a prefix used twice, hours that close before they open). This adds what makes a
consistent inventory unready: a service no counter serves, a counter without a caller box,
a zone without a screen, a kiosk without a printer, odd hours, missing credentials...

    findings = readiness(text, "site.toml")
    [f for f in findings if f.level == ERROR]
"""

from __future__ import annotations

import ipaddress
import re
import urllib.parse
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from broker_config.acl import RESERVED_USERS, UPLINK
from broker_config.tls import expires_at
from protocol.errors import InventoryError
from protocol.site import (
    WEEKDAYS,
    CallerDevice,
    DisplayDevice,
    KioskDevice,
    Site,
    device_pins,
    parse_hhmm,
    parse_site,
)
from provisioning.site_secrets import SiteSecrets

ERROR, WARNING = "error", "warning"
LOCAL_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"}
HOSTNAME_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
BCM_RE = re.compile(r"^(?:GPIO|BCM)?(\d+)$", re.IGNORECASE)
I2C_PINS = {2, 3}  # SDA, SCL on the Pi header: the caller box's LCD backpack uses them
EARLIEST_OPEN, LATEST_CLOSE = "06:00", "22:00"
CERT_WARNING = timedelta(days=90)


@dataclass(frozen=True)
class Finding:
    """One readiness problem: how bad, which inventory key, what is wrong and the fix."""

    level: str
    key: str
    message: str

    def __str__(self) -> str:
        return f"{self.level.upper():<8} {self.key}: {self.message}"


def readiness(
    text: str, source: str = "<site inventory>", store: SiteSecrets | None = None
) -> list[Finding]:
    """Every readiness problem of the inventory `text` (and of its secrets, when given)."""
    try:
        site = parse_site(text, source)
    except InventoryError as exc:
        return [_from_problem(problem) for problem in exc.problems]
    findings: list[Finding] = []
    for check in (
        _services,
        _counters,
        _zones,
        _kiosks,
        _pins,
        _hours,
        _devices,
        _web_urls,
        _region_url,
    ):
        findings += check(site)
    # With secrets, the server's name is known from `init --server`; without, guess from [broker].
    findings += _broker(site) if store is None else _secrets(site, store)
    return findings


def _from_problem(problem: str) -> Finding:
    key, sep, message = problem.partition(": ")
    if not sep or " " in key:
        return Finding(ERROR, "(inventory)", problem)
    return Finding(ERROR, key, message)


def _callers(site: Site) -> dict[int, list[str]]:
    out: dict[int, list[str]] = {number: [] for number in site.counters}
    for device_id, device in site.devices.items():
        if isinstance(device, CallerDevice):
            out.setdefault(device.counter, []).append(device_id)
    return out


def _services(site: Site) -> list[Finding]:
    out = []
    callers = _callers(site)
    offered: set[str] = set()
    for device in site.devices.values():
        if isinstance(device, KioskDevice):
            offered |= set(device.buttons)
            if device.screen is not None:
                offered |= set(device.services or site.services)
    for code in site.services:
        counters = site.counters_serving(code)
        if not counters:
            out.append(
                Finding(
                    ERROR,
                    f"services.{code}",
                    f"no counter serves it, so its tickets are never called; add {code!r} "
                    "to the services of a counter",
                )
            )
        elif not any(callers.get(n) for n in counters):
            numbers = ", ".join(str(n) for n in counters)
            out.append(
                Finding(
                    ERROR,
                    f"services.{code}",
                    f"none of its counters ({numbers}) has a caller box, so no counter can "
                    "open for it; add a caller device for one of them",
                )
            )
        if code not in offered:
            out.append(
                Finding(
                    WARNING,
                    f"services.{code}",
                    "no kiosk offers it (no button, no touch menu): citizens cannot take a "
                    f"ticket; add a button {code} = PIN to a kiosk or list it in a touch kiosk",
                )
            )
    return out


def _counters(site: Site) -> list[Finding]:
    out = []
    for number, ids in _callers(site).items():
        if number not in site.counters:
            continue
        if not ids:
            out.append(
                Finding(
                    ERROR,
                    f"counters.{number}",
                    f"no caller box; add [devices.caller-{number:02d}] with role = "
                    f'"caller" and counter = {number}',
                )
            )
        elif len(ids) > 1:
            out.append(
                Finding(
                    WARNING,
                    f"counters.{number}",
                    f"{len(ids)} caller boxes ({', '.join(ids)}) call to it; keep one per "
                    "counter unless two officers share it",
                )
            )
    for device_id, device in site.devices.items():
        if isinstance(device, CallerDevice) and device.counter in site.counters:
            counter = site.counters[device.counter]
            if counter.transfer_to and device.buttons.transfer is None:
                out.append(
                    Finding(
                        WARNING,
                        f"devices.{device_id}.buttons.transfer",
                        f"counter {device.counter} may transfer to "
                        f"{', '.join(counter.transfer_to)} but its box has no TRANSFER "
                        "button; wire one and add transfer = PIN",
                    )
                )
    return out


def _zones(site: Site) -> list[Finding]:
    shown = {d.zone for d in site.devices.values() if isinstance(d, DisplayDevice)}
    return [
        Finding(
            ERROR,
            f"zones.{zone}",
            f"no display shows it, so calls there go unseen; add a device with role = "
            f'"display" and zone = "{zone}"',
        )
        for zone in site.zones
        if zone not in shown
    ]


def _kiosks(site: Site) -> list[Finding]:
    out = []
    kiosks = [(i, d) for i, d in site.devices.items() if isinstance(d, KioskDevice)]
    if not kiosks:
        out.append(
            Finding(ERROR, "devices", 'no kiosk: add a device with role = "kiosk" and a printer')
        )
    for device_id, device in kiosks:
        if device.printer is None:
            out.append(
                Finding(
                    ERROR,
                    f"devices.{device_id}.printer",
                    "a kiosk without a printer cannot hand out tickets; add printer = "
                    '{ connection = "usb", vendor_id = 0x..., product_id = 0x... }',
                )
            )
        elif device.printer.connection in ("dummy", "file"):
            out.append(
                Finding(
                    WARNING,
                    f"devices.{device_id}.printer.connection",
                    f"{device.printer.connection!r} is a test printer: nothing comes out on "
                    'paper; use "usb", "network" or "serial"',
                )
            )
    return out


def _pins(site: Site) -> list[Finding]:
    out = []
    for device_id, device in site.devices.items():
        has_lcd = isinstance(device, CallerDevice) and device.lcd is not None
        for name, pin in device_pins(device).items():
            match = BCM_RE.fullmatch(str(pin))
            if match is None:
                continue  # BOARD / J8 header numbering: gpiozero checks it on the device
            number = int(match[1])
            key = f"devices.{device_id}.{name}"
            if number > 27:
                out.append(
                    Finding(ERROR, key, f"GPIO{number} does not exist on a Pi header (GPIO0-27)")
                )
            elif has_lcd and number in I2C_PINS:
                out.append(
                    Finding(
                        ERROR,
                        key,
                        f"GPIO{number} is an I2C line the LCD uses; wire the button to a free "
                        "GPIO pin",
                    )
                )
            elif number in (0, 1):
                out.append(
                    Finding(
                        WARNING,
                        key,
                        f"GPIO{number} is reserved for HAT EEPROMs; prefer another pin",
                    )
                )
    return out


def _hours(site: Site) -> list[Finding]:
    out = []
    hours = site.site.hours
    for day in WEEKDAYS:
        value = getattr(hours, day)
        if value is None:
            continue
        start, end = value.split("-")
        key = f"site.hours.{day}"
        if start < EARLIEST_OPEN or end > LATEST_CLOSE:
            out.append(
                Finding(
                    WARNING,
                    key,
                    f"{value} opens before {EARLIEST_OPEN} or closes after {LATEST_CLOSE}; "
                    "check the opening hours",
                )
            )
        minutes = _minutes(end) - _minutes(start)
        if minutes < 120:
            out.append(Finding(WARNING, key, f"{value} is open less than 2 hours; check the hours"))
        late = [f"{c} {s.cutoff}" for c, s in site.services.items() if s.cutoff and s.cutoff > end]
        if late:
            out.append(
                Finding(
                    WARNING,
                    key,
                    f"closes at {end}, before the cut-off of {len(late)} service(s) "
                    f"({', '.join(late[:3])}{', ...' if len(late) > 3 else ''}); they take "
                    "tickets until closing that day",
                )
            )
    spans = [
        _minutes(v.split("-")[1]) - _minutes(v.split("-")[0])
        for v in (getattr(hours, d) for d in WEEKDAYS)
        if v
    ]
    longest = max(spans, default=0)
    for code, service in site.services.items():
        counters = len(site.counters_serving(code))
        if counters and service.daily_quota * service.avg_minutes / counters > longest:
            out.append(
                Finding(
                    WARNING,
                    f"services.{code}.daily_quota",
                    f"{service.daily_quota} tickets x {service.avg_minutes:g} min on "
                    f"{counters} counter(s) take longer than the longest day ({longest} min); "
                    "lower the quota or add counters",
                )
            )
    return out


def _minutes(hhmm: str) -> int:
    if hhmm == "24:00":
        return 24 * 60
    moment = parse_hhmm(hhmm)
    return moment.hour * 60 + moment.minute


def _devices(site: Site) -> list[Finding]:
    out = []
    hostnames: dict[str, str] = {}
    for device_id, device in site.devices.items():
        if device_id in RESERVED_USERS:
            out.append(
                Finding(
                    ERROR,
                    f"devices.{device_id}",
                    f"{device_id!r} is the broker account of the {device_id}; rename the device",
                )
            )
        hostname = device.hostname or device_id
        key = f"devices.{device_id}.hostname"
        if not HOSTNAME_RE.fullmatch(hostname):
            out.append(
                Finding(
                    ERROR,
                    key,
                    f"{hostname!r} is not a valid hostname (a-z, 0-9 and '-', at most 63); "
                    'set hostname = "..."',
                )
            )
        if hostname in hostnames:
            out.append(
                Finding(
                    ERROR,
                    key,
                    f"{hostname!r} is also the hostname of {hostnames[hostname]}; give each "
                    "Pi its own hostname",
                )
            )
        hostnames.setdefault(hostname, device_id)
    return out


def unreachable(host: str) -> str | None:
    """Why another machine on the LAN cannot reach `host` (None: it may).

    Loopback, link-local, unspecified and multicast addresses, and the names `localhost`,
    `*.localhost` (RFC 6761), `localhost.localdomain`, mean the machine that reads them.
    """
    name = host.strip("[]").lower().rstrip(".")
    if name in LOCAL_NAMES or name.endswith(".localhost"):
        return f"{host} means the device that reads it"
    try:
        address = ipaddress.ip_address(name.split("%")[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    if address.is_loopback:
        return f"{host} is a loopback address (the device that reads it)"
    if address.is_unspecified:
        return f"{host} is no machine's address (servers listen on it)"
    if address.is_link_local:
        return f"{host} is a link-local address (taken when DHCP failed; it does not route)"
    if address.is_multicast:
        return f"{host} is a multicast address, not one machine's"
    return None


def _web_urls(site: Site) -> list[Finding]:
    """The ticket QR (site.public_url) and the displays' media address must leave the server."""
    urls = [("site.public_url", site.site.public_url, ERROR, "citizens' phones", "ticket QR")]
    if site.hub.media_url is not None:
        urls.append(("hub.media_url", site.hub.media_url, WARNING, "display Pis", "images"))
    out = []
    for key, url, level, who, what in urls:
        table, name = key.split(".")
        parts = urllib.parse.urlsplit(url)
        host = parts.hostname or ""
        lan = urllib.parse.urlunsplit(parts._replace(netloc=_with_host(parts, "192.168.10.2")))
        fix = f'set {name} = "{lan}" in [{table}] (the site server\'s LAN address or DNS name)'
        why = unreachable(host)
        if why is not None:
            out.append(Finding(level, key, f"{why}: {who} cannot open the {what}; {fix}"))
        elif host.endswith(".local"):
            out.append(
                Finding(
                    WARNING,
                    key,
                    f"{host} is an mDNS name that many Android phones cannot resolve; {fix}",
                )
            )
    return out


def _region_url(site: Site) -> list[Finding]:
    """With region.public_url the ticket QR points to the region: phones on mobile data must
    reach it from the internet (not a LAN address), over https."""
    url = site.region.public_url if site.region is not None else None
    if url is None:
        return []
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    fix = 'set public_url = "https://antrian.example.go.id" in [region] (the regional web)'
    why = unreachable(host)
    if why is None:
        try:
            if ipaddress.ip_address(host).is_private:
                why = f"{host} is a private (LAN) address"
        except ValueError:
            pass
    if why is not None:
        return [Finding(ERROR, "region.public_url", f"{why}: phones on mobile data cannot "
                        f"open the ticket QR; {fix}")]  # fmt: skip
    if parts.scheme != "https":
        return [Finding(WARNING, "region.public_url", f"{url} is not https: citizens' pages "
                        "and booking forms travel unencrypted over the internet; serve the "
                        "regional web with [web] tls_cert/tls_key")]  # fmt: skip
    return []


def _with_host(parts: urllib.parse.SplitResult, host: str) -> str:
    return f"{host}:{parts.port}" if parts.port else host


def _broker(site: Site) -> list[Finding]:
    if unreachable(site.broker.host) is not None:
        return [
            Finding(
                WARNING,
                "broker.host",
                f"{site.broker.host} is this machine: devices reach the site server by its "
                "network name; give it to `mpp-provision init --server NAME` (bundles use it)",
            )
        ]
    return []


def _secrets(site: Site, store: SiteSecrets) -> list[Finding]:
    out = []
    if store.site_id != site.site.id:
        return [
            Finding(
                ERROR,
                "site.id",
                f"the secrets in {store.root} are for {store.site_id!r}; pass the right --secrets",
            )
        ]
    for device_id in site.devices:
        key = f"devices.{device_id}"
        if device_id in store.revoked:
            out.append(
                Finding(
                    ERROR,
                    key,
                    "its broker account is revoked; run `mpp-provision rotate "
                    f"{device_id}` for a replacement Pi, or remove it from the inventory",
                )
            )
        elif device_id not in store.accounts:
            out.append(Finding(ERROR, key, "no broker account yet; run `mpp-provision init`"))
    for name in sorted(set(store.accounts) - set(site.devices) - set(RESERVED_USERS)):
        out.append(
            Finding(
                WARNING,
                f"devices.{name}",
                f"not in the inventory but still has a broker account; run "
                f"`mpp-provision revoke {name}`",
            )
        )
    if all(unreachable(server) is not None for server in store.servers):
        out.append(
            Finding(
                ERROR,
                "broker.host",
                "the server certificate names only this machine; run `mpp-provision init "
                "--server NAME` with the site server's network name or address",
            )
        )
    out += _uplink(site, store)
    try:
        left = expires_at(store.server.cert_pem) - datetime.now(UTC)
    except OSError:
        out.append(Finding(ERROR, "broker", "no server certificate; run `mpp-provision init`"))
    else:
        if left < CERT_WARNING:
            out.append(
                Finding(
                    WARNING,
                    "broker",
                    f"the server certificate expires in {left.days} days; renew it with "
                    "`mpp-provision init --renew-server`",
                )
            )
    return out


def _uplink(site: Site, store: SiteSecrets) -> list[Finding]:
    """A site that reports to a region needs its bridge, and the bridge belongs in the uplink
    broker: in the site broker a misbehaving WAN can hang Mosquitto 2.0.11 (docs/region.md)."""
    settings = store.broker_settings() or {}
    fix = "run `mpp-provision broker --bridge HOST:PORT ...` and install the uplink broker"
    if not settings.get("bridge"):
        if site.region is None or not settings:
            return []
        why = "the site reports to a region ([region]) but its broker files have no bridge"
        return [Finding(WARNING, "region", f"{why}: its events wait in the hub; {fix}")]
    if "uplink" not in settings:
        why = (
            "the broker files put the bridge to the region in the site broker, where a WAN "
            "that resets connections can hang it and stop the site"
        )
        return [Finding(ERROR, "broker", f"{why}; {fix} (the site broker then has no bridge)")]
    if UPLINK not in store.accounts:
        fix = "run `mpp-provision init`, then `mpp-provision broker --bridge ...`"
        return [Finding(ERROR, "broker", f"no `{UPLINK}` account for the uplink broker; {fix}")]
    return []


def summary(findings: list[Finding]) -> str:
    """READY / NOT READY with the counts."""
    errors = sum(f.level == ERROR for f in findings)
    warnings = len(findings) - errors
    verdict = "NOT READY" if errors else "READY"
    return f"{verdict}: {errors} error(s), {warnings} warning(s)"
