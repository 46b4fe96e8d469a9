"""Who may sign in to the station's pages: a name, a role and a password kept as a salted scrypt hash.

Roles: admin and ranger review and acknowledge, guest only looks (edge.station.web.auth decides per request).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import sqlite3
import unicodedata
from datetime import UTC, datetime

from edge.wire.records import iso

ROLES = ("admin", "ranger", "guest")
MAX_NAME = 64
MAX_PASSWORD = 1024  # scrypt takes any length; a megabyte of password is only a way to load the CPU
MIN_PASSWORD = 8
SCRYPT = {"n": 2**14, "r": 8, "p": 1}  # about 16 MiB and 50 ms per hash on a Pi-class CPU


def name_problem(name: str) -> str | None:
    if not 0 < len(name) <= MAX_NAME:
        return f"a user name has 1 to {MAX_NAME} characters"
    if any(unicodedata.category(c)[0] in "CZ" for c in name):
        return "a user name has no spaces or control characters"
    return None


def password_problem(password: str) -> str | None:
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        return f"a password has {MIN_PASSWORD} to {MAX_PASSWORD} characters"
    return None


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, **SCRYPT)  # type: ignore[arg-type]
    b64 = base64.b64encode
    return f"scrypt${SCRYPT['n']}${SCRYPT['r']}${SCRYPT['p']}${b64(salt).decode()}${b64(digest).decode()}"


def password_matches(stored: str, password: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        given = hashlib.scrypt(
            password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p), dklen=len(expected)
        )
    except ValueError:
        return False
    return hmac.compare_digest(given, expected)


def add_user(db: sqlite3.Connection, name: str, role: str, password: str, replace: bool = False) -> None:
    """ValueError naming the problem (the name, the role, the password's length, a name already taken)."""
    if problem := name_problem(name) or password_problem(password):
        raise ValueError(problem)
    if role not in ROLES:
        raise ValueError(f"role {role!r} is not one of {', '.join(ROLES)}")
    verb = "INSERT OR REPLACE" if replace else "INSERT"
    try:
        db.execute(f"{verb} INTO users VALUES (?, ?, ?, ?)", (name, role, hash_password(password), now_utc()))
    except sqlite3.IntegrityError:
        raise ValueError(f"user {name!r} exists (give --replace to set a new password or role)") from None
    db.execute("DELETE FROM sessions WHERE name = ?", (name,))  # a new password signs every old session out


def remove_user(db: sqlite3.Connection, name: str) -> bool:
    db.execute("DELETE FROM sessions WHERE name = ?", (name,))
    return db.execute("DELETE FROM users WHERE name = ?", (name,)).rowcount == 1


def now_utc() -> str:
    return iso(datetime.now(UTC))
