"""Web app fixtures: the real hub (broker, SQLite) with the Flask app on top, staff accounts for
every role, and helpers that log in and post forms the way a browser does (with CSRF tokens)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient

from hub.service import HubService
from hub.web import create_app
from protocol import messages as m

PASSWORD = "rahasia-123"
ROLES = ("officer", "supervisor", "admin")
TOKEN_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
def app(hub: HubService) -> Iterator[Flask]:
    """The web app of the running test hub, with one account per role."""
    app = create_app(hub, {"SSE_KEEPALIVE_S": 0.2, "SSE_MAX_S": 3.0})
    users = app.extensions["mpp_users"]
    users.add("petugas", "Siti Petugas", "officer", PASSWORD)
    users.add("supervisor", "Budi Supervisor", "supervisor", PASSWORD)
    users.add("admin", "Ani Admin", "admin", PASSWORD)
    yield app
    app.extensions["mpp_live"].close()
    users.close()
    app.extensions["mpp_featured"].close()


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


def login(client: FlaskClient, username: str, password: str = PASSWORD) -> None:
    """Log in through the form."""
    response = client.post(
        "/login", data={"username": username, "password": password, "csrf_token": csrf(client)}
    )
    assert response.status_code == 302, response.get_data(as_text=True)


ACCOUNT = {"officer": "petugas", "supervisor": "supervisor", "admin": "admin"}


@pytest.fixture
def as_role(app: Flask):
    """Factory: a client logged in with `role`."""

    def make(role: str) -> FlaskClient:
        client = app.test_client()
        login(client, ACCOUNT[role])
        return client

    return make


def issue(hub: HubService, service: str = "ktp") -> m.TicketInfo:
    """A ticket issued through the hub's command path."""
    reply = hub.submit(m.IssueTicket(device="hub", service=service))
    assert reply.ok, reply.error
    return m.IssueResult.model_validate(reply.result).ticket


def ok(hub: HubService, command: m.Command) -> dict:
    """Submit and insist on success."""
    reply = hub.submit(command)
    assert reply.ok, reply.error
    return reply.result or {}
