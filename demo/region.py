"""`mpp demo --sites N`: N simulated MPPs and their region on this machine.

Each site is a hub with simulated visitors and officers (commands through the hub's command
path) and its own Mosquitto, bridged with TLS to a regional Mosquitto made from the same
generated files as `mpp-provision region-broker` writes; the region service stores everything
in a local PostgreSQL (Debian's packages) and the regional web (`mpp region web`, its own
process) shows it.

    demo = RegionDemo(Path("demo-region"), sites=3).start()
    print(demo.urls)
    demo.stop()
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import random
import re
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from broker_config.files import Bridge, BrokerLayout, write_broker_files
from broker_config.local import hand_to_mosquitto, site_broker, uplink_broker
from broker_config.passwords import hash_password, new_password
from broker_config.region import REGION_USER, RegionLayout, render_region_broker
from broker_config.tls import make_ca, make_server_cert
from broker_config.uplink import CONF as UPLINK_CONF
from broker_config.uplink import UplinkLayout, render_uplink_conf
from demo.postgres import LocalPostgres
from demo.site import EXAMPLE, local_inventory
from demo.wan import WanLink
from hub.service import HubService
from protocol import messages as m
from protocol.brokers import Mosquitto, free_port, wait_for_port
from protocol.errors import MppError
from protocol.site import Site, parse_site
from region.config import RegionConfig, parse_region
from region.service import RegionService

log = logging.getLogger("mpp.demo")

SITES = (
    ("mpp-banjarbaru", "MPP Kota Banjarbaru"),
    ("mpp-martapura", "MPP Kabupaten Banjar (Martapura)"),
    ("mpp-banjarmasin", "MPP Kota Banjarmasin"),
    ("mpp-pelaihari", "MPP Kabupaten Tanah Laut (Pelaihari)"),
    ("mpp-kandangan", "MPP Kabupaten Hulu Sungai Selatan (Kandangan)"),
)
PREFIX = "kalsel/v1"
DEMO_LOGIN = ("demo", "demo-region")


@dataclass
class RegionalBroker:
    """The regional Mosquitto from generated files: accounts for `sites` and the region
    service, the ACL, TLS on the bridge listener (certificate for 127.0.0.1)."""

    top: Path
    sites: list[str]
    prefix: str = PREFIX
    passwords: dict[str, str] = field(default_factory=dict)
    layout: RegionLayout | None = None
    ca_file: Path | None = None
    broker: Mosquitto | None = None
    _cm: contextlib.AbstractContextManager[Mosquitto] | None = None

    def start(self) -> RegionalBroker:
        """Write the files and start the broker (as root it drops to the mosquitto user)."""
        self.top.mkdir(parents=True, exist_ok=True)
        self.top.chmod(0o755)
        etc = self.top / "etc"
        self.layout = RegionLayout(
            etc_dir=str(etc),
            data_dir=str(self.top / "data"),
            log_dest="stderr",
            loopback_port=free_port(),
            bridge_port=free_port(),
            bridge_bind="127.0.0.1",
        )
        self.passwords = self.passwords or {u: new_password() for u in [REGION_USER, *self.sites]}
        ca = make_ca("region demo")
        server = make_server_cert(ca, ["127.0.0.1"])
        files = render_region_broker(
            "demo",
            "Region demo",
            self.layout,
            self.prefix,
            {user: hash_password(pw) for user, pw in self.passwords.items()},
            ca_cert_pem=ca.cert_pem,
            server_cert_pem=server.cert_pem,
            server_key_pem=server.key_pem,
        )
        write_broker_files(etc, files)
        hand_to_mosquitto(etc, self.top / "data")
        self.ca_file = self.top / "region-ca.crt"
        self.ca_file.write_bytes(ca.cert_pem)
        self.ca_file.chmod(0o644)
        self._cm = site_broker(etc, self.layout.loopback_port)
        self.broker = self._cm.__enter__()
        return self

    def bridge(self, site: str, port: int | None = None) -> Bridge:
        """The bridge a site's broker needs (to `port` instead, e.g. through a WAN relay)."""
        assert self.layout is not None and self.ca_file is not None
        return Bridge(
            "127.0.0.1",
            port or self.layout.bridge_port,
            self.prefix,
            site,
            self.passwords[site],
            str(self.ca_file),
        )

    def close(self) -> None:
        """Stop the broker."""
        if self._cm is not None:
            self._cm.__exit__(None, None, None)
            self._cm = None


