"""The station's pages in the test's own process: the web server over a database, users, signing in."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests

from edge.station.store import Store
from edge.station.users import add_user
from edge.station.web.server import WebServer
from edge.station.web.site import HttpSettings, Site


@contextmanager
def station_pages(tmp_path: Path, services: dict | None = None, **settings) -> Iterator[str]:
    """The pages of a station database on a free port of 127.0.0.1 (the web server alone, no broker), with
    `services` (the identifier...); the URL."""
    db_path = tmp_path / "station.sqlite"
    Store.open(db_path).close()
    site = Site(db_path, tmp_path / "clips", HttpSettings(address="127.0.0.1:0", **settings), services=services or {})
    with serve(site) as url:
        yield url


@contextmanager
def serve(site: Site) -> Iterator[str]:
    """The pages of `site` (its database made) on a free port of 127.0.0.1; the URL."""
    server = WebServer(site, "127.0.0.1:0")
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


def users(db_path: Path, *rows: tuple[str, str, str]) -> None:
    db = sqlite3.connect(db_path)
    for name, role, password in rows:
        add_user(db, name, role, password)
    db.commit()
    db.close()


def sign_in(session: requests.Session, url: str, name: str, password: str) -> requests.Response:
    csrf = login_csrf_of(session.get(url + "login"))
    return session.post(url + "login", data={"name": name, "password": password, "csrf": csrf, "next": "/"})


def login_csrf_of(page: requests.Response) -> str:
    """The sign-in form's own CSRF token (its hidden field `csrf`)."""
    return re.search(r'name="csrf" value="([^"]*)"', page.text)[1]


def csrf_of(page: requests.Response) -> str:
    """The session's CSRF token a page carries (body data-csrf)."""
    return re.search(r'data-csrf="([^"]*)"', page.text)[1]
