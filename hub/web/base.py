"""What every blueprint uses: the hub service, a read-only database connection, the language,
translated texts, and sending a command through the hub's single writer."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable
from typing import Any

from flask import current_app, g, redirect, request, session

from hub.service import HubService
from hub.store import connect
from hub.web.i18n import translate
from hub.web.live import LiveFeed
from hub.web.users import User, UserStore
from protocol import messages as m
from protocol.site import Site

log = logging.getLogger("mpp.web")


def hub() -> HubService:
    """The hub service this app belongs to."""
    return current_app.extensions["mpp_hub"]


def site() -> Site:
    """The site inventory."""
    return hub().site


def users() -> UserStore:
    """Staff accounts."""
    return current_app.extensions["mpp_users"]


def feed() -> LiveFeed:
    """The live-update fan-out."""
    return current_app.extensions["mpp_live"]


def db() -> sqlite3.Connection:
    """A read-only connection to the hub database for this request."""
    if "db" not in g:
        g.db = connect(hub().database, readonly=True)
    return g.db


def lang() -> str:
    """The language of this request ('id' or 'en')."""
    return g.get("lang", "id")


def t(key: str, **values: object) -> str:
    """A text in this request's language."""
    return translate(key, lang(), **values)


def current_user() -> User | None:
    """The logged-in staff member, if any."""
    return g.get("user")


def submit(command: m.Command, user: str = "") -> m.Reply:
    """Apply a command through the hub's command path (device 'hub'); a timeout is a reply."""
    try:
        reply = hub().submit(command)
    except TimeoutError:
        log.error("hub did not answer", extra={"request_id": command.request_id, "user": user})
        return m.Reply(
            request_id=command.request_id,
            ok=False,
            error=m.ErrorInfo(code="internal", message="the hub did not answer in time"),
            hub_time=0.0,
        )
    log.info(
        "web command",
        extra={
            "device": "hub",
            "request_id": command.request_id,
            "kind": command.kind,
            "user": user,
            "code": reply.error.code if reply.error else "ok",
        },
    )
    return reply


def submit_form(
    make: Callable[[str, str], m.Command], back: str, done: Callable[[m.Reply], str]
) -> Any:
    """A staff button's command through the hub, then back to `back` with a message saying how
    it went. `make(user's name, request id)` builds the command (the form's own request id, so
    a double submit is applied once); `done(reply)` words a success."""
    user = current_user()
    assert user is not None
    try:
        command = make(user.name, request.form.get("request_id") or m.new_request_id())
    except ValueError:
        flash_message("error", t("error.400"))
        return redirect(back)
    reply = submit(command, user.username)
    if reply.ok:
        flash_message("ok", done(reply))
    else:
        flash_message("error", reply_text(reply))
    return redirect(back)


def reply_text(reply: m.Reply) -> str:
    """A refusal in this request's language (the hub's citizen text when it has one)."""
    if reply.error is None:
        return ""
    if reply.error.text is not None:
        return reply.error.text.en if lang() == "en" else reply.error.text.id
    if reply.error.code == "internal":
        return t("error.hub")
    return reply.error.message


def flash_message(kind: str, text: str) -> None:
    """A one-time message for the next page (kind 'ok' or 'error')."""
    session.setdefault("flashes", []).append((kind, text))
    session.modified = True


def take_flashes() -> list[Any]:
    """The pending one-time messages."""
    return session.pop("flashes", [])
