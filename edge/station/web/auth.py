"""Who is looking at the station's pages, and what they may do.

Roles: a guest looks, listens and identifies clips; a ranger also reviews and acknowledges; an admin is a ranger
(users are managed with `edge station users`). A visitor who has not signed in is a guest, unless the station
says `anonymous = "none"`. Behind a reverse proxy that signs users in, the proxy's header names the user, who
then has the role the station's user list gives (a guest when not listed); the header is believed only from
the proxy's address.

Users and their passwords: edge.station.users. A session is a random token in an HttpOnly cookie, stored as its SHA-256
(a copy of the database holds no usable session), with a CSRF token every form and script that changes
something must send back; a state-changing request from another origin is refused as well.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated
from urllib.parse import quote, urlsplit

from fastapi import APIRouter, Depends, Form, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse
from starlette.responses import Response

from edge.station.users import MAX_NAME, MAX_PASSWORD, hash_password, name_problem, now_utc, password_matches
from edge.station.web.site import Site
from edge.wire.records import iso

REVIEWERS = ("admin", "ranger")
SESSION_COOKIE = "edge_session"
LOGIN_COOKIE = "edge_login"  # the sign-in form's own CSRF token, before there is a session
FAILURES_BEFORE_LOCK = 5  # per name and client address
NAME_FAILURES = 50  # per name, from anywhere
LOCK = timedelta(minutes=5)
HASHING = 2  # passwords hashed at once
MAX_TRACKED = 10_000
UNSAFE = ("POST", "PUT", "PATCH", "DELETE")


@dataclass(frozen=True)
class User:
    name: str | None  # None: an anonymous visitor
    role: str

    @property
    def reviewer(self) -> bool:
        return self.role in REVIEWERS


ANONYMOUS = User(None, "guest")


class LoginRequired(Exception):
    """Raised by a dependency: the page needs a signed-in user (answered by a redirect, or 401 for the API)."""


class Forbidden(Exception):
    """Raised by a dependency: the user may not do this (a guest reviewing, a CSRF token that does not match)."""


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def start_session(site: Site, name: str) -> tuple[str, str]:
    """A new session of `name`: (cookie token, CSRF token). Expired sessions are removed on the way."""
    token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    expires = datetime.now(UTC) + timedelta(days=site.settings.session_days)
    with site.write() as db:
        db.execute("DELETE FROM sessions WHERE expires_utc < ?", (now_utc(),))
        db.execute(
            "INSERT INTO sessions VALUES (?, ?, ?, ?, ?)", (token_hash(token), name, csrf, now_utc(), iso(expires))
        )
    return token, csrf


def visitor(request: Request) -> tuple[User, str]:
    """The user of a request and the CSRF token of their session ('' for none)."""
    site: Site = request.app.state.site
    settings = site.settings
    client = request.client.host if request.client else ""
    if settings.auth_header and client in settings.trusted_proxies:
        name = request.headers.get(settings.auth_header)
        if name and not name_problem(name):
            with site.read() as db:
                row = db.execute("SELECT role FROM users WHERE name = ?", (name,)).fetchone()
            # Behind the proxy every form still carries a token: the one of the cookie-less session of that name.
            return User(name, row["role"] if row else "guest"), hmac.new(
                proxy_secret(request), name.encode(), "sha256"
            ).hexdigest()
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        with site.read() as db:
            row = db.execute(
                "SELECT s.name, s.csrf, u.role FROM sessions s JOIN users u USING (name) "
                "WHERE s.token = ? AND s.expires_utc > ?",
                (token_hash(token), now_utc()),
            ).fetchone()
        if row is not None:
            return User(row["name"], row["role"]), row["csrf"]
    return ANONYMOUS, ""


def proxy_secret(request: Request) -> bytes:
    return request.app.state.secret


def viewer(request: Request) -> User:
    """Dependency of every page: the user, who may look (LoginRequired when anonymous visitors may not)."""
    user, csrf = visitor(request)
    request.state.user, request.state.csrf = user, csrf
    site: Site = request.app.state.site
    if user.name is None and site.settings.anonymous == "none":
        raise LoginRequired
    return user


def ranger(request: Request, user: Annotated[User, Depends(viewer)]) -> User:
    """Dependency of what changes a mark: a reviewer, and for a POST the session's CSRF token and our origin."""
    if not user.reviewer:
        if user.name is None:
            raise LoginRequired
        raise Forbidden(f"{user.role}s may not change anything here")
    if request.method in UNSAFE:
        check_same_origin(request)
    return user


def check_same_origin(request: Request) -> None:
    origin = request.headers.get("origin")
    if origin and origin != "null" and urlsplit(origin).netloc != request.headers.get("host"):
        raise Forbidden("the request came from another site")


async def check_csrf(request: Request) -> None:
    """The form field `csrf` or the header X-CSRF-Token must be the session's token (call after `ranger`)."""
    expected = getattr(request.state, "csrf", "")
    given = request.headers.get("x-csrf-token")
    if given is None and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        given = str((await request.form()).get("csrf", ""))
    if not expected or not given or not hmac.compare_digest(given.encode(), expected.encode()):
        raise Forbidden("the form has expired: reload the page and try again")


async def reviewer(request: Request, user: Annotated[User, Depends(ranger)]) -> User:
    """Dependency of a state-changing route: a ranger with the right CSRF token."""
    if request.method in UNSAFE:
        await check_csrf(request)
    return user


# What a route declares: `user: Viewer` to look, `user: Reviewer` to change a mark (CSRF checked).
Viewer = Annotated[User, Depends(viewer)]
Reviewer = Annotated[User, Depends(reviewer)]


