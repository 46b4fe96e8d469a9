"""An expert's labels, read from the files annotation tools write: Raven selection tables, Audacity label
tracks, or a CSV of recording, start, end and species. Species are given as they are written (scientific or
common names, or codes such as "GWWA" mapped by a file); `names` turns them into the models' scientific names.

Every file is untrusted: a row that cannot be read is named with its file and line, never skipped in silence.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

from edge.evaluation.matching import Span

RAVEN_SPECIES_COLUMNS = ("Species", "Scientific Name", "Common Name", "Annotation", "Label", "Class")
CSV_COLUMNS = {"file", "start", "end", "species"}


class LabelError(ValueError):
    """A labels file that cannot be read, named with its line."""


def read_labels(path: Path, names: Callable[[str], str] = str) -> list[Span]:
    """The labels in `path` (a file, or a folder of them), their species through `names`."""
    files = (
        sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in (".txt", ".csv"))
        if path.is_dir()
        else [path]
    )
    return [replace(s, species=names(s.species)) for f in files for s in read_file(f)]


def read_file(path: Path) -> Iterator[Span]:
    text = path.read_text(encoding="utf-8-sig", errors="replace")
    first = text.splitlines()[0] if text.strip() else ""
    if "Begin Time (s)" in first:
        yield from raven(path, text)
    elif path.suffix.lower() == ".csv":
        yield from csv_rows(path, text)
    else:
        yield from audacity(path, text)


def raven(path: Path, text: str) -> Iterator[Span]:
    """A Raven selection table: one recording's, named by the table's own name (`X.Table.1.selections.txt`
    labels `X`) unless a "Begin File" column names it."""
    rows = csv.DictReader(text.splitlines(), delimiter="\t")
    column = next((c for c in RAVEN_SPECIES_COLUMNS if c in (rows.fieldnames or ())), None)
    if column is None:
        raise LabelError(f"{path.name}: no species column (one of {', '.join(RAVEN_SPECIES_COLUMNS)})")
    recording = path.name.split(".")[0]
    for line, row in enumerate(rows, start=2):
        if row.get("View", "Spectrogram 1").startswith("Waveform"):
            continue  # Raven lists a selection once per view
        name = Path(row["Begin File"]).stem if row.get("Begin File") else recording
        found = span(path, line, name, row.get("Begin Time (s)"), row.get("End Time (s)"), row.get(column))
        low, high = band(row.get("Low Freq (Hz)"), row.get("High Freq (Hz)"))
        yield replace(found, low_hz=low, high_hz=high)


def band(low: str | None, high: str | None) -> tuple[float | None, float | None]:
    """A box's band when it has one (a table whose boxes span 0 to 0 Hz gives none)."""
    try:
        bottom, top = float(low or ""), float(high or "")
    except ValueError:
        return None, None
    return (bottom, top) if 0 <= bottom < top and math.isfinite(top) else (None, None)


def audacity(path: Path, text: str) -> Iterator[Span]:
    """An Audacity label track (start, end, label, tab-separated): the recording of the same name."""
    for line, row in enumerate(text.splitlines(), start=1):
        if not row.strip() or row.startswith("\\"):  # "\" lines hold a label's frequencies
            continue
        parts = row.split("\t")
        if len(parts) < 3:
            raise LabelError(f"{path.name} line {line}: not an Audacity label (start, end, label)")
        yield span(path, line, path.stem, parts[0], parts[1], parts[2])


def csv_rows(path: Path, text: str) -> Iterator[Span]:
    rows = csv.DictReader(text.splitlines())
    fields = {f.strip().lower() for f in rows.fieldnames or ()}
    if not CSV_COLUMNS <= fields:
        raise LabelError(f"{path.name}: the columns must include {', '.join(sorted(CSV_COLUMNS))}")
    for line, row in enumerate(rows, start=2):
        row = {k.strip().lower(): v for k, v in row.items() if k}
        yield span(path, line, Path(row["file"]).stem, row["start"], row["end"], row["species"])


def span(path: Path, line: int, recording: str, start: str | None, end: str | None, species: str | None) -> Span:
    try:
        begin, finish = float(start or ""), float(end or "")
    except ValueError:
        raise LabelError(f"{path.name} line {line}: start and end must be seconds, not {start!r}, {end!r}") from None
    if not (math.isfinite(begin) and math.isfinite(finish)) or begin < 0 or finish < begin:
        raise LabelError(f"{path.name} line {line}: {begin} to {finish} s is not a stretch of a recording")
    if not species or not species.strip():
        raise LabelError(f"{path.name} line {line}: no species")
    return Span(recording, begin, finish, species.strip())
