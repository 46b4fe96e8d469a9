"""When a recording started, from what recorders write: AudioMoth WAV comments and recorder file names."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from pathlib import Path

# AudioMoth firmware: "Recorded at 10:25:00 04/04/2020 (UTC) by AudioMoth ..." or "(UTC+1)", "(UTC-03:30)".
AUDIOMOTH_COMMENT = re.compile(
    r"Recorded at (\d{2}):(\d{2}):(\d{2}) (\d{2})/(\d{2})/(\d{4}) \(UTC(?:([+-])(\d{1,2})(?::?(\d{2}))?)?\)"
)
# Song Meter "S4A03895_20190522_120000.wav", AudioMoth "20200404_102500.WAV", optional "_+0200"-style zone.
FILE_NAME = re.compile(r"(?:^|[_-])(\d{8})[_-]?(\d{6})(?:[_-]?([+-]\d{4}|Z))?(?:[_.-]|$)")


def from_comment(comment: str) -> datetime | None:
    """The start time an AudioMoth wrote in its WAV comment, in UTC, or None."""
    match = AUDIOMOTH_COMMENT.search(comment or "")
    if not match:
        return None
    hour, minute, second, day, month, year, sign, off_h, off_m = match.groups()
    local = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second))
    offset = timedelta(hours=int(off_h or 0), minutes=int(off_m or 0)) * (-1 if sign == "-" else 1)
    return local.replace(tzinfo=timezone(offset)).astimezone(UTC)


def from_file_name(path: Path, naive_zone: tzinfo = UTC) -> datetime | None:
    """The start time in a recorder's file name, in UTC, or None.

    Names carry no zone unless they end in one; `naive_zone` says which zone the recorder's clock was set to.
    """
    match = FILE_NAME.search(path.stem)
    if not match:
        return None
    date, time, zone = match.groups()
    try:
        local = datetime.strptime(date + time, "%Y%m%d%H%M%S")
    except ValueError:
        return None
    if zone == "Z":
        tz: tzinfo = UTC
    elif zone:
        sign = -1 if zone[0] == "-" else 1
        tz = timezone(sign * timedelta(hours=int(zone[1:3]), minutes=int(zone[3:5])))
    else:
        tz = naive_zone
    return local.replace(tzinfo=tz).astimezone(UTC)


def recording_start(path: Path, comment: str | None, naive_zone: tzinfo = UTC) -> datetime | None:
    """Header first (it carries its zone), then the file name."""
    return from_comment(comment or "") or from_file_name(path, naive_zone)


def recorder_of(name: str) -> str | None:
    """Which recorder wrote a file, from its name: its folder and the part before the time in the name (a Song
    Meter's serial, "" for an AudioMoth), `"folder/S4A03895_"`; None when the name carries no recording time."""
    path = Path(name)
    match = FILE_NAME.search(path.stem)
    if not match or from_file_name(path) is None:
        return None
    return f"{path.parent.as_posix()}/{path.stem[: match.start()]}"
