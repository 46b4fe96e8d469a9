"""The watched folder driven in-process, on real files: a source on a temporary inbox, and what it gave."""

from __future__ import annotations

import threading
import time

from edge.sources.folder import FolderConfig, FolderSource
from edge.sources.state import RecordingState


def make_source(tmp_path, done_dir=None, **config):
    inbox = tmp_path / "inbox"
    inbox.mkdir(exist_ok=True)
    state = RecordingState(tmp_path / "state.sqlite")
    source = FolderSource(
        FolderConfig(path=inbox, settle_seconds=0.2, rescan_seconds=0.5, **config),
        state,
        done_dir=done_dir or tmp_path / "done",
        quarantine_dir=tmp_path / "quarantine",
    )
    return source, inbox, state


def analysed(source, seconds=60.0, stop_after_chunks=None, expected=None, linger=0.0):
    """Stream ids of the recordings whose last chunk the source gave within `seconds` (or until `expected`
    recordings were given, then for `linger` seconds more: what comes then is one too many; more cannot be
    ruled out, only fewer). The timeout only ends a test that fails; a passing one waits on progress."""
    stop = threading.Event()
    finished, chunks = [], 0
    deadline = time.monotonic() + seconds
    source.start()
    try:
        for chunk in source.chunks(stop):
            if chunk is not None:
                chunks += 1
                if chunk.last:
                    finished.append(chunk.stream.id)
                if stop_after_chunks is not None and chunks >= stop_after_chunks:
                    stop.set()
                if expected is not None and len(finished) >= expected and deadline > time.monotonic() + linger:
                    deadline = time.monotonic() + linger
            if time.monotonic() > deadline:
                stop.set()
    finally:
        source.stop()
    return finished
