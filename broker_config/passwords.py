"""Mosquitto 2.0 password files: `$7$` PBKDF2-SHA512 hashes, written the way mosquitto_passwd does.

    line = f"caller-03:{hash_password(secret)}"     # caller-03:$7$1000$<salt>$<hash>
    verify_password(secret, line.split(":", 1)[1])  # True

Device passwords are 32 random bytes, so the iteration count guards little; it is kept
moderate because the broker hashes on every connect (a fleet reconnects at once after a
restart). Mosquitto reads the iteration count from each line.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import secrets
from collections.abc import Mapping

from protocol.errors import MppError

ITERATIONS = 1000
SALT_BYTES = 12
HASH_RE = re.compile(r"^\$7\$(\d+)\$([A-Za-z0-9+/=]+)\$([A-Za-z0-9+/=]+)$")
USERNAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")


class PasswordFileError(MppError, ValueError):
    """A password hash or username that Mosquitto would not accept."""


def new_password() -> str:
    """A fresh random device password (256 bits, URL-safe, no ':' or whitespace)."""
    return secrets.token_urlsafe(32)


def hash_password(password: str, *, salt: bytes | None = None, iterations: int = ITERATIONS) -> str:
    """`$7$<iterations>$<base64 salt>$<base64 PBKDF2-SHA512>`, as Mosquitto 2.0 verifies it."""
    if not password:
        raise PasswordFileError("an empty password cannot be hashed; generate one")
    salt = os.urandom(SALT_BYTES) if salt is None else salt
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)
    return f"$7${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def verify_password(password: str, hashed: str) -> bool:
    """True when `password` matches a `$7$` hash."""
    match = HASH_RE.fullmatch(hashed)
    if not match:
        raise PasswordFileError(f"{hashed[:12]!r}... is not a Mosquitto $7$ hash")
    salt, expected = base64.b64decode(match[2]), base64.b64decode(match[3])
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, int(match[1]))
    return hmac.compare_digest(digest, expected)


def password_file(entries: Mapping[str, str]) -> str:
    """The password file text for `{username: $7$ hash}`, sorted so it is reproducible."""
    lines = []
    for username in sorted(entries):
        hashed = entries[username]
        if not USERNAME_RE.fullmatch(username):
            raise PasswordFileError(
                f"username {username!r} is not a device id (lowercase letters, digits, - and _)"
            )
        if not HASH_RE.fullmatch(hashed):
            raise PasswordFileError(f"{username}: the stored hash is not a $7$ hash; rotate it")
        lines.append(f"{username}:{hashed}\n")
    return "".join(lines)
