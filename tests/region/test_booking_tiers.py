"""Both tiers for real, for citizens outside the building: a booking made on the region reaches
the site's hub over the bridge ahead of its day, is checked in with the WAN cut, the ticket is
called and its public page on the region says where to go, and the survey answered there is
recorded once by the hub and reaches the region's IKM."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from psycopg_pool import ConnectionPool

from hub.service import HubService
from protocol import messages as m
from protocol.ikm import ikm
from protocol.mqtt import Bus
from protocol.site import parse_site
from region import bookings as bk
from region.db import connect
from region.web import create_app
from tests.region.rig import RegionRig, start_rig
from tests.region.sites import hub_rows, region_rows
from tests.timing import wait_until

TZ = "Asia/Makassar"


class SiteClock:
    """The hub's wall clock: today at 09:50 in the site's time zone, running from there (the
    session of 10:00-11:00 may still be booked, and its check-in window is open)."""

    def __init__(self) -> None:
        nine_fifty = datetime.now(ZoneInfo(TZ)).replace(hour=9, minute=50, second=0)
        self.offset = nine_fifty.timestamp() - time.time()

    def __call__(self) -> float:
        return time.time() + self.offset


def with_session(text: str, start: str, end: str) -> str:
    """The ktp service bookable every day in that one session."""
    days = '["mon", "tue", "wed", "thu", "fri", "sat", "sun"]'
    block = (
        f'sessions = [\n    {{ days = {days}, start = "{start}", end = "{end}", '
        "online_quota = 5 },\n]\n"
    )
    pattern = r"(\[services\.ktp\.booking\][^\n]*\n(?:bring = .*\n)?)sessions = \[\n(?:.*\n)*?\]\n"
    return re.sub(pattern, lambda found: found[1] + block, text, count=1)


@pytest.fixture
def rig(region_dsn: str) -> Iterator[RegionRig]:
    made = start_rig(region_dsn, ["bjb"])
    yield made
    made.close()


def test_book_check_in_with_the_wan_cut_follow_and_answer_the_survey(rig: RegionRig) -> None:
    start, end = "10:00", "11:00"
    clock = SiteClock()
    tier = rig.add_site("bjb")
    tier.site = parse_site(with_session(tier.site_text, start, end), "test-site.toml")
    assert tier.site.services["ktp"].booking.sessions[0].start == start
    region = rig.region()
    bus = Bus.for_device(tier.site, "hub", username="hub", password=tier.broker.passwords["hub"])
    hub = HubService(tier.site, bus=bus, first_start=True, clock=clock).start()
    config = rig.config()
    try:
        # The site's offer reaches the region; a citizen books (the region's own rules).
        assert wait_until(
            lambda: region_rows(rig.dsn, "SELECT count(*) FROM booking_offers")[0][0], 20
        )
        with connect(rig.dsn, autocommit=True) as conn:
            offer = bk.load_offer(conn, "bjb")
            made = bk.book(
                conn,
                offer,
                "ktp",
                datetime.now(ZoneInfo(TZ)).date(),
                f"{start}-{end}",
                phone_hashed=bk.phone_hash("081234567890", "k"),
                now=clock(),
                tz=TZ,
            )
        # ... and it reaches the site ahead of the citizen, applied once.
        assert wait_until(
            lambda: (
                hub_rows(tier.database, "SELECT code, status FROM bookings")
                == [(made.code, "active")]
            ),
            20,
        )
        tier.wan.cut()
        reply = hub.submit(m.CheckIn(device="hub", code=made.code, site="bjb"))
        assert reply.ok, reply.error
        ticket = m.IssueResult.model_validate(reply.result).ticket
        assert ticket.booking == made.code
        tier.wan.restore()
        # Called: the public page on the region says where to go.
        hub.submit(m.OpenCounter(device="hub", counter=1, officer="Siti"))
        with ConnectionPool(rig.dsn, min_size=1, max_size=2, open=True) as pool:
            app = create_app(config, pool, {"TESTING": True})
            client = app.test_client()
            page = f"/t/{ticket.token}"
            assert wait_until(lambda: client.get(page).status_code == 200, 30)
            hub.submit(m.CallNext(device="hub", counter=1))
            assert wait_until(
                lambda: "Silakan menuju Loket 1" in client.get(page).get_data(as_text=True), 30
            )
            assert "Reservasi" in client.get(page).get_data(as_text=True)
            hub.submit(m.Finish(device="hub", counter=1))
            assert wait_until(
                lambda: (
                    'id="survey-form" class="survey"' in client.get(page).get_data(as_text=True)
                    and 'class="survey" hidden' not in client.get(page).get_data(as_text=True)
                ),
                30,
            )
            html = client.get(page).get_data(as_text=True)
            csrf = re.search(r'name="csrf_token" value="([^"]+)"', html)[1]
            scores = [4, 3, 4, 4, 3, 2, 4, 4, 3]
            answers = {f"U{i + 1}": str(s) for i, s in enumerate(scores)}
            sent = client.post(f"{page}/survey", data={**answers, "csrf_token": csrf})
            assert sent.status_code == 302
            app.extensions["region"]["feed"].stop()
        # The hub records it once (its IKM is the one computation) and it reaches the region.
        assert wait_until(
            lambda: hub_rows(tier.database, "SELECT u1, u6 FROM survey_responses") == [(4, 2)], 30
        )
        assert wait_until(
            lambda: (
                region_rows(rig.dsn, "SELECT scores FROM survey_responses WHERE site = 'bjb'")
                == [(scores,)]
            ),
            30,
        )
        hub_scores = hub_rows(
            tier.database, "SELECT u1,u2,u3,u4,u5,u6,u7,u8,u9 FROM survey_responses"
        )
        assert ikm(hub_scores) == ikm([scores])
        assert wait_until(
            lambda: (
                region_rows(rig.dsn, "SELECT status, ticket FROM bookings")
                == [("checked_in", ticket.id)]
            ),
            30,
        )
        # The region's report: booked -> checked in -> called -> served.
        today = datetime.now(ZoneInfo(TZ)).date()
        with connect(rig.dsn, autocommit=True) as conn:
            [row] = bk.funnel(conn, today, today)
        counts = (row.booked, row.checked_in, row.called, row.served, row.walk_ins)
        assert (row.site, row.service, counts) == ("bjb", "ktp", (1, 1, 1, 1, 0))
    finally:
        hub.stop()
        region.stop()
