"""Who may open what, forms that cannot be forged, login throttling and safe responses.

Every view declares its audience with `@public` or `@requires(role)`; a view that declares
neither is refused (fail closed). Every POST carries the session's CSRF token.
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

from web.users import RANK, User

F = TypeVar("F", bound=Callable[..., Any])
PUBLIC = "public"
CSRF_FIELD = "csrf_token"

CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
    "form-action 'self'"
)


def public(view: F) -> F:
    """Anyone may open this view (citizens' ticket pages, screens, login)."""
    view._audience = PUBLIC  # type: ignore[attr-defined]
    return view


def requires(role: str) -> Callable[[F], F]:
    """Only logged-in staff with `role` or a higher one (officer < supervisor < admin)."""
    if role not in RANK:
        raise ValueError(f"unknown role {role!r}")

    def mark(view: F) -> F:
        view._audience = role  # type: ignore[attr-defined]
        return view

    return mark


def audience(app: Flask, endpoint: str | None) -> str | None:
    """The declared audience of an endpoint (None: undeclared, refused)."""
    if endpoint is None:
        return None
    if endpoint == "static":
        return PUBLIC
    view = app.view_functions.get(endpoint)
    return getattr(view, "_audience", None)


class CsrfError(HTTPException):
    """A form posted without the session's token (forged or expired)."""

    code = 400
    description = "csrf"


def csrf_token() -> str:
    """The session's CSRF token (made on first use)."""
    token = session.get("csrf")
    if not token:
        token = secrets.token_urlsafe(32)
        session["csrf"] = token
    return str(token)


def check_csrf() -> None:
    """Refuse a state-changing request whose token does not match the session's."""
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return
    sent = request.form.get(CSRF_FIELD, "") or request.headers.get("X-CSRF-Token", "")
    expected = session.get("csrf", "")
    if not expected or not hmac.compare_digest(str(sent), str(expected)):
        raise CsrfError()


def check_access(app: Flask) -> Any:
    """Before every request: enforce the view's audience; returns a redirect or aborts."""
    who = audience(app, request.endpoint)
    if request.endpoint is None:
        return None  # 404/405 follow
    if who is None:
        abort(403)
    if who == PUBLIC:
        return None
    user: User | None = g.user
    if user is None:
        if request.method == "GET":
            return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
        abort(403)
    if not user.may(who):
        abort(403)
    return None


STAFF_ON_HTTPS_PUBLIC = ("auth.login", "auth.index")  # public, but where passwords are typed


def needs_https(app: Flask) -> bool:
    """Whether this request is for staff (or the login) but came over plain http while the
    web has TLS: it is redirected to the https listener."""
    if not app.config.get("STAFF_HTTPS") or request.scheme == "https":
        return False
    who = audience(app, request.endpoint)
    return who != PUBLIC or request.endpoint in STAFF_ON_HTTPS_PUBLIC


def security_headers(response: Any) -> Any:
    """Headers on every response: CSP, no sniffing, no framing, no referrer (tokens in URLs)."""
    response.headers.setdefault("Content-Security-Policy", CSP)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    if request.endpoint != "static" and not request.path.startswith("/media/"):
        response.headers.setdefault("Cache-Control", "no-store")
    return response


class LoginThrottle:
    """At most `limit` failed logins per `window_s` for one address and for one username."""

    def __init__(
        self, limit: int = 5, window_s: float = 300.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit, self.window_s, self.clock = limit, window_s, clock
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque[float]:
        times = self._failures.setdefault(key, deque())
        while times and now - times[0] > self.window_s:
            times.popleft()
        return times

    def blocked_for(self, *keys: str) -> float:
        """Seconds until these keys may try again (0: now)."""
        now = self.clock()
        with self._lock:
            waits = [
                self.window_s - (now - times[0])
                for times in (self._recent(k, now) for k in keys)
                if len(times) >= self.limit
            ]
            if len(self._failures) > 10_000:  # forget idle keys; bounded memory
                for key in [k for k, v in self._failures.items() if not v]:
                    del self._failures[key]
        return max(waits, default=0.0)

    def failed(self, *keys: str) -> None:
        """Count a failed attempt against every key."""
        now = self.clock()
        with self._lock:
            for key in keys:
                self._recent(key, now).append(now)

    def succeeded(self, *keys: str) -> None:
        """A successful login clears the keys' failures."""
        with self._lock:
            for key in keys:
                self._failures.pop(key, None)
