"""Who may open what (fail closed), forms that cannot be forged, throttled logins, headers.

Every view declares its audience with `@public` or `@requires(role)`; a view that declares
neither is refused. Every POST carries the session's CSRF token.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any, TypeVar

from flask import Flask, abort, g, redirect, request, session, url_for
from werkzeug.exceptions import HTTPException

from region.web.accounts import RANK

F = TypeVar("F", bound=Callable[..., Any])
PUBLIC = "public"
CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)


def public(view: F) -> F:
    """Anyone may open this view (login, health)."""
    view._audience = PUBLIC  # type: ignore[attr-defined]
    return view


def requires(role: str) -> Callable[[F], F]:
    """Only logged-in users with `role` or higher (viewer < supervisor < admin)."""
    if role not in RANK:
        raise ValueError(f"unknown role {role!r}")

    def mark(view: F) -> F:
        view._audience = role  # type: ignore[attr-defined]
        return view

    return mark


class CsrfError(HTTPException):
    """A form posted without the session's token."""

    code = 400
    description = "csrf"


def csrf_token() -> str:
    """The session's CSRF token (made on first use)."""
    if not session.get("csrf"):
        session["csrf"] = secrets.token_urlsafe(32)
    return str(session["csrf"])


def check_csrf() -> None:
    """Refuse a state-changing request whose token does not match the session's."""
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return
    sent = request.form.get("csrf_token", "")
    expected = session.get("csrf", "")
    if not expected or not hmac.compare_digest(str(sent), str(expected)):
        raise CsrfError()


def check_access(app: Flask) -> Any:
    """Before every request: the view's audience, or a redirect to the login page."""
    if request.endpoint is None:
        return None
    view = app.view_functions.get(request.endpoint)
    who = PUBLIC if request.endpoint == "static" else getattr(view, "_audience", None)
    if who is None:
        abort(403)
    if who == PUBLIC:
        return None
    if g.user is None:
        if request.method == "GET":
            return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
        abort(403)
    if not g.user.may(who):
        abort(403)
    return None


def headers(response: Any) -> Any:
    """CSP, no sniffing, no framing, no referrer, HSTS over https, no caching of pages."""
    response.headers.setdefault("Content-Security-Policy", CSP)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    if request.is_secure:
        response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
    if request.endpoint != "static":
        response.headers.setdefault("Cache-Control", "no-store")
    return response


class LoginThrottle:
    """At most `limit` failed logins per `window_s` per address and per username."""

    def __init__(self, limit: int = 5, window_s: float = 300.0) -> None:
        self.limit, self.window_s = limit, window_s
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def blocked(self, *keys: str) -> bool:
        """True while any key has `limit` recent failures."""
        now = time.monotonic()
        with self._lock:
            for key in keys:
                times = self._failures.get(key)
                while times and now - times[0] > self.window_s:
                    times.popleft()
                if times and len(times) >= self.limit:
                    return True
        return False

    def failed(self, *keys: str) -> None:
        """Count a failure against every key (memory bounded)."""
        with self._lock:
            if len(self._failures) > 10_000:
                self._failures.clear()
            for key in keys:
                self._failures.setdefault(key, deque()).append(time.monotonic())

    def succeeded(self, *keys: str) -> None:
        """A good login clears its keys."""
        with self._lock:
            for key in keys:
                self._failures.pop(key, None)


class RateLimit:
    """At most `limit` actions per `window_s` per key (a client address): bookings."""

    def __init__(self, limit: int, window_s: float) -> None:
        self.limit, self.window_s = limit, window_s
        self._times: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def allow(self, key: str) -> bool:
        """Count one action for `key`; False (not counted) when it is over the limit."""
        now = time.monotonic()
        with self._lock:
            if len(self._times) > 100_000:
                self._times.clear()
            times = self._times.setdefault(key, deque())
            while times and now - times[0] > self.window_s:
                times.popleft()
            if len(times) >= self.limit:
                return False
            times.append(now)
            return True
