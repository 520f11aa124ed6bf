"""Staff accounts (admin, supervisor, officer) with hashed passwords, their sessions, the web's
own settings, and the request ids of staff changes made here (each applied once).

These live in the web's own database (`[web] database`, by default mpp-web.sqlite beside the
hub's): accounts are not queue state, no device reads them, and the hub's database is only
ever read by the web. Accounts kept in the hub's database by an older version are copied over
at the first start.

    users = UserStore("mpp-web.sqlite")
    users.add("siti", "Siti Aminah", "officer", "a long password")
    users.check("siti", "a long password")      # -> User, or None
    sid = users.start_session("siti", 12 * 3600)
    users.session_user(sid)                     # -> User until end_session(sid) or expiry
"""

from __future__ import annotations

import secrets
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from werkzeug.security import check_password_hash, generate_password_hash

from hub.store import connect
from protocol.errors import MppError
from webcommon.security import Account

ROLES: tuple[str, ...] = ("officer", "supervisor", "admin")
RANK = {role: i for i, role in enumerate(ROLES, start=1)}
MIN_PASSWORD = 8
USERNAME_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789._-")

SCHEMA = """
CREATE TABLE IF NOT EXISTS web_users (
    username TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('officer', 'supervisor', 'admin')),
    password_hash TEXT NOT NULL,
    active INTEGER NOT NULL DEFAULT 1,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS web_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS web_sessions (
    sid TEXT PRIMARY KEY,
    username TEXT NOT NULL,
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS web_requests (
    request_id TEXT PRIMARY KEY,
    username TEXT NOT NULL,
    kind TEXT NOT NULL,
    at REAL NOT NULL,
    outcome TEXT NOT NULL
);
"""

# Checked against when a username is unknown, so a wrong name costs as long as a wrong password.
_DUMMY_HASH = generate_password_hash("not-a-real-password")


class AccountError(MppError, ValueError):
    """A staff account change that cannot be made: `key` names the rule it breaks (a text of
    web/i18n.py, shown in the page's language), `values` fill it in."""

    def __init__(self, key: str, english: str, **values: object) -> None:
        super().__init__(english)
        self.key, self.values = key, values


@dataclass(frozen=True)
class User(Account):
    """A staff member who may log in (officer < supervisor < admin)."""

    rank = RANK


