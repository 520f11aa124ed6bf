"""The region's public ticket page: (a) a NEXT at the counter reaching the called citizen's open
phone page through the bridge and the region, (b) the regional web holding 5,000 open ticket
pages while its overview page is read.

    .venv/bin/python bench/public_page_bench.py [--only a,b] [--quick]

One topology on loopback, as in production: the hub with its site Mosquitto bridged with TLS to
the regional Mosquitto (generated files), `mpp region run` and `mpp region web` (gevent) as
processes of their own, PostgreSQL (fsync on). Pages are read as a phone's EventSource reads
them: a GET of /t/<token>/events kept open. Figures, not pass/fail.
"""

from __future__ import annotations

import argparse
import http.cookiejar
import json
import os
import re
import selectors
import shutil
import socket
import sqlite3
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import contextlib

from bench.common import machine, pct
from bench.figures import figure
from bench.region_bench import database, region_config, start, workdir
from broker_config.files import render_bridge
from broker_config.region import REGION_USER
from demo.postgres import LocalPostgres
from demo.region import PREFIX, RegionalBroker
from demo.site import EXAMPLE, local_inventory
from hub.service import HubService
from protocol import messages as m
from protocol.brokers import Mosquitto, free_port, wait_for_port
from protocol.site import parse_site
from region.web.accounts import Accounts

SITE = "mpp-bench"
OPEN_RATE = 500  # ticket pages opened a second in (b)


class Tiers:
    """The hub, its bridged broker, the regional broker, `mpp region run` and `web`."""

    def __init__(self, pg: LocalPostgres) -> None:
        self.top = workdir("public")
        self.regional = RegionalBroker(self.top / "regional", [SITE], PREFIX).start()
        assert self.regional.layout is not None
        self.dsn = database(pg, f"public_{os.getpid()}")
        (self.top / "region-password").write_text(self.regional.passwords[REGION_USER])
        self.web_port = free_port()
        config = region_config(
            self.top, self.dsn, self.regional.layout.loopback_port, [SITE], self.web_port
        )
        port = free_port()
        text = local_inventory(EXAMPLE.read_text(encoding="utf-8"), port=port,
                               database=self.top / "hub.sqlite", site_id=SITE, quota=999,
                               unprinted_hold_s=0) + "\n[region]\n"  # fmt: skip
        self.site = parse_site(text)
        bridge = render_bridge(self.site, self.regional.bridge(SITE))
        self.broker = Mosquitto(port, extra=bridge, workdir=self.top / "site-broker").start()
        self.service = start(["region", "run", "--config", str(config), "--log-level",
                              "WARNING"], self.top / "region.log")  # fmt: skip
        self.web = start(["region", "web", "--config", str(config), "--log-level", "WARNING"],
                         self.top / "web.log")  # fmt: skip
        assert wait_for_port("127.0.0.1", self.web_port, 60), (self.top / "web.log").read_text()
        self.hub = HubService(self.site, first_start=True).start()

    def tokens(self, service: str | None = None) -> list[tuple[int, str]]:
        """(ticket id, token) of the hub's waiting tickets, in issue order."""
        conn = sqlite3.connect(f"file:{self.top / 'hub.sqlite'}?mode=ro", uri=True)
        try:
            rows = conn.execute(
                "SELECT id, token FROM tickets WHERE status = 'waiting' AND "
                "(? IS NULL OR service = ?) ORDER BY id",
                (service, service),
            ).fetchall()
        finally:
            conn.close()
        return [(r[0], r[1]) for r in rows]

    def rss_mb(self) -> float:
        """The web process's resident memory."""
        status = Path(f"/proc/{self.web.pid}/status").read_text()
        return int(re.search(r"VmRSS:\s+(\d+)", status)[1]) / 1024

    def close(self) -> None:
        self.hub.stop()
        for process in (self.web, self.service):
            process.terminate()
            process.wait(20)
        self.broker.close()
        self.regional.close()
        shutil.rmtree(self.top, ignore_errors=True)


