"""The region: (a) ingest rate through the real regional broker from 50 simulated sites,
(b) a whole busy day caught up after a WAN outage, (c) the regional overview with 300 sites,
(d) the hub's issue p99 with the outbox uploading versus not.

    .venv/bin/python bench/region_bench.py [--only a,b,c,d] [--quick]

Every part starts what it needs on loopback: a PostgreSQL cluster (durable: fsync on), the
regional Mosquitto from the generated files (TLS, an account per site), `mpp region run` and
`mpp region web` as processes of their own. Figures, not pass/fail.
"""

from __future__ import annotations

import argparse
import contextlib
import http.cookiejar
import os
import random
import re
import selectors
import shutil
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path

import paho.mqtt.client as paho
import psycopg
from paho.mqtt.enums import CallbackAPIVersion

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import cpu_seconds, machine, pct
from bench.figures import figure
from broker_config.files import BrokerLayout, render_bridge, write_broker_files
from broker_config.local import uplink_broker
from broker_config.region import REGION_USER
from broker_config.uplink import CONF as UPLINK_CONF
from broker_config.uplink import UplinkLayout, render_uplink_conf
from demo.postgres import LocalPostgres
from demo.region import PREFIX, RegionalBroker
from demo.site import EXAMPLE, local_inventory
from demo.wan import WanLink
from hub.service import SWITCH_INTERVAL_S, HubService
from protocol import messages as m
from protocol.brokers import Mosquitto, free_port, wait_for_port
from protocol.mqtt import Bus
from protocol.site import parse_site
from protocol.topics import Topics
from region.db import connect, create_schema

ROOT = Path(__file__).resolve().parent.parent
WINDOW = 8


def workdir(name: str) -> Path:
    """A directory the mosquitto user can enter."""
    top = Path(tempfile.mkdtemp(prefix=f"mpp-region-bench-{name}-"))
    top.chmod(0o755)
    return top


def database(pg: LocalPostgres, name: str) -> str:
    """A new database with the region's schema; its DSN."""
    with psycopg.connect(pg.dsn(), autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    dsn = pg.dsn(name)
    with connect(dsn) as conn:
        create_schema(conn)
    return dsn


def region_config(
    top: Path,
    dsn: str,
    port: int,
    sites: list[str],
    web_port: int = 0,
    prefix: str = PREFIX,
    workers: int = 1,
) -> Path:
    """A region.toml for the processes (`prefix` mpp/v1: on the site's own broker)."""
    text = (
        '[region]\nid = "bench"\nname = "Bench"\ntimezone = "Asia/Makassar"\n'
        f'[database]\ndsn = "{dsn}"\n[broker]\nport = {port}\nprefix = "{prefix}"\n'
        f'password_file = "{top / "region-password"}"\n'
        f"[web]\nport = {web_port or 8090}\n[ingest]\nworkers = {workers}\n"
        + "".join(f'[[sites]]\nid = "{s}"\nname = "MPP {s}"\n' for s in sites)
    )
    path = top / "region.toml"
    path.write_text(text, encoding="utf-8")
    return path


def start(command: list[str], log: Path) -> subprocess.Popen[bytes]:
    """`mpp ...` as a process of its own."""
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "protocol.cli", *command], cwd=ROOT, stdout=out, stderr=out
        )


def hub_head(database: Path) -> int:
    """The hub's newest event id, from its database."""
    import sqlite3

    conn = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        return conn.execute("SELECT COALESCE(MAX(id), 0) FROM events").fetchone()[0]
    finally:
        conn.close()


def acked(dsn: str) -> dict[str, int]:
    """Every site's acknowledgement."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        return dict(conn.execute("SELECT site, acked FROM links").fetchall())


# -- (a) ingest rate from 50 simulated sites ----------------------------------------------------
def synthetic_events(site: str, tickets: int, rng: random.Random) -> list[m.OutboxEvent]:
    """A busy day's events: issued, called, finished, and a rating for some."""
    t = 1796600000.0
    events: list[m.OutboxEvent] = []

    def add(kind: str, **kw: object) -> None:
        events.append(m.OutboxEvent(id=len(events) + 1, at=t, kind=kind, **kw))

    services = ["ktp", "kk", "akta", "pindah"]
    for n in range(1, tickets + 1):
        service = rng.choice(services)
        t += rng.uniform(0.5, 3)
        add("issued", ticket=n, service=service, issued_service=service,
            label=f"A{n % 1000:03d}", day="2026-12-07", detail="kiosk-1",
            token_sha256=m.token_sha256(f"{site}-{n}"))  # fmt: skip
        counter = rng.randint(1, 20)
        add("called", ticket=n, counter=counter, service=service, officer=f"Petugas {counter}",
            detail=str(n))  # fmt: skip
        add("finished", ticket=n, counter=counter, service=service, officer=f"Petugas {counter}")
        if rng.random() < 0.3:
            add("rated", ticket=n, counter=counter, service=service, detail=str(rng.randint(1, 4)))
    return events


