"""What staff see, in headless Chromium at 1366x768 (a common office laptop): every staff page,
as each role that may open it, in Indonesian, after a busy morning. A page fails when it scrolls
sideways (or a table in it must be scrolled sideways), when a chart's label runs out of its chart, when an element shows a raw code (a
service, agency, zone, role, priority or status code) instead of a name, or when English words
stand on an Indonesian page. Screenshots go to $MPP_SCREENSHOTS (default: the test's tmp dir)
for a person to look at. About 40 s."""

from __future__ import annotations

import os
import re
import sqlite3
from pathlib import Path

import pytest

from hub.service import HubService
from protocol import messages as m
from protocol.site import Site
from tests.web.conftest import issue, ok, settle
from tests.web.test_browser import log_in

pytestmark = pytest.mark.browser

WIDTH, HEIGHT = 1366, 768
ACCOUNTS = {"officer": "petugas", "supervisor": "supervisor", "admin": "admin"}
OFFICER_PAGES = ("/dashboard", "/caller", "/caller/3")
SUPERVISOR_PAGES = (
    "/reports",
    "/reports?group=agency&bucket=week",
    "/reports?group=officer&bucket=hour",
    "/reports/ikm",
    "/reports?start=2026-12-07&end=2026-12-01",  # a period that ends before it starts
    "/reports/ikm?start=2026-12-07&end=xyz",
    "/alerts",
    "/priority",
)
ADMIN_PAGES = (
    "/admin",
    "/admin/users",
    "/admin/featured",
    "/admin/services/ktp",
    "/admin/services/paspor",
    "/admin/counters/3",
    "/admin/zones/lobby",
    "/admin/zones/canteen",
)
PAGES = {
    "officer": OFFICER_PAGES,
    "supervisor": OFFICER_PAGES + SUPERVISOR_PAGES,
    "admin": OFFICER_PAGES + SUPERVISOR_PAGES + ADMIN_PAGES,
}
SCREENS = ("/display", "/display/lobby", "/display/canteen", "/display/entrance", "/login")

# Words that are English only (not also Indonesian, like "total", "median", "status", "admin",
# "supervisor"). Identifiers marked translate="no" (device ids, usernames) are not read.
ENGLISH = {
    "tap", "screen", "sound", "live", "offline", "save", "cancel", "delete", "edit", "submit",
    "login", "logout", "password", "username", "waiting", "served", "called", "skipped",
    "open", "closed", "close", "counter", "counters", "service", "services", "report",
    "reports", "settings", "users", "user", "error", "minutes", "minute", "hours", "hour",
    "queue", "ticket", "tickets", "none", "yes", "back", "next", "previous", "average",
    "today", "week", "month", "day", "days", "by", "the", "and", "of", "to", "for", "with",
    "elderly", "disabled", "pregnant", "child", "fast", "long", "free", "cost", "unknown",
    "alert", "alerts", "acknowledge", "priority", "revoke", "granted", "officer", "kiosk", "caller", "display", "lobby", "canteen", "entrance",
    "device", "devices", "since", "seen", "ago", "never", "rating", "comment",
    "comments", "survey", "complaint", "complaints", "words", "digits", "period", "ends", "before", "starts", "dates",
    "must", "got", "covers", "most", "shorten", "in", "row", "at", "from", "is", "not",
}  # fmt: skip

