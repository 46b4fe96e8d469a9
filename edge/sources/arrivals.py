"""Files noticed in a watched folder, on their way to being complete: what is known of each (size, times, who
wrote it), and the notifications (inotify) that tell the loop a file was written to or renamed in.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from watchdog.events import FileSystemEvent, FileSystemEventHandler

from edge.sources.recording_time import recorder_of
from edge.storage.file_names import shown


@dataclass
class Candidate:
    """A file seen in the folder, waiting to be complete."""

    path: Path
    size: int
    mtime_ns: int
    file_id: tuple[int, int]  # st_dev, st_ino: how /proc names the file a process has open
    changed_at: float  # monotonic time it was last written to, or its size or mtime last changed
    moved_in: bool  # renamed into the folder since that change: written elsewhere, complete
    held_open: bool = False  # settled, but a process has it open for writing
    sort_time: datetime | None = None
    sort_known: bool = False
    recorder: str | None = field(init=False)  # who wrote it, from its name (see recorder_of)

    def __post_init__(self) -> None:
        self.recorder = recorder_of(shown(self.path.as_posix()))

    @classmethod
    def seen(cls, path: Path, st: os.stat_result, now: float, moved_in: bool = False) -> Candidate:
        return cls(path, st.st_size, st.st_mtime_ns, (st.st_dev, st.st_ino), now, moved_in)


class Notifications(FileSystemEventHandler):
    """Runs on the watchdog thread: hands paths to the loop through a bounded queue, never blocks. A file
    written to (created, modified, closed after writing) comes as "written", one renamed in as "moved"."""

    def __init__(self, paths: queue.Queue, overflowed: threading.Event):
        self.paths = paths
        self.overflowed = overflowed

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.is_directory or event.event_type not in ("created", "modified", "closed", "moved"):
            return
        path, how = (event.dest_path, "moved") if event.event_type == "moved" else (event.src_path, "written")
        try:
            self.paths.put_nowait((os.fsdecode(path), how))
        except queue.Full:
            self.overflowed.set()  # the loop rescans the folder instead


def walk(root: Path) -> Iterator[Path]:
    """Every file under `root`; folders that vanish or cannot be read during the walk are passed over."""
    for folder, _, files in os.walk(root):
        for name in sorted(files):
            yield Path(folder) / name
