"""A phone that left the Wi-Fi while its ticket page was open: no FIN, no RST, its packets
simply stop. The real `mpp web` must notice and free the stream within a minute.

The phone is a client in a network namespace the test makes (tests/chaos/netns.py), joined to
the host by a veth pair; the web listens on the host's end. Once the page's live stream is
open, every packet in and out of the namespace is dropped (iptables DROP) and the web's
open-stream count (/healthz) is watched from the host until the stream is gone. Three phones,
opened 5 s apart, so that one of them meets the worst moment: its stream's keep-alive falls
just before the cut, the server finds out only when a later write fails. Needs root,
iproute2 and iptables (skipped otherwise); slow: about 70 s.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from bench.figures import figure
from hub.service import HubService
from protocol import messages as m
from protocol.brokers import free_port
from protocol.site import Site
from tests.chaos.netns import device_link
from tests.conftest import ROOT, site_text
from tests.timing import wait_until

pytestmark = pytest.mark.slow

# The issue asks for a minute. A stream finds out at its first keep-alive write after the
# kernel gave the connection up (TCP_USER_TIMEOUT after the first unacknowledged write): at
# worst keep-alive (15 s) + 20 s, rounded up to the next keep-alive: 45 s; 10 s for a loaded
# machine. (With the former 40 s timeout the last of these phones closed after 60 s.)
NOTICED_WITHIN_S = 55.0
PHONES = 3  # opened 5 s apart: with keep-alives every 15 s, one of them is the worst case
STAGGER_S = 5.0


def health(host: str, port: int) -> dict | None:
    """The web's /healthz, or None while it does not answer."""
    try:
        with urllib.request.urlopen(f"http://{host}:{port}/healthz", timeout=2) as response:
            return json.load(response)
    except OSError:
        return None


def test_a_phone_that_left_the_wifi_is_dropped_within_a_minute(
    hub: HubService, site: Site, tmp_path: Path
) -> None:
    reply = hub.submit(m.IssueTicket(device="hub", service="ktp"))
    assert reply.ok, reply.error
    token = m.IssueResult.model_validate(reply.result).ticket.token
    with device_link() as link:
        port = free_port()
        body = site_text(
            site.broker.port, site_id=site.site.id, always_open=True, database=hub.database
        )
        body = body.replace('host = "127.0.0.1" ', f'host = "{link.host_ip}" ', 1)
        body = body.replace("port = 8080 ", f"port = {port} ", 1)
        assert f'host = "{link.host_ip}"' in body and f"port = {port} " in body
        site_file = tmp_path / "site.toml"
        site_file.write_text(body)
        web = subprocess.Popen(
            [sys.executable, "-m", "protocol.cli", "web", "--site", str(site_file)],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        phones: list[socket.socket] = []
        try:
            assert wait_until(lambda: (health(link.host_ip, port) or {}).get("ok"), 30)
            for i in range(PHONES):
                if i:
                    time.sleep(STAGGER_S)  # streams whose keep-alives fall at other moments
                phone = link.run(lambda: socket.create_connection((link.host_ip, port), timeout=10))
                phone.sendall(f"GET /t/{token}/events HTTP/1.1\r\nHost: mpp\r\n\r\n".encode())
                first = phone.recv(65536)
                assert first.startswith(b"HTTP/1.1 200"), first[:200]
                phones.append(phone)
            assert wait_until(lambda: health(link.host_ip, port)["streams"] == PHONES, 10)
            link.lose(100)  # the phones are gone: nothing in, nothing out, nothing closed
            cut = time.monotonic()
            gone = wait_until(
                lambda: health(link.host_ip, port)["streams"] == 0, NOTICED_WITHIN_S + 30
            )
            took = time.monotonic() - cut
        finally:
            for phone in phones:
                phone.close()  # after the measurement: the DROP rules eat the FIN
            web.terminate()
            out, _ = web.communicate(timeout=15)
    assert gone, f"the dead phones' streams were still open after {took:.0f} s\n{out}"
    figure(
        "web: the last of 3 vanished phones' streams closed after", round(took, 1), "s", "< 60 s"
    )
    assert took < NOTICED_WITHIN_S, f"noticed after {took:.0f} s"
