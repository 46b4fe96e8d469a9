"""What the box and the station wrote: the daemon's daily JSONL files and the station's SQLite database."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

SPINETAIL = "Cranioleuca erythrops"  # Red-faced Spinetail: the bird of tests/data/maad_spinetail.wav


def read_records(records_dir: Path, kind: str = "events", complete_only: bool = False) -> list[dict]:
    """The daily JSONL records; `complete_only` skips a last line still being written (for polling a running
    daemon)."""
    found = []
    for path in sorted((records_dir / kind).glob("*.jsonl")):
        text = path.read_text()
        if complete_only:
            text = text[: text.rfind("\n") + 1]
        found += [json.loads(line) for line in text.splitlines() if line.strip()]
    return found


def comparable(records, source=None):
    """What two analyses of the same audio must agree on, whatever file name it had."""
    return sorted(
        (r["kind"], r["scientific_name"], r["start_s"], r["end_s"], r["confidence"])
        for r in records
        if source is None or r["source"] == source
    )


def query(db_path: Path, sql: str, *params) -> list[sqlite3.Row]:
    """Rows of the station's database, read-only; none while it is not created yet."""
    db = sqlite3.connect(f"{db_path.as_uri()}?mode=ro", uri=True)
    db.row_factory = sqlite3.Row
    try:
        return db.execute(sql, params).fetchall()
    except sqlite3.OperationalError:  # not created yet
        return []
    finally:
        db.close()