def catalog(site: str) -> m.SiteCatalog:
    """A small catalog for a simulated site."""
    services = {
        code: m.CatalogService(name=m.Text(id=code.upper(), en=code), agency="capil",
                               time_class_s=10800)
        for code in ("ktp", "kk", "akta", "pindah")
    }  # fmt: skip
    return m.SiteCatalog(site=site, name=f"MPP {site}", timezone="Asia/Makassar", version="b",
                         agencies={"capil": "Disdukcapil"}, services=services, counters=20)  # fmt: skip


def cut_batches(site: str, events: list[m.OutboxEvent]) -> list[tuple[int, bytes]]:
    """(last id, payload) of batches of at most 15 KiB, as the outbox cuts them."""
    out, part, size, after = [], [], 0, 0
    head = events[-1].id
    for event in events:
        length = len(event.model_dump_json(exclude_none=True)) + 1
        if part and (size + length > m.MAX_PAYLOAD_BYTES - 1024 or len(part) >= 200):
            batch = m.EventBatch(site=site, after=after, last=part[-1].id, head=head, sent_at=1.0,
                                 events=tuple(part))  # fmt: skip
            out.append((batch.last, m.encode(batch)))
            after, part, size = batch.last, [], 0
        part.append(event)
        size += length
    batch = m.EventBatch(site=site, after=after, last=part[-1].id, head=head, sent_at=1.0,
                         events=tuple(part))  # fmt: skip
    out.append((batch.last, m.encode(batch)))
    return out


class SimSite:
    """A site's bridge, simulated: its account on the regional TLS listener, a window of
    batches ahead of the region's acknowledgements. Every simulated site is driven from one
    thread (`drive`), so the load generator costs little of the machine it shares."""

    def __init__(self, site: str, regional: RegionalBroker, batches: list[tuple[int, bytes]]):
        self.site, self.batches = site, batches
        self.acked = 0
        self.sent = 0
        self.topics = Topics(site, PREFIX)
        self.connected = False
        self.acked_at = time.monotonic()
        client = paho.Client(CallbackAPIVersion.VERSION2, client_id=site, protocol=paho.MQTTv5)
        client.username_pw_set(site, regional.passwords[site])
        client.tls_set(ca_certs=str(regional.ca_file), tls_version=ssl.PROTOCOL_TLS_CLIENT)
        client.max_inflight_messages_set(WINDOW * 2)
        client.on_message = self._on_ack
        client.on_connect = self._on_connect
        assert regional.layout is not None
        client.connect("127.0.0.1", regional.layout.bridge_port)
        self.client = client

    def _on_connect(self, client: paho.Client, *_args: object) -> None:
        client.subscribe(self.topics.ack(), 1)
        self.connected = True

    def _on_ack(self, _c: object, _u: object, msg: paho.MQTTMessage) -> None:
        acked = m.decode(m.EventAck, msg.payload).acked
        if acked > self.acked:
            self.acked, self.acked_at = acked, time.monotonic()
        self.pump()

    def rewind_if_silent(self, silence_s: float = 15.0) -> None:
        """As the hub's outbox does: no acknowledgement for a while, send again from it."""
        if not self.done and time.monotonic() - self.acked_at > silence_s:
            self.sent = next(i for i, (last, _) in enumerate(self.batches) if last > self.acked)
            self.acked_at = time.monotonic()
            self.pump()

    @property
    def done(self) -> bool:
        """Every batch acknowledged."""
        return self.acked >= self.batches[-1][0]

    def pump(self) -> None:
        """Publish what the window allows."""
        if not self.connected:
            return
        while self.sent < len(self.batches):
            first = self.sent - WINDOW
            if first >= 0 and self.batches[first][0] > self.acked:
                return  # WINDOW batches sent and not acknowledged
            self.client.publish(self.topics.events(), self.batches[self.sent][1], qos=1)
            self.sent += 1

    def close(self) -> None:
        """Disconnect."""
        self.client.disconnect()


