"""The home page: every box, whether it is alive, and its last health figures."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi import APIRouter, Request
from starlette.responses import Response

from edge.station import table
from edge.station.web.auth import Viewer
from edge.station.web.site import Site
from edge.wire.records import iso

router = APIRouter()


@router.get("/")
def boxes_page(request: Request, user: Viewer) -> Response:
    site: Site = request.app.state.site
    now = datetime.now(UTC)
    stale_before = iso(now - timedelta(seconds=site.settings.stale_health_s))
    with site.read() as db:
        lines = table.box_lines(db, now)
        health = {row["box"]: row["health_utc"] for row in db.execute("SELECT box, health_utc FROM boxes")}
    stale = {box for box, moment in health.items() if moment is None or moment < stale_before}
    return site.render(request, "boxes.html", boxes=lines, health_utc=health, stale=stale)