class UserStore:
    """Staff accounts in the hub's database file (tables web_users, web_meta)."""

    def __init__(self, database: str | Path, migrate_from: str | Path | None = None) -> None:
        self.path = Path(database)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.conn = connect(database)
        self.conn.executescript(SCHEMA)
        self._lock = threading.Lock()
        if migrate_from is not None:
            self._copy_accounts(Path(migrate_from))

    def _copy_accounts(self, hub_database: Path) -> None:
        """Accounts and the session key an older version kept in the hub's database."""
        if self.conn.execute("SELECT 1 FROM web_users LIMIT 1").fetchone() or not (
            hub_database.exists()
        ):
            return
        try:
            old = connect(hub_database, readonly=True)
        except MppError:
            return
        try:
            users = old.execute(
                "SELECT username, name, role, password_hash, active, created_at FROM web_users"
            ).fetchall()
            meta = old.execute("SELECT key, value FROM web_meta").fetchall()
        except sqlite3.Error:
            return  # no accounts there
        finally:
            old.close()
        with self._lock:
            self.conn.executemany(
                "INSERT OR IGNORE INTO web_users VALUES (?, ?, ?, ?, ?, ?)",
                [tuple(row) for row in users],
            )
            self.conn.executemany(
                "INSERT OR IGNORE INTO web_meta VALUES (?, ?)", [tuple(row) for row in meta]
            )

    def close(self) -> None:
        """Close the connection."""
        self.conn.close()

    def _write(self, sql: str, args: tuple[object, ...]) -> int:
        with self._lock:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                cursor = self.conn.execute(sql, args)
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            self.conn.execute("COMMIT")
            return cursor.rowcount

    def secret_key(self) -> str:
        """The session-signing key, made once and kept (sessions survive restarts)."""
        with self._lock:
            row = self.conn.execute("SELECT value FROM web_meta WHERE key = 'secret'").fetchone()
        if row:
            return str(row[0])
        self._write(
            "INSERT OR IGNORE INTO web_meta (key, value) VALUES ('secret', ?)",
            (secrets.token_hex(32),),
        )
        return self.secret_key()

    # -- reading -----------------------------------------------------------------------
    def get(self, username: str) -> User | None:
        """The account, active or not."""
        with self._lock:
            row = self.conn.execute(
                "SELECT username, name, role, active FROM web_users WHERE username = ?",
                (username,),
            ).fetchone()
        return User(row[0], row[1], row[2], bool(row[3])) if row else None

    def all(self) -> list[User]:
        """Every account, by role then name."""
        with self._lock:
            rows = self.conn.execute(
                "SELECT username, name, role, active FROM web_users ORDER BY role, username"
            ).fetchall()
        return [User(r[0], r[1], r[2], bool(r[3])) for r in rows]

    def check(self, username: str, password: str) -> User | None:
        """The active user with these credentials, or None (same cost for unknown names)."""
        with self._lock:
            row = self.conn.execute(
                "SELECT password_hash FROM web_users WHERE username = ? AND active = 1",
                (username.strip().lower(),),
            ).fetchone()
        ok = check_password_hash(row[0] if row else _DUMMY_HASH, password)
        return self.get(username.strip().lower()) if ok and row else None

    def admins(self) -> int:
        """How many active admins there are."""
        with self._lock:
            return int(
                self.conn.execute(
                    "SELECT COUNT(*) FROM web_users WHERE role = 'admin' AND active = 1"
                ).fetchone()[0]
            )

    # -- writing -----------------------------------------------------------------------
    @staticmethod
    def _check(username: str, name: str, role: str, password: str | None) -> None:
        if not username or len(username) > 40 or not set(username) <= USERNAME_CHARS:
            raise AccountError(
                "account.bad_username",
                "a username is 1-40 characters of a-z, 0-9, '.', '_' or '-' (lower case)",
            )
        if not name.strip() or len(name) > 60:
            raise AccountError("account.bad_name", "a name is 1-60 characters")
        if role not in RANK:
            raise AccountError(
                "account.bad_role", f"role must be one of {', '.join(ROLES)}; got {role!r}"
            )
        if password is not None and len(password) < MIN_PASSWORD:
            raise AccountError(
                "account.short_password",
                f"a password has at least {MIN_PASSWORD} characters",
                n=MIN_PASSWORD,
            )

    def add(self, username: str, name: str, role: str, password: str) -> User:
        """A new account; AccountError if the name is taken or a field is invalid."""
        username = username.strip().lower()
        self._check(username, name, role, password)
        try:
            self._write(
                "INSERT INTO web_users (username, name, role, password_hash, created_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (username, name.strip(), role, generate_password_hash(password), time.time()),
            )
        except sqlite3.IntegrityError:
            raise AccountError(
                "account.taken", f"the username {username!r} is taken", username=username
            ) from None
        return User(username, name.strip(), role, True)

    def update(
        self,
        username: str,
        *,
        role: str | None = None,
        active: bool | None = None,
        password: str | None = None,
    ) -> User:
        """Change role, active flag or password; the last active admin cannot be demoted."""
        user = self.get(username)
        if user is None:
            raise AccountError("account.unknown", f"no account {username!r}", username=username)
        new_role = role or user.role
        new_active = user.active if active is None else active
        self._check(user.username, user.name, new_role, password)
        demoted = user.role == "admin" and user.active and (new_role != "admin" or not new_active)
        if demoted and self.admins() <= 1:
            raise AccountError("account.last_admin", "keep at least one active admin")
        self._write(
            "UPDATE web_users SET role = ?, active = ? WHERE username = ?",
            (new_role, int(new_active), user.username),
        )
        if password is not None:
            self._write(
                "UPDATE web_users SET password_hash = ? WHERE username = ?",
                (generate_password_hash(password), user.username),
            )
        if password is not None or not new_active:
            self.end_sessions_of(user.username)  # a new password or a deactivation logs out
        return User(user.username, user.name, new_role, new_active)

    # -- sessions ------------------------------------------------------------------------
    def start_session(self, username: str, lifetime_s: float) -> str:
        """A new server-side session for a user who just logged in; its id goes in the cookie."""
        sid = secrets.token_urlsafe(32)
        now = time.time()
        self._write(
            "INSERT INTO web_sessions (sid, username, created_at, expires_at) VALUES (?, ?, ?, ?)",
            (sid, username, now, now + lifetime_s),
        )
        self._write("DELETE FROM web_sessions WHERE expires_at < ?", (now,))
        return sid

    def session_user(self, sid: str) -> User | None:
        """The account of a live session (None: logged out, expired or unknown)."""
        if not sid:
            return None
        with self._lock:
            row = self.conn.execute(
                "SELECT u.username, u.name, u.role, u.active FROM web_sessions s "
                "JOIN web_users u ON u.username = s.username WHERE s.sid = ? AND s.expires_at > ?",
                (sid, time.time()),
            ).fetchone()
        return User(row[0], row[1], row[2], bool(row[3])) if row else None

    def end_session(self, sid: str) -> None:
        """Log out: the session's cookie opens nothing any more, wherever a copy of it is."""
        self._write("DELETE FROM web_sessions WHERE sid = ?", (sid,))

    def end_sessions_of(self, username: str) -> None:
        """Every session of a user ends (deactivated account, new password)."""
        self._write("DELETE FROM web_sessions WHERE username = ?", (username,))

    # -- staff changes applied once ---------------------------------------------------------
    def once(self, request_id: str, username: str, kind: str, apply: Callable[[], str]) -> str:
        """Run `apply` (a staff change made by the web itself) unless a form with this request
        id was applied already; returns the outcome text the first time stored (a replayed
        form is told what happened, nothing is done again). An error raised by `apply` is
        not stored: the same form may be sent again once fixed."""
        claimed = self._write(
            "INSERT OR IGNORE INTO web_requests (request_id, username, kind, at, outcome) "
            "VALUES (?, ?, ?, ?, '')",
            (request_id, username, kind, time.time()),
        )
        if not claimed:  # applied before (or being applied right now by the same form)
            with self._lock:
                row = self.conn.execute(
                    "SELECT outcome FROM web_requests WHERE request_id = ?", (request_id,)
                ).fetchone()
            return str(row[0]) if row else ""
        try:
            outcome = apply()
        except BaseException:
            self._write("DELETE FROM web_requests WHERE request_id = ?", (request_id,))
            raise
        self._write(
            "UPDATE web_requests SET outcome = ? WHERE request_id = ?", (outcome, request_id)
        )
        return outcome
