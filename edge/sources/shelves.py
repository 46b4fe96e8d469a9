"""Where a watched folder's files go once analysed: the done folder, the quarantine folder (with a note of the
error), nowhere (deleted), or they stay. A file keeps its place below the folder and its own name's bytes.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import structlog

from edge.storage.file_names import fitted, shown

log = structlog.get_logger(__name__)


class Shelves:
    def __init__(self, root: Path, done_dir: Path, quarantine_dir: Path, after: str):
        self.root, self.done_dir, self.quarantine_dir, self.after = root, done_dir, quarantine_dir, after

    def put_away(self, path: Path, status: str, error: str | None) -> None:
        """Quarantine a damaged file with a note of its error; move, delete or keep a done one."""
        relative = path.relative_to(self.root)
        name = shown(relative.as_posix())
        try:
            if status == "quarantined":
                target = free_name(self.quarantine_dir / relative)
                move(path, target)
                note = target.with_name(fitted(target.name, ".error.txt"))
                note.write_text(f"{name}: {error}\n", encoding="utf-8")
            elif self.after == "move":
                move(path, free_name(self.done_dir / relative))
            elif self.after == "delete":
                path.unlink()
        except OSError as error:  # a full or read-only card: the file stays, and is known to be finished
            log.error("recording_not_put_away", file=name, status=status, error=str(error))


def free_name(target: Path) -> Path:
    """`target`, or `name-1.ext`, `name-2.ext`... when a file of that name is already there (the stem cut short
    when the name would be too long)."""
    n = 0
    candidate = target.with_name(fitted(target.stem, target.suffix))
    while candidate.exists():
        n += 1
        candidate = target.with_name(fitted(target.stem, f"-{n}{target.suffix}"))
    return candidate


def move(path: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(path), str(target))
