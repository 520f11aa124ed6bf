"""Real headless Chromium on a phone's viewport against the regional web: the booking flow from
the service to the code with its QR, calendar file and cancel link; a public ticket page that
follows a NEXT live (the page's own script and SSE, as a phone runs them)."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import expect
from psycopg_pool import ConnectionPool
from werkzeug.serving import make_server

from protocol import messages as m
from region import downlink
from region.config import parse_region
from region.web import create_app
from tests.region.events import T0
from tests.region.test_public import CONFIG, TOKEN, clock, pool, view  # noqa: F401 (fixtures)

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip
PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium is not installed (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        made = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield made
        made.close()


@pytest.fixture
def site_url(pool: ConnectionPool, clock) -> Iterator[str]:  # noqa: F811
    """The regional web on a free loopback port (werkzeug, threaded: a test server only)."""
    config = CONFIG.replace("per_address_per_hour = 3", "per_address_per_hour = 50")
    app = create_app(
        parse_region(config),
        pool,
        {"CLOCK": lambda: clock[0], "SSE_KEEPALIVE_S": 1.0, "SSE_MAX_S": 3.0},
    )
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    app.extensions["region"]["feed"].stop()


@pytest.fixture
def phone(browser) -> Iterator[object]:
    context = browser.new_context(viewport=PHONE, device_scale_factor=1, accept_downloads=True)
    page = context.new_page()
    yield page
    context.close()


def fits_the_phone(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]


def test_booking_on_a_phone(phone, site_url, clock, tmp_path: Path) -> None:  # noqa: F811
    clock[0] = T0 - 3 * 3600  # Monday 06:00, before the 08:00 session
    page = phone
    page.goto(f"{site_url}/reservasi")
    assert page.locator("h1").inner_text() == "Reservasi layanan MPP"
    assert fits_the_phone(page)
    page.click("#svc-bjb-ktp")
    page.click("#day-2026-12-07")
    assert "Sisa kuota: 10" in page.locator("#session-0800").inner_text()
    page.click("#session-0800")
    page.fill("#phone", "0812 3456 7890")
    page.click("#book-submit")
    page.wait_for_selector("#booking-code")
    code = page.locator("#booking-code").inner_text()
    assert len(code) == 8
    assert page.locator("#booking-status").inner_text() == "Reservasi berlaku"
    qr = page.locator("#booking-qr")
    assert qr.is_visible() and qr.evaluate("img => img.naturalWidth") > 0
    box = qr.bounding_box()
    assert box["width"] >= 150 and box["x"] + box["width"] <= PHONE["width"]
    assert page.locator("#booking-window").inner_text() == "07:30–08:15"
    assert fits_the_phone(page)
    page.screenshot(path=str(tmp_path / "booking.png"), full_page=True)
    with page.expect_download() as download:
        page.click("#calendar")
    ics = Path(download.value.path()).read_text()
    assert "BEGIN:VEVENT" in ics and code in ics
    page.click("#cancel")
    page.wait_for_selector("#cancelled")
    assert page.locator("#booking-status").inner_text() == "Dibatalkan"
    assert page.locator("#booking-qr").count() == 0


def test_the_public_ticket_page_follows_a_call_live(phone, site_url, region_conn) -> None:
    page = phone
    page.goto(f"{site_url}/t/{TOKEN}")
    assert page.locator("#ticket-number").inner_text() == "A005"
    assert page.locator("#people-ahead").inner_text() == "1"
    # Live: the page's script took the stream's first event (under the page's own CSP).
    expect(page.locator("#ticket")).to_have_attribute("data-updated", re.compile(r"^\d+$"))
    called = (m.CalledTicket(ticket=7, counter=3, call_seq=12),)
    with region_conn.transaction():  # the site's view arrives: A005 is called to counter 3
        payload = m.encode(view((8,), (0,), called, seq=11))
        downlink.handle(region_conn, "bjb", "queue_view", payload, T0)
    expect(page.locator("#headline")).to_have_text("Silakan menuju Loket 3", timeout=10_000)
    assert page.locator("#facts").is_hidden()
    assert fits_the_phone(page)