class Visitors:
    """A gentle MPP day through the hub's command path: tickets, calls, ratings, surveys."""

    def __init__(self, hub: HubService, seed: int, every_s: float = 1.5) -> None:
        self.hub, self.every_s = hub, every_s
        self.rng = random.Random(seed)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="demo-visitors", daemon=True)

    def start(self) -> Visitors:
        """Open some counters and start."""
        self.counters = sorted(self.hub.site.counters)[: 4 + self.rng.randint(0, 4)]
        for number in self.counters:
            self.hub.submit(
                m.OpenCounter(device="hub", counter=number, officer=f"Petugas {number}")
            )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop."""
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        services = sorted({c for n in self.counters for c in self.hub.site.counters[n].services})
        while not self._stop.wait(self.every_s * self.rng.uniform(0.5, 1.5)):
            try:
                self.hub.submit(m.IssueTicket(device="hub", service=self.rng.choice(services)))
                number = self.rng.choice(self.counters)
                if self.rng.random() < 0.6:
                    self.hub.submit(m.CallNext(device="hub", counter=number))
                if self.rng.random() < 0.3:
                    self.hub.submit(
                        m.Rate(device="hub", counter=number, score=self.rng.choice([2, 3, 4, 4]))
                    )
                if self.rng.random() < 0.2:
                    self._survey()
            except Exception:  # a refusal or a slow moment: the next visitor comes anyway
                log.debug("demo visitor step failed", exc_info=True)

    def _survey(self) -> None:
        store = self.hub.store
        if store is None:
            return
        row = store.conn.execute(
            "SELECT token FROM tickets WHERE status = 'done' AND id NOT IN "
            "(SELECT ticket FROM survey_responses) ORDER BY id DESC LIMIT 1"
        ).fetchone()
        if row is not None:
            scores = tuple(self.rng.choice([3, 3, 4, 4, 2]) for _ in range(m.SURVEY_ELEMENTS))
            self.hub.submit(m.SubmitSurvey(device="hub", token=row[0], scores=scores))


@dataclass
class DemoSiteTier:
    """One simulated MPP: its broker, its uplink broker (bridged to the region over a cuttable
    WAN), its hub, its visitors."""

    site: Site
    broker: Mosquitto
    hub: HubService
    visitors: Visitors | None
    wan: WanLink
    uplink: contextlib.ExitStack  # the uplink broker and its watchdog


def bookable_around_the_clock(text: str) -> str:
    """The demo's bookings work at any hour: KTP in half-hour sessions all day, every day,
    check-in from 45 minutes before (so the next session may be booked and checked in now)."""
    days = '["mon", "tue", "wed", "thu", "fri", "sat", "sun"]'
    times = [f"{h:02d}:{m:02d}" for h in range(24) for m in (0, 30)] + ["23:59"]
    sessions = "".join(
        f'    {{ days = {days}, start = "{a}", end = "{b}", online_quota = 10 }},\n'
        for a, b in itertools.pairwise(times)
    )
    text = re.sub(
        r"(\[services\.ktp\.booking\][^\n]*\n(?:bring = .*\n)?)sessions = \[\n(?:.*\n)*?\]\n",
        lambda found: found[1] + "sessions = [\n" + sessions + "]\n",
        text,
        count=1,
    )
    return re.sub(r"(?m)^check_in_before_min = \d+", "check_in_before_min = 45", text, count=1)


@dataclass
class RegionDemo:
    """N sites, the regional broker, PostgreSQL, the region service and the regional web."""

    workdir: Path
    sites: int = 3
    web_port: int = 8090
    traffic: bool = True
    postgres: LocalPostgres | None = None
    regional: RegionalBroker | None = None
    tiers: list[DemoSiteTier] = field(default_factory=list)
    service: RegionService | None = None
    web: subprocess.Popen[bytes] | None = None
    urls: dict[str, str] = field(default_factory=dict)
    config: RegionConfig | None = None

    def start(self) -> RegionDemo:
        """Start everything; on failure stop what started."""
        if not 1 <= self.sites <= len(SITES):
            raise MppError(f"the demo runs 1 to {len(SITES)} sites; got {self.sites}")
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        shutil.rmtree(self.workdir, ignore_errors=True)
        self.workdir.mkdir(parents=True)
        self.workdir.chmod(0o755)
        chosen = SITES[: self.sites]
        self.postgres = LocalPostgres().start()
        with psycopg.connect(self.postgres.dsn(), autocommit=True) as admin:
            admin.execute("CREATE DATABASE mpp_region")
        dsn = self.postgres.dsn("mpp_region")
        self.regional = RegionalBroker(self.workdir / "regional", [s for s, _ in chosen]).start()
        layout = self.regional.layout
        assert layout is not None
        password_file = self.workdir / "region-broker-password"
        password_file.write_text(self.regional.passwords[REGION_USER], encoding="utf-8")
        port = self.web_port
        text = (
            '[region]\nid = "kalsel"\nname = "Provinsi Kalimantan Selatan (demo)"\n'
            'timezone = "Asia/Makassar"\n'
            f'[database]\ndsn = "{dsn}"\n'
            f'[broker]\nport = {layout.loopback_port}\nprefix = "{PREFIX}"\n'
            f'password_file = "{password_file}"\n'
            f'[web]\nport = {port}\npublic_url = "http://127.0.0.1:{port}"\n'
            + "".join(f'[[sites]]\nid = "{s}"\nname = "{n}"\n' for s, n in chosen)
        )
        config_file = self.workdir / "region.toml"
        config_file.write_text(text, encoding="utf-8")
        self.config = parse_region(text, str(config_file))
        self.service = RegionService(self.config).start()
        for i, (site_id, name) in enumerate(chosen):
            self.tiers.append(self._site(i, site_id, name))
        self._add_login(dsn)
        log_file = (self.workdir / "region-web.log").open("ab")
        self.web = subprocess.Popen(
            [sys.executable, "-m", "protocol.cli", "region", "web", "--config", str(config_file),
             "--log-level", "WARNING"],
            stdout=log_file,
            stderr=log_file,
        )  # fmt: skip
        log_file.close()
        deadline = time.monotonic() + 60
        while not wait_for_port("127.0.0.1", port, 0.5):
            if self.web.poll() is not None or time.monotonic() > deadline:
                log = (self.workdir / "region-web.log").read_text(errors="replace")[-2000:]
                raise MppError(
                    f"the regional web did not start (exit code {self.web.poll()}); "
                    f"{self.workdir / 'region-web.log'} ends:\n{log}"
                )
        base = f"http://127.0.0.1:{port}"
        self.urls = {
            "online booking (reservasi, public)": f"{base}/reservasi",
            "regional overview": f"{base}/",
            "reports": f"{base}/reports",
            "ikm": f"{base}/ikm",
        }
        for tier in self.tiers:
            self.urls[tier.site.site.id] = f"{base}/site/{tier.site.site.id}"

    def _site(self, index: int, site_id: str, name: str) -> DemoSiteTier:
        assert self.regional is not None
        top = self.workdir / site_id
        top.mkdir()
        broker_port = free_port()
        text = local_inventory(
            EXAMPLE.read_text(encoding="utf-8"), port=broker_port, database=top / "hub.sqlite",
            site_id=site_id,
        )  # fmt: skip
        text = text.replace('name = "Mal Pelayanan Publik Kota Banjarbaru"', f'name = "{name}"', 1)
        text = bookable_around_the_clock(text)
        # The ticket QRs point to the region's public page (phones on mobile data reach it).
        text += f'\n[region]\npublic_url = "http://127.0.0.1:{self.web_port}"\n'

        (top / "site.toml").write_text(text, encoding="utf-8")
        site = parse_site(text, str(top / "site.toml"))
        assert self.regional.layout is not None
        wan = WanLink(self.regional.layout.bridge_port).restore()
        broker = Mosquitto(broker_port, workdir=top / "broker", own_session=True)
        broker.start()
        # The bridge to the region runs in the site's uplink broker, under its watchdog.
        conf = render_uplink_conf(
            site,
            UplinkLayout(etc_dir=str(top / "uplink"), port=free_port()),
            self.regional.bridge(site_id, wan.port),
            "demo",  # the demo's site brokers take anonymous clients: any password does
            BrokerLayout(loopback_port=broker_port, device_port=free_port()),
        )
        write_broker_files(top / "uplink", {UPLINK_CONF: conf.encode()})
        uplink = contextlib.ExitStack()
        uplink.enter_context(uplink_broker(top / "uplink"))
        hub = HubService(site, first_start=True).start()
        visitors = Visitors(hub, seed=index).start() if self.traffic else None
        return DemoSiteTier(site, broker, hub, visitors, wan, uplink)

    def tier(self, site_id: str) -> DemoSiteTier:
        """One of the demo's sites."""
        return next(t for t in self.tiers if t.site.site.id == site_id)

    def _add_login(self, dsn: str) -> None:
        from psycopg_pool import ConnectionPool

        from region.web.accounts import Accounts

        with ConnectionPool(dsn, min_size=1, max_size=1, open=True) as pool:
            accounts = Accounts(pool)
            if accounts.get(DEMO_LOGIN[0]) is None:
                accounts.add(DEMO_LOGIN[0], "Demo", "admin", DEMO_LOGIN[1])

    def stop(self) -> None:
        """Stop everything: web, visitors and hubs, site brokers, region, regional broker, db."""
        if self.web is not None:
            self.web.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.web.wait(10)
        for tier in self.tiers:
            if tier.visitors is not None:
                tier.visitors.stop()
            tier.hub.stop()
            tier.uplink.close()
            tier.broker.close()
            tier.wan.close()
        if self.service is not None:
            self.service.stop()
        if self.regional is not None:
            self.regional.close()
        if self.postgres is not None:
            self.postgres.close()
        self.tiers, self.web, self.service, self.regional, self.postgres = (
            [],
            None,
            None,
            None,
            None,
        )
