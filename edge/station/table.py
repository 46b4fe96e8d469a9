"""The live table a ranger watches: one line per box, read from the station's database."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime

from rich import box as boxes
from rich.markup import escape
from rich.table import Table

from edge.station.reviews import COUNTED
from edge.wire.records import iso

CAPTION = (
    "events, alerts: today's, without those a ranger marked false; gaps: sequence numbers never received; "
    "rejected: messages that were no valid record (edge station keeps the latest in its database's rejected "
    "table); rtf: CPU seconds per second of audio (above 1 a box falls behind); outbox: records waiting on the "
    "box; disk: free space"
)
STATUS_STYLES = {"online": "green", "offline": "bold red", "stopped": "yellow"}

BOXES = f"""
SELECT box, status, status_utc, status_received_utc, version, last_seen_utc, health_utc, health_received_utc,
    latitude, longitude, missing_seq, rejected,
    json_extract(health, '$.real_time_factor') AS real_time_factor,
    json_extract(health, '$.cpu_percent') AS cpu_percent,
    json_extract(health, '$.clock') AS clock,
    coalesce(CASE WHEN status = 'stopped' THEN (
        SELECT json_extract(payload, '$.outbox_pending') FROM records r
        WHERE r.box = b.box AND r.kind = 'status' AND json_extract(payload, '$.state') = 'stopped'
        ORDER BY received_utc DESC LIMIT 1) END,
        json_extract(health, '$.outbox_pending')) AS outbox_pending,
    json_extract(health, '$.disk_free_percent') AS disk_free_percent,
    json_extract(health, '$.disk_free_mb') AS disk_free_mb,
    (SELECT count(*) FROM detections d WHERE d.box = b.box AND NOT alert
        AND coalesce(start_utc, first_received_utc) >= :day AND {COUNTED}) AS events_today,
    (SELECT count(*) FROM detections d WHERE d.box = b.box AND alert
        AND coalesce(start_utc, first_received_utc) >= :day AND {COUNTED}) AS alerts_today
FROM boxes b WHERE :box IS NULL OR box = :box ORDER BY box
"""


@dataclass(frozen=True)
class BoxLine:
    """What the station knows of one box at a glance (the terminal table and the boxes page). Times are UTC
    ISO strings: status_utc the box's own (a last will's is that of its connection), *_received_utc the
    station's; missing_seq counts the sequence numbers never received between the lowest and the highest
    received (None before any). Events, alerts and species leave out what a ranger marked false. The health
    figures (rtf to disk) are the newest health record's, as the box sent them: checked for type and range,
    but from the network."""

    box: str
    status: str | None
    status_utc: str | None
    status_received_utc: str | None
    version: str | None
    last_seen_utc: str | None
    health_utc: str | None
    health_received_utc: str | None
    latitude: float | None
    longitude: float | None
    recent_species: tuple[str, ...]
    events_today: int
    alerts_today: int
    missing_seq: int | None
    rejected: int
    real_time_factor: float | None
    cpu_percent: float | None
    clock: str | None
    outbox_pending: int | None
    disk_free_percent: float | None
    disk_free_mb: float | None

    @property
    def place(self) -> tuple[float, float] | None:
        """(latitude, longitude), when the box's status gave them."""
        if self.latitude is None or self.longitude is None:
            return None
        return self.latitude, self.longitude


def local_day_start(now: datetime) -> datetime:
    """Midnight of the station's local day, in UTC: "today" is the ranger's day."""
    return now.astimezone().replace(hour=0, minute=0, second=0, microsecond=0).astimezone(UTC)


def box_lines(db: sqlite3.Connection, now: datetime, box: str | None = None) -> list[BoxLine]:
    """Every box's line, by box id; or only `box`'s."""
    rows = db.execute(BOXES, {"day": iso(local_day_start(now)), "box": box}).fetchall()
    return [BoxLine(recent_species=recent_species(db, row["box"]), **dict(row)) for row in rows]


def recent_species(db: sqlite3.Connection, box: str, count: int = 3) -> tuple[str, ...]:
    """The last `count` distinct species the box heard, newest first (in the box's order: a backlog that arrives
    late stays behind what the box sent live), leaving out detections marked false."""
    names: list[str] = []
    for (name,) in db.execute(
        "SELECT coalesce(common_name, scientific_name) FROM detections d "
        f"WHERE box = ? AND {COUNTED} ORDER BY first_seq DESC LIMIT 200",
        (box,),
    ):
        if name and name not in names:
            names.append(name)
            if len(names) == count:
                break
    return tuple(names)


def age(moment_utc: str | None, now: datetime) -> str:
    if moment_utc is None:
        return "never"
    seconds = max(0.0, (now - datetime.fromisoformat(moment_utc)).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f} {unit}"
    return f"{seconds:.0f} s"


def shown(value: object, pattern: str = "{}") -> str:
    if value is None:
        return "–"
    try:
        return pattern.format(value)
    except (TypeError, ValueError):  # a health field of another type than expected: shown as it came
        return str(value)


def render(lines: list[BoxLine], now: datetime) -> Table:
    # No vertical rules: the species keep room on an 80-column terminal.
    table = Table(
        title=f"edge station, {now.astimezone():%Y-%m-%d %H:%M:%S}",
        caption=CAPTION,
        box=boxes.SIMPLE_HEAD,
        collapse_padding=True,
        pad_edge=False,
    )
    for column in (
        "box",
        "status",
        "seen",
        "recent species",
        "events",
        "alerts",
        "gaps",
        "rejected",
        "rtf",
        "outbox",
        "disk",
    ):
        species = column == "recent species"
        table.add_column(
            column,
            justify="left" if column in ("box", "status") or species else "right",
            no_wrap=not species,
            min_width=14 if species else None,
        )
    for line in lines:
        status = shown(line.status, f"[{STATUS_STYLES.get(line.status or '', 'default')}]{{}}[/]")
        missing = shown(line.missing_seq)
        if line.missing_seq:
            missing = f"[bold red]{missing}[/]"
        alerts = f"[bold red]{line.alerts_today}[/]" if line.alerts_today else "0"
        rejected = f"[bold red]{line.rejected}[/]" if line.rejected else "0"
        heard = escape(", ".join(line.recent_species))
        table.add_row(
            escape(line.box),
            status,
            age(line.last_seen_utc, now),
            heard,
            str(line.events_today),
            alerts,
            missing,
            rejected,
            shown(line.real_time_factor, "{:.2f}"),
            shown(line.outbox_pending),
            shown(line.disk_free_percent, "{:.0f}%"),
        )
    if not lines:
        table.add_row("(no box heard yet)", *[""] * 10)
    return table
