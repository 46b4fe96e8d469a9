"""`edge station` as a ranger runs it, in a subprocess, and how tests read its database."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

from broker import Mosquitto

ROOT = Path(__file__).resolve().parents[1]


def query(db_path: Path, sql: str, *params) -> list[sqlite3.Row]:
    db = sqlite3.connect(f"{db_path.as_uri()}?mode=ro", uri=True)
    db.row_factory = sqlite3.Row
    try:
        return db.execute(sql, params).fetchall()
    except sqlite3.OperationalError:  # not created yet
        return []
    finally:
        db.close()


def wait_for(check, timeout: float = 60.0, what: str = "condition"):
    """Polls `check` until it returns something truthy; that value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"{what}: not within {timeout} s")


def wait_for_progress(measure, goal, stall: float = 120.0, what: str = "progress", poll: float = 0.5):
    """Polls `measure()` until it reaches `goal`; fails only when its value has not changed for `stall` seconds
    (slow is fine, stuck is not). The last value."""
    value, since = measure(), time.monotonic()
    while value < goal:
        time.sleep(poll)
        now = measure()
        if now != value:
            value, since = now, time.monotonic()
        elif time.monotonic() - since > stall:
            raise AssertionError(f"{what}: stuck at {value} (of {goal}) for {stall} s")
    return value


class StationProcess:
    """`python -m edge station --no-table` with its JSON log lines collected."""

    def __init__(self, broker: Mosquitto, db_path: Path, *args: str, port: int | None = None):
        self.process = subprocess.Popen(
            [sys.executable, "-m", "edge", "station", "--broker", f"127.0.0.1:{port or broker.port}",
             "--db", str(db_path),
             "--client-id", "station-test", "--no-table", *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
        self.lines: list[dict] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.append(json.loads(line) if line.startswith("{") else {"event": "text", "line": line})

    def wait_log(self, name: str, timeout: float = 60.0, **fields) -> dict:
        def found():
            return next((e for e in list(self.lines) if e.get("event") == name
                         and all(e.get(k) == v for k, v in fields.items())), None)
        try:
            return wait_for(found, timeout, f"log {name} {fields}")
        except AssertionError:
            raise AssertionError(f"no {name} {fields}; exit {self.process.poll()}; lines {self.lines[-8:]}")

    def terminate(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=60)

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(timeout=10)
