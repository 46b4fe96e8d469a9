"""`edge` as a user runs it: a command that exits, and the daemon and the station as subprocesses, as systemd
and a ranger run them, with their JSON log lines collected (and the daemon's sd_notify messages)."""

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

from support.broker import Mosquitto
from support.paths import ROOT
from support.waiting import wait_for


def edge_cli(*args: str, cwd: Path | None = None, check: bool = True) -> subprocess.CompletedProcess:
    """Run the `edge` command as a user would, in a subprocess."""
    result = subprocess.run([sys.executable, "-m", "edge", *args], capture_output=True, text=True, cwd=cwd, timeout=600)
    if check and result.returncode != 0:
        raise AssertionError(f"edge {' '.join(args)} exited {result.returncode}:\n{result.stderr}")
    return result


class EdgeProcess:
    """`python -m edge ARGS` running, its JSON log lines (stdout) collected as they come."""

    def __init__(self, *args: str, env: dict | None = None):
        self.lines: list[dict] = []
        self.new_lines: queue.Queue = queue.Queue()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "edge", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=ROOT,
        )
        self._threads = [threading.Thread(target=self._read_stdout, daemon=True)]
        self._threads[0].start()

    def _read_stdout(self) -> None:
        for line in self.process.stdout:
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                entry = {"event": "non_json_output", "line": line.rstrip()}
            self.lines.append(entry)
            self.new_lines.put(entry)

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
        raise AssertionError(
            f"no log {event} {fields} within {timeout} s; exit {self.process.poll()}; "
            f"last lines: {self.lines[-10:]}\nstderr:\n{self.stderr_now()}"
        )

    def wait_for(self, check, timeout: float = 60.0, what: str = "condition", poll: float = 0.05):
        """Polls `check` while the process runs (failing at once when it exits); its first truthy value."""

        def checked():
            if self.process.poll() is not None:
                raise AssertionError(
                    f"{what}: the process exited ({self.process.returncode}); last lines: "
                    f"{self.lines[-10:]}\nstderr:\n{self.stderr_now()}"
                )
            return check()

        return wait_for(checked, timeout, what, poll)

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


class DaemonProcess(EdgeProcess):
    """Starts `edge run --config CONFIG [args]` with a NOTIFY_SOCKET of its own and WATCHDOG_USEC set."""

    def __init__(self, config: Path, *args: str, watchdog_seconds: float = 2.0, env: dict | None = None):
        # A short path of its own: unix socket paths are limited to 107 bytes.
        self.notify_path = Path(tempfile.mkdtemp(prefix="edge-")) / "notify"
        self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.notify.bind(str(self.notify_path))
        self.notify.settimeout(0.2)
        self.notifications: queue.Queue = queue.Queue()
        environ = {
            **os.environ,
            "NOTIFY_SOCKET": str(self.notify_path),
            "WATCHDOG_USEC": str(int(watchdog_seconds * 1e6)),
            **(env or {}),
        }
        environ.pop("WATCHDOG_PID", None)
        super().__init__("run", "--config", str(config), *args, env=environ)
        self._threads.append(threading.Thread(target=self._read_notify, daemon=True))
        self._threads[-1].start()

    def _read_notify(self) -> None:
        while True:
            try:
                message = self.notify.recv(4096).decode()
            except TimeoutError:
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

    def close(self) -> None:
        super().close()
        self.notify.close()
        shutil.rmtree(self.notify_path.parent, ignore_errors=True)


class StationProcess(EdgeProcess):
    """`python -m edge station --no-table` against `broker` (or another `port` on 127.0.0.1)."""

    def __init__(self, broker: Mosquitto, db_path: Path, *args: str, port: int | None = None):
        super().__init__(
            "station",
            "--broker",
            f"127.0.0.1:{port or broker.port}",
            "--db",
            str(db_path),
            "--client-id",
            "station-test",
            "--no-table",
            *args,
        )

    def terminate(self, timeout: float = 60.0) -> int:
        """SIGTERM; the exit code."""
        return super().terminate(timeout)[0]


def alive_in_group(group: int) -> list[int]:
    """The processes of process group `group` still running (zombies left to a parent that does not reap them,
    such as a container's init, have exited and are not counted)."""
    alive = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # gone meanwhile
        state, process_group = fields[0], int(fields[2])
        if process_group == group and state != "Z":
            alive.append(int(stat.parent.name))
    return alive
