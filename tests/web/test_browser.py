"""Real headless Chromium against the hub's web server: the ticket page follows a call made
over MQTT by a caller box, the survey, the dashboard and the web caller; screenshots checked."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from demo.webserver import WebServer
from hub.service import HubService
from protocol import messages as m
from tests.web.conftest import PASSWORD, issue, ok

pytestmark = pytest.mark.browser

CALL_YELLOW = (255, 212, 0)  # --call in app.css

UPDATED = "document.getElementById('ticket').dataset.updated !== undefined"  # its stream spoke


@pytest.fixture
def phone(browser) -> Iterator[object]:
    # bypass_csp: Playwright's wait_for_function evaluates strings, which our CSP forbids
    # (test_pages_keep_to_the_content_security_policy checks the pages under the real CSP).
    context = browser.new_context(
        viewport={"width": 390, "height": 844}, device_scale_factor=1, bypass_csp=True
    )
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture
def desktop(browser) -> Iterator[object]:
    context = browser.new_context(viewport={"width": 1366, "height": 900}, bypass_csp=True)
    page = context.new_page()
    yield page
    context.close()


def colour_share(
    path: Path, colour: tuple[int, int, int], box: tuple[int, int, int, int] | None = None
) -> float:
    """Share of pixels (in `box`) within a small distance of `colour`."""
    with Image.open(path) as shot:
        image = shot.convert("RGB")
        if box:
            image = image.crop(box)
        raw = image.tobytes()
    pixels = [raw[i : i + 3] for i in range(0, len(raw), 3)]
    near = sum(1 for p in pixels if sum(abs(a - b) for a, b in zip(p, colour, strict=True)) < 40)
    return near / len(pixels)


def log_in(page, server: WebServer, username: str) -> None:
    page.goto(f"{server.url}/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{server.url}/dashboard")


def test_ticket_page_follows_a_call_over_mqtt(
    server, phone, hub: HubService, bus_for, tmp_path
) -> None:
    kiosk, caller = bus_for("kiosk-1"), bus_for("caller-03")
    ticket = m.IssueResult.model_validate(
        kiosk.request(m.IssueTicket(device="kiosk-1", service="ktp"), timeout=5)
    ).ticket
    caller.request(m.OpenCounter(device="caller-03", counter=3, officer="Siti"), timeout=5)
    phone.goto(f"{server.url}/t/{ticket.token}")
    assert phone.inner_text("#ticket-number") == ticket.number
    assert "Menunggu dipanggil" in phone.inner_text("#ticket-status")
    before = tmp_path / "ticket-waiting.png"
    phone.wait_for_function("document.getElementById('ticket').dataset.status === 'waiting'")
    phone.wait_for_timeout(300)  # the live stream is connected (initial event rendered)
    phone.wait_for_function(UPDATED)
    phone.screenshot(path=str(before))
    assert colour_share(before, CALL_YELLOW) < 0.001  # nothing yellow while waiting

    caller.request(
        m.CallNext(device="caller-03", counter=3), timeout=5
    )  # the caller box, over MQTT
    phone.wait_for_function(
        "document.getElementById('ticket').dataset.status === 'called'", timeout=5000
    )
    assert phone.inner_text("#go-to") == "Silakan menuju Loket 3"
    box = phone.locator("#go-to").bounding_box()
    after = tmp_path / "ticket-called.png"
    phone.screenshot(path=str(after))
    # The "go to counter" banner is painted in the call colour where the element is.
    region = (
        int(box["x"]),
        int(box["y"]),
        int(box["x"] + box["width"]),
        int(box["y"] + box["height"]),
    )
    assert colour_share(after, CALL_YELLOW, region) > 0.5
    assert box["width"] <= 390  # fits a phone screen: no sideways scrolling
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390


def test_no_estimate_reads_as_a_sentence_on_a_phone(server, phone, hub: HubService) -> None:
    """With no counter open the estimate is a sentence ('Belum ada loket yang melayani saat
    ini'): set in the big figure type it took five lines of a phone's half-width box."""
    tickets = [issue(hub, "ktp") for _ in range(2)]  # counters 1-3 (ktp) are closed
    phone.goto(f"{server.url}/t/{tickets[-1].token}")
    # The stream's first event replaces the ticket's body: measured before it, an element could
    # be detached between finding it and reading its style (NaN).
    phone.wait_for_function(UPDATED)
    said = phone.locator("#est-wait")
    assert said.inner_text() == "Belum ada loket yang melayani saat ini"
    ahead = phone.locator("#people-ahead")
    line = float(ahead.evaluate("e => parseFloat(getComputedStyle(e).fontSize)"))
    size = float(said.evaluate("e => parseFloat(getComputedStyle(e).fontSize)"))
    assert size < line and said.bounding_box()["height"] < 3 * line  # was 5 lines of figures
    ok(hub, m.OpenCounter(device="hub", counter=3, officer="Siti"))
    phone.reload()
    # Read in one turn of the page's script, once the figure is there (a later event of the
    # stream may replace the element again).
    figure = phone.wait_for_function(
        """() => { const e = document.getElementById('est-wait');
                   return e && e.innerText.trim() === '± 8 menit'
                       && parseFloat(getComputedStyle(e).fontSize); }""",
        timeout=10_000,
    ).json_value()
    assert float(figure) == line  # a figure: the big type


def test_survey_in_the_browser(server, phone, hub: HubService, tmp_path) -> None:
    ticket = issue(hub)
    ok(hub, m.OpenCounter(device="hub", counter=3, officer="Siti"))
    ok(hub, m.CallNext(device="hub", counter=3))
    ok(hub, m.Finish(device="hub", counter=3))
    phone.goto(f"{server.url}/t/{ticket.token}")
    phone.click("#survey-link")
    assert phone.locator("fieldset.q").count() == 9
    phone.click("#survey-submit")  # nothing chosen: the browser's own check stops it
    assert phone.url.endswith("/survey")
    for i in range(1, 10):
        phone.check(f"input[name=U{i}][value='{4 if i != 3 else 2}']")
    phone.fill("textarea[name=comment]", "Antrian tertib")
    shot = tmp_path / "survey.png"
    phone.screenshot(path=str(shot), full_page=True)
    with Image.open(shot) as image:
        assert image.width == 390 and image.height > 1200  # nine questions stacked, phone width
    phone.click("#survey-submit")
    phone.wait_for_url("**/survey/thanks")
    assert "Terima kasih" in phone.inner_text("#survey-message")
    import sqlite3

    with sqlite3.connect(hub.database) as conn:
        assert conn.execute("SELECT u1, u3, comment FROM survey_responses").fetchall() == [
            (4, 2, "Antrian tertib")
        ]


def test_dashboard_updates_without_reload(
    server, desktop, hub: HubService, bus_for, tmp_path
) -> None:
    log_in(desktop, server, "supervisor")
    desktop.wait_for_function("document.getElementById('live-state').textContent === 'Langsung'")
    marker = desktop.evaluate("window.__marker = 42")
    assert marker == 42
    bus_for("kiosk-1").request(m.IssueTicket(device="kiosk-1", service="skck"), timeout=5)
    desktop.wait_for_function(
        "document.querySelector('#svc-skck .waiting').textContent.trim() === '1'", timeout=5000
    )
    assert desktop.evaluate("window.__marker") == 42  # the same page: updated, not reloaded
    desktop.wait_for_function("document.getElementById('sum-issued').textContent === '1'")
    shot = tmp_path / "dashboard.png"
    desktop.screenshot(path=str(shot))
    with Image.open(shot) as image:
        assert image.size == (1366, 900)
    # the header bar is the brand blue; the live badge is green-on-green
    assert colour_share(shot, (11, 92, 171), (0, 0, 1366, 30)) > 0.5


def test_web_caller_calls_and_the_ticket_page_sees_it(
    server, browser, desktop, hub: HubService, tmp_path
) -> None:
    ticket = issue(hub)
    citizen = browser.new_context(
        viewport={"width": 390, "height": 844}, bypass_csp=True
    ).new_page()
    citizen.goto(f"{server.url}/t/{ticket.token}")
    log_in(desktop, server, "petugas")
    desktop.goto(f"{server.url}/caller/3")
    desktop.click("#btn-open")
    desktop.wait_for_selector("#caller-panel[data-open=yes]")
    desktop.click("#btn-next")
    desktop.wait_for_function("document.getElementById('caller-now').textContent === 'A001'")
    assert "Memanggil A001" in desktop.inner_text(".flash")
    shot = tmp_path / "caller.png"
    desktop.screenshot(path=str(shot))
    now = desktop.locator("#caller-now").bounding_box()
    assert now["height"] > 40  # the called number is large
    citizen.wait_for_function(
        "document.getElementById('ticket').dataset.status === 'called'", timeout=5000
    )
    assert citizen.inner_text("#go-to") == "Silakan menuju Loket 3"
    desktop.click("#btn-finish")
    citizen.wait_for_selector("#survey-link", timeout=5000)
    citizen.context.close()
    state = hub.retained[hub.bus.topics.counter_state(3)]
    assert state.served_today == 1 and state.officer == "Siti Petugas"


def test_lobby_screen_marks_a_new_call(server, desktop, hub: HubService, tmp_path) -> None:
    issue(hub)
    ok(hub, m.OpenCounter(device="hub", counter=3, officer="Siti"))
    desktop.goto(f"{server.url}/display/lobby")
    desktop.wait_for_function("document.getElementById('screen').dataset.updated !== undefined")
    start = time.monotonic()
    ok(hub, m.CallNext(device="hub", counter=3))
    desktop.wait_for_function(
        "document.getElementById('screen').dataset.lastCall === 'A001@3'", timeout=5000
    )
    assert time.monotonic() - start < 5
    assert desktop.inner_text("#tile-3 .n") == "A001"
    box = desktop.locator("#tile-3").bounding_box()
    shot = tmp_path / "lobby.png"
    desktop.screenshot(path=str(shot))
    region = (
        int(box["x"]),
        int(box["y"]),
        int(box["x"] + box["width"]),
        int(box["y"] + box["height"]),
    )
    assert colour_share(shot, CALL_YELLOW, region) > 0.5  # the new call is highlighted
    assert desktop.evaluate("document.getElementById('screen').dataset.announced") == "1"


SPEECH_RECORDER = """
window.spoken = [];
window.speechSynthesis.speak = function (u) { window.spoken.push([u.text, u.volume, u.lang]); };
"""


def test_web_display_speaks_as_the_admin_set_the_zone(server, browser, hub: HubService) -> None:
    for _ in range(3):
        issue(hub)
    ok(hub, m.OpenCounter(device="hub", counter=3, officer="Siti"))
    context = browser.new_context(viewport={"width": 1366, "height": 768}, bypass_csp=True)
    page = context.new_page()
    page.add_init_script(SPEECH_RECORDER)  # the browser's own speech engine, recorded
    page.goto(f"{server.url}/display/lobby")
    page.wait_for_function("document.getElementById('screen').dataset.updated !== undefined")
    page.click("#tap")  # a person tapped: the browser may play sound
    calls = 0

    def call_next() -> None:
        nonlocal calls
        ok(hub, m.CallNext(device="hub", counter=3))
        calls += 1
        page.wait_for_function(
            f"document.getElementById('screen').dataset.announced === '{calls}'", timeout=5000
        )

    ok(hub, m.SetZoneSound(device="hub", zone="lobby", speech=True, volume=0.3,
                           number_reading="digits", by="K"))  # fmt: skip
    call_next()
    spoken = [s for s in page.evaluate("window.spoken") if s[0]]
    assert len(spoken) == 1
    text, volume, lang = spoken[0]
    assert text == "Nomor antrian a nol nol satu, silakan menuju loket tiga."
    assert abs(volume - 0.3) < 1e-6 and lang == "id-ID"  # the browser keeps a float32
    ok(hub, m.SetZoneSound(device="hub", zone="lobby", speech=False, volume=0.3, by="K"))
    call_next()  # shown and marked, not spoken
    assert [s for s in page.evaluate("window.spoken") if s[0]] == spoken
    context.close()


def test_a_supervisor_revokes_a_priority_in_the_browser(server, desktop, hub: HubService) -> None:
    reply = ok(hub, m.IssueTicket(device="hub", service="ktp", priority="elderly"))
    label = reply["ticket"]["number"]
    log_in(desktop, server, "supervisor")
    desktop.click("nav >> text=Prioritas")
    row = desktop.locator(f"#prio-{reply['ticket']['id']}")
    assert label in row.inner_text() and "Lansia" in row.inner_text()
    row.locator("button", has_text="Cabut prioritas").click()
    desktop.wait_for_selector("p.flash.ok")
    assert f"Prioritas tiket {label} dicabut." in desktop.inner_text("main")
    assert desktop.locator(f"#prio-{reply['ticket']['id']}").count() == 0
    state = hub.retained[hub.bus.topics.service_state("ktp")]
    assert isinstance(state, m.ServiceState) and state.priority_waiting == 0


def test_pages_keep_to_the_content_security_policy(server, browser, hub: HubService) -> None:
    ticket = issue(hub)
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda msg: problems.append(msg.text) if msg.type == "error" else None)
    for path in (
        f"/t/{ticket.token}",
        "/display/lobby",
        "/display/canteen",
        "/display/entrance",
        "/login",
    ):
        page.goto(f"{server.url}{path}")
        page.wait_for_timeout(200)
    log_in(page, server, "admin")
    for path in (
        "/dashboard",
        "/caller/3",
        "/reports",
        "/reports/ikm",
        "/priority",
        "/admin",
        "/admin/users",
        "/admin/services/ktp",
        "/admin/counters/3",
        "/admin/zones/lobby",
    ):
        page.goto(f"{server.url}{path}")
        page.wait_for_timeout(150)
    context.close()
    violations = [p for p in problems if "Content Security Policy" in p]
    assert violations == []


def test_staff_log_in_over_https_from_the_site_ca_and_log_out(
    browser, hub: HubService, site, tmp_path
) -> None:
    """The real `mpp web`: http sends the login to https (the site CA's certificate), the
    session cookie is Secure, and after logout the old cookie opens nothing."""
    import ssl
    import subprocess
    import sys
    import urllib.request

    from broker_config.tls import make_ca, make_server_cert
    from protocol.brokers import free_port
    from tests.conftest import ROOT
    from tests.timing import wait_until
    from web.users import UserStore

    ca = make_ca(site.site.id)
    cert = make_server_cert(ca, ["127.0.0.1"])
    (tmp_path / "web.crt").write_bytes(cert.cert_pem)
    (tmp_path / "web.key").write_bytes(cert.key_pem)
    port, tls_port = free_port(), free_port()
    from tests.conftest import site_text

    # The running test hub's site, with the web's listeners and certificate.
    body = site_text(
        site.broker.port, site_id=site.site.id, always_open=True, database=hub.database
    )
    body = body.replace("port = 8080 ", f"port = {port} ", 1).replace(
        "tls_port = 8443", f"tls_port = {tls_port}", 1
    )
    body = body.replace(
        '# tls_cert = "/etc/mpp/web/web.crt"', f'tls_cert = "{tmp_path / "web.crt"}"'
    ).replace('# tls_key = "/etc/mpp/web/web.key"', f'tls_key = "{tmp_path / "web.key"}"')
    site_file = tmp_path / "site.toml"
    site_file.write_text(body)
    users = UserStore(hub.database.with_name("mpp-web.sqlite"))
    users.add("kepala", "Kepala MPP", "supervisor", PASSWORD)
    users.close()
    proc = subprocess.Popen(
        [sys.executable, "-m", "protocol.cli", "web", "--site", str(site_file)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        trusted = ssl.create_default_context(cadata=ca.cert_pem.decode())

        def up() -> bool:
            try:
                with urllib.request.urlopen(
                    f"https://127.0.0.1:{tls_port}/healthz", context=trusted, timeout=2
                ):
                    return True
            except OSError:
                return False

        assert wait_until(up, 30)  # the https listener's chain verifies with the site CA
        # Chromium has no site CA installed here: it is told to accept the certificate, which
        # the check above verified against the CA.
        context = browser.new_context(ignore_https_errors=True)
        page = context.new_page()
        page.goto(f"http://127.0.0.1:{port}/login")
        assert page.url.startswith(f"https://127.0.0.1:{tls_port}/login")
        page.fill("input[name=username]", "kepala")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(f"https://127.0.0.1:{tls_port}/dashboard")
        (cookie,) = [c for c in context.cookies() if c["name"] == "mpp_session"]
        assert cookie["secure"] and cookie["httpOnly"]
        page.click("form[action='/logout'] button")
        page.wait_for_url(f"https://127.0.0.1:{tls_port}/login")
        stolen = browser.new_context(ignore_https_errors=True)
        stolen.add_cookies([cookie])
        again = stolen.new_page()
        again.goto(f"https://127.0.0.1:{tls_port}/dashboard")
        assert "/login" in again.url  # the logged-out session opens nothing
        stolen.close()
        context.close()
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=15)
    assert proc.returncode == 0, out
