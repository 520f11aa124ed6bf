"""What every blueprint uses: the link to the hub, a read-only connection to the hub's
database, the language, translated texts, and sending a command to the hub over MQTT."""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable
from typing import Any

from flask import current_app, g, redirect, request, session

from hub.store import connect
from protocol import messages as m
from protocol.site import Site
from web.hub_link import WEB_DEVICE, HubLink
from web.i18n import translate
from web.live import LiveFeed
from web.users import User, UserStore

log = logging.getLogger("mpp.web")


def hub() -> HubLink:
    """The web's link to the hub (its retained state, its command path)."""
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


class SharedReader:
    """One read-only connection to the hub's database for every live stream of the process
    (thousands of open pages must not hold a connection each); one user at a time.

        with reader as conn:
            conn.execute("SELECT ...")
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    def __enter__(self) -> sqlite3.Connection:
        self._lock.acquire()
        if self._conn is None:
            self._conn = connect(self.path, readonly=True)
        return self._conn

    def __exit__(self, *_exc: object) -> None:
        self._lock.release()

    def close(self) -> None:
        """Close the connection (the app is stopping)."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


def stream_reader() -> SharedReader:
    """The process's shared read-only connection for live streams."""
    return current_app.extensions["mpp_stream_reader"]


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
    """Send a command to the hub over MQTT (device 'web'); not reaching it is a reply too."""
    reply = hub().submit(command)
    log.info(
        "web command",
        extra={
            "device": WEB_DEVICE,
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
    a double submit is applied once); `done(reply)` words a success. A form without a
    well-formed request id is refused: it could not be applied only once."""
    user = current_user()
    assert user is not None
    try:
        command = make(user.name, form_request_id())
    except ValueError as exc:
        flash_message("error", str(exc) if isinstance(exc, FormError) else t("error.400"))
        return redirect(back)
    reply = submit(command, user.username)
    if reply.ok:
        flash_message("ok", done(reply))
    else:
        flash_message("error", reply_text(reply))
    return redirect(back)


class FormError(ValueError):
    """A staff form that cannot be turned into a command; the text says why, in the page's
    language."""


def form_request_id() -> str:
    """The request id the form was rendered with (so a replayed form applies once)."""
    rid = request.form.get("request_id", "")
    if not m.REQUEST_ID_RE.fullmatch(rid):
        raise FormError(t("error.request_id"))
    return rid


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
