"""Render the site server's Mosquitto files from the templates shipped in this package.

    layout = BrokerLayout()                       # Debian paths, ports 1883 (hub) / 8883 (TLS)
    files = render_broker_files(site, layout, accounts, tls)
    write_broker_files(out_dir, files)            # mosquitto.conf, passwd, acl, ca.crt, ...

The same inventory and accounts always give the same bytes (the password file holds the
hashes stored at `mpp-provision init`, not fresh ones).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from string import Template

from broker_config.acl import render_acl
from broker_config.passwords import password_file
from protocol.errors import MppError
from protocol.messages import MAX_PAYLOAD_BYTES
from protocol.site import Site
from protocol.topics import ROOT, TOPICS

CONF = "mosquitto.conf"
PASSWD = "passwd"
ACL = "acl"
CA_CERT = "ca.crt"
SERVER_CERT = "server.crt"
SERVER_KEY = "server.key"
# Files whose leak lets someone impersonate the broker or read the bridge password.
PRIVATE = frozenset({SERVER_KEY, CONF})


# Mosquitto 2.0 writes "Denied PUBLISH from <client> (..., '<topic>', ...)" only at its debug
# level, which also logs every packet: a few lines per message, kept in bounds by logrotate.
DENIALS = """# A publish the ACL refuses is logged only at the debug level ("Denied PUBLISH from
# caller-03 (... 'mpp/v1/.../cmd/hub/...')"); the level also logs each packet (a few lines per
# message: rotate the log). A refused subscribe is never logged by Mosquitto 2.0: the client
# gets reason code 0x87 (MQTT 5) and no messages.
log_type debug"""


class BrokerConfigError(MppError, ValueError):
    """The broker files cannot be made from what was given (bad path, port, address)."""


def template(name: str) -> Template:
    """A template shipped with this package (`mosquitto.conf.tmpl`, `bridge.conf.tmpl`)."""
    return Template(resources.files("broker_config").joinpath(name).read_text(encoding="utf-8"))


@dataclass(frozen=True)
class BrokerLayout:
    """Where the broker's files live on the site server, and where it listens."""

    etc_dir: str = "/etc/mosquitto/mpp"
    data_dir: str = "/var/lib/mosquitto/"
    log_dest: str = "file /var/log/mosquitto/mosquitto.log"
    user: str = "mosquitto"
    loopback_port: int = 1883
    device_port: int = 8883
    device_bind: str = ""  # empty: every interface of the site server
    max_connections: int = 256
    max_queued_messages: int = 10000
    log_denials: bool = True  # Mosquitto 2.0 logs a denied publish only at its debug level

    def __post_init__(self) -> None:
        for name in ("etc_dir", "data_dir"):
            value = getattr(self, name)
            if not value.startswith("/") or any(c.isspace() for c in value):
                raise BrokerConfigError(
                    f"{name}: {value!r} must be an absolute path without spaces"
                )
        for name in ("loopback_port", "device_port"):
            if not 1 <= getattr(self, name) <= 65535:
                raise BrokerConfigError(f"{name}: {getattr(self, name)} is not a TCP port")
        if self.loopback_port == self.device_port:
            raise BrokerConfigError("the loopback and device listeners need different ports")


@dataclass(frozen=True)
class Bridge:
    """A bridge to a regional broker: the outbox's up/ out, the region's down/ in."""

    host: str
    port: int = 8883
    prefix: str = ROOT
    username: str | None = None
    password: str | None = None
    cafile: str | None = None

    def __post_init__(self) -> None:
        if not self.prefix or self.prefix.startswith("/") or self.prefix.endswith("/"):
            raise BrokerConfigError(
                f"bridge prefix {self.prefix!r}: write levels without leading or trailing '/'"
            )
        if any(c in self.prefix for c in "+# ") or any(c.isspace() for c in self.host):
            raise BrokerConfigError("bridge prefix and host may not contain spaces, + or #")
        if (self.username is None) != (self.password is None):
            raise BrokerConfigError("give the bridge both a username and a password, or neither")


