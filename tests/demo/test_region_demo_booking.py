"""The issue's 'done when' on `mpp demo --sites 3`: a citizen books on the regional site,
checks in at a kiosk of the demo with the WAN link cut, is called, follows it on the public
page and answers the survey there; the answer is in the site's and the region's IKM."""

from __future__ import annotations

import http.cookiejar
import re
import shutil
import tempfile
import urllib.parse
import urllib.request
from pathlib import Path

import psycopg
import pytest
from escpos.printer import Dummy

from demo.region import DEMO_LOGIN, RegionDemo
from kiosk.app import KioskApp
from kiosk.scanner import KeyDecoder
from protocol import messages as m
from protocol.brokers import free_port
from protocol.mqtt import Bus
from tests.kiosk.conftest import dummy_printer
from tests.kiosk.test_checkin import key_events
from tests.region.sites import hub_rows
from tests.timing import wait_until

SITE = "mpp-banjarbaru"


class Browser:
    """A citizen's (or supervisor's) browser: cookies, forms with their CSRF token."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
        )

    def get(self, path: str) -> str:
        with self.opener.open(self.base + path, timeout=10) as reply:
            self.url = reply.geturl()
            return reply.read().decode()

    def post(self, path: str, form: dict[str, str], page: str) -> str:
        token = re.search(r'name="csrf_token" value="([^"]+)"', page)[1]
        data = urllib.parse.urlencode({**form, "csrf_token": token}).encode()
        with self.opener.open(self.base + path, data, timeout=10) as reply:
            self.url = reply.geturl()
            return reply.read().decode()

    def status(self, path: str) -> int:
        try:
            with self.opener.open(self.base + path, timeout=10) as reply:
                return reply.status
        except urllib.error.HTTPError as exc:
            return exc.code


@pytest.mark.slow
def test_book_check_in_offline_called_followed_and_surveyed_on_the_demo() -> None:
    top = Path(tempfile.mkdtemp(prefix="mpp-region-demo-"))
    top.chmod(0o755)
    demo = RegionDemo(top / "region", sites=3, web_port=free_port(), traffic=False).start()
    kiosk = None
    try:
        tier = demo.tier(SITE)
        citizen = Browser(demo.urls["regional overview"].rstrip("/"))
        # Book: service -> date -> the next session -> phone number.
        assert wait_until(lambda: f"/reservasi/{SITE}/ktp" in citizen.get("/reservasi"), 30)
        days = citizen.get(f"/reservasi/{SITE}/ktp")
        today = re.search(rf'href="(/reservasi/{SITE}/ktp/[0-9-]+)"', days)[1]
        sessions = citizen.get(today)
        session = re.search(r'<a class="choice" id="session-\d+" href="([^"]+)"', sessions)[1]
        form = citizen.get(session)
        booked = citizen.post(session, {"phone": "0812 3456 7890"}, form)
        code = re.search(r'id="booking-code">([A-Z2-9]{8})<', booked)[1]
        assert "Reservasi berlaku" in booked
        scanned = f"{demo.config.web.public_url}/r/{SITE}/{code}"  # what the QR carries
        # The booking reaches the site ahead of the citizen; then the WAN is cut.
        assert wait_until(lambda: hub_rows(tier.hub.database, "SELECT code FROM bookings"), 30)
        tier.wan.cut()
        raw = Dummy(profile="default")
        kiosk = KioskApp(
            tier.site,
            "kiosk-3",
            Bus.for_device(tier.site, "kiosk-3"),
            dummy_printer(tier.site, "kiosk-3", raw),
        ).start(wait_connected=10)
        decoder = KeyDecoder()  # the scanner types the QR's text, as a USB keyboard does
        typed = [decoder.feed(code, value) for code, value in key_events(scanned)]
        assert typed[-2:] == [scanned, None]
        assert kiosk.check_in(typed[-2]) == "accept" and kiosk.wait_idle(10)
        [ticket] = kiosk.printed
        assert ticket.booking == code and b"RESERVASI" in raw.output
        tier.wan.restore()
        # Called; the public page (the ticket QR's address on the region) says where to go.
        tier.hub.submit(m.OpenCounter(device="hub", counter=1, officer="Siti"))
        page = f"/t/{ticket.token}"
        assert wait_until(lambda: citizen.status(page) == 200, 60)
        assert tier.hub.submit(m.CallNext(device="hub", counter=1)).ok
        assert wait_until(lambda: "Silakan menuju Loket 1" in citizen.get(page), 30)
        tier.hub.submit(m.Finish(device="hub", counter=1))
        assert wait_until(lambda: 'class="survey" hidden' not in citizen.get(page), 30)
        answers = {f"U{i}": "4" if i % 2 else "3" for i in range(1, 10)}
        assert "Terima kasih" in citizen.post(f"{page}/survey", answers, citizen.get(page))
        # The site's IKM has it (the one computation), and so has the region's.
        assert wait_until(
            lambda: hub_rows(tier.hub.database, "SELECT u1, u2 FROM survey_responses") == [(4, 3)],
            30,
        )
        dsn = demo.postgres.dsn("mpp_region")  # type: ignore[union-attr]

        def at_region() -> list[tuple]:
            with psycopg.connect(dsn, autocommit=True) as conn:
                return conn.execute(
                    "SELECT scores FROM survey_responses WHERE site = %s", (SITE,)
                ).fetchall()

        assert wait_until(lambda: at_region() == [([4, 3, 4, 3, 4, 3, 4, 3, 4],)], 30)
        supervisor = Browser(citizen.base)
        login = supervisor.get("/login")
        supervisor.post("/login", {"username": DEMO_LOGIN[0], "password": DEMO_LOGIN[1]}, login)
        ikm = supervisor.get(f"/ikm?site={SITE}")
        assert "Perekaman dan Cetak KTP-el" in ikm
    finally:
        if kiosk is not None:
            kiosk.stop()
        demo.stop()
        shutil.rmtree(top, ignore_errors=True)
