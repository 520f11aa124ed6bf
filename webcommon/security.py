"""Who may open what (fail closed), forms that cannot be forged, throttled logins, headers.

Every view declares its audience with `@public` or `@requires(role)`; a view that declares
neither is refused. Every POST carries the session's CSRF token. Each app names its own roles:

    requires = role_marker({"officer": 1, "supervisor": 2, "admin": 3})

    @bp.get("/reports")
    @requires("supervisor")
    def reports(): ...
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, TypeVar

from flask import Flask, abort, g, redirect, request, session, url_for
from werkzeug.exceptions import HTTPException

F = TypeVar("F", bound=Callable[..., Any])
PUBLIC = "public"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"

CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
    "form-action 'self'"
)


class Staff(Protocol):
    """A logged-in user as the apps' account stores give it."""

    def may(self, role: str) -> bool:
        """Whether the user's role is `role` or above."""
        ...


@dataclass(frozen=True)
class Account:
    """Someone who may log in; each app subclasses it with its roles' `rank` (low to high)."""

    rank: ClassVar[Mapping[str, int]] = {}

    username: str
    name: str
    role: str
    active: bool

    def may(self, role: str) -> bool:
        """Whether this user is active and their role is `role` or above."""
        return self.active and self.rank[self.role] >= self.rank[role]


def public(view: F) -> F:
    """Anyone may open this view (citizens' pages, screens, login, health)."""
    view._audience = PUBLIC  # type: ignore[attr-defined]
    return view


def role_marker(rank: Mapping[str, int]) -> Callable[[str], Callable[[F], F]]:
    """The `requires(role)` decorator of an app whose roles rank as `rank` (low to high)."""

    def requires(role: str) -> Callable[[F], F]:
        """Only logged-in users with `role` or a higher one."""
        if role not in rank:
            raise ValueError(f"unknown role {role!r} (known: {', '.join(rank)})")

        def mark(view: F) -> F:
            view._audience = role  # type: ignore[attr-defined]
            return view

        return mark

    return requires


def audience(app: Flask, endpoint: str | None) -> str | None:
    """The declared audience of an endpoint (None: undeclared, refused)."""
    if endpoint is None:
        return None
    if endpoint == "static":
        return PUBLIC
    return getattr(app.view_functions.get(endpoint), "_audience", None)


class CsrfError(HTTPException):
    """A form posted without the session's token (forged or expired)."""

    code = 400
    description = "csrf"


def csrf_token() -> str:
    """The session's CSRF token (made on first use)."""
    if not session.get("csrf"):
        session["csrf"] = secrets.token_urlsafe(32)
    return str(session["csrf"])


def check_csrf() -> None:
    """Refuse a state-changing request whose token (form field or header) is not the session's."""
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return
    sent = request.form.get(CSRF_FIELD, "") or request.headers.get(CSRF_HEADER, "")
    expected = session.get("csrf", "")
    if not expected or not hmac.compare_digest(str(sent), str(expected)):
        raise CsrfError()


def check_access(app: Flask) -> Any:
    """Before every request: enforce the view's audience against `g.user`; returns a redirect
    to the login page (a GET without a user) or aborts with 403."""
    if request.endpoint is None:
        return None  # 404 / 405 follow
    who = audience(app, request.endpoint)
    if who is None:
        abort(403)
    if who == PUBLIC:
        return None
    user: Staff | None = g.get("user")
    if user is None:
        if request.method == "GET":
            return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
        abort(403)
    if not user.may(who):
        abort(403)
    return None


def security_headers(response: Any, *, hsts: bool = False, cached: tuple[str, ...] = ()) -> Any:
    """CSP, no sniffing, no framing, no referrer (tokens in URLs), pages never cached (but the
    static files and paths under `cached`); HSTS over https when `hsts` (not where one host also
    serves plain http on another port, as a site does for phones: HSTS covers every port)."""
    response.headers.setdefault("Content-Security-Policy", CSP)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    if hsts and request.is_secure:
        response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
    kept = request.endpoint == "static" or any(request.path.startswith(p) for p in cached)
    if not kept:
        response.headers.setdefault("Cache-Control", "no-store")
    return response


class _Window:
    """Times of recent actions per key within a sliding window (memory bounded)."""

    MAX_KEYS = 10_000

    def __init__(self, window_s: float, clock: Callable[[], float]) -> None:
        self.window_s, self.clock = window_s, clock
        self._times: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque[float]:
        times = self._times.setdefault(key, deque())
        while times and now - times[0] > self.window_s:
            times.popleft()
        return times

    def _forget_stale(self, now: float) -> None:
        if len(self._times) <= self.MAX_KEYS:
            return
        for key in [k for k, v in self._times.items() if not v or now - v[-1] > self.window_s]:
            del self._times[key]
        if len(self._times) > self.MAX_KEYS:  # a flood of live keys: keep the newest half
            newest = sorted(self._times, key=lambda k: self._times[k][-1])
            for key in newest[: len(newest) // 2]:
                del self._times[key]


class LoginThrottle(_Window):
    """At most `limit` failed logins per `window_s` for each key (an address, a username)."""

    def __init__(
        self, limit: int = 5, window_s: float = 300.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__(window_s, clock)
        self.limit = limit

    def blocked_for(self, *keys: str) -> float:
        """Seconds until all of these keys may try again (0: now)."""
        now = self.clock()
        with self._lock:
            waits = [
                self.window_s - (now - times[0])
                for times in (self._recent(k, now) for k in keys)
                if len(times) >= self.limit
            ]
        return max(waits, default=0.0)

    def failed(self, *keys: str) -> None:
        """Count a failed attempt against every key."""
        now = self.clock()
        with self._lock:
            self._forget_stale(now)
            for key in keys:
                self._recent(key, now).append(now)

    def succeeded(self, *keys: str) -> None:
        """A successful login clears the keys' failures."""
        with self._lock:
            for key in keys:
                self._times.pop(key, None)


class RateLimit(_Window):
    """At most `limit` actions per `window_s` per key (a client address): bookings."""

    MAX_KEYS = 100_000

    def __init__(
        self, limit: int, window_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__(window_s, clock)
        self.limit = limit

    def allow(self, key: str) -> bool:
        """Count one action for `key`; False (not counted) when it is over the limit."""
        now = self.clock()
        with self._lock:
            self._forget_stale(now)
            times = self._recent(key, now)
            if len(times) >= self.limit:
                return False
            times.append(now)
            return True
