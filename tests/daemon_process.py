"""`edge run` as a subprocess, as systemd runs it: its JSON log lines and its sd_notify messages collected."""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def write_config(path: Path, data_dir: Path, source: dict, **sections) -> Path:
    """A TOML configuration: `source` is the [source] table, `sections` other tables (or top-level values)."""
    lines = [f'data_dir = "{data_dir}"'] + ([] if "box_id" in sections else ['box_id = "test-box"'])
    tables = {"health": {"interval_seconds": 1}, **sections, "source": source}
    for name, table in tables.items():
        if not isinstance(table, dict):
            lines.insert(0, f"{name} = {toml_value(table)}")
            continue
        lines.append(f"\n[{name}]")
        lines += [f"{key} = {toml_value(value)}" for key, value in table.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + " }"
    return json.dumps(str(value))


class DaemonProcess:
    """Starts `edge run --config CONFIG [args]` with a NOTIFY_SOCKET of its own and WATCHDOG_USEC set."""

    def __init__(self, config: Path, *args: str, watchdog_seconds: float = 2.0, env: dict | None = None):
        # A short path of its own: unix socket paths are limited to 107 bytes.
        self.notify_path = Path(tempfile.mkdtemp(prefix="edge-")) / "notify"
        self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.notify.bind(str(self.notify_path))
        self.notify.settimeout(0.2)
        self.notifications: queue.Queue = queue.Queue()
        self.lines: list[dict] = []
        self.new_lines: queue.Queue = queue.Queue()
        environ = {**os.environ, "NOTIFY_SOCKET": str(self.notify_path),
                   "WATCHDOG_USEC": str(int(watchdog_seconds * 1e6)), **(env or {})}
        environ.pop("WATCHDOG_PID", None)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "edge", "run", "--config", str(config), *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environ, cwd=ROOT,
        )
        self._threads = [threading.Thread(target=self._read_stdout, daemon=True),
                         threading.Thread(target=self._read_notify, daemon=True)]
        for thread in self._threads:
            thread.start()

    def _read_stdout(self) -> None:
        for line in self.process.stdout:
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                entry = {"event": "non_json_output", "line": line.rstrip()}
            self.lines.append(entry)
            self.new_lines.put(entry)

    def _read_notify(self) -> None:
        while True:
            try:
                message = self.notify.recv(4096).decode()
            except socket.timeout:
                if self.process.poll() is not None:
                    return
                continue
            except OSError:
                return
            for item in message.splitlines():
                self.notifications.put(item)

    def wait_notification(self, prefix: str, timeout: float = 120.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                item = self.notifications.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                break
            if item.startswith(prefix):
                return item
        raise AssertionError(f"no {prefix!r} notification within {timeout} s; stderr:\n{self.stderr_now()}")

    def wait_log(self, event: str, timeout: float = 120.0, **fields) -> dict:
        """The first log entry (seen so far or arriving within `timeout`) named `event` with these fields."""
        deadline = time.monotonic() + timeout
        for entry in list(self.lines):
            if entry.get("event") == event and all(entry.get(k) == v for k, v in fields.items()):
                return entry
        while time.monotonic() < deadline:
            try:
                entry = self.new_lines.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                break
            if entry.get("event") == event and all(entry.get(k) == v for k, v in fields.items()):
                return entry
            if self.process.poll() is not None and self.new_lines.empty():
                break
        raise AssertionError(f"no log {event} {fields} within {timeout} s; exit {self.process.poll()}; "
                             f"last lines: {self.lines[-10:]}\nstderr:\n{self.stderr_now()}")

    def logged(self, event: str) -> list[dict]:
        return [entry for entry in self.lines if entry.get("event") == event]

    def stderr_now(self) -> str:
        if self.process.poll() is None:
            return "(still running)"
        return self.process.stderr.read() if self.process.stderr else ""

    def terminate(self, timeout: float = 60.0) -> tuple[int, float]:
        """SIGTERM; returns (exit code, seconds it took to exit)."""
        began = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=timeout)
        return code, time.monotonic() - began

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(timeout=10)

    def wait_exit(self, timeout: float = 900.0) -> int:
        return self.process.wait(timeout=timeout)

    def close(self) -> None:
        if self.process.poll() is None:
            self.kill()
        for thread in self._threads:
            thread.join(timeout=5)
        self.notify.close()
        shutil.rmtree(self.notify_path.parent, ignore_errors=True)


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
