"""The live fleet: every device's retained presence, as a table a technician or a monitor reads.

Each device keeps a retained status (online, software version, printer state) whose last will
says offline, so subscribing once shows the whole fleet at once::

    with FleetWatcher(site, Connection("mpp-server.local", 8883, "monitor", pw, ca)) as fleet:
        print(render_table(site, fleet.entries(), time.time()))

A retained status carries no time, so "last seen" is what this watcher saw: now for a device
online, the moment it saw one go offline, or the time a previous run last saw it online
(kept in a small state file); otherwise "unknown".

The watcher is a plain MQTT subscriber on paho rather than a `protocol.mqtt.Bus`: a Bus
announces its own presence, and the technician's tool must not appear in the fleet it shows.
"""

from __future__ import annotations

import json
import logging
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from protocol import messages as m
from protocol.errors import BadMessage, BrokerUnavailable
from protocol.site import CallerDevice, Site
from protocol.topics import Topics

log = logging.getLogger("mpp.provisioning")


@dataclass(frozen=True)
class Connection:
    """How the fleet watcher reaches the broker (the `monitor` account by default)."""

    host: str
    port: int
    username: str
    password: str
    ca_file: str | None = None  # None: plain MQTT (loopback on the site server)


@dataclass(frozen=True)
class FleetEntry:
    """One row of the fleet table."""

    device: str
    role: str
    where: str
    online: bool | None  # None: never seen
    last_seen: float | None
    sw: str
    printer: str
    in_inventory: bool


def where_of(site: Site, device: str) -> str:
    """A device's place in the MPP: its counter or its zone."""
    if device == "hub":
        return "site server"
    spec = site.devices.get(device)
    if spec is None:
        return "-"
    if isinstance(spec, CallerDevice):
        return site.counter_name(spec.counter)
    return f"zona {spec.zone}"


