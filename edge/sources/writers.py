"""Which files some process has open for writing, from /proc: a recorder still writing keeps its file.

Each process's open files are the links in /proc/<pid>/fd; /proc/<pid>/fdinfo/<fd> gives the mode it was
opened in. Only the processes whose /proc entries this one may read are seen: those of the same user, or all
of them for root with CAP_SYS_PTRACE. Processes hidden by `hidepid` or systemd's `ProtectProc=invisible` are
not listed at all; those listed but unreadable are counted as `hidden`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

PROC = "/proc"
WRITE_MODES = (os.O_WRONLY, os.O_RDWR)
# Open files that are no recording: devices, the kernel's own files.
NOT_RECORDINGS = ("/dev/", "/proc/", "/sys/")


@dataclass(frozen=True)
class OpenFiles:
    """`writing`: (st_dev, st_ino) of every file open for writing in a process that could be read;
    `hidden`: processes whose open files could not be read."""

    writing: frozenset[tuple[int, int]]
    hidden: int


def open_for_writing(proc: str | None = None) -> OpenFiles | None:
    """The files open for writing now, or None when /proc cannot be read at all."""
    proc = proc or PROC
    try:
        pids = [entry.name for entry in os.scandir(proc) if entry.name.isdigit()]
    except OSError:
        return None
    writing, hidden = set(), 0
    for pid in pids:
        try:
            writing |= _written_by(f"{proc}/{pid}")
        except FileNotFoundError:  # the process ended meanwhile
            continue
        except OSError:  # another user's process
            hidden += 1
    return OpenFiles(frozenset(writing), hidden)


def _written_by(process: str) -> set[tuple[int, int]]:
    found = set()
    for fd in os.listdir(f"{process}/fd"):
        link = f"{process}/fd/{fd}"
        try:
            target = os.readlink(link)
            if not target.startswith("/") or target.startswith(NOT_RECORDINGS) or not _writes(process, fd):
                continue
            st = os.stat(link)  # the open file itself, wherever it has been moved or linked since
        except OSError:  # closed meanwhile
            continue
        found.add((st.st_dev, st.st_ino))
    return found


def _writes(process: str, fd: str) -> bool:
    with open(f"{process}/fdinfo/{fd}") as info:
        for line in info:
            if line.startswith("flags:"):
                return int(line.split()[1], 8) & os.O_ACCMODE in WRITE_MODES
    return False
