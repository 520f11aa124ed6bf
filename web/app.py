"""The site web app (Flask): citizens' ticket pages and survey, staff dashboard, web caller,
reports, IKM, screens for smart TVs, and admin. A client of the hub (`web.hub_link`): it reads
the hub's database read-only and its retained state, and changes things only by commands.

    link = HubLink(site, Bus.for_device(site, "web")).start()
    app = create_app(site, link)         # served by web/server.py in `mpp web`
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from flask import Flask, g, redirect, render_template, request, session
from markupsafe import Markup, escape
from werkzeug.exceptions import HTTPException

from protocol import messages as m
from protocol.messages import new_request_id
from protocol.site import Site
from protocol.texts import away_texts, cost_text, priority_text, time_class_text, wait_text
from web import base
from web.featured import FeaturedPublisher, FeaturedStore
from web.hub_link import HubLink
from web.i18n import pick_lang, translate
from web.live import LiveFeed
from web.security import needs_https, security_headers
from web.users import UserStore
from webcommon.security import CsrfError, LoginThrottle, check_access, check_csrf, csrf_token

log = logging.getLogger("mpp.web")


def create_app(site: Site, link: HubLink, config: dict[str, Any] | None = None) -> Flask:
    """The Flask app for `site` (`config` overrides the defaults below)."""
    app = Flask(__name__)
    database = site.web.database_path(link.database)
    users = UserStore(database, migrate_from=link.database)
    app.config.update(
        SECRET_KEY=users.secret_key(),
        SESSION_COOKIE_NAME="mpp_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        # Staff sessions live on https (the site CA) when the inventory gives the web TLS.
        SESSION_COOKIE_SECURE=site.web.tls_cert is not None,
        STAFF_HTTPS=site.web.tls_cert is not None,
        PERMANENT_SESSION_LIFETIME=timedelta(hours=12),
        MAX_CONTENT_LENGTH=6 * 1024 * 1024,
        MEDIA_DIR=str(database.parent / "media"),
        SSE_KEEPALIVE_S=site.web.keepalive_s,
        SSE_MAX_S=300.0,
        MAX_STREAMS=site.web.max_streams,
        MAX_STREAMS_PER_CLIENT=site.web.max_streams_per_client,
        LOGIN_LIMIT=5,
        LOGIN_WINDOW_S=300.0,
        PROPAGATE_EXCEPTIONS=False,
        TRAP_HTTP_EXCEPTIONS=False,
    )
    app.config.update(config or {})
    app.extensions["mpp_hub"] = link
    app.extensions["mpp_stream_reader"] = base.SharedReader(str(link.database))
    app.extensions["mpp_users"] = users
    app.extensions["mpp_live"] = LiveFeed(
        link, app.config["MAX_STREAMS"], app.config["MAX_STREAMS_PER_CLIENT"]
    )
    featured = FeaturedStore(database, app.config["MEDIA_DIR"])
    app.extensions["mpp_featured"] = featured
    # The Pi displays get the admin's featured products over MQTT, images from this app.
    app.extensions["mpp_featured_out"] = FeaturedPublisher(site, link, featured)
    app.extensions["mpp_throttle"] = LoginThrottle(
        app.config["LOGIN_LIMIT"], app.config["LOGIN_WINDOW_S"]
    )
    _register(app)
    _hooks(app, site)
    _filters(app, site)
    return app


def close_app(app: Flask) -> None:
    """End the live streams and close the web's own database connections."""
    app.extensions["mpp_live"].close()
    app.extensions["mpp_stream_reader"].close()
    app.extensions["mpp_users"].close()
    app.extensions["mpp_featured"].close()


def _filters(app: Flask, site: Site) -> None:
    def minutes(seconds: float | None) -> str:
        if seconds is None:
            return "—"
        return translate("minutes", base.lang(), n=round(seconds / 60))

    def duration(seconds: float | None) -> str:
        if seconds is None:
            return "—"
        if seconds < 5940:
            return translate("minutes", base.lang(), n=round(seconds / 60))
        return translate("hours", base.lang(), n=f"{seconds / 3600:.1f}")

    def clock(epoch: float | None, with_day: bool = False) -> str:
        if epoch is None:
            return "—"
        return site.local_now(epoch).strftime("%Y-%m-%d %H:%M" if with_day else "%H:%M:%S")

    def away(number: int, state: m.CounterState | None) -> str:
        """'Loket 3 - istirahat, kembali 12:30' for a counter on a break or in a pause."""
        texts = away_texts(site, number, state, base.lang())
        return ", ".join(texts) if texts else ""

    def percent(share: float | None) -> str:
        return "—" if share is None else f"{share * 100:.0f}%"

    def service_list(codes: Iterable[str], names: bool = False, plain: bool = False) -> Any:
        """Services as people know them: each ticket letter with its name (the name as a
        tooltip where `names` is off and room is short; `plain`: text to put inside another
        text), never the inventory's codes."""
        shown = []
        for code in codes:
            spec = site.services.get(code)
            if spec is None:
                shown.append(escape(code))
                continue
            name = spec.name.get(base.lang())
            if plain:
                shown.append(f"{spec.prefix} {name}")
            elif names:
                shown.append(Markup("<strong>{}</strong> {}").format(spec.prefix, name))
            else:
                shown.append(Markup('<abbr title="{}">{}</abbr>').format(name, spec.prefix))
        return ", ".join(shown) if plain else Markup(", ").join(shown)

    app.jinja_env.filters.update(
        clock_hm=lambda epoch: site.local_now(epoch).strftime("%H:%M"),
        mins=minutes,
        dur=duration,
        clock=clock,
        pct=percent,
        waittext=lambda s: wait_text(None if s is None else int(s), base.lang()),
    )
    app.jinja_env.globals["service_list"] = service_list
    app.jinja_env.globals.update(
        new_request_id=new_request_id,
        away=away,
        away_texts=away_texts,
        priority_text=priority_text,
        time_class_text=time_class_text,
        cost_text=cost_text,
    )


def _register(app: Flask) -> None:
    from web import admin, auth, caller, dashboard, display, priority, reports, survey, ticket

    for module in (auth, ticket, survey, dashboard, reports, priority, caller, display, admin):
        app.register_blueprint(module.bp)


def _hooks(app: Flask, site: Site) -> None:
    site_tls_port = site.web.tls_port

    @app.before_request
    def _before() -> Any:
        asked = request.args.get("lang")
        if asked in ("id", "en") and not request.path.startswith("/display"):
            session["lang"] = asked  # a TV screen's ?lang= is for that screen only
        g.lang = pick_lang(asked, session.get("lang"))
        g.user = None
        username = session.get("user")
        if username:
            user = base.users().session_user(session.get("sid", ""))
            if user is not None and user.username == username and user.active:
                g.user = user
            else:
                session.clear()  # logged out elsewhere, expired, or deactivated
        if request.routing_exception is not None:
            return None  # the 404 / 405 follows
        if needs_https(app):
            host = (
                request.host.rsplit(":", 1)[0] if not request.host.endswith("]") else request.host
            )
            return redirect(f"https://{host}:{site_tls_port}{request.full_path.rstrip('?')}", 308)
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
        retry = getattr(exc, "retry_after_s", None)
        if retry is not None:
            response.headers["Retry-After"] = str(retry)
        return response

    @app.errorhandler(Exception)
    def _crash(exc: Exception) -> Any:
        log.exception("web request failed", extra={"path": request.path})
        message = translate("error.500", g.get("lang", "id"))
        return render_template("error.html", code=500, message=message), 500
