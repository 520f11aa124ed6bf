"""The regional web app (Flask): every site at a glance, a site's drill-down, cross-site
reports with charts and CSV, and the satisfaction index per service unit; Indonesian first.
It runs under the site web's production server (`mpp region web`, web/server.py: gevent).

    app = create_app(config, pool)          # pool: psycopg_pool.ConnectionPool
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

from flask import Flask, g, render_template, request, session
from psycopg_pool import ConnectionPool
from werkzeug.exceptions import HTTPException

from region.config import RegionConfig
from region.web import auth, booking, pages, public, reports, users
from region.web.accounts import Accounts
from region.web.live import ViewFeed
from region.web.security import headers as security_headers
from region.web.texts import translate
from webcommon.security import (
    CsrfError,
    LoginThrottle,
    RateLimit,
    check_access,
    check_csrf,
    csrf_token,
)


def create_app(
    config: RegionConfig, pool: ConnectionPool, overrides: dict[str, Any] | None = None
) -> Flask:
    """The app for one region (`overrides` for tests, e.g. a fixed clock)."""
    app = Flask(__name__)
    accounts = Accounts(pool)
    app.config.update(
        SECRET_KEY=accounts.secret_key(),
        SESSION_COOKIE_NAME="mpp_region",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=config.web.public_url.startswith("https://"),
        PERMANENT_SESSION_LIFETIME=timedelta(hours=12),
        MAX_CONTENT_LENGTH=64 * 1024,
        CLOCK=time.time,
        REFRESH_S=15,
        SSE_MAX_S=300.0,
        SSE_KEEPALIVE_S=15.0,
    )
    app.config.update(overrides or {})
    # Started by the first ticket page (the pool's database: one LISTEN connection).
    feed = ViewFeed(
        pool.conninfo, link_timeout_s=config.web.link_timeout_s, clock=app.config["CLOCK"]
    )
    app.extensions["region"] = {
        "config": config,
        "pool": pool,
        "accounts": accounts,
        "throttle": LoginThrottle(),
        "feed": feed,
        "booking_limit": RateLimit(config.booking.per_address_per_hour, 3600.0),
        "phone_key": accounts.meta_secret("phone_key"),
    }
    for blueprint in (auth.bp, pages.bp, reports.bp, users.bp, public.bp, booking.bp):
        app.register_blueprint(blueprint)

    @app.before_request
    def _before() -> Any:
        if request.args.get("lang") in ("id", "en"):
            session["lang"] = request.args["lang"]
        g.lang = session.get("lang", "id")
        g.user = accounts.session_user(session.get("sid", ""))
        denied = check_access(app)
        if denied is not None:
            return denied
        check_csrf()
        return None

    app.after_request(security_headers)

    @app.context_processor
    def _context() -> dict[str, Any]:
        return {
            "t": lambda key: translate(key, g.get("lang", "id")),
            "lang": g.get("lang", "id"),
            "user": g.get("user"),
            "csrf_token": csrf_token,
            "region": config.region,
        }

    @app.errorhandler(HTTPException)
    def _error(exc: HTTPException) -> Any:
        keys = {403: "error.forbidden", 404: "error.not_found"}
        key = (
            "error.csrf" if isinstance(exc, CsrfError) else keys.get(exc.code or 500, "error.title")
        )
        g.setdefault("lang", "id")
        g.setdefault("user", None)
        return render_template("error.html", message=translate(key, g.lang)), exc.code

    return app
