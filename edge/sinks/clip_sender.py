"""Which clips go to the station, and the message each becomes when its turn comes.

The daemon offers each written clip (`offer`); those of the kinds configured (alerts, events, events of
listed species only) are queued (edge.sinks.clip_queue). The uplink asks for the next message (`next_message`)
only when no record waits: records never wait behind clips. The audio is read from the clip folder then, so
that the queue holds paths, not megabytes, and a clip whose file the card's retention removed meanwhile is
dropped and counted instead of sent.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import structlog

from edge.sinks.clip_queue import ClipQueue, QueuedClip
from edge.wire.clips import audio_fields, frame

log = structlog.get_logger(__name__)

ClipKinds = Literal["alerts", "events"]


@dataclass(frozen=True)
class ClipChoice:
    """What is sent: `kinds`, and for events only those of `species` (any of its names) when it is not empty;
    clips over `max_bytes` (below the broker's packet limit) are never sent."""

    kinds: tuple[ClipKinds, ...] = ("alerts",)
    species: frozenset[str] = field(default_factory=frozenset)  # casefolded names
    max_bytes: int = 3_000_000

    def wants(self, kind: str, names: tuple[str, ...]) -> bool:
        if f"{kind}s" not in self.kinds:
            return False
        return kind == "alert" or not self.species or any(n.casefold() in self.species for n in names)


class ClipSender:
    def __init__(self, queue: ClipQueue, clips_dir: Path, choice: ClipChoice):
        self.queue = queue
        self.clips_dir = clips_dir
        self.choice = choice

    def offer(self, clip: QueuedClip, names: tuple[str, ...]) -> bool:
        """Queue the clip if it is of a kind sent (`names`: its species' names); True when queued now."""
        if not self.choice.wants(clip.kind, names):
            return False
        return self.queue.add(clip)

    def next_message(self) -> tuple[QueuedClip, bytes] | None:
        """The next clip the budget lets go, framed; None when there is none."""
        while (clip := self.queue.next()) is not None:
            audio = self._audio(clip)
            if audio is None:
                continue
            metadata = {**clip.metadata, **audio_fields(audio)}
            return clip, frame(metadata, audio)
        return None

    def _audio(self, clip: QueuedClip) -> bytes | None:
        """The clip's FLAC bytes (b"" for a refused clip); None, having dropped it, when it cannot be sent."""
        if clip.path is None:
            return b""
        try:
            audio = (self.clips_dir / clip.path).read_bytes()
        except OSError as error:
            log.warning("clip_not_sent", id=clip.id, path=clip.path, reason="file gone", error=str(error))
            self.queue.drop(clip, "clips_file_gone")
            return None
        if len(audio) > self.choice.max_bytes:
            log.warning("clip_not_sent", id=clip.id, path=clip.path, reason="too big", bytes=len(audio))
            self.queue.drop(clip, "clips_too_big")
            return None
        return audio
