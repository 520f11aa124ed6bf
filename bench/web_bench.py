"""Web app figures through the real stack: Mosquitto, the hub, its web server, headless Chromium.

Prints: dashboard page load (server response time over HTTP, and in Chromium from navigation to
the live stream connected), and ticket-page update latency (a caller box sends NEXT over MQTT ->
the citizen's page in Chromium shows the new position), with and without other ticket pages
holding live streams open.

    .venv/bin/python bench/web_bench.py [--loads 40] [--updates 30] [--listeners 100]
"""

from __future__ import annotations

import argparse
import http.client
import os
import platform
import re
import statistics
import sys
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import pct, site_text  # noqa: E402
from bench.figures import figure  # noqa: E402
from hub.service import HubService  # noqa: E402
from hub.web import create_app  # noqa: E402
from hub.web.server import WebServer  # noqa: E402
from protocol import messages as m  # noqa: E402
from protocol.brokers import Mosquitto  # noqa: E402
from protocol.errors import CommandRejected  # noqa: E402
from protocol.mqtt import Bus  # noqa: E402
from protocol.site import parse_site  # noqa: E402

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip
PASSWORD = "bench-password-1"


def bench_site(port: int, database: Path):
    """The example site on this broker (shared with the other benchmarks)."""
    return parse_site(site_text(port, database, "web"), "bench-site.toml")


def login_cookie(base: str) -> str:
    url = urllib.parse.urlsplit(base)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
    conn.request("GET", "/login")
    page = conn.getresponse()
    cookie = page.getheader("Set-Cookie", "").split(";")[0]
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.read().decode())[1]
    body = urllib.parse.urlencode({"username": "kepala", "password": PASSWORD, "csrf_token": token})
    conn.request(
        "POST",
        "/login",
        body,
        {"Content-Type": "application/x-www-form-urlencoded", "Cookie": cookie},
    )
    reply = conn.getresponse()
    reply.read()
    conn.close()
    assert reply.status == 302, reply.status
    return reply.getheader("Set-Cookie", "").split(";")[0]


def server_loads(base: str, cookie: str, count: int) -> tuple[list[float], int]:
    url = urllib.parse.urlsplit(base)
    times, size = [], 0
    for _ in range(count):
        conn = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
        started = time.perf_counter()
        conn.request("GET", "/dashboard", headers={"Cookie": cookie})
        response = conn.getresponse()
        body = response.read()
        times.append((time.perf_counter() - started) * 1000)
        size = len(body)
        conn.close()
        assert response.status == 200
    return times, size


class Listeners:
    """N ticket pages' live streams held open by plain HTTP clients (other citizens' phones)."""

    def __init__(self, base: str, tokens: list[str]) -> None:
        url = urllib.parse.urlsplit(base)
        self.conns = []
        self.stop = threading.Event()
        for token in tokens:
            conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
            conn.request("GET", f"/t/{token}/events")
            response = conn.getresponse()
            self.conns.append(conn)
            threading.Thread(target=self._read, args=(response,), daemon=True).start()

    def _read(self, response) -> None:
        while not self.stop.is_set():
            try:
                if not response.read1(65536):
                    return
            except OSError:
                return

    def close(self) -> None:
        self.stop.set()
        for conn in self.conns:
            conn.close()


