"""Regional web accounts (viewer < supervisor < admin) in PostgreSQL, with hashed passwords.

accounts = Accounts(pool)
accounts.add("rina", "Rina", "supervisor", "a long password")
accounts.check("rina", "a long password")      # -> User, or None
sid = accounts.start_session("rina", 12 * 3600)
accounts.session_user(sid)                     # -> User until end_session(sid) or expiry
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass

from psycopg_pool import ConnectionPool
from werkzeug.security import check_password_hash, generate_password_hash

from protocol.errors import MppError
from webcommon.security import Account

ROLES: tuple[str, ...] = ("viewer", "supervisor", "admin")
RANK = {role: i for i, role in enumerate(ROLES, start=1)}
MIN_PASSWORD = 10
USERNAME_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789._-")
_DUMMY_HASH = generate_password_hash("not-a-real-password")


class AccountError(MppError, ValueError):
    """An account change that breaks a rule (says which)."""


@dataclass(frozen=True)
class User(Account):
    """Someone who may log in to the regional web (viewer < supervisor < admin)."""

    rank = RANK


class Accounts:
    """The `web_users` table."""

    def __init__(self, pool: ConnectionPool) -> None:
        self.pool = pool

    def add(self, username: str, name: str, role: str, password: str) -> User:
        """A new account; AccountError names the broken rule."""
        username = username.strip().lower()
        if not username or not set(username) <= USERNAME_CHARS or len(username) > 40:
            raise AccountError("a username is 1-40 of a-z, 0-9, '.', '_' and '-'")
        if role not in RANK:
            raise AccountError(f"role must be one of {', '.join(ROLES)}")
        if len(password) < MIN_PASSWORD:
            raise AccountError(f"a password has at least {MIN_PASSWORD} characters")
        with self.pool.connection() as conn:
            found = conn.execute("SELECT 1 FROM web_users WHERE username = %s", (username,))
            if found.fetchone():
                raise AccountError(f"the username {username!r} is taken")
            conn.execute(
                "INSERT INTO web_users (username, name, role, password_hash, created_at) "
                "VALUES (%s, %s, %s, %s, %s)",
                (username, name.strip() or username, role, generate_password_hash(password),
                 time.time()),
            )  # fmt: skip
        return User(username, name.strip() or username, role, True)

    def get(self, username: str) -> User | None:
        """An account by username."""
        with self.pool.connection() as conn:
            row = conn.execute(
                "SELECT username, name, role, active FROM web_users WHERE username = %s",
                (username,),
            ).fetchone()
        return User(*row) if row else None

    def all(self) -> list[User]:
        """Every account, by username."""
        with self.pool.connection() as conn:
            rows = conn.execute(
                "SELECT username, name, role, active FROM web_users ORDER BY username"
            ).fetchall()
        return [User(*row) for row in rows]

    def check(self, username: str, password: str) -> User | None:
        """The active user whose password this is, else None (same time for unknown names)."""
        with self.pool.connection() as conn:
            row = conn.execute(
                "SELECT username, name, role, active, password_hash FROM web_users "
                "WHERE username = %s",
                (username.strip().lower(),),
            ).fetchone()
        if row is None:
            check_password_hash(_DUMMY_HASH, password)
            return None
        if not check_password_hash(row[4], password) or not row[3]:
            return None
        return User(*row[:4])

    def start_session(self, username: str, lifetime_s: float) -> str:
        """A new server-side session for a user who just logged in; its id goes in the cookie."""
        sid = secrets.token_urlsafe(32)
        now = time.time()
        with self.pool.connection() as conn:
            conn.execute("DELETE FROM web_sessions WHERE expires_at < %s", (now,))
            conn.execute(
                "INSERT INTO web_sessions (sid, username, expires_at) VALUES (%s, %s, %s)",
                (sid, username, now + lifetime_s),
            )
        return sid

    def session_user(self, sid: str) -> User | None:
        """The active account of a live session (None: logged out, expired or unknown)."""
        if not sid:
            return None
        with self.pool.connection() as conn:
            row = conn.execute(
                "SELECT u.username, u.name, u.role, u.active FROM web_sessions s "
                "JOIN web_users u ON u.username = s.username "
                "WHERE s.sid = %s AND s.expires_at > %s",
                (sid, time.time()),
            ).fetchone()
        return User(*row) if row and row[3] else None

    def end_session(self, sid: str) -> None:
        """Log out: the session's cookie opens nothing any more, wherever a copy of it is."""
        with self.pool.connection() as conn:
            conn.execute("DELETE FROM web_sessions WHERE sid = %s", (sid,))

    def secret_key(self) -> str:
        """The session-signing key, made once and kept in the database."""
        return self.meta_secret("secret_key")

    def meta_secret(self, name: str) -> str:
        """A random secret made once and kept in the database (session key, phone hash key)."""
        with self.pool.connection() as conn:
            conn.execute(
                "INSERT INTO web_meta (key, value) VALUES (%s, %s) ON CONFLICT (key) DO NOTHING",
                (name, secrets.token_urlsafe(48)),
            )
            row = conn.execute("SELECT value FROM web_meta WHERE key = %s", (name,)).fetchone()
        return str(row[0])
