"""Detections as `edge replay` writes them (JSON lines, CSV, a Parquet dataset) and as the daemon publishes its
events, read for an evaluation: each a Span of its recording (the file's name without folder or extension, as
labels name it)."""

from __future__ import annotations

import csv
import json
import math
import re
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any

from edge.evaluation.matching import Span


class DetectionsError(ValueError):
    """A detections file that cannot be read, named with its line."""


REPLAY_FILES = ("detections.jsonl", "detections.csv", "parquet")


def read_detections(path: Path) -> list[Span]:
    """The detections in `path`: a replay's output folder (its detections.jsonl, else detections.csv, else its
    Parquet dataset), one file, a Parquet dataset's folder, or the daemon's daily event files (see
    daily_event_files). Event records count once, at their end (`kind` "end"), spanning the whole event."""
    if path.is_dir() and (days := daily_event_files(path)):
        return read_daily_events(days)
    if path.is_dir():
        found = [path / name for name in REPLAY_FILES if (path / name).exists()]
        if not found and any(path.rglob("*.parquet")):
            found = [path]
        if not found:
            raise DetectionsError(f"{path}: no detections.jsonl, detections.csv or parquet/ of a replay")
        path = found[0]
    if path.is_dir() or path.suffix.lower() == ".parquet":
        records = parquet_records(path)
    else:
        records = csv_records(path) if path.suffix.lower() == ".csv" else jsonl_records(path)
    return [span for line, record in records if (span := to_span(path, line, record)) is not None]


def jsonl_records(path: Path) -> Iterator[tuple[int, dict]]:
    with path.open(encoding="utf-8") as f:
        for line, text in enumerate(f, start=1):
            if text.strip():
                try:
                    record = json.loads(text)
                except json.JSONDecodeError as error:
                    raise DetectionsError(f"{path.name} line {line}: not JSON ({error.msg})") from None
                yield line, record


def csv_records(path: Path) -> Iterator[tuple[int, dict]]:
    with path.open(encoding="utf-8", newline="") as f:
        yield from enumerate(csv.DictReader(f), start=2)


def parquet_records(path: Path) -> Iterator[tuple[int, dict]]:
    """The rows of a Parquet file or dataset (any partitioning), numbered from 1; only the columns a Span needs
    are read, so a season's dataset is read a column at a time."""
    try:
        import pyarrow as pa
        import pyarrow.dataset as ds
    except ImportError:
        raise DetectionsError(f"{path}: reading Parquet needs pyarrow (pip install 'edge[archive]')") from None
    columns = ["source", "start_s", "end_s", "confidence", "scientific_name"]
    try:
        table: Any = ds.dataset(path, format="parquet", partitioning="hive").to_table(columns=columns)
    except (pa.ArrowException, OSError) as error:
        raise DetectionsError(f"{path}: not a dataset of detections ({error})") from None
    yield from enumerate(table.to_pylist(), start=1)


def to_span(path: Path, line: int, record: dict) -> Span | None:
    if not isinstance(record, dict):
        raise DetectionsError(f"{path.name} line {line}: not a record")
    if str(record.get("kind", "end")) not in ("end", ""):
        return None  # an event's start and updates: the end record holds the whole event
    try:
        start, end, confidence = (float(record[k]) for k in ("start_s", "end_s", "confidence"))
        source, species = str(record["source"]), str(record["scientific_name"])
    except (KeyError, TypeError, ValueError) as error:
        raise DetectionsError(f"{path.name} line {line}: not a detection record ({error})") from None
    if not all(map(math.isfinite, (start, end, confidence))):
        raise DetectionsError(f"{path.name} line {line}: start, end and confidence must be numbers")
    return Span(PurePosixPath(source).stem, start, end, species, confidence)


DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


def daily_event_files(folder: Path) -> list[Path]:
    """The daemon's event files under `folder`: its data folder (records/events), its records folder (events)
    or the events folder itself, one file a UTC day (`<YYYY-MM-DD>.jsonl`, and `.csv` with the same records).
    The JSON lines when there are any, else the CSV files: never both, which would count each event twice."""
    for events in (folder / "records" / "events", folder / "events", folder):
        for suffix in (".jsonl", ".csv"):
            days = sorted(p for p in events.glob("*" + suffix) if DAY.fullmatch(p.stem))
            if days:
                return days
    return []


def read_daily_events(days: list[Path]) -> list[Span]:
    """The events that ended in the files of `days`, each once: a recording analysed again after a power cut
    gives its events under the same ids, and their end records again."""
    ends: dict[str, Span] = {}
    for day in days:
        records = csv_records(day) if day.suffix == ".csv" else jsonl_records(day)
        for line, record in records:
            if (span := to_span(day, line, record)) is not None:
                ends[str(record.get("id", f"{day.name}:{line}"))] = span
    return list(ends.values())