class Pages:
    """Open ticket pages as phones hold them: one socket each, GET .../events kept open, the
    events read as they come (one selector loop, so thousands fit in one thread)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.selector = selectors.DefaultSelector()
        self.buffers: dict[socket.socket, bytes] = {}
        self.events: dict[str, list[tuple[float, dict]]] = {}
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def open(self, token: str) -> None:
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        sock.sendall(f"GET /t/{token}/events HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        sock.setblocking(False)
        with self._lock:
            self.buffers[sock] = b""
            self.events[token] = []
            self.selector.register(sock, selectors.EVENT_READ, token)

    def _run(self) -> None:
        while not self._stop.is_set():
            for key, _ in self.selector.select(0.05):
                sock, token = key.fileobj, key.data
                try:
                    data = sock.recv(65536)  # type: ignore[union-attr]
                except BlockingIOError:
                    continue
                if not data:
                    self.selector.unregister(sock)
                    continue
                now = time.perf_counter()
                buffer = self.buffers[sock] + data  # type: ignore[index]
                for found in re.finditer(rb"event: ticket\ndata: ([^\n]*)\n", buffer):
                    self.events[token].append((now, json.loads(found[1])))
                self.buffers[sock] = buffer[buffer.rfind(b"\n\n") + 2 :]  # type: ignore[index]

    def start(self) -> Pages:
        self.thread.start()
        return self

    def close(self) -> None:
        self._stop.set()
        self.thread.join(5)
        for key in list(self.selector.get_map().values()):
            key.fileobj.close()  # type: ignore[union-attr]

    def called_at(self, token: str, after: float) -> float | None:
        """When the page first said 'called' after `after`."""
        return next(
            (
                at
                for at, data in self.events.get(token, [])
                if at >= after and data["status"] == "called"
            ),
            None,
        )


def page_there(port: int, token: str, timeout: float) -> bool:
    """Wait until the region serves the ticket's page (its issued event has arrived)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/t/{token}", timeout=5):
                return True
        except urllib.error.HTTPError:
            time.sleep(0.2)
    return False


def next_to_phone(tiers: Tiers, calls: int, rate: float) -> None:
    """(a): `calls` NEXTs at one counter, `rate` a second; for each, the time from the hub's
    reply to the called ticket's open page saying 'Silakan menuju ...'."""
    hub = tiers.hub
    for _ in range(calls):
        assert hub.submit(m.IssueTicket(device="hub", service="ktp")).ok
    hub.submit(m.OpenCounter(device="hub", counter=1, officer="Bench"))
    tokens = tiers.tokens("ktp")
    pages = Pages(tiers.web_port).start()
    try:
        for _, token in tokens:  # the tickets' issued events reach the region
            assert page_there(tiers.web_port, token, 60), token
            pages.open(token)
        time.sleep(2.0)
        delays = []
        for _, token in tokens:
            began = time.perf_counter()
            assert hub.submit(m.CallNext(device="hub", counter=1)).ok
            replied = time.perf_counter()
            while time.perf_counter() - replied < 5 and pages.called_at(token, began) is None:
                time.sleep(0.002)
            at = pages.called_at(token, began)
            delays.append((at - replied) if at is not None else float("inf"))
            time.sleep(max(0.0, 1 / rate - (time.perf_counter() - began)))
    finally:
        pages.close()
    ms = [d * 1000 for d in delays]
    lost = sum(1 for d in delays if d == float("inf"))
    print(f"(a) NEXT -> the called ticket's open page: {len(ms)} calls at {rate:g}/s, "
          f"p50 {pct(ms, 50):.0f} ms, p99 {pct(ms, 99):.0f} ms, max {max(ms):.0f} ms, "
          f"{lost} not seen within 5 s")  # fmt: skip
    figure("region: NEXT to the open phone page through bridge and region, p99",
           round(pct(ms, 99)), "ms", "< 1000")  # fmt: skip