def update_latency(
    page, caller: Bus, server: WebServer, watched: m.TicketInfo, ahead: int, updates: int
) -> list[float]:
    page.goto(f"{server.url}/t/{watched.token}")
    page.wait_for_function(
        "document.getElementById('ticket').dataset.updated !== undefined", timeout=10000
    )
    latencies = []
    for i in range(updates):
        expected = ahead - i - 1
        sent = time.time() * 1000
        caller.request(m.CallNext(device="caller-03", counter=3), timeout=5)
        page.wait_for_function(
            f"(document.getElementById('people-ahead') || {{}}).textContent === '{expected}'",
            timeout=10000,
        )
        shown = float(page.evaluate("Number(document.getElementById('ticket').dataset.updated)"))
        latencies.append(shown - sent)
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--loads", type=int, default=40)
    parser.add_argument("--updates", type=int, default=30)
    parser.add_argument("--listeners", type=int, default=100)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, {platform.system()} {platform.release()}, Python {platform.python_version()}"
    )
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory() as tmp, Mosquitto() as broker:
        site = bench_site(broker.port, Path(tmp) / "hub.sqlite")
        service = HubService(site, first_start=True).start()
        app = create_app(service)
        app.extensions["mpp_users"].add("kepala", "Kepala", "supervisor", PASSWORD)
        server = WebServer(app, "127.0.0.1", 0).start()
        kiosk, caller = Bus.for_device(site, "kiosk-1"), Bus.for_device(site, "caller-03")
        kiosk.start(wait=10)
        caller.start(wait=10)
        try:
            caller.request(m.OpenCounter(device="caller-03", counter=3, officer="Bench"), timeout=5)
            # a busy morning: tickets for every service, some called
            for code in list(site.services)[:10]:
                for _ in range(15):
                    kiosk.request(m.IssueTicket(device="kiosk-1", service=code), timeout=5)
            cookie = login_cookie(server.url)
            times, size = server_loads(server.url, cookie, args.loads)
            print(
                f"dashboard over HTTP ({size} bytes, {args.loads} loads): median {statistics.median(times):.1f} ms, p90 {pct(times, 90):.1f} ms"
            )
            figure("web: dashboard HTTP response, median", round(statistics.median(times), 1), "ms")
            figure("web: dashboard HTTP response, p90", round(pct(times, 90), 1), "ms")
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
                context = browser.new_context(
                    viewport={"width": 1366, "height": 900}, bypass_csp=True
                )
                context.add_cookies(
                    [
                        {
                            "name": cookie.split("=")[0],
                            "value": cookie.split("=", 1)[1],
                            "url": server.url,
                        }
                    ]
                )
                page = context.new_page()
                loads, lives = [], []
                for _ in range(max(5, args.loads // 4)):
                    started = time.perf_counter()
                    page.goto(f"{server.url}/dashboard", wait_until="load")
                    loads.append((time.perf_counter() - started) * 1000)
                    page.wait_for_function(
                        "document.getElementById('live-state').textContent === 'live'"
                    )
                    lives.append((time.perf_counter() - started) * 1000)
                print(
                    f"dashboard in Chromium ({len(loads)} loads): load event median {statistics.median(loads):.0f} ms, p90 {pct(loads, 90):.0f} ms; live stream connected median {statistics.median(lives):.0f} ms, p90 {pct(lives, 90):.0f} ms"
                )
                figure(
                    "web: dashboard load in Chromium, median", round(statistics.median(loads)), "ms"
                )
                figure(
                    "web: dashboard live in Chromium, median", round(statistics.median(lives)), "ms"
                )
                phone = browser.new_context(
                    viewport={"width": 390, "height": 844}, bypass_csp=True
                ).new_page()
                for listeners in (0, args.listeners):
                    drain(caller)
                    # the watched ticket waits behind `updates + 1` fresh ktp tickets
                    for _ in range(args.updates + 1):
                        issue(kiosk)
                    watched = issue(kiosk)
                    pool = None
                    if listeners:
                        spare = [issue(kiosk, "kk") for _ in range(listeners)]
                        pool = Listeners(server.url, [t.token for t in spare])
                        time.sleep(1)
                    lat = update_latency(
                        phone, caller, server, watched, watched.people_ahead, args.updates
                    )
                    if pool:
                        pool.close()
                    print(
                        f"ticket page update, NEXT over MQTT -> DOM ({listeners} other live ticket pages, {len(lat)} updates): median {statistics.median(lat):.0f} ms, p90 {pct(lat, 90):.0f} ms, max {max(lat):.0f} ms"
                    )
                    figure(
                        f"web: ticket page update latency ({listeners} other pages), median",
                        round(statistics.median(lat)),
                        "ms",
                    )
                    figure(
                        f"web: ticket page update latency ({listeners} other pages), p90",
                        round(pct(lat, 90)),
                        "ms",
                    )
                browser.close()
        finally:
            kiosk.stop()
            caller.stop()
            server.stop()
            service.stop()


def issue(kiosk: Bus, service: str = "ktp") -> m.TicketInfo:
    """A ticket from the kiosk, over MQTT."""
    reply = kiosk.request(m.IssueTicket(device="kiosk-1", service=service), timeout=5)
    return m.IssueResult.model_validate(reply).ticket


def drain(caller: Bus) -> None:
    """Call every waiting ktp ticket so a round starts from an empty queue."""
    for _ in range(1000):
        try:
            caller.request(m.CallNext(device="caller-03", counter=3), timeout=5)
        except CommandRejected:  # queue_empty
            return


if __name__ == "__main__":
    main()
