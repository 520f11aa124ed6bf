"""Web app fixtures: the real hub (broker, SQLite) and the web app as its own MQTT client
(`HubLink` on the same broker, as `mpp web` runs it), staff accounts for every role, and
helpers that log in and post forms the way a browser does (with CSRF tokens)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from demo.webserver import WebServer
from hub.service import HubService
from protocol import messages as m
from protocol.mqtt import Bus
from protocol.site import Site
from tests.timing import wait_until
from web.app import close_app, create_app
from web.hub_link import HubLink

PASSWORD = "rahasia-123"
ROLES = ("officer", "supervisor", "admin")
TOKEN_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


# The web links of the running test: the helpers below wait until they have seen what the hub
# published, as a browser's next request would after the hub answered.
_LINKS: list[tuple[HubLink, HubService]] = []


@pytest.fixture
def link(site: Site, hub: HubService) -> Iterator[HubLink]:
    """The web's link to the running test hub, with the hub's retained state received."""
    link = HubLink(site, Bus.for_device(site, "web"))
    _LINKS.append((link, hub))
    yield link
    _LINKS.remove((link, hub))
    link.stop()


@contextmanager
def web_app(
    site: Site, hub: HubService | None = None, config: dict | None = None
) -> Iterator[Flask]:
    """A web app of its own for `site` (its link started and synced when `hub` runs)."""
    link = HubLink(site, Bus.for_device(site, "web"))
    app = create_app(site, link, config)
    if hub is not None:
        link.start(wait=10)
        _LINKS.append((link, hub))
        synced(link, hub)
    try:
        yield app
    finally:
        if (link, hub) in _LINKS:
            _LINKS.remove((link, hub))
        close_app(app)
        link.stop()


def synced(link: HubLink, hub: HubService, timeout: float = 5) -> None:
    """Wait until the web has received every retained state the hub holds now."""

    def caught_up(topic: str, msg: object) -> bool:
        got = link.retained.get(topic)
        if hasattr(msg, "seq"):
            return getattr(got, "seq", -1) >= msg.seq  # type: ignore[attr-defined]
        return got == msg  # alerts carry no seq: the same alert (acknowledged or not)

    assert wait_until(
        lambda: all(caught_up(topic, msg) for topic, msg in list(hub.retained.items())),
        timeout,
    ), "the web did not receive the hub's state"


@pytest.fixture
def app(site: Site, hub: HubService, link: HubLink) -> Iterator[Flask]:
    """The web app on the running test hub, with one account per role."""
    app = create_app(site, link, {"SSE_KEEPALIVE_S": 0.2, "SSE_MAX_S": 3.0})
    link.start(wait=10)
    assert link.connected
    synced(link, hub)
    users = app.extensions["mpp_users"]
    users.add("petugas", "Siti Petugas", "officer", PASSWORD)
    users.add("supervisor", "Budi Supervisor", "supervisor", PASSWORD)
    users.add("admin", "Ani Admin", "admin", PASSWORD)
    yield app
    close_app(app)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """An anonymous browser."""
    return app.test_client()


def csrf(client: FlaskClient, url: str = "/login") -> str:
    """The CSRF token a page's forms carry (as a browser would read it)."""
    page = client.get(url)
    found = TOKEN_RE.search(page.get_data(as_text=True))
    assert found, f"no csrf token on {url}"
    return found[1]


REQUEST_ID_FIELD = re.compile(r'name="request_id" value="([^"]+)"')


def form(client: FlaskClient, url: str = "/login") -> dict[str, str]:
    """The hidden fields a page's form carries (CSRF token, and the request id that makes a
    replayed form apply once), as a browser would send them."""
    body = client.get(url).get_data(as_text=True)
    token = TOKEN_RE.search(body)
    assert token, f"no csrf token on {url}"
    fields = {"csrf_token": token[1]}
    rid = REQUEST_ID_FIELD.search(body)
    if rid:
        fields["request_id"] = rid[1]
    return fields


def login(client: FlaskClient, username: str, password: str = PASSWORD) -> None:
    """Log in through the form."""
    response = client.post(
        "/login", data={"username": username, "password": password, "csrf_token": csrf(client)}
    )
    assert response.status_code == 302, response.get_data(as_text=True)


# Headless Chromium, Debian's (never `playwright install`).
CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """One headless Chromium for a test module."""
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium is not installed (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield browser
        browser.close()


@pytest.fixture
def server(app: Flask) -> Iterator[WebServer]:
    """The test's web app on a free loopback port, for the browser."""
    web = WebServer(app, "127.0.0.1", 0).start()
    yield web
    web.stop()


ACCOUNT = {"officer": "petugas", "supervisor": "supervisor", "admin": "admin"}


@pytest.fixture
def as_role(app: Flask):
    """Factory: a client logged in with `role`."""

    def make(role: str) -> FlaskClient:
        client = app.test_client()
        login(client, ACCOUNT[role])
        return client

    return make


def settle() -> None:
    """Wait until every web link of the test has what its hub published."""
    for link, hub in list(_LINKS):
        synced(link, hub)


def issue(hub: HubService, service: str = "ktp") -> m.TicketInfo:
    """A ticket issued through the hub's command path (the web has seen it when this returns)."""
    reply = hub.submit(m.IssueTicket(device="hub", service=service))
    assert reply.ok, reply.error
    settle()
    return m.IssueResult.model_validate(reply.result).ticket


def ok(hub: HubService, command: m.Command) -> dict:
    """Submit and insist on success (the web has seen the result when this returns)."""
    reply = hub.submit(command)
    assert reply.ok, reply.error
    settle()
    return reply.result or {}
