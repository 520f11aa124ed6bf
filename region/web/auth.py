"""Login, logout and the health check."""

from __future__ import annotations

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

from region.web import base
from region.web.security import csrf_token, public, requires

bp = Blueprint("auth", __name__)


def _safe_next(target: str | None) -> str:
    """Only local paths: a login link must not send anyone to another site."""
    parts = urlsplit(target or "")
    if (
        not target
        or parts.scheme
        or parts.netloc
        or not target.startswith("/")
        or target.startswith("//")
    ):
        return url_for("pages.overview")
    return target


@bp.route("/login", methods=["GET", "POST"])
@public
def login() -> Any:
    """The login form; five wrong tries from one address lock that address (only) for five
    minutes, so nobody can lock an account out from somewhere else."""
    error = None
    if request.method == "POST":
        throttle = base.region()["throttle"]
        username = request.form.get("username", "").strip().lower()[:40]
        keys = (f"ip:{request.remote_addr}",)
        if throttle.blocked_for(*keys) > 0:
            return render_template("login.html", error=base.t("login.throttled")), 429
        user = base.region()["accounts"].check(username, request.form.get("password", ""))
        if user is None:
            throttle.failed(*keys)
            error = base.t("login.failed")
        else:
            throttle.succeeded(*keys)
            lang = session.get("lang")
            session.clear()  # a fresh session on login (no fixation)
            session.permanent = True
            session["user"] = user.username
            lifetime = current_app.permanent_session_lifetime.total_seconds()
            session["sid"] = base.region()["accounts"].start_session(user.username, lifetime)
            if lang:
                session["lang"] = lang
            csrf_token()
            return redirect(_safe_next(request.args.get("next")))
    return render_template("login.html", error=error), (401 if error else 200)


@bp.post("/logout")
@requires("viewer")
def logout() -> Any:
    """End the session, on the server too: the cookie (or a copy of it) opens nothing after."""
    base.region()["accounts"].end_session(session.get("sid", ""))
    lang = session.get("lang")
    session.clear()
    if lang:
        session["lang"] = lang
    return redirect(url_for("auth.login"))


@bp.get("/healthz")
@public
def health() -> Any:
    """For monitoring: the database answers."""
    with base.db() as conn:
        sites = conn.execute("SELECT count(*) FROM sites").fetchone()[0]
    return jsonify(ok=True, sites=sites)
