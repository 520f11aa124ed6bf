"""Staff login and logout (throttled), the start page, and a health check."""

from __future__ import annotations

import math
import sqlite3
from typing import Any
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    current_app,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from werkzeug.exceptions import TooManyRequests

from protocol.errors import MppError
from web import base
from web.security import LoginThrottle, csrf_token, public, requires

bp = Blueprint("auth", __name__)


def _safe_next(target: str | None) -> str:
    """Only local paths: a login link must not send staff to another site."""
    if not target:
        return url_for("dashboard.index")
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return url_for("dashboard.index")
    return target


@bp.get("/")
@public
def index() -> Any:
    """Staff go to their dashboard; everyone else to the login page."""
    if base.current_user() is not None:
        return redirect(url_for("dashboard.index"))
    return redirect(url_for("auth.login"))


@bp.route("/login", methods=["GET", "POST"])
@public
def login() -> Any:
    """The login form; five wrong tries from one address lock that address (only) for five
    minutes, so nobody can lock an account out from somewhere else."""
    error = None
    if request.method == "POST":
        throttle: LoginThrottle = current_app.extensions["mpp_throttle"]
        username = request.form.get("username", "").strip().lower()[:40]
        keys = (f"ip:{request.remote_addr}",)
        wait = throttle.blocked_for(*keys)
        if wait > 0:
            too_many = TooManyRequests()
            too_many.retry_minutes = max(1, math.ceil(wait / 60))  # type: ignore[attr-defined]
            raise too_many
        user = base.users().check(username, request.form.get("password", ""))
        if user is None:
            throttle.failed(*keys)
            error = base.t("login.failed")
            base.log.warning("login failed", extra={"user": username, "ip": request.remote_addr})
        else:
            throttle.succeeded(*keys)
            lang = session.get("lang")
            session.clear()  # a fresh session on login (no fixation)
            session.permanent = True
            session["user"] = user.username
            lifetime = current_app.permanent_session_lifetime.total_seconds()
            session["sid"] = base.users().start_session(user.username, lifetime)
            if lang:
                session["lang"] = lang
            csrf_token()
            base.log.info("login", extra={"user": user.username, "role": user.role})
            return redirect(_safe_next(request.args.get("next")))
    return render_template("login.html", error=error), (401 if error else 200)


@bp.post("/logout")
@requires("officer")
def logout() -> Any:
    """End the session, on the server too: the cookie (or a copy of it) opens nothing after."""
    base.users().end_session(session.get("sid", ""))
    lang = session.get("lang")
    session.clear()
    if lang:
        session["lang"] = lang
    base.flash_message("ok", base.t("login.out"))
    return redirect(url_for("auth.login"))


@bp.get("/healthz")
@public
def health() -> Any:
    """For monitoring: the web reaches the broker (so the hub) and can read the database."""
    link = base.hub()
    try:
        base.db().execute("SELECT 1").fetchone()
        readable = True
    except (MppError, sqlite3.Error):  # no hub database yet, or unreadable
        readable = False
    alive = link.connected and readable
    feed = base.feed()
    return jsonify(
        ok=alive,
        broker=link.connected,
        database=readable,
        seq=link.seq,
        streams=feed.listeners,
        refused_streams=feed.refused,
    ), (200 if alive else 503)