def render_conf(site: Site, layout: BrokerLayout) -> str:
    """mosquitto.conf for the site server (never with a bridge: that runs in the uplink broker,
    broker_config/uplink.py)."""
    return template("mosquitto.conf.tmpl").substitute(
        site_id=site.site.id,
        site_name=site.site.name,
        user=layout.user,
        data_dir=layout.data_dir.rstrip("/") + "/",
        log_dest=layout.log_dest,
        etc_dir=layout.etc_dir.rstrip("/"),
        payload_limit=MAX_PAYLOAD_BYTES,
        max_packet_size=2 * MAX_PAYLOAD_BYTES,
        max_queued_messages=layout.max_queued_messages,
        loopback_port=layout.loopback_port,
        device_port=layout.device_port,
        device_bind=f" {layout.device_bind}" if layout.device_bind else "",
        max_connections=layout.max_connections,
        denials=DENIALS if layout.log_denials else "# ACL denials not logged (--no-log-denials)",
    )


BRIDGED: tuple[tuple[str, str], ...] = (("up/#", "out"), ("down/#", "in"))


def bridged_topics() -> tuple[str, ...]:
    """Topic filters (relative to the site prefix) a bridge carries: the topic table's rows
    under up/ go out, those under down/ come in; nothing else crosses."""
    rows = tuple(f"{spec.template.split('/')[0]}/#" for spec in TOPICS)
    assert all(any(row == pattern for row in rows) for pattern, _ in BRIDGED)
    return tuple(pattern for pattern, _ in BRIDGED)


def render_bridge(site: Site, bridge: Bridge) -> str:
    """The bridge to the region, appended to the uplink broker's mosquitto.conf."""
    site_id = site.site.id
    local, remote = f"{ROOT}/{site_id}/", f"{bridge.prefix}/{site_id}/"
    login = ""
    if bridge.username is not None:
        login = f"remote_username {bridge.username}\nremote_password {bridge.password}\n"
    tls = f"bridge_cafile {bridge.cafile}\nbridge_insecure false\n" if bridge.cafile else ""
    topics = "".join(
        f"topic {pattern} {direction} 1 {local} {remote}\n" for pattern, direction in BRIDGED
    )
    return template("bridge.conf.tmpl").substitute(
        remote_host=bridge.host,
        remote_port=bridge.port,
        remote_prefix=remote,
        site_id=site_id,
        connection=f"{site_id}-to-region",
        local_clientid=f"bridge-{site_id}-local",
        remote_clientid=f"bridge-{site_id}",
        remote_login=login,
        remote_tls=tls,
        topics=topics,
    )


@dataclass(frozen=True)
class Account:
    """A broker account: username (= device id), its role and its stored `$7$` hash."""

    username: str
    role: str
    password_hash: str


def render_broker_files(
    site: Site,
    layout: BrokerLayout,
    accounts: list[Account],
    *,
    ca_cert_pem: bytes,
    server_cert_pem: bytes,
    server_key_pem: bytes,
) -> dict[str, bytes]:
    """Every file of the site broker, by file name."""
    return {
        CONF: render_conf(site, layout).encode(),
        ACL: render_acl(site.site.id, {a.username: a.role for a in accounts}).encode(),
        PASSWD: password_file({a.username: a.password_hash for a in accounts}).encode(),
        CA_CERT: ca_cert_pem,
        SERVER_CERT: server_cert_pem,
        SERVER_KEY: server_key_pem,
    }


def write_broker_files(out_dir: str | Path, files: dict[str, bytes]) -> list[Path]:
    """Write the files (private ones 0600, others 0644); returns their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, data in sorted(files.items()):
        path = out / name
        tmp = path.with_name(f".{name}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, 0o600 if name in PRIVATE or name == PASSWD else 0o644)
        os.replace(tmp, path)  # a broker reloading mid-write never sees half a file
        written.append(path)
    return written
