"""Staff accounts (admin, supervisor, officer) with hashed passwords, and the web's own settings.

These tables are written by the web app directly, not through the hub's command path: accounts
are not queue state, no device reads them, and nothing is published about them. SQLite (WAL,
busy timeout) lets this second writer share the hub's database file; each write is one short
transaction, so the hub's worker never waits long.

    users = UserStore(service.database)
    users.add("siti", "Siti Aminah", "officer", "a long password")
    users.check("siti", "a long password")      # -> User, or None
"""

from __future__ import annotations

import secrets
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from werkzeug.security import check_password_hash, generate_password_hash

from hub.store import connect
from protocol.errors import MppError

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
"""

# Checked against when a username is unknown, so a wrong name costs as long as a wrong password.
_DUMMY_HASH = generate_password_hash("not-a-real-password")


class AccountError(MppError, ValueError):
    """A staff account change that cannot be made (says which rule it breaks)."""


@dataclass(frozen=True)
class User:
    """A staff member who may log in."""

    username: str
    name: str
    role: str
    active: bool

    def may(self, role: str) -> bool:
        """Whether this user's role is `role` or above (officer < supervisor < admin)."""
        return self.active and RANK[self.role] >= RANK[role]


class UserStore:
    """Staff accounts in the hub's database file (tables web_users, web_meta)."""

    def __init__(self, database: str | Path) -> None:
        self.conn = connect(database)
        self.conn.executescript(SCHEMA)
        self._lock = threading.Lock()

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
                "a username is 1-40 characters of a-z, 0-9, '.', '_' or '-' (lower case)"
            )
        if not name.strip() or len(name) > 60:
            raise AccountError("a name is 1-60 characters")
        if role not in RANK:
            raise AccountError(f"role must be one of {', '.join(ROLES)}; got {role!r}")
        if password is not None and len(password) < MIN_PASSWORD:
            raise AccountError(f"a password has at least {MIN_PASSWORD} characters")

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
            raise AccountError(f"the username {username!r} is taken") from None
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
            raise AccountError(f"no account {username!r}")
        new_role = role or user.role
        new_active = user.active if active is None else active
        self._check(user.username, user.name, new_role, password)
        demoted = user.role == "admin" and user.active and (new_role != "admin" or not new_active)
        if demoted and self.admins() <= 1:
            raise AccountError("keep at least one active admin")
        self._write(
            "UPDATE web_users SET role = ?, active = ? WHERE username = ?",
            (new_role, int(new_active), user.username),
        )
        if password is not None:
            self._write(
                "UPDATE web_users SET password_hash = ? WHERE username = ?",
                (generate_password_hash(password), user.username),
            )
        return User(user.username, user.name, new_role, new_active)