def many_pages(tiers: Tiers, pages_wanted: int, requests: int) -> None:
    """(b): `pages_wanted` ticket pages open on the regional web, calls going on, while a
    logged-in supervisor reads the overview page `requests` times: its p95."""
    hub = tiers.hub
    services = [code for code in tiers.site.services][:10]
    for i in range(pages_wanted):
        hub.submit(m.IssueTicket(device="hub", service=services[i % len(services)]))
    for number in (2, 3, 4):
        hub.submit(m.OpenCounter(device="hub", counter=number, officer=f"Bench {number}"))
    tokens = [token for _, token in tiers.tokens()][:pages_wanted]
    assert page_there(tiers.web_port, tokens[-1], 120)  # the last issued event is there
    with ConnectionPoolish(tiers.dsn) as accounts:
        accounts.add("bench", "Bench", "viewer", "bench-password")
    pages = Pages(tiers.web_port).start()
    began = time.monotonic()
    try:
        for i, token in enumerate(tokens):  # phones arriving, at most OPEN_RATE a second
            pages.open(token)
            time.sleep(max(0.0, began + (i + 1) / OPEN_RATE - time.monotonic()))
        opened_s = time.monotonic() - began
        time.sleep(5.0)
        first = sum(1 for token in tokens if pages.events[token])
        stop = threading.Event()

        slow_calls = []

        def calls() -> None:  # NEXT once a second at three counters: pages get news
            while not stop.wait(1.0):
                for number in (2, 3, 4):
                    t0 = time.perf_counter()
                    with contextlib.suppress(TimeoutError):
                        hub.submit(m.CallNext(device="hub", counter=number))
                    slow_calls.append(time.perf_counter() - t0)

        caller = threading.Thread(target=calls, daemon=True)
        caller.start()
        base = f"http://127.0.0.1:{tiers.web_port}"
        opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
        )
        page = opener.open(f"{base}/login").read().decode()
        token = re.search(r'name="csrf_token" value="([^"]+)"', page)[1]
        form = {"username": "bench", "password": "bench-password", "csrf_token": token}
        opener.open(f"{base}/login", urllib.parse.urlencode(form).encode()).read()
        times = []
        for _ in range(requests):
            t0 = time.perf_counter()
            opener.open(f"{base}/").read()
            times.append(time.perf_counter() - t0)
            time.sleep(0.05)
        stop.set()
        caller.join(5)
        updates = sum(len(pages.events[token]) for token in tokens)
        rss = tiers.rss_mb()
    finally:
        pages.close()
    ms = [t * 1000 for t in times]
    print(f"(b) {len(tokens)} ticket pages opened in {opened_s:.1f} s, {first} had their first "
          f"event within 5 s; {updates} events pushed; web RSS {rss:.0f} MB")  # fmt: skip
    calls_ms = [c * 1000 for c in slow_calls]
    print(f"(b) the hub's NEXT meanwhile (in this process, same 2 cores): {len(calls_ms)} calls, "
          f"p50 {pct(calls_ms, 50):.0f} ms, max {max(calls_ms, default=0):.0f} ms")  # fmt: skip
    print(f"(b) overview with them open (and calls going on): {requests} requests, "
          f"p50 {pct(ms, 50):.0f} ms, p95 {pct(ms, 95):.0f} ms, max {max(ms):.0f} ms")  # fmt: skip
    figure(f"region: overview p95 with {len(tokens)} ticket pages open", round(pct(ms, 95)),
           "ms", "< 200")  # fmt: skip


class ConnectionPoolish:
    """Accounts on a one-connection pool (the bench's own login)."""

    def __init__(self, dsn: str) -> None:
        from psycopg_pool import ConnectionPool

        self.pool = ConnectionPool(dsn, min_size=1, max_size=1, open=True)

    def __enter__(self) -> Accounts:
        return Accounts(self.pool)

    def __exit__(self, *_: object) -> None:
        self.pool.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="a,b")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    parts = set(args.only.split(","))
    print(machine())
    pg = LocalPostgres(durable=True).start()
    tiers = None
    try:
        tiers = Tiers(pg)
        if "a" in parts:
            next_to_phone(tiers, calls=50 if args.quick else 200, rate=4)
        if "b" in parts:
            many_pages(tiers, pages_wanted=1000 if args.quick else 5000, requests=200)
    finally:
        if tiers is not None:
            tiers.close()
        pg.close()
    print(machine())


if __name__ == "__main__":
    main()
