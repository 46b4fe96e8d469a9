"""`edge replay --format parquet`: the rows of the JSON lines, read back as a Hive-partitioned dataset by
pyarrow and by DuckDB, partitioned by the recordings' dates and recorders, the same for any number of workers; the
README's DuckDB query run on it."""

import json
import re
from datetime import date

import duckdb
import pyarrow.dataset as ds
import pytest

from edge.types import iso_ms
from edge.wire.records import FIELDS
from support.archive import make_archive
from support.paths import ROOT
from support.processes import edge_cli

RECORDINGS = ("S4A03895_20190522_120000.wav", "opso_birds_10s.wav")  # a Song Meter's, and one of unknown time


@pytest.fixture
def archive(data, tmp_path):
    """A Song Meter's recording, one of unknown time, and one cut into three files an AudioMoth in the
    folder "moth" would write back to back."""
    return make_archive(data, tmp_path / "archive", RECORDINGS)


def replayed(archive, out, workers):
    edge_cli(
        "replay",
        str(archive),
        "--out",
        str(out),
        "--format",
        "jsonl,parquet",
        f"--workers={workers}",
        "--fresh",
        "--quiet",
    )
    return out


def rows(records):
    """Records as comparable tuples: times as the JSON lines write them."""
    return {tuple(iso_ms(v) if hasattr(v, "isoformat") else v for v in (r[f] for f in FIELDS)) for r in records}


def jsonl_rows(out):
    return rows(json.loads(line) for line in (out / "detections.jsonl").read_text().splitlines())


def arrow_rows(out):
    table = ds.dataset(out / "parquet", partitioning="hive").to_table()
    return rows(table.to_pylist()), {(str(r["date"]), str(r["recorder"])) for r in table.to_pylist()}


def duckdb_rows(out):
    query = f"SELECT * FROM read_parquet('{out / 'parquet'}/**/*.parquet', hive_partitioning = true)"
    relation = duckdb.sql(query)
    records = [dict(zip(relation.columns, values, strict=True)) for values in relation.fetchall()]
    return rows(records), {(str(r["date"]), r["recorder"]) for r in records}


def written_files(out):
    return sorted(p.relative_to(out / "parquet").as_posix() for p in (out / "parquet").rglob("*") if p.is_file())


def test_parquet_holds_the_rows_of_the_json_lines_partitioned_by_date_and_recorder(archive, tmp_path, monkeypatch):
    out = replayed(archive, tmp_path / "edge-out", workers=1)
    expected = jsonl_rows(out)
    sources = {row[1] for row in expected}
    assert {"S4A03895_20190522_120000.wav", "opso_birds_10s.wav", "moth/20240501_060000.WAV"} <= sources
    partitions = {("2019-05-22", "S4A03895"), ("unknown", "archive"), ("2024-05-01", "moth")}
    assert arrow_rows(out) == (expected, partitions)
    assert duckdb_rows(out) == (expected, partitions)
    assert written_files(out) == [
        "date=2019-05-22/recorder=S4A03895/part-000001.parquet",
        "date=2024-05-01/recorder=moth/part-000001.parquet",
        "date=unknown/recorder=archive/part-000001.parquet",
    ]

    monkeypatch.chdir(tmp_path)  # the README's query reads edge-out/parquet
    (query,) = re.findall(r"```sql\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)
    weekly = duckdb.sql(query).fetchall()
    assert {(recorder, week) for recorder, week, *_ in weekly} == {
        ("S4A03895", date(2019, 5, 20)),
        ("moth", date(2024, 4, 29)),
    }
    assert ("moth", date(2024, 4, 29), "Red-faced Spinetail") in {tuple(row[:3]) for row in weekly}
    assert all(best >= 0.5 for *_, best in weekly)

    again = replayed(archive, tmp_path / "edge-out", workers=2)  # into the same folder, afresh: the old dataset goes
    assert jsonl_rows(again) == expected
    assert arrow_rows(again) == (expected, partitions)
    assert duckdb_rows(again) == (expected, partitions)
    assert written_files(again) == written_files(out), "one batch: a file per partition"
