"""The station's web application: the pages and the API, over the station's database."""

from __future__ import annotations

import secrets

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from edge.station.web import alerts, auth, boxes, clips, detections, identify, reviews, species
from edge.station.web.feed import Feed, StreamPlaces
from edge.station.web.site import STATIC, Site

# Pages that run only their own scripts, load nothing from elsewhere (the station may have no internet) and are
# not framed by another site; audio and images come from the station itself (blob: for a recording made in
# the page).
SECURITY_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; object-src 'none'; "
        b"base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
]


def create_app(site: Site) -> FastAPI:
    app = FastAPI(title="edge station", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.site = site
    app.state.throttle = auth.Throttle()
    app.state.feed = Feed(site, alerts.events)  # the live pages' one poller of the database
    settings = site.settings
    app.state.stream_places = StreamPlaces(
        settings.max_streams, settings.max_streams_per_client, proxies=settings.trusted_proxies
    )
    app.state.secret = secrets.token_bytes(32)  # the CSRF tokens of users a proxy signed in; new per run
    app.add_exception_handler(auth.LoginRequired, auth.login_required)  # type: ignore[arg-type]
    app.add_exception_handler(auth.Forbidden, auth.forbidden)  # type: ignore[arg-type]
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    for module in (auth, boxes, alerts, clips, reviews, detections, species, identify):
        app.include_router(module.router)
    app.add_middleware(SecurityHeaders)
    return app


class SecurityHeaders:
    """Adds SECURITY_HEADERS to every HTTP response (an ASGI middleware: streamed responses pass untouched)."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS]
            await send(message)

        await self.app(scope, receive, with_headers)
