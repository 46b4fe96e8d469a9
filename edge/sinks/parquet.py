"""Detections as a Parquet dataset, partitioned Hive-style by the UTC date and the recorder.

`folder/date=2019-05-22/recorder=S4A03895/part-000003.parquet`: a season of recordings becomes a folder that
DuckDB, pyarrow or Spark read as one table, and a query that names a date or a recorder opens only the files
of that partition. A batch's files are named by the caller, and written under a temporary name first: a
killed replay never leaves half a file under the final name.

pyarrow is imported only when a sink is made: the box never writes Parquet and does without it.
"""

from __future__ import annotations

import os
import re
from collections import defaultdict
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any

from edge.types import Detection
from edge.wire.records import FIELDS, finite, to_record

RecorderOf = Callable[[str], str | None]

UNKNOWN = "unknown"
UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
LONGEST_VALUE = 100  # characters of a partition value: "recorder=" and it stay well inside a file name's 255 bytes
TIMES = ("start_utc", "end_utc")
NUMBERS = ("start_s", "end_s", "confidence")


class ParquetUnavailable(ValueError):
    """The parquet format was asked for where pyarrow is not installed."""


def schema(pa: Any) -> Any:
    """The one schema of every file of a dataset (the partition columns live in the folder names)."""
    types = {name: pa.float64() for name in NUMBERS} | {name: pa.timestamp("ms", tz="UTC") for name in TIMES}
    return pa.schema([pa.field(name, types.get(name, pa.string())) for name in FIELDS])


def safe_value(value: str) -> str:
    """`value` as a folder name that is one folder, on any file system: every character but [A-Za-z0-9._-]
    as "_", cut to LONGEST_VALUE, never empty, never "." or ".."."""
    safe = UNSAFE.sub("_", value)[:LONGEST_VALUE]
    return safe if safe.strip(".") else safe.replace(".", "_") or "_"


def date_of(record: dict) -> str:
    """The UTC date a detection starts on, "unknown" when its recording time is."""
    start = record["start_utc"]
    return datetime.fromisoformat(start).date().isoformat() if start else UNKNOWN


def recorder_name(stream_id: str, path: Path | None, recorder_of: RecorderOf | None) -> str:
    """The recorder of a stream: the serial a recorder writes before the time in its file names (a Song
    Meter's S4A03895), else the name of the recording's folder (AudioMoths name files by time alone, and
    are told apart by the folder each card is copied to), else "unknown"."""
    found = recorder_of(stream_id) if recorder_of else None
    serial = found.rpartition("/")[2].strip("_-") if found is not None else ""
    if serial:
        return serial
    parent = path.parent if path is not None else PurePosixPath(stream_id).parent
    return parent.name or UNKNOWN


class ParquetSink:
    """Detections written as Parquet files under `folder`, a file per partition for each batch of runs.

    Rows are held in memory: those of the run being emitted, and those of the runs ended (`end_run`) since
    the last `write`, which writes the latter as `name`.parquet in each of their partitions (replacing a file
    of that name). Batching runs keeps the files few and large, as readers want them, where a file per run
    would make one per recording of an archive. Rows not written by `write` when the sink is closed belong to
    no committed run and are dropped. `paths` maps stream ids to their files and `recorder_of` tells a
    recorder from a file name (see `recorder_name`)."""

    def __init__(self, folder: Path, paths: Mapping[str, Path] | None = None, recorder_of: RecorderOf | None = None):
        self.pa, self.pq = _pyarrow()
        self.schema = schema(self.pa)
        self.folder = folder
        self.paths = dict(paths or {})
        self.recorder_of = recorder_of
        self._recorders: dict[str, str] = {}
        self._run: list[tuple[tuple[str, str], dict]] = []
        self._batch: dict[tuple[str, str], list[dict]] = defaultdict(list)
        self.rows = 0  # in the batch

    def emit(self, detection: Detection) -> None:
        record = finite(to_record(detection))
        self._run.append(((safe_value(date_of(record)), self._recorder(record["source"])), record))

    def end_run(self) -> None:
        """The run's detections are all emitted: they join the batch."""
        for partition, record in self._run:
            self._batch[partition].append(record)
        self.rows += len(self._run)
        self._run.clear()

    def write(self, name: str) -> list[Path]:
        """The batch written as `name`.parquet in each of its partitions, and forgotten; the files written."""
        if safe_value(name) != name:
            raise ValueError(f"a batch's file name must be a plain name of [A-Za-z0-9._-], not {name!r}")
        written = [
            self._write(self.folder / f"date={date}" / f"recorder={recorder}", name, records)
            for (date, recorder), records in sorted(self._batch.items())
        ]
        self._batch.clear()
        self.rows = 0
        return written

    def close(self) -> None:
        self._run.clear()
        self._batch.clear()

    def _recorder(self, stream_id: str) -> str:
        if stream_id not in self._recorders:
            name = recorder_name(stream_id, self.paths.get(stream_id), self.recorder_of)
            self._recorders[stream_id] = safe_value(name)
        return self._recorders[stream_id]

    def _write(self, partition: Path, name: str, records: list[dict]) -> Path:
        columns = {field: [record[field] for record in records] for field in FIELDS}
        for field in TIMES:
            columns[field] = [None if t is None else datetime.fromisoformat(t) for t in columns[field]]
        table = self.pa.Table.from_pydict(columns, schema=self.schema)
        partition.mkdir(parents=True, exist_ok=True)
        temporary = partition / f".{name}.parquet.tmp"  # hidden, and not *.parquet: no reader takes it up
        self.pq.write_table(table, temporary)
        os.replace(temporary, final := partition / f"{name}.parquet")
        return final


def _pyarrow() -> tuple[Any, Any]:
    try:
        import pyarrow
        import pyarrow.parquet
    except ImportError as error:
        raise ParquetUnavailable("the parquet format needs pyarrow: pip install 'edge[archive]'") from error
    return pyarrow, pyarrow.parquet


def remove_dataset(folder: Path) -> None:
    """The files a ParquetSink wrote under `folder` (and the partition folders they leave empty) removed;
    anything else there is left alone."""
    for partition in list(folder.glob("date=*/recorder=*")):
        for file in [*partition.glob("*.parquet"), *partition.glob(".*.parquet.tmp")]:
            file.unlink()
        for emptied in (partition, partition.parent):
            if emptied.is_dir() and not any(emptied.iterdir()):
                emptied.rmdir()