def local_path(target: str | None) -> str:
    """Where to go after signing in: a path of this site only, never another site's address."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


class Throttle:
    """Sign-in attempts: each is counted before its password is checked (so that attempts at once cannot slip
    past), per name and client address (FAILURES_BEFORE_LOCK in LOCK: someone guessing elsewhere does not lock a
    ranger out at the station) and per name (NAME_FAILURES in LOCK: guessing from many addresses is bounded too).
    At most HASHING passwords are hashed at once (16 MiB each); a name that does not exist costs a hash as well,
    so that the time taken does not tell which names do."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.attempts: dict[tuple[str, str], list[datetime]] = {}
        self.hashing = threading.BoundedSemaphore(HASHING)
        self.unknown = hash_password(secrets.token_urlsafe(16))  # what a name that is not there is checked against

    def attempt(self, name: str, client: str) -> bool:
        """Counts one attempt; False when it is one too many (then it is not counted)."""
        now = datetime.now(UTC)
        with self.lock:
            self._forget(now)
            mine = self.attempts.get((name, client), [])
            everyone = sum(len(times) for (other, _), times in self.attempts.items() if other == name)
            if len(mine) >= FAILURES_BEFORE_LOCK or everyone >= NAME_FAILURES:
                return False
            self.attempts[(name, client)] = [*mine, now]
            return True

    def succeeded(self, name: str, client: str) -> None:
        with self.lock:
            self.attempts.pop((name, client), None)

    def check(self, stored: str | None, password: str) -> bool:
        with self.hashing:
            return password_matches(stored or self.unknown, password) and stored is not None

    def _forget(self, now: datetime) -> None:
        since = now - LOCK
        for key in [key for key, times in self.attempts.items() if times[-1] <= since]:
            del self.attempts[key]
        if len(self.attempts) > MAX_TRACKED:  # a flood of names: the oldest go first, the recent stay counted
            for key in sorted(self.attempts, key=lambda k: self.attempts[k][-1])[: len(self.attempts) // 2]:
                del self.attempts[key]
        for key, times in self.attempts.items():
            self.attempts[key] = [t for t in times if t > since]


router = APIRouter()


@router.get("/login")
def login_form(request: Request, next: str = "/") -> Response:
    return login_page(request, next)


def login_page(request: Request, next: str, problem: str | None = None) -> Response:
    """The sign-in form, with the station's own words about the last attempt (never words from the address)."""
    site: Site = request.app.state.site
    user, _ = visitor(request)
    request.state.user = user
    token = secrets.token_urlsafe(32)
    response = site.render(
        request,
        "login.html",
        status_code=401 if problem else 200,
        next=local_path(next),
        login_csrf=token,
        problem=problem,
    )
    response.set_cookie(
        LOGIN_COOKIE, token, httponly=True, samesite="strict", secure=site.settings.secure_cookies, max_age=3600
    )
    return response


@router.post("/login")
def login(
    request: Request,
    name: Annotated[str, Form(max_length=MAX_NAME)],
    password: Annotated[str, Form(max_length=MAX_PASSWORD)],
    csrf: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/",
) -> Response:
    site: Site = request.app.state.site
    throttle: Throttle = request.app.state.throttle
    check_same_origin(request)
    cookie = request.cookies.get(LOGIN_COOKIE, "")
    if not cookie or not hmac.compare_digest(cookie.encode(), csrf.encode()):
        return login_page(request, next, "The form had expired: try again.")
    client = request.client.host if request.client else ""
    if not throttle.attempt(name, client):
        return login_page(request, next, "Too many failed attempts: wait a few minutes.")
    with site.read() as db:
        row = db.execute("SELECT password FROM users WHERE name = ?", (name,)).fetchone()
    if not throttle.check(row["password"] if row else None, password):
        return login_page(request, next, "Wrong name or password.")
    throttle.succeeded(name, client)
    token, _ = start_session(site, name)
    response = RedirectResponse(local_path(next), status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        httponly=True,
        samesite="lax",
        secure=site.settings.secure_cookies,
        max_age=int(site.settings.session_days * 86400),
    )
    response.delete_cookie(LOGIN_COOKIE)
    return response


@router.post("/logout")
async def logout(request: Request, user: Viewer) -> Response:
    site: Site = request.app.state.site
    if user.name is not None:
        check_same_origin(request)
        await check_csrf(request)
        token = request.cookies.get(SESSION_COOKIE)
        if token:
            with site.write() as db:
                db.execute("DELETE FROM sessions WHERE token = ?", (token_hash(token),))
    response = RedirectResponse("/", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response


def login_required(request: Request, _: LoginRequired) -> Response:
    if request.url.path.startswith("/api/"):
        return JSONResponse({"error": "sign in first"}, status_code=401)
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={quote(target)}", status_code=303)


def forbidden(request: Request, error: Forbidden) -> Response:
    if request.url.path.startswith("/api/") or request.headers.get("x-csrf-token") is not None:
        return JSONResponse({"error": str(error)}, status_code=403)
    site: Site = request.app.state.site
    return site.render(request, "error.html", status_code=403, message=str(error))


def invalid(request: Request, error: RequestValidationError) -> Response:
    """422 naming each field and what is wrong, never the value sent (it may be a password)."""
    problems = "; ".join(
        f"{'.'.join(str(part) for part in e.get('loc', ()) if part != 'body') or 'request'}: {e.get('msg', 'invalid')}"
        for e in error.errors()
    )
    return JSONResponse({"error": problems or "invalid request"}, status_code=422)
