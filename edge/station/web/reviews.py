"""What a ranger changes from any page: the mark of an event or alert (confirmed, false, or cleared, with a
note) and taking an alert on ("on the way"). Both answer JSON, for static/marks.js.

A second ranger who takes on an alert someone already has gets 200 with `new: false` and the first one's
name, time and note: the alert is taken on either way, and the page shows by whom, so nobody drives out twice.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import JSONResponse

from edge.station import reviews
from edge.station.web.auth import Reviewer
from edge.station.web.site import Site

router = APIRouter()

Text = Annotated[str, Form(max_length=1024)]
Note = Annotated[str, Form(max_length=4 * reviews.MAX_NOTE)]  # control characters are dropped before the limit


def problem(error: reviews.ReviewError) -> JSONResponse:
    status = 404 if isinstance(error, reviews.UnknownEvent) else 400
    return JSONResponse({"error": str(error)}, status_code=status)


@router.post("/api/marks")
def mark(request: Request, user: Reviewer, box: Text, id: Text, verdict: Text, note: Note = "") -> JSONResponse:
    site: Site = request.app.state.site
    assert user.name is not None  # a reviewer is signed in
    try:
        with site.write() as db:
            at = reviews.mark(db, box, id, verdict, note, user.name)
    except reviews.ReviewError as error:
        return problem(error)
    shown = None if verdict == "cleared" else verdict
    return JSONResponse(
        {"box": box, "id": id, "mark": shown, "mark_note": reviews.clean_note(note), "mark_user": user.name}
        | {"mark_utc": at}
    )


@router.post("/api/acknowledgements")
def acknowledge(request: Request, user: Reviewer, box: Text, id: Text, note: Note = "") -> JSONResponse:
    site: Site = request.app.state.site
    assert user.name is not None
    try:
        with site.write() as db:
            taken = reviews.acknowledge(db, box, id, user.name, note)
    except reviews.ReviewError as error:
        return problem(error)
    return JSONResponse(
        {"box": box, "id": id, "ack_user": taken.user, "ack_note": taken.note, "ack_utc": taken.at_utc}
        | {"new": taken.new}
    )
