"""The recordings of a replay cut into runs: stretches of the file list that can be analysed apart.

A file can continue the stream of the file before it (see `joins`), so a worker that analyses some files on
its own must have every file a stream may run through, in order, or its windows and detections differ from
one pass over the whole list. A run ends where the next file's recorder differs from the current one's: the
joiner then ends the held stream, whatever the files hold. A file that cannot be opened (or lacks the
channel asked for) never begins a stream and so never ends one; it stays in the run it falls in.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from edge.sources.files import AudioError, DecodeOptions, open_audio
from edge.sources.recording_time import recorder_of
from edge.storage.file_names import shown


@dataclass(frozen=True)
class Run:
    """The `index`-th run of a replay: (file, stream id) pairs in the order one pass would analyse them."""

    index: int
    recordings: tuple[tuple[Path, str], ...]


def joined_runs(recordings: list[tuple[Path, str]], options: DecodeOptions) -> list[Run]:
    """`recordings` (as `list_recordings` orders them) cut into runs; with joining off, a run per file."""
    groups: list[list[tuple[Path, str]]] = []
    current: object = None
    for path, stream_id in recordings:
        recorder = recorder_key(path, options)
        if groups and recorder is not None and recorder == current:
            groups[-1].append((path, stream_id))
        elif groups and not opens(path, options):
            groups[-1].append((path, stream_id))  # never begins a stream: cannot end the held one
        else:
            groups.append([(path, stream_id)])
            current = recorder
    return [Run(index, tuple(group)) for index, group in enumerate(groups)]


def recorder_key(path: Path, options: DecodeOptions) -> str | None:
    """The recorder whose stream the file may continue, as the joiner tells it; None: it continues none."""
    return recorder_of(shown(path.as_posix())) if options.join_gap is not None else None


def opens(path: Path, options: DecodeOptions) -> bool:
    """Whether `decode` gets as far as beginning the file's stream (the checks it makes before)."""
    try:
        with open_audio(path) as f:
            return options.channel is None or 0 <= options.channel < f.channels
    except AudioError:
        return False
