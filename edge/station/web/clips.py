"""A stored clip, to listen to in the page (with Range requests, so that the audio element can seek) or to
download under a readable name, and its spectrogram.

The file is found from the clips table by the box and id of the URL, never from the URL itself: a path made of
what a visitor typed could lead anywhere. A clip the box refused (it held speech), one pruned since or one whose
file has gone is answered 404 with the reason; a spectrogram that is not drawn (a file the station will not
decode), 422 with an image that says why.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from urllib.parse import quote

from fastapi import APIRouter, Request
from starlette.responses import FileResponse, PlainTextResponse, Response

from edge.station import spectrogram
from edge.station.export import export_name
from edge.station.web.auth import Viewer
from edge.station.web.site import Site

router = APIRouter()

CACHE = "private, max-age=86400"  # a clip never changes; pruned, it is gone


class NoClip(Exception):
    """Why a clip cannot be served."""


def clip_url(box: str, clip_id: str, suffix: str = "flac") -> str:
    """The address of a clip's FLAC or PNG (an id may hold any character: quoted, '/' too)."""
    return f"/clips/{quote(box, safe='')}/{quote(clip_id, safe='')}.{suffix}"


def stored_file(site: Site, box: str, clip_id: str) -> tuple[Path, sqlite3.Row]:
    """The clip's file and row; NoClip saying why there is none to serve."""
    with site.read() as db:
        row = db.execute("SELECT * FROM clips WHERE box = ? AND id = ?", (box, clip_id)).fetchone()
    if row is None:
        raise NoClip("no clip of this alert or event has reached the station")
    if row["refused"]:
        raise NoClip(f"the box kept no audio of this clip: it held {row['refused']}")
    if row["path"] is None:
        raise NoClip(f"the clip was deleted on {row['pruned_utc'] or 'a day unknown'}: clips are kept for a while")
    folder = site.clip_folder.resolve()
    path = (folder / row["path"]).resolve()
    if not path.is_relative_to(folder) or not path.is_file():
        raise NoClip("the clip's file is missing from the station's clip folder")
    return path, row


@router.get("/clips/{box}/{clip_id:path}.flac")
def clip_audio(request: Request, box: str, clip_id: str, user: Viewer, download: bool = False) -> Response:
    site: Site = request.app.state.site
    try:
        path, row = stored_file(site, box, clip_id)
    except NoClip as reason:
        return PlainTextResponse(str(reason), status_code=404)
    return FileResponse(
        path,
        media_type="audio/flac",
        filename=export_name(row) if download else None,
        content_disposition_type="attachment" if download else "inline",
        headers={"cache-control": CACHE},
    )


@router.get("/clips/{box}/{clip_id:path}.png")
def clip_spectrogram(request: Request, box: str, clip_id: str, user: Viewer) -> Response:
    """The spectrogram; for a clip that is not drawn (edge.station.spectrogram.Undrawable), 422 with an image
    saying why, which the page shows in the spectrogram's place."""
    site: Site = request.app.state.site
    try:
        path, _ = stored_file(site, box, clip_id)
        image = spectrogram.cached(path, site.drawing)
    except NoClip as reason:
        return PlainTextResponse(str(reason), status_code=404)
    except spectrogram.Undrawable as reason:
        return Response(spectrogram.placeholder(str(reason)), status_code=422, media_type="image/png")
    return Response(image, media_type="image/png", headers={"cache-control": CACHE})
