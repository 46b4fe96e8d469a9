"""A small tmpfs of its own, to fill up and to remount read-only: a real full or read-only disk, as a box's card
becomes one. Mounting needs root (CI runs as root); without it the tests that use it are skipped."""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

FILLER = ".filler"


class SmallDisk:
    def __init__(self, mountpoint: Path):
        self.path = mountpoint

    def fill(self) -> int:
        """Take every free byte (the filler file); returns how many were taken."""
        taken = 0
        fd = os.open(self.path / FILLER, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            while True:
                taken += os.write(fd, b"\0" * 4096)
        except OSError as error:
            assert error.errno == errno.ENOSPC, error
        finally:
            os.close(fd)
        return taken

    def free(self) -> None:
        (self.path / FILLER).unlink(missing_ok=True)

    def read_only(self, timeout: float = 60.0) -> None:
        self._remount("ro", timeout)

    def writable(self, timeout: float = 60.0) -> None:
        self._remount("rw", timeout)

    def _remount(self, mode: str, timeout: float) -> None:
        """Remount; a file open for writing makes the kernel refuse (busy) until it is closed: try again."""
        deadline = time.monotonic() + timeout
        while True:
            result = subprocess.run(["mount", "-o", f"remount,{mode}", str(self.path)], capture_output=True, text=True)
            if result.returncode == 0:
                return
            assert time.monotonic() < deadline and "busy" in result.stderr, result.stderr
            time.sleep(0.05)


@contextlib.contextmanager
def small_disk(path: Path, kilobytes: int) -> Iterator[SmallDisk]:
    """A tmpfs of `kilobytes` mounted at `path` (made if missing), unmounted at the end whatever happens."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs to fill and remount read-only needs root")
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={kilobytes}k,mode=0755", "tmpfs", str(path)], check=True)
    try:
        yield SmallDisk(path)
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)
