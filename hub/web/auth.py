"""Staff login and logout (throttled), the start page, and a health check."""

from __future__ import annotations

import math
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

from hub.web import base
from hub.web.security import LoginThrottle, csrf_token, public, requires

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
    """The login form; five wrong tries per address or username lock it for five minutes."""
    error = None
    if request.method == "POST":
        throttle: LoginThrottle = current_app.extensions["mpp_throttle"]
        username = request.form.get("username", "").strip().lower()[:40]
        keys = (f"ip:{request.remote_addr}", f"user:{username}")
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
            if lang:
                session["lang"] = lang
            csrf_token()
            base.log.info("login", extra={"user": user.username, "role": user.role})
            return redirect(_safe_next(request.args.get("next")))
    return render_template("login.html", error=error), (401 if error else 200)


@bp.post("/logout")
@requires("officer")
def logout() -> Any:
    """End the session."""
    lang = session.get("lang")
    session.clear()
    if lang:
        session["lang"] = lang
    base.flash_message("ok", base.t("login.out"))
    return redirect(url_for("auth.login"))


@bp.get("/healthz")
@public
def health() -> Any:
    """For monitoring: the hub's worker is running and the database is readable."""
    service = base.hub()
    base.db().execute("SELECT 1").fetchone()
    alive = service.started.is_set()
    return jsonify(ok=alive, seq=service.seq, streams=base.feed().listeners), (
        200 if alive else 503
    )