OWN_TEXTS = """
() => {
  const out = [];
  for (const el of document.querySelectorAll('body *')) {
    if (['SCRIPT', 'STYLE', 'TITLE', 'OPTION'].includes(el.tagName)) continue;
    if (el.closest('[translate=no]')) continue;  // an identifier (device id, username)
    const own = Array.from(el.childNodes).filter(n => n.nodeType === 3)
      .map(n => n.textContent).join(' ').trim();
    const box = el.getBoundingClientRect();
    const shown = el.getClientRects().length > 0 || el instanceof SVGElement;
    if (own && shown) out.push([el.tagName, el.id || el.className.baseVal || el.className, own,
                                box.right]);
  }
  return out;
}
"""
CHART_LABELS_OUTSIDE = """
() => {
  const out = [];
  for (const svg of document.querySelectorAll('svg.chart')) {
    const view = svg.viewBox.baseVal;
    for (const text of svg.querySelectorAll('text')) {
      const b = text.getBBox();
      if (b.x < -0.5 || b.x + b.width > view.width + 0.5) out.push(text.textContent);
    }
  }
  return out;
}
"""
INNER_SCROLLERS = """
() => Array.from(document.querySelectorAll('body *'))
  .filter(el => ['auto', 'scroll'].includes(getComputedStyle(el).overflowX)
                && el.scrollWidth > el.clientWidth + 1)
  .map(el => (el.firstElementChild && el.firstElementChild.id) || el.id || el.className)
"""
COVERED_BY_TAP = """
() => {
  const tap = document.getElementById('tap');
  if (!tap) return [];
  const t = tap.getBoundingClientRect();
  return Array.from(document.querySelectorAll('.tile, .call, #menu, .featured figure'))
    .filter(el => { const b = el.getBoundingClientRect();
                    return b.left < t.right && t.left < b.right && b.top < t.bottom && t.top < b.bottom; })
    .map(el => el.id || el.className);
}
"""
ATTR_TEXTS = """
() => Array.from(document.querySelectorAll('[placeholder], [title], [aria-label], input[type=submit]'))
  .map(el => [el.getAttribute('placeholder'), el.getAttribute('title'),
              el.getAttribute('aria-label'), el.type === 'submit' ? el.value : null]
             .filter(Boolean).join(' '))
"""


def raw_codes(site: Site) -> set[str]:
    """What only the software should see: codes with a name for people."""
    codes = {*site.services, *site.agencies, *site.zones, *site.time_classes}
    codes |= {"officer", "supervisor", "admin", "kiosk", "caller", "display", "web", "hub"}
    codes |= set(m.PRIORITIES)
    codes |= {"waiting", "called", "served", "skipped", "voided", "transferred", "open", "closed"}
    codes |= {"consecutive_complaints", "device_offline", "printer", "storage", "lobby"}
    return codes


def busy_morning(hub: HubService, bus_for) -> None:
    """Tickets in several services (two with priority, one granted at a kiosk and revoked), an
    officer's third complaint in a row (an alert), a long survey comment, devices online."""
    kiosk, caller = bus_for("kiosk-1"), bus_for("caller-03")
    for code in ("ktp", "ktp", "kk", "paspor", "skck", "tanah", "bank"):
        issue(hub, code)
    granted = m.IssueResult.model_validate(
        kiosk.request(m.IssueTicket(device="kiosk-1", service="ktp", priority="pregnant"), 5)
    ).ticket
    ok(hub, m.RevokePriority(device="hub", ticket_id=granted.id, by="Budi Supervisor"))
    kiosk.request(m.IssueTicket(device="kiosk-1", service="kk", priority="elderly"), 5)
    caller.request(m.OpenCounter(device="caller-03", counter=3, officer="Siti Petugas"), 5)
    for _ in range(3):
        caller.request(m.CallNext(device="caller-03", counter=3), 5)
        caller.request(m.Finish(device="caller-03", counter=3), 5)
        caller.request(m.Rate(device="caller-03", counter=3, score=1), 5)
    ok(hub, m.SetZoneSound(device="hub", zone="lobby", speech=True, volume=0.3,
                           number_reading="digits", by="Ani Admin"))  # fmt: skip
    ok(hub, m.AssignCounter(device="hub", counter=4, services=("kk", "akta"), by="Ani Admin"))
    with sqlite3.connect(hub.database) as conn:
        (token,) = conn.execute("SELECT token FROM tickets WHERE status = 'done'").fetchone()
    ok(hub, m.SubmitSurvey(device="hub", token=token, scores=(3,) * 9,
                           comment="Pelayanan" + "sangatbaiksekali" * 12 + " terima kasih"))  # fmt: skip
    settle()


