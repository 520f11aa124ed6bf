"""Both tiers for real: site Mosquitto bridged with TLS over a cuttable WAN to the regional
Mosquitto, hubs with an outbox, the region service, PostgreSQL; faults on the way."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from protocol import messages as m
from tests.region.rig import RegionRig, start_rig
from tests.region.sites import (
    assert_same_history,
    busy_period,
    hub_head,
    region_acked,
    region_rows,
)
from tests.timing import wait_until


@pytest.fixture
def rig(region_dsn: str) -> Iterator[RegionRig]:
    made = start_rig(region_dsn, ["bjb", "mtp"])
    yield made
    made.close()


def caught_up(rig: RegionRig, site: str, timeout: float = 60) -> bool:
    database = rig.sites[site].database
    return wait_until(lambda: region_acked(rig.dsn, site) == hub_head(database), timeout, 0.1)


def test_wan_cut_during_a_busy_period_loses_nothing(rig: RegionRig) -> None:
    tier = rig.add_site("bjb")
    rig.region()
    hub = tier.hub().start()
    try:
        busy_period(hub, 20, seed=1)
        assert caught_up(rig, "bjb", 30), rig.regional.log()
        tier.wan.cut()
        started = time.monotonic()
        busy_period(hub, 80, seed=2)  # the site goes on as if nothing happened
        busy_s = time.monotonic() - started
        behind = hub_head(tier.database) - region_acked(rig.dsn, "bjb")
        assert behind > 100
        tier.wan.restore()
        assert caught_up(rig, "bjb"), (hub.outbox.acked, hub.outbox.sent, hub_head(tier.database))
    finally:
        hub.stop()
    assert assert_same_history(tier.database, rig.dsn, "bjb") == hub_head(tier.database)
    assert busy_s < 60
    assert region_rows(rig.dsn, "SELECT acked = head FROM links WHERE site = 'bjb'") == [(True,)]


@pytest.mark.slow
def test_region_and_postgresql_restarts_lose_nothing(rig: RegionRig, postgres) -> None:
    tier = rig.add_site("bjb", region={"batch_events": 4, "window_batches": 1})
    hub = tier.hub().start()
    try:
        busy_period(hub, 60, seed=3)  # the region is not running yet: a backlog
        region = rig.region()
        assert wait_until(lambda: region_acked(rig.dsn, "bjb") > 0, 30, 0.01)
        region.stop()  # mid-ingest
        assert region_acked(rig.dsn, "bjb") < hub_head(tier.database)
        rig.region()
        busy_period(hub, 15, seed=4)
        postgres.restart()  # the database goes away under the region's feet
        busy_period(hub, 15, seed=5)
        assert caught_up(rig, "bjb"), (hub.outbox.acked, hub.outbox.sent)
    finally:
        hub.stop()
    assert_same_history(tier.database, rig.dsn, "bjb")


def test_a_site_cannot_write_or_read_another_sites_topics(rig: RegionRig) -> None:
    from tests.region.probe import RegionalProbe

    mtp = rig.add_site("mtp")
    rig.region()
    hub = mtp.hub().start()
    try:
        busy_period(hub, 5)
        assert caught_up(rig, "mtp", 30)
    finally:
        hub.stop()
    # bjb's account (its bridge is not running) tries mtp's topics.
    probe = RegionalProbe(rig, "bjb")
    try:
        forged = m.EventBatch(
            site="mtp",
            after=0,
            last=1,
            head=1,
            sent_at=1.0,
            events=(m.OutboxEvent(id=1, at=1.0, kind="opened", counter=1, officer="x"),),
        )
        denied = {
            "kalsel/v1/mtp/up/events": m.encode(forged),
            "kalsel/v1/mtp/up/catalog": b"{}",
            "kalsel/v1/mtp/down/ack": b"{}",
            "kalsel/v1/bjb/down/ack": b"{}",
        }
        assert probe.publish(denied) == dict.fromkeys(denied, 135)
        # Its own up/ it may write (that is what its bridge does).
        assert probe.publish({"kalsel/v1/bjb/up/catalog": b"{}"}) == {"kalsel/v1/bjb/up/catalog": 0}
        assert probe.hears("kalsel/v1/mtp/down/ack", rig) == []
    finally:
        probe.close()
    events = region_rows(rig.dsn, "SELECT count(*) FROM events WHERE site = 'mtp'")[0][0]
    assert events == hub_head(mtp.database)  # nothing forged got in
    assert assert_same_history(mtp.database, rig.dsn, "mtp") == events


@pytest.mark.slow
def test_hub_killed_mid_upload_sends_again_from_the_acknowledgement(rig: RegionRig) -> None:
    import os
    import signal
    import subprocess
    import sys

    tier = rig.add_site("bjb", region={"batch_events": 4, "window_batches": 1})
    tier.wan.cut()
    hub = tier.hub().start()
    try:
        busy_period(hub, 120, seed=6)  # a backlog while the WAN is down
    finally:
        hub.stop()
    head = hub_head(tier.database)
    site_file = tier.database.parent / "site.toml"
    site_file.write_text(tier.site_text, encoding="utf-8")
    credentials = tier.database.parent / "credentials"
    credentials.mkdir()
    (credentials / "mpp-broker-password").write_text(tier.broker.passwords["hub"])
    env = dict(os.environ, CREDENTIALS_DIRECTORY=str(credentials))
    command = [sys.executable, "-m", "protocol.cli", "hub", "--site", str(site_file)]
    log = (tier.database.parent / "hub.log").open("ab")
    rig.region()
    tier.wan.restore()
    proc = subprocess.Popen(command, env=env, stdout=log, stderr=log)
    try:
        assert wait_until(lambda: region_acked(rig.dsn, "bjb") > 0, 30, 0.01)
        proc.send_signal(signal.SIGKILL)  # mid-upload: no goodbye
        proc.wait(10)
        assert region_acked(rig.dsn, "bjb") < head
        proc = subprocess.Popen(command, env=env, stdout=log, stderr=log)
        assert caught_up(rig, "bjb"), (tier.database.parent / "hub.log").read_text()[-3000:]
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()
    # Every event, those the restarted hub added (its own presence) included.
    assert assert_same_history(tier.database, rig.dsn, "bjb") == hub_head(tier.database) >= head


def test_duplicated_and_reordered_batches_through_the_regional_broker(rig: RegionRig) -> None:
    from tests.region.events import CATALOG, batches, day_of_events
    from tests.region.probe import RegionalProbe

    rig.region()
    probe = RegionalProbe(rig, "bjb")  # as bjb's bridge would, batches out of order and twice
    try:
        parts = [m.encode(b) for b in batches(day_of_events(), 3, site="bjb")]
        catalog = m.encode(CATALOG.model_copy(update={"site": "bjb"}))
        assert probe.publish({"kalsel/v1/bjb/up/catalog": catalog}) == {
            "kalsel/v1/bjb/up/catalog": 0
        }
        for payload in (parts[3], parts[1], parts[1], parts[5], parts[0], parts[2], parts[4]):
            probe.publish({"kalsel/v1/bjb/up/events": payload})
        acked = wait_until(lambda: region_acked(rig.dsn, "bjb") == 17, 20)
        answers = probe.hears("kalsel/v1/bjb/down/ack", rig, listen_s=0.2)
    finally:
        probe.close()
    assert acked
    rows = region_rows(rig.dsn, "SELECT count(*), count(DISTINCT id) FROM events")
    assert rows == [(17, 17)]
    assert region_rows(rig.dsn, "SELECT count(*) FROM ranges") == [(0,)]
    del answers  # acknowledgements went to the bridge's topic (checked in test_ingest)
