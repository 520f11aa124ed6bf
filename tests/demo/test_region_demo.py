"""`mpp demo --sites 3`: three simulated MPPs live in the regional view."""

from __future__ import annotations

import http.cookiejar
import re
import shutil
import tempfile
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from demo.region import DEMO_LOGIN, RegionDemo
from protocol.brokers import free_port
from tests.timing import wait_until


@pytest.mark.slow
def test_three_sites_show_live_in_the_regional_view() -> None:
    # Not pytest's tmp_path: its root is private to root, the mosquitto user cannot enter it.
    top = Path(tempfile.mkdtemp(prefix="mpp-region-demo-"))
    top.chmod(0o755)
    workdir = top / "region"
    demo = RegionDemo(workdir, sites=3, web_port=free_port()).start()
    try:
        for tier in demo.tiers:  # quicker visitors for the test
            tier.visitors.every_s = 0.3  # type: ignore[union-attr]
        base = demo.urls["regional overview"].rstrip("/")
        opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
        )
        page = opener.open(f"{base}/login").read().decode()
        token = re.search(r'name="csrf_token" value="([^"]+)"', page)[1]
        form = {"username": DEMO_LOGIN[0], "password": DEMO_LOGIN[1], "csrf_token": token}
        opener.open(f"{base}/login", urllib.parse.urlencode(form).encode()).read()

        def live() -> bool:
            html = opener.open(f"{base}/").read().decode()
            rows = re.findall(r'<tr class="up" data-site="([^"]+)">(.*?)</tr>', html, re.S)
            served = [re.findall(r'<td class="num[^"]*">([^<]*)</td>', r)[2] for _, r in rows]
            return len(rows) == 3 and all(int(s) > 0 for s in served)

        assert wait_until(live, 90, 0.5), opener.open(f"{base}/").read().decode()
        assert {t.site.site.id for t in demo.tiers} == {
            "mpp-banjarbaru",
            "mpp-martapura",
            "mpp-banjarmasin",
        }
    finally:
        demo.stop()
        shutil.rmtree(top, ignore_errors=True)
