"""Consecutive files of one recorder as one stream.

AudioMoth and Song Meter units record continuously into back-to-back files. A file that begins where the
previous file of the same recorder ended (same folder and name prefix, same sample rate and channel count,
its start within `gap` seconds of that end) continues that stream: its chunks carry the previous file's
`Stream` and count on from its last sample, so windows straddle the boundary and an event spanning it stays
one event. The `last` chunk of a file is held back until the next file shows whether it continues the stream.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

import numpy as np
import structlog
from pydantic import Field

from edge.sources.recording_time import recorder_of
from edge.types import AudioChunk, Stream

log = structlog.get_logger(__name__)

JoinFiles = Annotated[
    bool, Field(description="Analyse a recorder's consecutive files (same folder and name prefix) as one stream.")
]
JoinGap = Annotated[
    float,
    Field(
        ge=0,
        le=60,
        description="A file continues the previous one when its recording time is within this many "
        "seconds of where that one ended.",
    ),
]


@dataclass(frozen=True)
class StreamEnd:
    """Where a recorder's stream stands after a file: `end` samples into `stream`, of `channels` channels."""

    recorder: str
    stream: Stream
    channels: int
    end: int

    def continued_by(self, recorder: str | None, own: Stream, channels: int, gap: float | None) -> bool:
        """Whether a file of `recorder`, whose own stream is `own`, begins where this one ended (`gap` None:
        files are not joined)."""
        end_utc = self.stream.utc_at(self.end)
        if gap is None or recorder != self.recorder or end_utc is None or own.started_utc is None:
            return False
        if (own.sample_rate, channels) != (self.stream.sample_rate, self.channels):
            return False
        return abs((own.started_utc - end_utc).total_seconds()) <= gap

    def as_row(self) -> tuple:
        """As `RecordingState` keeps it (its END_COLUMNS)."""
        s = self.stream
        return (
            self.recorder,
            s.id,
            s.instance,
            s.started_utc and s.started_utc.isoformat(),
            s.sample_rate,
            self.channels,
            self.end,
        )

    @classmethod
    def from_row(cls, row: tuple | None) -> StreamEnd | None:
        if row is None:
            return None
        recorder, stream_id, instance, started, rate, channels, end = row
        started_utc = datetime.fromisoformat(started) if started else None
        return cls(recorder, Stream(stream_id, rate, started_utc, instance), channels, end)

    def last_chunk(self) -> AudioChunk:
        return AudioChunk(stream=self.stream, start=self.end, samples=np.zeros(0, np.float32), last=True)


class Joiner:
    """Decides which stream each file's chunks belong to. `gap` None joins nothing (each file a stream).

    `held` is the stream whose `last` chunk is held back. `resumed(recorder)` is where a recorder's stream
    stood when the previous run stopped inside it (a StreamEnd or None); `released(end)` is told when a held
    stream ends (see `FolderSource`).
    """

    def __init__(self, gap: float | None, resumed=lambda recorder: None, released=lambda end: None):
        self.gap = gap
        self.held: StreamEnd | None = None
        self._resumed, self._released = resumed, released

    def begin(self, name: str, own: Stream, channels: int) -> tuple[Stream, int, AudioChunk | None]:
        """The stream a file's chunks belong to, where it counts from, and the `last` chunk of the held stream
        when the file does not continue it (to be passed on before the file's own chunks)."""
        recorder = recorder_of(name) if self.gap is not None else None
        previous = self.held or (self._resumed(recorder) if recorder else None)
        if previous is not None and previous.continued_by(recorder, own, channels, self.gap):
            log.info(
                "recording_joined",
                file=name,
                stream=previous.stream.id,
                at_seconds=round(previous.end / own.sample_rate, 3),
            )
            return previous.stream, previous.end, None
        return own, 0, self.release()

    def hold(self, name: str, last: AudioChunk, channels: int) -> AudioChunk | None:
        """Keep a file's `last` chunk back when a next file may continue its stream; else give it back."""
        recorder = recorder_of(name) if self.gap is not None else None
        if recorder is None:
            return last
        self.held = StreamEnd(recorder, last.stream, channels, last.start)
        return None

    def release(self) -> AudioChunk | None:
        """The held `last` chunk: no file continues its stream."""
        held, self.held = self.held, None
        if held is None:
            return None
        self._released(held)
        log.info(
            "recording_stream_ended", stream=held.stream.id, audio_seconds=round(held.end / held.stream.sample_rate, 3)
        )
        return held.last_chunk()
