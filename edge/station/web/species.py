"""The species page: which species the boxes heard over a span of the station's local days (the last 7 by
default), counted per day or per box, without the events a ranger marked false; each species and count links
to those detections."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from starlette.responses import Response

from edge.station import search, tally
from edge.station.store import INVALID_BOX
from edge.station.web.auth import Viewer
from edge.station.web.detections import clock
from edge.station.web.site import Site

router = APIRouter()

DEFAULT_DAYS = 7
MAX_DAYS = 92  # a season: wider spans would be slow to count, and too wide to read by day


def span(first: str, last: str) -> tuple[date, date]:
    """The days asked for (the last DEFAULT_DAYS when none); ValueError naming the problem."""
    until = search.day_of(last, "to") if last else search.today()
    since = search.day_of(first, "from") if first else until - timedelta(days=DEFAULT_DAYS - 1)
    if since.year < 2:
        raise ValueError(f"from {since} is out of range (years 2 to 9998)")
    if since > until:
        raise ValueError(f"from {since} is after to {until}")
    if (until - since).days >= MAX_DAYS:
        raise ValueError(f"at most {MAX_DAYS} days at once")
    return since, until


@router.get("/species")
def species_page(request: Request, user: Viewer) -> Response:
    site: Site = request.app.state.site
    query = request.query_params
    box = query.get("box", "").strip()
    by = query.get("by", "day")
    first, last = query.get("from", "").strip(), query.get("to", "").strip()
    with site.read() as db:
        boxes = [b for (b,) in db.execute("SELECT box FROM boxes WHERE box != ? ORDER BY box", (INVALID_BOX,))]
        try:
            if by not in tally.BY:
                raise ValueError(f"by is one of {', '.join(tally.BY)}")
            since, until = span(first, last)
        except ValueError as problem:
            return site.render(
                request, "species.html", 422, problem=str(problem), boxes=boxes, box=box, by=by, first=first, last=last
            )
        start_utc, end_utc = search.local_day(since)[0], search.local_day(until)[1]
        heard = tally.tally(db, start_utc, end_utc, by, box or None)
    days = [str(since + timedelta(days=n)) for n in range((until - since).days + 1)]
    columns = days if by == "day" else heard.columns

    def link(scientific_name: str, column: str | None = None) -> str:
        chosen = {"species": scientific_name, "box": box}
        if column is not None:
            chosen["day" if by == "day" else "box"] = column
        return "/detections?" + urlencode({name: value for name, value in chosen.items() if value})

    return site.render(
        request,
        "species.html",
        problem=None,
        boxes=boxes,
        box=box,
        by=by,
        first=since.isoformat(),
        last=until.isoformat(),
        tally=heard,
        columns=columns,
        link=link,
        clock=clock,
        zone=datetime.now().astimezone().tzname(),
    )