def drive(sims: list[SimSite], until: Callable[[], bool], timeout: float) -> None:
    """Run every simulated site's MQTT client from this thread until `until()` (paho's own
    loop functions on one selector: no thread per site)."""
    selector = selectors.DefaultSelector()
    for sim in sims:
        selector.register(sim.client.socket(), selectors.EVENT_READ, sim)
    deadline = time.monotonic() + timeout
    misc_at = 0.0
    try:
        while not until() and time.monotonic() < deadline:
            for key, _ in selector.select(0.05):
                client = key.data.client
                client.loop_read()
                while client.socket() is not None and client.socket().pending():
                    client.loop_read()
            for sim in sims:
                if sim.client.want_write():
                    sim.client.loop_write()
            if time.monotonic() > misc_at:
                misc_at = time.monotonic() + 1
                for sim in sims:
                    sim.client.loop_misc()
                    sim.rewind_if_silent()
    finally:
        selector.close()


def ingest_rate(pg: LocalPostgres, sites: int, tickets: int, workers: int) -> None:
    """(a): events/s from `sites` simulated sites into PostgreSQL through the broker."""
    top = workdir("ingest")
    names = [f"site-{i:03d}" for i in range(sites)]
    regional = RegionalBroker(top / "regional", names, PREFIX).start()
    dsn = database(pg, "ingest")
    assert regional.layout is not None
    (top / "region-password").write_text(regional.passwords[REGION_USER])
    config = region_config(top, dsn, regional.layout.loopback_port, names, workers=workers)
    rng = random.Random(7)
    prepared = {s: cut_batches(s, synthetic_events(s, tickets, rng)) for s in names}
    total = sum(batches[-1][0] for batches in prepared.values())
    service = start(["region", "run", "--config", str(config), "--log-level", "WARNING"],
                    top / "region.log")  # fmt: skip
    sims: list[SimSite] = []
    try:
        assert regional.broker is not None and regional.broker.process is not None
        clients = ["as region ", *(f"as region-ingest-{k} " for k in range(1, workers))]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not all(c in regional.broker.log() for c in clients):
            time.sleep(0.2)  # every ingest worker subscribed before the sites send
        sims = [SimSite(s, regional, prepared[s]) for s in names]
        drive(sims, lambda: all(s.connected for s in sims), 20)
        for sim in sims:  # catalogs first (retained), as every hub sends on connect
            sim.client.publish(sim.topics.catalog(), m.encode(catalog(sim.site)), qos=1,
                               retain=True)  # fmt: skip
        drive(sims, lambda: not any(s.client.want_write() for s in sims), 10)
        time.sleep(1)
        processes = {
            "region service": [service.pid],
            "PostgreSQL": [pg.pid() or 0],
            "regional Mosquitto": [regional.broker.process.pid],
        }
        bridges = f"{sites} simulated bridges (this process)"

        def cpu_now() -> dict[str, float]:
            return {**{name: cpu_seconds(*pids) for name, pids in processes.items()},
                    bridges: cpu_seconds(os.getpid(), children=False)}  # fmt: skip

        cpu_before = cpu_now()
        started = time.monotonic()
        for sim in sims:
            sim.pump()
        drive(sims, lambda: all(s.done for s in sims), 600)
        wall = time.monotonic() - started
        cpu = {name: seconds - cpu_before[name] for name, seconds in cpu_now().items()}
        stored = sum(acked(dsn).values())
    finally:
        for sim in sims:
            sim.close()
        service.terminate()
        service.wait(20)
        regional.close()
        shutil.rmtree(top, ignore_errors=True)
    rate = stored / wall
    print(f"(a) {sites} sites, {total} events ({stored} acknowledged) in {wall:.1f} s: "
          f"{rate:,.0f} events/s into PostgreSQL through the regional broker, {workers} "
          f"ingest worker(s) "
          f"(load average {os.getloadavg()[0]:.1f})")  # fmt: skip
    for name, seconds in cpu.items():
        print(f"(a) CPU of {name}: {seconds:.2f} s, {seconds / stored * 10000:.3f} s per 10,000 "
              "events")  # fmt: skip
    figure("region: ingest CPU time per 10,000 events (region service + PostgreSQL)",
           round((cpu["region service"] + cpu["PostgreSQL"]) / stored * 10000, 3), "s")  # fmt: skip
    figure(f"region: ingest from {sites} sites through the broker", round(rate), "events/s",
           ">= 20000")  # fmt: skip


