"""The station's web application: the pages and the API, over the station's database."""

from __future__ import annotations

import secrets

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.staticfiles import StaticFiles
from starlette.middleware.trustedhost import TrustedHostMiddleware

from edge.station.web import alerts, auth, boxes, clips, detections, identify, reviews, species
from edge.station.web.feed import Feed, StreamPlaces
from edge.station.web.guards import BodyLimit, SecurityHeaders
from edge.station.web.site import STATIC, Site


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
    app.add_exception_handler(RequestValidationError, auth.invalid)  # type: ignore[arg-type]
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    for module in (auth, boxes, alerts, clips, reviews, detections, species, identify):
        app.include_router(module.router)
    # The last added runs first: the host is checked, then the body's size, and every answer gets the headers.
    app.add_middleware(SecurityHeaders)
    app.add_middleware(BodyLimit)
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=site.settings.hosts)
    return app