def check_page(page, url: str, codes: set[str], shots: Path, name: str) -> list[str]:
    """Load `url` and list what a supervisor would call wrong with it."""
    page.goto(url)
    page.wait_for_load_state("load")
    page.wait_for_timeout(150)  # the live stream's first update is rendered
    page.screenshot(path=str(shots / f"{name}.png"), full_page=True)
    problems = []
    if page.evaluate("document.documentElement.lang") != "id":
        problems.append("the page is not in Indonesian")
    scroll_w = page.evaluate("document.documentElement.scrollWidth")
    if scroll_w > WIDTH:
        wide = [
            f"{tag}#{ident}" for tag, ident, _, right in page.evaluate(OWN_TEXTS) if right > WIDTH
        ]
        problems.append(f"scrolls sideways ({scroll_w} px): {wide[:5]}")
    inner = page.evaluate(INNER_SCROLLERS)
    if inner:
        problems.append(f"a part scrolls sideways: {inner}")
    texts = page.evaluate(OWN_TEXTS)
    shown_codes = sorted({text for _, _, text, _ in texts if text in codes})
    if shown_codes:
        problems.append(f"raw codes shown: {shown_codes}")
    words = " ".join([text for _, _, text, _ in texts] + page.evaluate(ATTR_TEXTS))
    english = sorted({w for w in re.findall(r"[a-z]+", words.lower()) if w in ENGLISH})
    if english:
        problems.append(f"English words: {english}")
    covered = page.evaluate(COVERED_BY_TAP)
    if covered:
        problems.append(f"the sound button covers {covered[:5]}")
    cut = page.evaluate(CHART_LABELS_OUTSIDE)
    if cut:
        problems.append(f"chart labels cut off: {cut[:5]}")
    return problems


def test_every_staff_page_fits_and_speaks_indonesian(
    server, browser, hub: HubService, site: Site, bus_for, tmp_path
) -> None:
    busy_morning(hub, bus_for)
    shots = Path(os.environ.get("MPP_SCREENSHOTS") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    codes = raw_codes(site)
    problems: dict[str, list[str]] = {}
    for role, paths in PAGES.items():
        context = browser.new_context(viewport={"width": WIDTH, "height": HEIGHT})
        page = context.new_page()
        log_in(page, server, ACCOUNTS[role])
        for path in paths:
            name = f"{role}{re.sub(r'[^a-z0-9]+', '-', path)}"
            found = check_page(page, f"{server.url}{path}", codes, shots, name)
            if found:
                problems[f"{role} {path}"] = found
        context.close()
    context = browser.new_context(viewport={"width": WIDTH, "height": HEIGHT})
    page = context.new_page()
    for path in SCREENS:
        found = check_page(
            page, f"{server.url}{path}", codes, shots, f"screen{path.replace('/', '-')}"
        )
        if found:
            problems[path] = found
    context.close()
    assert not problems, "\n".join(
        f"{where}: {'; '.join(what)}" for where, what in problems.items()
    )


def test_a_tv_page_in_english_leaves_the_staff_language_alone(server, browser) -> None:
    context = browser.new_context(viewport={"width": WIDTH, "height": HEIGHT})
    page = context.new_page()
    log_in(page, server, "supervisor")
    page.goto(f"{server.url}/display/lobby?lang=en")
    assert page.evaluate("document.documentElement.lang") == "en"
    assert "Tap the screen" in page.inner_text("#tap")
    page.goto(f"{server.url}/dashboard")
    assert page.evaluate("document.documentElement.lang") == "id"
    page.goto(f"{server.url}/display/lobby")
    assert "Sentuh layar" in page.inner_text("#tap")
    context.close()
