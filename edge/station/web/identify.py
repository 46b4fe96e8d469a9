"""Identify a clip: `POST /api/identify`, the API a guide's phone app calls, and `/identify`, the page that
records from the phone's microphone and calls it.

The API is open to whoever may look at the station (anonymous guests unless `anonymous = "none"`) and carries
no CSRF token: it changes nothing, and an app is not a form of this site. An upload larger than the limit is
refused from its Content-Length, or as soon as more than the limit has arrived, never read to its end; the
analysis runs on a worker thread, so the other pages keep answering while it runs.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from datetime import date
from http import HTTPStatus

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect
from starlette.responses import Response
from starlette.types import Message

from edge.station.identify import Identifier, IdentifyBusy, IdentifyError
from edge.station.upload import FORMATS, size_text
from edge.station.web.auth import Viewer
from edge.station.web.site import Site

router = APIRouter()

FORM_SLACK = 64 * 1024  # the multipart boundaries, part headers and the few small fields around the file
RECORD_SECONDS = 15  # the page stops recording by itself after this long
DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


class TooLarge(Exception):
    """More of the request body arrived than an upload may have."""


def identifier_of(request: Request) -> Identifier | None:
    site: Site = request.app.state.site
    return site.services.get("identifier")


@router.get("/identify")
def identify_page(request: Request, user: Viewer) -> Response:
    site: Site = request.app.state.site
    identifier = identifier_of(request)
    limits = identifier.options.limits if identifier is not None else None
    return site.render(
        request,
        "identify.html",
        available=identifier is not None,
        record_seconds=RECORD_SECONDS,
        max_seconds=limits.max_seconds if limits else 0,
        max_size=size_text(limits.max_bytes, "g") if limits else "",
        formats=", ".join(FORMATS),
    )


@router.post("/api/identify")
async def identify_api(request: Request, user: Viewer) -> Response:
    """The species in the recording of the form field `file`, with the optional fields latitude, longitude
    (both, for the range filter) and date (YYYY-MM-DD, the week the range filter uses; default today)."""
    identifier = identifier_of(request)
    if identifier is None:
        return problem("this station does not identify recordings", HTTPStatus.SERVICE_UNAVAILABLE)
    limits = identifier.options.limits
    too_large = problem(
        f"the upload is larger than the {size_text(limits.max_bytes, 'g')} the station takes",
        HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
    )
    if declared_length(request) > limits.max_bytes + FORM_SLACK:
        return too_large
    bounded = Request(request.scope, receive=bounded_receive(request.receive, limits.max_bytes + FORM_SLACK))
    try:
        form = await bounded.form(max_files=1, max_fields=8, max_part_size=1024)
    except TooLarge:
        return too_large
    except HTTPException as error:  # a body that is not the multipart form it says it is
        return problem(f"the form cannot be read: {error.detail}", HTTPStatus.BAD_REQUEST)
    except ClientDisconnect:
        return problem("the upload did not arrive whole", HTTPStatus.BAD_REQUEST)
    try:
        upload, latitude, longitude, day = fields(form)
        found = await run_in_threadpool(identifier.identify, upload.file, latitude, longitude, day)
    except IdentifyBusy as busy:
        return problem(str(busy), busy.status, headers={"Retry-After": str(busy.retry_after)})
    except IdentifyError as error:
        return problem(str(error), error.status)
    finally:
        await form.close()
    return JSONResponse(
        {
            "species": [
                {
                    "scientific_name": i.scientific_name,
                    "common_name": i.common_name,
                    "confidence": round(i.confidence, 4),
                }
                for i in found
            ]
        }
    )


def fields(form: FormData) -> tuple[UploadFile, float | None, float | None, date | None]:
    """The upload and the optional place and day of the form; IdentifyError for a field that is wrong."""
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        raise IdentifyError(f"send the recording as a file in the form field 'file' ({', '.join(FORMATS)})")
    return upload, number(form, "latitude"), number(form, "longitude"), day_of(form)


def text_field(form: FormData, name: str) -> str | None:
    value = form.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise IdentifyError(f"the form field {name!r} is a file; it should be text")
    return value.strip() or None


def number(form: FormData, name: str) -> float | None:
    text = text_field(form, name)
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        raise IdentifyError(f"{name} {text[:40]!r} is not a number (degrees, e.g. 5.07)") from None


def day_of(form: FormData) -> date | None:
    text = text_field(form, "date")
    if text is None:
        return None
    try:
        if not DAY.fullmatch(text):
            raise ValueError
        return date.fromisoformat(text)
    except ValueError:
        raise IdentifyError(f"date {text[:40]!r} is not a day written YYYY-MM-DD") from None


def declared_length(request: Request) -> int:
    try:
        return int(request.headers.get("content-length", "0"))
    except ValueError:
        return 0


def bounded_receive(receive: Callable[[], Awaitable[Message]], limit: int) -> Callable[[], Awaitable[Message]]:
    """`receive`, raising TooLarge once more than `limit` bytes of body have arrived (a body sent in chunks
    declares no length)."""
    received = 0

    async def bounded() -> Message:
        nonlocal received
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > limit:
                raise TooLarge
        return message

    return bounded


def problem(message: str, status: int, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=int(status), headers=headers)
