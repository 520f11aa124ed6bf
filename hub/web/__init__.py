"""The hub's web app: citizens' ticket pages and survey, staff dashboard, web caller, reports,
IKM, screens for smart TVs, and admin; served by the hub process (see hub/web/server.py).

    app = create_app(service)               # service: a started hub.service.HubService
    WebServer(app, site.hub.web_host, site.hub.web_port).start()
"""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path
from typing import Any

from flask import Flask, g, render_template, request, session
from werkzeug.exceptions import HTTPException

from hub.service import HubService
from hub.web import base
from hub.web.featured import FeaturedStore
from hub.web.i18n import pick_lang, translate
from hub.web.live import LiveFeed
from hub.web.security import (
    CsrfError,
    LoginThrottle,
    check_access,
    check_csrf,
    csrf_token,
    security_headers,
)
from hub.web.users import UserStore
from protocol.messages import new_request_id
from protocol.texts import priority_text, wait_text

log = logging.getLogger("mpp.web")


def create_app(
    service: HubService, config: dict[str, Any] | None = None, users: UserStore | None = None
) -> Flask:
    """The Flask app for a started hub service (`config` overrides the defaults below)."""
    app = Flask(__name__)
    users = users or UserStore(service.database)
    site = service.site
    app.config.update(
        SECRET_KEY=users.secret_key(),
        SESSION_COOKIE_NAME="mpp_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        # Browsers send a Secure cookie over https only: on a plain-http LAN it would break login.
        SESSION_COOKIE_SECURE=site.site.public_url.startswith("https://"),
        PERMANENT_SESSION_LIFETIME=timedelta(hours=12),
        MAX_CONTENT_LENGTH=6 * 1024 * 1024,
        MEDIA_DIR=str(Path(service.database).parent / "media"),
        SSE_KEEPALIVE_S=15.0,
        SSE_MAX_S=300.0,
        LOGIN_LIMIT=5,
        LOGIN_WINDOW_S=300.0,
        PROPAGATE_EXCEPTIONS=False,
        TRAP_HTTP_EXCEPTIONS=False,
    )
    app.config.update(config or {})
    app.extensions["mpp_hub"] = service
    app.extensions["mpp_users"] = users
    app.extensions["mpp_live"] = LiveFeed(service)
    featured = FeaturedStore(service.database, app.config["MEDIA_DIR"])
    app.extensions["mpp_featured"] = featured
    # The Pi displays get the admin's featured products over MQTT, images from this app.
    service.set_featured_source(lambda: featured.slides_by_zone(site.media_url()))
    app.extensions["mpp_throttle"] = LoginThrottle(
        app.config["LOGIN_LIMIT"], app.config["LOGIN_WINDOW_S"]
    )
    _register(app)
    _hooks(app)
    _filters(app)
    return app


def _filters(app: Flask) -> None:
    site = app.extensions["mpp_hub"].site

    def minutes(seconds: float | None) -> str:
        if seconds is None:
            return "—"
        return translate("minutes", base.lang(), n=round(seconds / 60))

    def duration(seconds: float | None) -> str:
        if seconds is None:
            return "—"
        return f"{seconds / 60:.1f}′" if seconds < 5940 else f"{seconds / 3600:.1f} h"

    def clock(epoch: float | None, with_day: bool = False) -> str:
        if epoch is None:
            return "—"
        return site.local_now(epoch).strftime("%Y-%m-%d %H:%M" if with_day else "%H:%M:%S")

    def percent(share: float | None) -> str:
        return "—" if share is None else f"{share * 100:.0f}%"

    app.jinja_env.filters.update(
        mins=minutes,
        dur=duration,
        clock=clock,
        pct=percent,
        waittext=lambda s: wait_text(int(s), base.lang()),
    )
    app.jinja_env.globals.update(new_request_id=new_request_id, priority_text=priority_text)


def _register(app: Flask) -> None:
    from hub.web import admin, auth, caller, dashboard, display, priority, reports, survey, ticket

    for module in (auth, ticket, survey, dashboard, reports, priority, caller, display, admin):
        app.register_blueprint(module.bp)


def _hooks(app: Flask) -> None:
    @app.before_request
    def _before() -> Any:
        asked = request.args.get("lang")
        if asked in ("id", "en"):
            session["lang"] = asked
        g.lang = pick_lang(asked, session.get("lang"))
        g.user = None
        username = session.get("user")
        if username:
            user = base.users().get(username)
            if user is not None and user.active:
                g.user = user
            else:
                session.clear()
        if request.routing_exception is not None:
            return None  # the 404 / 405 follows
        response = check_access(app)
        if response is not None:
            return response
        check_csrf()
        return None

    @app.after_request
    def _after(response: Any) -> Any:
        return security_headers(response)

    @app.teardown_appcontext
    def _close(_exc: BaseException | None) -> None:
        conn = g.pop("db", None)
        if conn is not None:
            conn.close()

    @app.context_processor
    def _context() -> dict[str, Any]:
        return {
            "t": base.t,
            "lang": base.lang(),
            "user": base.current_user(),
            "csrf_token": csrf_token,
            "site": base.site(),
            "flashes": base.take_flashes,
        }

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Any:
        code = exc.code or 500
        key = "error.csrf" if isinstance(exc, CsrfError) else f"error.{code}"
        minutes = getattr(exc, "retry_minutes", 5)
        message = translate(key, g.get("lang", "id"), minutes=minutes)
        if message == key:
            message = translate("error.400", g.get("lang", "id"))
        response = app.make_response(
            (render_template("error.html", code=code, message=message), code)
        )
        if code == 429:
            response.headers["Retry-After"] = str(int(minutes * 60))
        return response

    @app.errorhandler(Exception)
    def _crash(exc: Exception) -> Any:
        log.exception("web request failed", extra={"path": request.path})
        message = translate("error.500", g.get("lang", "id"))
        return render_template("error.html", code=500, message=message), 500