# -- (b) a whole busy day after a WAN outage ----------------------------------------------------
def busy_day(hub: HubService, visitors: int, threads: int = 4) -> None:
    """Visitors issued, called, finished and some rated, from several threads at once."""
    counters = sorted(hub.site.counters)
    for number in counters:
        hub.submit(m.OpenCounter(device="hub", counter=number, officer=f"Petugas {number}"))
    services = sorted({c for n in counters for c in hub.site.counters[n].services})

    def work(index: int) -> None:
        rng = random.Random(index)
        mine = counters[index::threads]
        for _ in range(visitors // threads):
            hub.submit(m.IssueTicket(device="hub", service=rng.choice(services)))
            number = rng.choice(mine)
            hub.submit(m.CallNext(device="hub", counter=number))
            if rng.random() < 0.3:
                hub.submit(m.Rate(device="hub", counter=number, score=rng.randint(1, 4)))

    pool = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()


def offline_day(
    pg: LocalPostgres, visitors: int, wan_mode: str = "refuse", bridge_in: str = "uplink"
) -> None:
    """(b): a site offline for a busy day, then the time to be fully acknowledged. `wan_mode`
    refuse: connections to the region refused; reset: accepted and closed at once.
    `bridge_in` uplink: the bridge in the site's uplink broker (as sites run it); site: in the
    site broker itself (as before the uplink broker, which a resetting WAN hangs)."""
    top = workdir("day")
    site_id = "mpp-offline"
    regional = RegionalBroker(top / "regional", [site_id], PREFIX).start()
    dsn = database(pg, "offline_day")
    assert regional.layout is not None
    (top / "region-password").write_text(regional.passwords[REGION_USER])
    config = region_config(top, dsn, regional.layout.loopback_port, [site_id])
    wan = WanLink(regional.layout.bridge_port).restore()
    port = free_port()
    text = local_inventory(EXAMPLE.read_text(encoding="utf-8"), port=port,
                           database=top / "hub.sqlite", site_id=site_id, quota=999,
                           unprinted_hold_s=0) + "\n[region]\n"  # fmt: skip
    site = parse_site(text)
    bridge = regional.bridge(site_id, wan.port)
    extra = render_bridge(site, bridge) if bridge_in == "site" else ""
    broker = Mosquitto(port, extra=extra, workdir=top / "site-broker")
    broker.start()
    uplink = contextlib.ExitStack()
    if bridge_in == "uplink":
        conf = render_uplink_conf(site, UplinkLayout(etc_dir=str(top / "uplink"), port=free_port()),
                                  bridge, "bench", BrokerLayout(loopback_port=port,
                                  device_port=free_port()))  # fmt: skip
        write_broker_files(top / "uplink", {UPLINK_CONF: conf.encode()})
        watchdog = uplink.enter_context(uplink_broker(top / "uplink"))
    service = start(["region", "run", "--config", str(config), "--log-level", "WARNING"],
                    top / "region.log")  # fmt: skip
    hub = HubService(site, first_start=True).start()
    try:
        time.sleep(3)
        if wan_mode == "refuse":
            wan.close()  # the regional server unreachable: connections refused
        else:
            wan.cut()  # a middlebox that accepts and resets
        began = time.monotonic()
        busy_day(hub, visitors)
        time.sleep(1)
        head = hub_head(top / "hub.sqlite")
        behind = head - acked(dsn).get(site_id, 0)
        print(f"(b) the day: {visitors} visitors, {head} events in {time.monotonic() - began:.0f}"
              f" s with the WAN down; {behind} events behind")  # fmt: skip
        wan.restore()
        restored = time.monotonic()
        while time.monotonic() - restored < 120 and acked(dsn).get(site_id, 0) < head:
            time.sleep(0.1)
        catch_up = time.monotonic() - restored
        broker_ok = hub.bus.connected
    finally:
        hub.stop()
        service.terminate()
        service.wait(20)
        restarts = f"{watchdog.restarts} ({watchdog.hangs} hung)" if bridge_in == "uplink" else ""
        uplink.close()
        broker.close()
        wan.close()
        regional.close()
        shutil.rmtree(top, ignore_errors=True)
    if not broker_ok:
        print("(b) the site broker stopped answering during the outage (see docs/region.md)")
    if restarts:
        print(f"(b) uplink broker restarted by its watchdog: {restarts}")
    print(f"(b) fully acknowledged {catch_up:.1f} s after the WAN came back "
          f"({behind / catch_up:,.0f} events/s)")  # fmt: skip
    figure(f"region: a busy day offline ({visitors} visitors) acknowledged after reconnecting",
           round(catch_up, 1), "s", "< 30")  # fmt: skip


# -- (c) the overview with 300 sites ------------------------------------------------------------
FILL = """
INSERT INTO sites (site, name, timezone, version, agencies, services, counters, updated_at)
SELECT 'site-' || i, 'MPP nomor ' || i, 'Asia/Makassar', 'v',
       '{"capil": "Disdukcapil"}'::jsonb,
       (SELECT jsonb_object_agg('s' || j, jsonb_build_object('name', jsonb_build_object('id',
         'Layanan ' || j, 'en', 'Service ' || j), 'agency', 'capil', 'time_class_s', 10800))
        FROM generate_series(1, 20) j),
       30, %(now)s
FROM generate_series(1, %(sites)s) i;
INSERT INTO links (site, acked, head, last_seen, last_event_at)
SELECT 'site-' || i, 5000, 5000, %(now)s, %(now)s FROM generate_series(1, %(sites)s) i;
INSERT INTO tickets (site, id, day, label, issued_service, service, agency, status, issued_at,
                     first_called_at, started_at, finished_at, counter)
SELECT 'site-' || i, n, %(today)s, 'A' || lpad((n %% 1000)::text, 3, '0'), 's' || (n %% 20 + 1),
       's' || (n %% 20 + 1), 'capil', CASE WHEN n %% 10 = 0 THEN 'waiting' ELSE 'done' END,
       %(now)s - 3600 + n, CASE WHEN n %% 10 = 0 THEN NULL ELSE %(now)s - 3000 + n END,
       CASE WHEN n %% 10 = 0 THEN NULL ELSE %(now)s - 3000 + n END,
       CASE WHEN n %% 10 = 0 THEN NULL ELSE %(now)s - 2500 + n END, n %% 30 + 1
FROM generate_series(1, %(sites)s) i, generate_series(1, %(tickets)s) n;
INSERT INTO daily (site, day, service, agency, issued, served, waits, wait_s)
SELECT site, day, issued_service, 'capil', count(*), count(*) FILTER (WHERE status = 'done'),
       count(first_called_at), COALESCE(sum(first_called_at - issued_at), 0)
FROM tickets GROUP BY site, day, issued_service;
INSERT INTO counters (site, number, open, officer, at)
SELECT 'site-' || i, c, c %% 3 <> 0, 'Petugas ' || c, %(now)s
FROM generate_series(1, %(sites)s) i, generate_series(1, 30) c;
INSERT INTO devices (site, device, online, at)
SELECT 'site-' || i, 'dev-' || d, d %% 17 <> 0, %(now)s
FROM generate_series(1, %(sites)s) i, generate_series(1, 40) d;
INSERT INTO alerts (site, id, raised_at, counter)
SELECT 'site-' || i, 'a-' || i, %(now)s, 1 FROM generate_series(1, %(sites)s, 7) i;
VACUUM ANALYZE;
"""


def overview_latency(pg: LocalPostgres, sites: int, tickets: int, requests: int) -> None:
    """(c): p95 of GET / (logged in) with `sites` sites, through `mpp region web`."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from psycopg_pool import ConnectionPool

    from region.web.accounts import Accounts

    top = workdir("overview")
    dsn = database(pg, "overview")
    now = time.time()
    today = datetime.fromtimestamp(now, ZoneInfo("Asia/Makassar")).date()
    with psycopg.connect(dsn, autocommit=True) as conn:
        args = {"sites": sites, "tickets": tickets, "now": now, "today": today}
        for statement in FILL.split(";"):
            if statement.strip():
                conn.execute(statement if "%(" in statement else statement.replace("%%", "%"),
                             args if "%(" in statement else None)  # fmt: skip
    with ConnectionPool(dsn, min_size=1, max_size=1, open=True) as pool:
        Accounts(pool).add("bench", "Bench", "viewer", "bench-password")
    (top / "region-password").write_text("unused")
    port = free_port()
    config = region_config(top, dsn, free_port(), [], web_port=port)
    web = start(["region", "web", "--config", str(config), "--log-level", "WARNING"],
                top / "web.log")  # fmt: skip
    try:
        assert wait_for_port("127.0.0.1", port, 60), (top / "web.log").read_text()
        base = f"http://127.0.0.1:{port}"
        opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
        )
        page = opener.open(f"{base}/login").read().decode()
        token = re.search(r'name="csrf_token" value="([^"]+)"', page)[1]
        form = {"username": "bench", "password": "bench-password", "csrf_token": token}
        opener.open(f"{base}/login", urllib.parse.urlencode(form).encode()).read()
        times = []
        cpu_before = (cpu_seconds(web.pid), cpu_seconds(pg.pid() or 0))
        for _ in range(requests):
            began = time.perf_counter()
            html = opener.open(f"{base}/").read()
            times.append(time.perf_counter() - began)
        cpu = (cpu_seconds(web.pid) - cpu_before[0], cpu_seconds(pg.pid() or 0) - cpu_before[1])
        rows = html.count(b"data-site=")
    finally:
        web.terminate()
        web.wait(20)
        shutil.rmtree(top, ignore_errors=True)
    ms = [t * 1000 for t in times]
    print(f"(c) overview of {rows} sites ({sites * tickets} tickets today): {requests} requests, "
          f"p50 {pct(ms, 50):.0f} ms, p95 {pct(ms, 95):.0f} ms, max {max(ms):.0f} ms "
          f"(load average {os.getloadavg()[0]:.1f})")  # fmt: skip
    print(f"(c) CPU per request: web process {cpu[0] / requests * 1000:.1f} ms, PostgreSQL "
          f"{cpu[1] / requests * 1000:.1f} ms")  # fmt: skip
    figure(f"region: overview page with {sites} sites, p95", round(pct(ms, 95)), "ms", "< 200")


# -- (d) hub issue p99 with the outbox uploading versus not ------------------------------------
def issue_latency(hub_site_text: str, port: int, issues: int, rate: float) -> list[float]:
    """Issue `issues` tickets from a kiosk over MQTT at `rate`/s; reply times in seconds."""
    site = parse_site(hub_site_text)
    kiosk = Bus.for_device(site, "kiosk-1", port=port)
    assert kiosk.start(wait=10)
    services = list(site.devices["kiosk-1"].buttons) or list(site.services)  # type: ignore[union-attr]
    times = []
    try:
        next_at = time.perf_counter()
        for i in range(issues):
            next_at += 1 / rate
            time.sleep(max(0.0, next_at - time.perf_counter()))
            began = time.perf_counter()
            kiosk.request(m.IssueTicket(device="kiosk-1", service=services[i % len(services)]),
                          timeout=5)  # fmt: skip
            times.append(time.perf_counter() - began)
    finally:
        kiosk.stop()
    return times


def pin_postgres(pg: LocalPostgres, cpus: set[int]) -> None:
    """Keep the PostgreSQL server (the postmaster and every process it has started) on `cpus`;
    backends it starts later inherit that."""
    master = pg.pid()
    if master is None:
        return
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            pid, ppid = int(stat.parent.name), int(stat.read_text().rsplit(")", 1)[1].split()[1])
            if master in (pid, ppid):
                os.sched_setaffinity(pid, cpus)


def outbox_cost(
    pg: LocalPostgres, issues: int, rate: float, backlog: int, rounds: int, pin: bool = False
) -> None:
    """(d): issue p99 with the outbox uploading (to a region service that acknowledges; a
    backlog of `backlog` visitors waiting at the start, then what the issuing itself commits)
    and without a [region] table, interleaved `rounds` times. The region service runs at
    nice 19 on this same machine (in production it is another machine); with `pin`, the site
    (this process: hub and kiosks, and the site's Mosquitto) keeps CPU 0 and the region
    (service and PostgreSQL) CPU 1, as two machines would."""
    everything = os.sched_getaffinity(0)
    switch = sys.getswitchinterval()
    sys.setswitchinterval(SWITCH_INTERVAL_S)  # the hub here runs as `mpp hub` runs it
    if pin:
        os.sched_setaffinity(0, {0})  # threads and processes started from here inherit it
        pin_postgres(pg, {1})
    region_cmd = ["taskset", "-c", "1"] if pin else ["nice", "-n", "19"]
    top = workdir("outbox")
    dsn = database(pg, "outbox_cost")
    broker = Mosquitto(workdir=top / "broker").start()
    (top / "region-password").write_text("")  # the plain test broker: anonymous clients
    p99: dict[str, list[float]] = {"without": [], "with": []}
    try:
        for i in range(rounds):
            for run in ("without", "with"):
                site_id = f"bench-{run}-{i}"
                text = local_inventory(EXAMPLE.read_text(encoding="utf-8"), port=broker.port,
                                       database=top / f"{site_id}.sqlite", site_id=site_id,
                                       quota=999, unprinted_hold_s=0)  # fmt: skip
                if run == "with":
                    text += "\n[region]\n"
                hub = HubService(parse_site(text), first_start=True).start()
                service = None
                try:
                    if run == "with":
                        busy_day(hub, backlog)
                        config = region_config(top, dsn, broker.port, [site_id], prefix="mpp/v1")
                        service = subprocess.Popen(
                            [*region_cmd, sys.executable, "-m", "protocol.cli", "region",
                             "run", "--config", str(config), "--log-level", "WARNING"],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                        )  # fmt: skip
                    before = acked(dsn).get(site_id, 0)
                    times = issue_latency(text, broker.port, issues, rate)
                    head = hub.outbox.head if hub.outbox else 0
                    time.sleep(1.0)
                    during = acked(dsn).get(site_id, 0) - before
                finally:
                    hub.stop()
                    if service is not None:
                        service.terminate()
                        service.wait(20)
                ms = [t * 1000 for t in times]
                p99[run].append(pct(ms, 99))
                note = (
                    f"; the region acknowledged {during} events of {head} meanwhile"
                    if run == "with"
                    else ""
                )
                print(f"(d) round {i + 1}, outbox {run}: {len(ms)} issues over MQTT at {rate:g}/s, "
                      f"p50 {pct(ms, 50):.2f} ms p99 {pct(ms, 99):.2f} ms{note}")  # fmt: skip
    finally:
        broker.close()
        shutil.rmtree(top, ignore_errors=True)
        sys.setswitchinterval(switch)
        if pin:
            os.sched_setaffinity(0, everything)
            pin_postgres(pg, everything)
    base, loaded = sorted(p99["without"])[rounds // 2], sorted(p99["with"])[rounds // 2]
    where = "site on CPU 0, region on CPU 1" if pin else "region service at nice 19"
    print(f"(d) median of the rounds' p99: {loaded:.2f} ms uploading vs {base:.2f} ms not: "
          f"{loaded / base:.2f}x ({where})")  # fmt: skip
    figure("region: hub issue p99 with the outbox uploading / without", round(loaded / base, 2),
           "x", "<= 1.1")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="a,b,c,d")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--workers", type=int, default=1, help="(a)'s [ingest] workers")
    parser.add_argument("--wan", choices=["refuse", "reset"], default="refuse", help="(b)'s outage")
    parser.add_argument(
        "--bridge-in",
        choices=["uplink", "site"],
        default="uplink",
        help="(b): the bridge in the uplink broker, or in the site broker (old)",
    )
    parser.add_argument(
        "--pin",
        action="store_true",
        help="(d): the site on CPU 0, the region on CPU 1 (as on two machines)",
    )
    args = parser.parse_args()
    parts = set(args.only.split(","))
    print(machine())
    pg = LocalPostgres(durable=True).start()
    try:
        if "a" in parts:
            ingest_rate(pg, sites=50, tickets=300 if args.quick else 1500, workers=args.workers)
        if "b" in parts:
            offline_day(pg, visitors=1500 if args.quick else 8000, wan_mode=args.wan,
                        bridge_in=args.bridge_in)  # fmt: skip
        if "c" in parts:
            overview_latency(pg, sites=300, tickets=50 if args.quick else 400, requests=200)
        if "d" in parts:
            outbox_cost(
                pg,
                issues=300 if args.quick else 1000,
                rate=50,
                backlog=1000 if args.quick else 4000,
                rounds=1 if args.quick else 3,
                pin=args.pin,
            )
    finally:
        pg.close()
    print(machine())


if __name__ == "__main__":
    main()
