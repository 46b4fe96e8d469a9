"""The alerts page and its live feed.

The page lists the newest alerts with their clip (to play, its spectrogram, a download), their mark and who is
on the way; static/alerts.js then keeps it current from /api/alerts/stream, server-sent events: one JSON event
per alert that is new or changed (its clip arrived, a ranger marked it or took it on), `id:` the cursor of
edge.station.alerts, so that a reader who reconnects (EventSource does, sending Last-Event-ID) misses nothing.
A comment line every HEARTBEAT_S keeps proxies from closing a quiet stream; a reader too far behind is told to
`reload`. Every stream ends when the station stops. Streams are counted: beyond [http] max_streams open, or
max_streams_per_client from one address, a reader is answered 503 with Retry-After (the page then tries again
later by itself: a browser's EventSource does not after such an answer).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import AsyncGenerator, Callable
from datetime import datetime
from http import HTTPStatus

import structlog
from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from edge.station import alerts
from edge.station.alerts import Cursor
from edge.station.store import StoreError
from edge.station.web.auth import Viewer
from edge.station.web.clips import clip_url
from edge.station.web.feed import Crowded, Feed, StreamPlaces
from edge.station.web.site import Site

log = structlog.get_logger(__name__)
router = APIRouter()

HEARTBEAT_S = 15.0
RETRY_MS = 2000  # how long a browser waits before reconnecting
RETRY_AFTER_S = 30  # a reader refused for want of a place is asked to come back after this long
VIEW_FIELDS = (
    "box",
    "id",
    "alert_class",
    "scientific_name",
    "common_name",
    "start_utc",
    "end_utc",
    "detected_utc",
    "received_utc",
    "mark",
    "mark_note",
    "mark_user",
    "mark_utc",
    "ack_user",
    "ack_note",
    "ack_utc",
)


def utc_text(moment: str | None) -> str:
    """'2026-11-23 09:00:07 UTC' for an ISO time; '' for none."""
    if not moment:
        return ""
    try:
        return f"{datetime.fromisoformat(moment):%Y-%m-%d %H:%M:%S} UTC"
    except ValueError:
        return moment


def view(row: sqlite3.Row) -> dict:
    """What the page shows of an alert, as the template and alerts.js read it (the stream's JSON)."""
    heard = row["start_utc"] or row["detected_utc"] or row["received_utc"]
    clip = None
    if row["clip_path"]:
        audio = clip_url(row["box"], row["id"])
        clip = {
            "audio": audio,
            "image": clip_url(row["box"], row["id"], "png"),
            "download": audio + "?download=1",
            "duration_s": row["clip_duration_s"],
            "top_khz": row["clip_rate"] / 2000,
        }
    if row["clip_refused"]:
        clip_note = f"no audio kept: the clip held {row['clip_refused']}"
    elif row["clip_pruned_utc"]:
        clip_note = "the clip has been deleted (kept for a limited time)"
    elif clip is None:
        clip_note = "no clip (yet)"
    else:
        clip_note = ""
    what = row["alert_class"] or row["label"] or row["common_name"] or "alert"
    return {name: row[name] for name in VIEW_FIELDS} | {
        "alert": True,
        "what": what,
        "species": row["common_name"] if row["common_name"] not in (None, what) else "",
        "where": f"{row['start_s']:g}–{row['end_s']:g} s of {row['source']}" if row["source"] else "",
        "confidence": round(row["confidence"], 2) if row["confidence"] is not None else None,
        "heard_utc": heard,
        "heard_text": utc_text(heard),
        "clip": clip,
        "clip_note": clip_note,
    }


@router.get("/alerts")
def alerts_page(
    request: Request,
    user: Viewer,
    box: str | None = Query(None, max_length=256),
    id: str | None = Query(None, max_length=1024),
    before: str | None = Query(None, max_length=64),
    before_box: str = Query("", max_length=256),
    before_id: str = Query("", max_length=1024),
) -> Response:
    """The newest alerts (of `box`), live; with `before` (and before_box, before_id: the last alert of a page),
    older ones; with `box` and `id` (the link a notification carries), that alert alone, live."""
    site: Site = request.app.state.site
    with site.read() as db:
        now = alerts.cursor(db)  # first: an alert stored while the page is drawn comes again over the feed
        if box is not None and id is not None:
            rows = [row] if (row := alerts.alert(db, box, id)) else []
        else:
            rows = alerts.newest(db, box=box, before=(before, before_box, before_id) if before else None)
    shown = [view(row) for row in rows]
    older = None
    if len(shown) == alerts.PAGE:
        last = shown[-1]
        older = {"before": last["received_utc"], "before_box": last["box"], "before_id": last["id"]}
        older |= {"box": box} if box else {}
    return site.render(
        request, "alerts.html", alerts=shown, cursor=str(now), box=box, one=id, older=older, live=not before
    )


def event(data: dict | None = None, cursor: Cursor | None = None, name: str | None = None) -> str:
    lines = [f"event: {name}"] if name else []
    lines += [f"id: {cursor}"] if cursor else []
    lines += [f"data: {json.dumps(data, separators=(',', ':'))}"] if data is not None else []
    return "\n".join(lines) + "\n\n"


def events(db: sqlite3.Connection, since: Cursor, until: Cursor) -> str:
    """The events that bring a reader from `since` to `until` (the feed reads them once for every reader): one
    per alert new or changed, the last with `until` as its id; the id alone when no alert changed (it moves
    the reader's Last-Event-ID past records of no alert); `reload` when too many changed."""
    rows = alerts.changed(db, since, until)
    if rows is None:
        return event({}, until, "reload")
    if not rows:
        return event(cursor=until)
    return "".join(event(view(row), until if number == len(rows) else None) for number, row in enumerate(rows, 1))


async def stream(site: Site, feed: Feed, seen: Cursor) -> AsyncGenerator[str, None]:
    """Until the station stops; Starlette cancels it when the reader goes away."""
    async with feed.listening():
        yield f"retry: {RETRY_MS}\n\n"
        while True:
            try:
                change = await feed.next(seen, HEARTBEAT_S)
            except (sqlite3.Error, StoreError) as error:  # the reader comes back after `retry:`, from `seen`
                log.warning("feed_read_failed", error=str(error))
                return
            if site.stopping.is_set():
                return
            if change is None:
                yield ": still here\n\n"
                continue
            yield change.events
            seen = change.until


class Stream(StreamingResponse):
    """The events of one reader, who holds a place of StreamPlaces until the stream ends, however it ends
    (also when it never started: the reader left before)."""

    def __init__(self, events: AsyncGenerator[str, None], give_back: Callable[[], None]):
        super().__init__(
            events,
            media_type="text/event-stream",
            headers={"cache-control": "no-store", "x-accel-buffering": "no"},  # nginx: pass each event at once
        )
        self.events, self.give_back = events, give_back

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.give_back()
            await self.events.aclose()  # leaves the feed now rather than when the generator is collected


@router.get("/api/alerts/stream")
def alert_stream(request: Request, user: Viewer, after: str | None = Query(None, max_length=80)) -> Response:
    """The live feed; 503 with Retry-After when as many streams are open as the station keeps, overall or from
    the reader's address ([http] max_streams, max_streams_per_client)."""
    site: Site = request.app.state.site
    places: StreamPlaces = request.app.state.stream_places
    try:
        give_back = places.take(request.client.host if request.client else "")
    except Crowded as crowded:
        return JSONResponse(
            {"error": f"{crowded}: try again later"},
            status_code=HTTPStatus.SERVICE_UNAVAILABLE,
            headers={"Retry-After": str(RETRY_AFTER_S)},
        )
    try:
        seen = Cursor.parse(request.headers.get("last-event-id")) or Cursor.parse(after)
        with site.read() as db:
            now = alerts.cursor(db)
        if seen is None or not now.covers(seen):  # none, or not of this database: from now on
            seen = now
    except BaseException:
        give_back()
        raise
    return Stream(stream(site, request.app.state.feed, seen), give_back)
