"""The home page: every box, whether it is alive, its last health figures and where it is; and each box's own
page with its health over the last day and what it heard last.

Both pages refresh their figures by themselves (static/refresh.js), so a ranger can leave one open.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.responses import Response

from edge.station import history, table
from edge.station.store import INVALID_BOX
from edge.station.table import BoxLine
from edge.station.web import boxmap, linechart
from edge.station.web.auth import Viewer
from edge.station.web.site import Site
from edge.wire.mqtt import box_id_problem

router = APIRouter()

REFRESH_S = 15  # the boxes page; a box's own page every other time
HISTORY = timedelta(hours=24)
SYNCHRONIZED = "synchronized"


@dataclass(frozen=True)
class Glance:
    """A box as the pages show it: its line, whether its health is stale, since when it has its status."""

    line: BoxLine
    stale: bool
    since_utc: str | None

    @property
    def clock_doubtful(self) -> bool:
        return self.line.clock is not None and self.line.clock != SYNCHRONIZED

    @property
    def linked(self) -> bool:
        return self.line.box != INVALID_BOX


def glance(line: BoxLine, now: datetime, stale_after_s: float) -> Glance:
    # A last will carries the time its connection began: when it arrived says better when the box went.
    since = line.status_received_utc if line.status == "offline" else line.status_utc or line.status_received_utc
    return Glance(line, stale(line, now, stale_after_s), since)


def stale(line: BoxLine, now: datetime, stale_after_s: float) -> bool:
    """No health record, or the newest was written, or arrived, longer than `stale_after_s` ago (a box whose
    clock runs ahead still goes stale when it falls silent)."""
    if line.health_utc is None:
        return True
    limit = now - timedelta(seconds=stale_after_s)
    try:
        times = [datetime.fromisoformat(t) for t in (line.health_utc, line.health_received_utc) if t is not None]
    except ValueError:
        return True
    return any(moment.tzinfo is None or moment < limit for moment in times)


def glances(site: Site, box: str | None = None) -> list[Glance]:
    now = datetime.now(UTC)
    with site.read() as db:
        lines = table.box_lines(db, now, box)
    return [glance(line, now, site.settings.stale_health_s) for line in lines]


@router.get("/")
def boxes_page(request: Request, user: Viewer) -> Response:
    site: Site = request.app.state.site
    boxes = glances(site)
    placed = [g for g in boxes if g.line.place is not None]
    sheet = boxmap.draw([(g.line.box, *g.line.place) for g in placed if g.line.place is not None])
    return site.render(
        request,
        "boxes.html",
        boxes=boxes,
        by_box={g.line.box: g for g in boxes},
        sheet=sheet,
        unplaced=[g for g in boxes if g.line.place is None and g.linked],
        refresh_s=REFRESH_S,
        stale_s=site.settings.stale_health_s,
    )


@router.get("/api/boxes")
def boxes_api(request: Request, user: Viewer) -> Response:
    """Every box as JSON: its line (BoxLine's fields), `stale` and `status_since_utc`."""
    site: Site = request.app.state.site
    return JSONResponse(
        [
            {**dataclasses.asdict(g.line), "stale": g.stale, "status_since_utc": g.since_utc}
            for g in glances(site)
            if g.linked
        ]
    )


@router.get("/boxes/{box}")
def box_page(request: Request, box: str, user: Viewer) -> Response:
    site: Site = request.app.state.site
    found = [] if box_id_problem(box) else glances(site, box)
    if not found:
        return site.render(request, "error.html", status_code=404, title="No such box", message="No box of that name.")
    end = datetime.now(UTC)
    start = end - HISTORY
    with site.read() as db:
        points = history.health_since(db, box, start)
        alerts = history.latest(db, box, alerts=True)
        events = history.latest(db, box, alerts=False)
    return site.render(
        request,
        "box.html",
        g=found[0],
        chart=health_chart(points, start, end),
        points=len(points),
        alerts=alerts,
        events=events,
        refresh_s=2 * REFRESH_S,
        stale_s=site.settings.stale_health_s,
    )


def health_chart(points: list[history.HealthPoint], start: datetime, end: datetime) -> linechart.Chart:
    """Real-time factor, CPU and free disk space over the day."""

    def series(name: str) -> list[tuple[datetime, float]]:
        return [(p.time, value) for p in points if (value := getattr(p, name)) is not None]

    cpu = series("cpu_percent")  # of one core: a box using two is at 200 %
    return linechart.draw(
        [
            linechart.Series("real-time factor", "", series("real_time_factor"), mark=1.0),
            linechart.Series("CPU", "%", cpu, top=linechart.rounded_up(max([100.0, *(v for _, v in cpu)]))),
            linechart.Series("disk free", "%", series("disk_free_percent"), worst=min, top=100.0),
        ],
        start,
        end,
    )
