"""What every page of the station needs: its settings, the database (read by each request on a connection of its
own, written in short transactions beside the MQTT thread's), the clip folder and the templates."""

from __future__ import annotations

import ipaddress
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import jinja2
from fastapi import Request
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel, ConfigDict, Field, field_validator
from starlette.responses import Response

from edge.station import table
from edge.station.store import connect
from edge.wire.records import iso

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"
LOOPBACK = ("127.0.0.1", "::1")


class HttpSettings(BaseModel):
    """The `[http]` section of the station's configuration, and the options of `edge station --http`."""

    model_config = ConfigDict(extra="forbid")

    address: str | None = Field(None, description="HOST:PORT the pages are served on; none: no pages.")
    anonymous: Literal["guest", "none"] = Field(
        "guest",
        description="What a visitor who has not signed in may do: guest (look, listen, identify) or none "
        "(sign in first).",
    )
    auth_header: str | None = Field(
        None,
        description="Header a reverse proxy names its signed-in user in (e.g. Remote-User); trusted only from "
        "trusted_proxies.",
    )
    trusted_proxies: list[str] = Field(list(LOOPBACK), description="Addresses whose auth_header is believed.")
    hosts: list[str] = Field(
        ["*"],
        description='Host names the pages answer to (the Host header), e.g. ["station.example.org", "127.0.0.1"]; '
        "'*': any. Naming them keeps another site's page from reaching the station by DNS rebinding.",
    )
    secure_cookies: bool = Field(False, description="Send the session cookie over HTTPS only (behind a TLS proxy).")
    session_days: float = Field(30.0, gt=0, le=366, description="Days a sign-in lasts.")
    stale_health_s: float = Field(
        300.0, gt=0, description="A box whose newest health record is older than this is flagged."
    )
    max_streams: int = Field(
        200,
        ge=1,
        le=100_000,
        description="Live alert streams (one per open alerts page) kept open at once; beyond, 503 (each is a "
        "connection: a file descriptor of the station's process).",
    )
    max_streams_per_client: int = Field(
        8,
        ge=1,
        le=100_000,
        description="Live alert streams one client address may keep open (those of trusted_proxies count only "
        "in max_streams: they stand for many clients).",
    )

    @field_validator("address")
    @classmethod
    def host_and_port(cls, value: str | None) -> str | None:
        if value is not None:
            listen_address(value)  # ValueError says what is wrong
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def addresses(cls, value: list[str]) -> list[str]:
        for address in value:
            ipaddress.ip_address(address)  # ValueError names it
        return value

    @field_validator("auth_header")
    @classmethod
    def header_name(cls, value: str | None) -> str | None:
        if value is not None and (not value or not all(c.isalnum() or c == "-" for c in value)):
            raise ValueError("a header name is letters, digits and dashes")
        return value


def listen_address(text: str) -> tuple[str, int]:
    """HOST:PORT or [V6ADDRESS]:PORT; ValueError otherwise."""
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest.removeprefix(":")
    else:
        host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or not 0 <= int(port) < 65536:
        raise ValueError(f"{text!r} is not HOST:PORT")
    return host, int(port)


@dataclass
class Site:
    """The web application's state, one per station process: nothing global."""

    db_path: Path
    clip_folder: Path
    settings: HttpSettings = field(default_factory=HttpSettings)
    stopping: threading.Event = field(default_factory=threading.Event)  # long-lived responses end when set
    services: dict[str, Any] = field(default_factory=dict)  # the identifier, the notifier... when there are
    drawing: threading.Lock = field(default_factory=threading.Lock)  # one spectrogram decoded at a time

    def __post_init__(self) -> None:
        # Autoescape everywhere: species names, box ids and notes come from the network.
        env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True)
        env.filters["ago"] = ago
        self.templates = Jinja2Templates(env=env)

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """A read-only connection for one request."""
        db = connect(self.db_path, read_only=True)
        try:
            yield db
        finally:
            db.close()

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """A connection in one IMMEDIATE transaction, committed when the block ends without an error."""
        db = connect(self.db_path)
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
        finally:
            db.close()

    def render(self, request: Request, name: str, status_code: int = 200, **context: Any) -> Response:
        """The page `name` with the signed-in user and the CSRF token of the session (set by edge.station.web.auth)."""
        state = request.state
        context.setdefault("user", getattr(state, "user", None))
        context.setdefault("csrf", getattr(state, "csrf", ""))
        context.setdefault("now_utc", iso(datetime.now(UTC)))
        return self.templates.TemplateResponse(request, name, context, status_code=status_code)


def ago(moment_utc: str | None) -> str:
    """'5 min ago' for an ISO time (the terminal table's wording); 'never' for none."""
    if not moment_utc:
        return "never"
    try:
        return f"{table.age(moment_utc, datetime.now(UTC))} ago"
    except (TypeError, ValueError):  # a time a box wrote wrong: the checks let only ISO times in, but say so
        return "unknown"
