"""The detections page: events (and alerts, when asked) chosen by box, species, day, confidence, kind and mark,
a hundred a page, with their clips and marks, above a timeline of the day; and the same choice as a CSV
download.

The filters come from the query string and are checked here: a box or species the station never heard gives
an empty page, while a day or confidence that is not one is answered 422 with the reason. The day is the
station's local day, as "today" is everywhere on the station.
"""

from __future__ import annotations

import sqlite3
from dataclasses import asdict, dataclass, fields
from datetime import UTC, date, datetime, tzinfo
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Request
from starlette.datastructures import QueryParams
from starlette.responses import PlainTextResponse, Response, StreamingResponse

from edge.station import export, search
from edge.station.store import INVALID_BOX
from edge.station.web import timeline
from edge.station.web.auth import Viewer
from edge.station.web.clips import clip_url
from edge.station.web.site import Site

router = APIRouter()

PAGE_SIZE = 100
COUNT_LIMIT = 10_000  # beyond this the page says "more than": counting all would cost as much as reading all
REVIEWED = {"all": "all", "unreviewed": "not reviewed", "confirmed": "confirmed", "false": "marked false"}
KINDS = {"events": "events", "alerts": "alerts", "all": "events and alerts"}


@dataclass(frozen=True)
class Choice:
    """The filters as the form sent them: shown back in the form, and turned into search filters."""

    box: str = ""
    species: str = ""
    day: str = ""
    confidence: str = ""
    reviewed: str = "all"
    kind: str = "events"

    @classmethod
    def of(cls, query: QueryParams) -> Choice:
        given = {f.name: query[f.name].strip() for f in fields(cls) if query.get(f.name, "").strip()}
        return cls(**given)

    def the_day(self) -> date | None:
        """ValueError naming the problem when the day is not a date."""
        return search.day_of(self.day) if self.day else None

    def filters(self) -> search.Filters:
        """ValueError naming the problem when a field is not what it should be."""
        since_utc = until_utc = None
        if day := self.the_day():
            since_utc, until_utc = search.local_day(day)
        confidence = None
        if self.confidence:
            try:
                confidence = float(self.confidence)
            except ValueError:
                confidence = -1.0
            if not 0 <= confidence <= 1:
                raise ValueError(f"the confidence {self.confidence!r} is not a number from 0 to 1")
        if self.reviewed not in REVIEWED:
            raise ValueError(f"reviewed is one of {', '.join(REVIEWED)}")
        if self.kind not in KINDS:
            raise ValueError(f"kind is one of {', '.join(KINDS)}")
        return search.Filters(
            box=self.box or None,
            species=self.species or None,
            since_utc=since_utc,
            until_utc=until_utc,
            min_confidence=confidence,
            reviewed=self.reviewed,
            kind=self.kind,
        )

    def query(self, **changes: str) -> str:
        """The query string of this choice (defaults left out) with `changes`."""
        chosen = {**asdict(self), **changes}
        defaults = asdict(Choice())
        return urlencode({name: value for name, value in chosen.items() if value and value != defaults.get(name)})


def address(path: str, query: str) -> str:
    return f"{path}?{query}" if query else path


def clock(moment_utc: str | None, pattern: str = "%Y-%m-%d %H:%M:%S", zone: tzinfo | None = None) -> str:
    """An ISO time on the station's clock (or in `zone`)."""
    if not moment_utc:
        return ""
    try:
        return f"{datetime.fromisoformat(moment_utc).astimezone(zone):{pattern}}"
    except (ValueError, OverflowError):  # a time UTC cannot hold, as a box may write (year 1 at +05:00)
        return moment_utc


def shown(row) -> dict:
    """A detection as its row on the page shows it."""
    item = dict(row)
    item["name"] = row["common_name"] or row["scientific_name"] or "(no name)"
    item["start_local"] = clock(row["time_utc"])
    item["start_clock_utc"] = clock(row["start_utc"], "%H:%M:%S", UTC)
    item["end_local"] = clock(row["end_utc"], "%H:%M:%S")
    item["end_clock_utc"] = clock(row["end_utc"], "%H:%M:%S", UTC)
    item["clip_url"] = clip_url(row["box"], row["id"]) if row["clip"] else None
    return item


def form(db: sqlite3.Connection) -> dict:
    """What the filter form offers: the boxes, the common names heard (suggested as the species is typed)."""
    boxes = [box for (box,) in db.execute("SELECT box FROM boxes WHERE box != ? ORDER BY box", (INVALID_BOX,))]
    return {"boxes": boxes, "names": search.common_names(db), "reviewed_choices": REVIEWED, "kinds": KINDS}


@router.get("/detections")
def detections_page(request: Request, user: Viewer, before: str | None = None, after: str | None = None) -> Response:
    site: Site = request.app.state.site
    choice = Choice.of(request.query_params)
    zone = datetime.now().astimezone().tzname()
    try:
        filters = choice.filters()
        older = search.Cursor.parse(before) if before else None
        newer = search.Cursor.parse(after) if after and not older else None
    except ValueError as problem:
        with site.read() as db:
            offered = form(db)
        return site.render(request, "detections.html", 422, choice=choice, problem=str(problem), zone=zone, **offered)
    day = choice.the_day() or search.today()

    def species_link(scientific_name: str) -> str:
        return address("/detections", choice.query(species=scientific_name, day=day.isoformat()))

    with site.read() as db:
        offered = form(db)
        found = search.page(db, filters, PAGE_SIZE, older, newer)
        total = search.count(db, filters, COUNT_LIMIT + 1)
        chart = timeline.chart(db, filters, day, species_link)
    return site.render(
        request,
        "detections.html",
        choice=choice,
        problem=None,
        zone=zone,
        rows=[shown(row) for row in found.rows],
        total=total,
        count_limit=COUNT_LIMIT,
        newer=address("/detections", choice.query(after=str(found.newer))) if found.newer else None,
        older=address("/detections", choice.query(before=str(found.older))) if found.older else None,
        first=address("/detections", choice.query()) if older or newer else None,
        chart=chart,
        csv=address("/detections.csv", choice.query()),
        filtered=bool(choice.query()),
        **offered,
    )


@router.get("/detections.csv")
def detections_csv(request: Request, user: Viewer) -> Response:
    """The detections the filters choose, with their marks, as the export writes them; streamed as read."""
    site: Site = request.app.state.site
    choice = Choice.of(request.query_params)
    try:
        filters = choice.filters()
    except ValueError as problem:
        return PlainTextResponse(str(problem), status_code=422)

    def pieces():
        with site.read() as db:
            yield from export.stream(export.EVENT_COLUMNS, export.events(db, filters))

    name = "-".join(["detections", *(part for part in (choice.box, choice.day) if part)])
    return StreamingResponse(
        pieces(),
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": f'attachment; filename="{quote(name)}.csv"'},
    )