class FleetWatcher:
    """Keeps the latest presence of every device of a site, live."""

    def __init__(
        self,
        site: Site,
        connection: Connection,
        *,
        clock: Callable[[], float] = time.time,
        state_file: Path | None = None,
    ) -> None:
        self.site = site
        self.topics = Topics(site.site.id)
        self.connection = connection
        self.clock = clock
        self.state_file = state_file
        self._lock = threading.Lock()
        self._status: dict[str, m.DeviceStatus] = {}
        # The last will was fixed at connect time: health comes from the last online status.
        self._last_online: dict[str, m.DeviceStatus] = {}
        self._last_seen: dict[str, float] = self._load_seen()
        self._last_message = 0.0
        self._subscribed = threading.Event()
        self._refused: str | None = None
        self.site_state: m.SiteState | None = None  # the hub's latest: its inventory version
        self._client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=connection.username,
            protocol=paho.MQTTv5,
        )
        self._client.username_pw_set(connection.username, connection.password)
        if connection.ca_file is not None:
            self._client.tls_set(ca_certs=connection.ca_file, tls_version=ssl.PROTOCOL_TLS_CLIENT)
        self._client.on_connect = self._on_connect
        self._client.on_subscribe = self._on_subscribe
        self._client.on_message = self._on_message

    # -- lifecycle -----------------------------------------------------------------------
    def start(self, timeout: float = 5.0, settle: float = 1.0) -> FleetWatcher:
        """Connect, subscribe, and wait until the retained presence has arrived."""
        host, port = self.connection.host, self.connection.port
        try:
            self._client.connect(host, port, keepalive=30)
        except (OSError, ssl.SSLError) as exc:
            raise BrokerUnavailable(f"cannot reach the broker at {host}:{port}: {exc}") from None
        self._client.loop_start()
        deadline = time.monotonic() + timeout
        while not self._subscribed.is_set() and self._refused is None:
            if time.monotonic() > deadline:
                self.stop()
                raise BrokerUnavailable(f"no answer from the broker at {host}:{port}")
            time.sleep(0.01)
        if self._refused is not None:
            self.stop()
            raise BrokerUnavailable(
                f"the broker at {host}:{port} refused {self.connection.username}: "
                f"{self._refused}; check the password (mpp-provision init) and the ACL"
            )
        self.wait_quiet(settle, limit=timeout)
        return self

    def wait_quiet(self, quiet: float, limit: float) -> None:
        """Wait until every inventory device's presence has arrived, or none arrived for
        `quiet` seconds (a device that never reported), at most `limit` seconds. (On a busy
        server a short pause between retained messages is no sign that they all came.)"""
        end = time.monotonic() + limit
        everyone = {"hub", *self.site.devices}
        while time.monotonic() < end:
            with self._lock:
                idle = time.monotonic() - self._last_message
                complete = everyone <= self._status.keys()
            if complete or idle >= quiet:
                return
            time.sleep(min(quiet / 3, 0.05))

    def stop(self) -> None:
        """Disconnect and remember when devices were last seen online."""
        self._client.disconnect()
        self._client.loop_stop()
        self._save_seen()

    def __enter__(self) -> FleetWatcher:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- MQTT ----------------------------------------------------------------------------
    def _on_connect(self, client: paho.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            self._refused = str(reason)
            client.disconnect()
            return
        client.subscribe([(self.topics.all_of("status"), 1), (self.topics.site_state(), 1)])

    def _on_subscribe(self, *_args: Any) -> None:
        with self._lock:
            self._last_message = time.monotonic()  # the quiet wait counts from here
        self._subscribed.set()

    def _on_message(self, _c: Any, _u: Any, msg: paho.MQTTMessage) -> None:
        parsed = self.topics.parse(msg.topic)
        if parsed is None or not msg.payload:
            return
        if parsed[0] == "site_state":
            try:
                self.site_state = m.decode(m.SiteState, msg.payload)
            except BadMessage as exc:
                log.warning("bad site state ignored", extra={"error": str(exc)})
            return
        try:
            status = m.decode(m.DeviceStatus, msg.payload)
        except BadMessage as exc:
            log.warning("bad presence ignored", extra={"topic": msg.topic, "error": str(exc)})
            return
        device = parsed[1]["device"]
        now = self.clock()
        with self._lock:
            before = self._status.get(device)
            self._status[device] = status
            if status.online:
                self._last_online[device] = status
            if status.online or (before is not None and before.online):
                self._last_seen[device] = now  # online now, or seen going offline just now
            self._last_message = time.monotonic()

    # -- reading -------------------------------------------------------------------------
    def entries(self) -> list[FleetEntry]:
        """Every inventory device (and any other device with a presence), in inventory order."""
        now = self.clock()
        with self._lock:
            status = dict(self._status)
            last_online = dict(self._last_online)
            for device, seen in status.items():
                if seen.online:
                    self._last_seen[device] = now
            last_seen = dict(self._last_seen)
        known = ["hub", *self.site.devices]
        names = known + sorted(set(status) - set(known))
        out = []
        for device in names:
            spec = self.site.devices.get(device)
            seen = status.get(device)
            health = last_online.get(device, seen)
            role = "hub" if device == "hub" else spec.role if spec is not None else None
            role = role or (seen.role if seen else "?")
            out.append(
                FleetEntry(
                    device=device,
                    role=role,
                    where=where_of(self.site, device),
                    online=None if seen is None else seen.online,
                    last_seen=last_seen.get(device),
                    sw=seen.sw if seen is not None and seen.sw else "-",
                    printer=(health.health.printer or "-") if health is not None else "-",
                    in_inventory=spec is not None or device == "hub",
                )
            )
        return out

    # -- last seen across runs -----------------------------------------------------------
    def _load_seen(self) -> dict[str, float]:
        if self.state_file is None or not self.state_file.exists():
            return {}
        try:
            data = json.loads(self.state_file.read_text())
        except (OSError, ValueError):
            return {}
        return {str(k): float(v) for k, v in data.items() if isinstance(v, int | float)}

    def _save_seen(self) -> None:
        if self.state_file is None:
            return
        with self._lock:
            data = json.dumps(self._last_seen, indent=1, sort_keys=True)
        try:
            self.state_file.write_text(data + "\n")
        except OSError as exc:
            log.warning("cannot keep last-seen times", extra={"error": str(exc)})


def down(entries: list[FleetEntry], optional: set[str] | frozenset[str] = frozenset()) -> list[str]:
    """Inventory devices that are offline or never seen, except the optional ones."""
    return [
        e.device
        for e in entries
        if e.in_inventory and e.device not in optional and e.online is not True
    ]


def _ago(moment: float, now: float, site: Site) -> str:
    seconds = max(0, int(now - moment))
    local = datetime.fromtimestamp(moment, site.site.tz)
    stamp = local.strftime("%H:%M:%S") if seconds < 86400 else local.strftime("%Y-%m-%d %H:%M")
    if seconds < 120:
        return f"{stamp} ({seconds} s ago)"
    if seconds < 7200:
        return f"{stamp} ({seconds // 60} min ago)"
    return f"{stamp} ({seconds // 3600} h ago)"


def config_line(state: m.SiteState | None, expected: str) -> str:
    """Which inventory the hub runs, against `expected` (the version of the hub's slice of the
    inventory this command was given)."""
    if state is None:
        return "hub: no site state (is the hub running?)"
    same = "as" if state.config_version == expected else "NOT the"
    line = f"hub runs inventory version {state.config_version} ({same} given one: {expected})"
    if state.config_refused:
        line += f"\nhub REFUSED inventory {state.config_refused}"
    return line


def render_table(site: Site, entries: list[FleetEntry], now: float) -> str:
    """The fleet as a fixed-width text table, one device per line."""
    head = ("DEVICE", "ROLE", "WHERE", "STATE", "LAST SEEN", "SW", "PRINTER")
    rows = []
    for e in entries:
        state = {True: "online", False: "OFFLINE", None: "never seen"}[e.online]
        if not e.in_inventory:
            state += " (not in inventory)"
        seen = "unknown" if e.last_seen is None else _ago(e.last_seen, now, site)
        if e.online:
            seen = "now"
        rows.append((e.device, e.role, e.where, state, seen, e.sw, e.printer))
    widths = [max(len(str(r[i])) for r in [head, *rows]) for i in range(len(head))]
    lines = [
        "  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
        for r in [head, *rows]
    ]
    online = sum(e.online is True for e in entries if e.in_inventory)
    total = sum(e.in_inventory for e in entries)
    lines.append(f"{online}/{total} inventory devices online")
    return "\n".join(lines)
