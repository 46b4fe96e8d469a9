"""A FLAC clip of each detection event: its audio from `pre_roll` seconds before its start to `post_roll`
seconds after its end, capped at `max_seconds` from its start, so that a ranger can listen to what the box heard.

The recorder keeps a ring of the stream's recent audio, as 16-bit samples (the clip's own resolution, half the
memory of float32), long enough for the longest clip plus the delay with which an event's start is reported.
A clip is written once, as soon as its end is known and its audio is in the ring: at the event's end (once
the post-roll has arrived, or at once when the stream has ended), or, for a long event, when the audio reaches
its cap (the smoother reports an end only `end_after` seconds late, so an event that ended shortly before its
cap still gets the capped clip). Either way it waits `veto_delay` seconds of audio more, so that the speech
detector has judged the clip's last samples. A clip that the privacy `veto` refuses (human speech in its span),
or that the veto cannot judge (it raised), is never written, not even to a temporary file.

When a new stream begins, the clips of the previous one still waiting are written with the audio there is
(a stream cut short by a stop, a recording that failed mid-way): the audio is real, a short clip beats none.

Time is counted in samples on the stream's clock; the stream's UTC start only names the files.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path

import numpy as np
import structlog

from edge.clips.store import ClipStore
from edge.storage.faults import StorageFault
from edge.types import Alert, AudioChunk, ClipSettled, Event, Stream, StreamSpan

log = structlog.get_logger(__name__)

# Event ids whose clip is settled (written, refused or failed) are remembered for `path_of` this long.
SETTLED_KEPT = 4096
# Chunks enter the ring in steps of at most this, and the ring holds one step more than the longest clip: a
# capped clip is then written before its first sample can be overwritten, whatever the chunk size.
STEP_SECONDS = 1.0
UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")  # FAT cards take no colons, and no name needs spaces


@dataclass(frozen=True)
class ClipOptions:
    """Where the clips go (the store's folder) and seconds of audio around each event.

    `veto_delay`: audio pushed past a clip's end before the veto judges it: the speech detector confirms speech
    only once it has lasted min_speech (250 ms), a 32 ms frame and its resampler's delay later, so speech
    that begins right after the clip is known, and its padding reaches back into the clip.
    `report_delay`: how long after an event's start its "start" may come (a window, a hop of neighbour
    smoothing, the smoother's min_duration); it matters only when longer than max_seconds + post_roll +
    veto_delay, which the ring keeps after the pre-roll anyway."""

    directory: Path
    pre_roll: float = 3.0
    post_roll: float = 3.0
    max_seconds: float = 30.0
    veto_delay: float = 1.0
    report_delay: float = 20.0

    def __post_init__(self):
        if min(self.pre_roll, self.post_roll, self.veto_delay, self.report_delay) < 0 or self.max_seconds <= 0:
            raise ValueError("pre_roll, post_roll, veto_delay and report_delay must be >= 0, max_seconds > 0")

    @property
    def ring_seconds(self) -> float:
        longest = self.max_seconds + self.post_roll + self.veto_delay
        return self.pre_roll + max(longest, self.report_delay) + STEP_SECONDS


@dataclass(frozen=True)
class ClipSpan(StreamSpan):
    """Samples [start, end) of `stream` that the clip of event `event_id` would hold: what a veto judges."""

    stream: Stream
    start: int
    end: int
    event_id: str


# veto(stream, start, end): True refuses a clip of samples [start, end) of `stream` (speech in it).
Veto = Callable[[Stream, int, int], bool]


@dataclass
class _Capture:
    """A clip waiting for its end or its audio. `cap`: where it ends at the latest (start + max + post-roll);
    `end`: where it ends, once the event's end is known."""

    event: Event  # the latest record of the event seen
    start: int
    cap: int
    end: int | None = None
    alert_class: str | None = None  # the clip of an alert of this class, not of an event


def to_pcm16(samples: np.ndarray) -> np.ndarray:
    """float32 in [-1, 1) to int16 as libsndfile reads it back (x 32768), clipped at full scale."""
    return np.clip(np.rint(samples * 32768.0), -32768, 32767).astype(np.int16)


class _Ring:
    """The last `capacity` samples of one stream, addressed by their position on the stream's clock."""

    def __init__(self, stream: Stream, capacity: int, start: int):
        self.stream = stream
        self.buffer = np.zeros(capacity, np.int16)
        self.first = self.pushed = start  # [first, pushed) is held
        self.ended = False

    def append(self, start: int, samples: np.ndarray) -> None:
        """Samples that start at `start` (at most `capacity` of them); a gap or overlap starts the ring anew."""
        if start != self.pushed:
            log.warning("clip_audio_gap", stream=self.stream.id, expected=self.pushed, got=start)
            self.first = self.pushed = start
        capacity = len(self.buffer)
        at = start % capacity
        head = min(len(samples), capacity - at)
        self.buffer[at : at + head] = samples[:head]
        self.buffer[: len(samples) - head] = samples[head:]
        self.pushed = start + len(samples)
        self.first = max(self.first, self.pushed - capacity)

    def make_room(self, capacity: int) -> None:
        """Hold at least `capacity` samples from now on, keeping what is held."""
        if capacity > len(self.buffer):
            held = self.read(self.first, self.pushed)
            self.buffer = np.zeros(capacity, np.int16)
            self.pushed = self.first
            if len(held):
                self.append(self.first, held)

    def read(self, start: int, end: int) -> np.ndarray:
        """Samples [start, end), which must be held."""
        capacity = len(self.buffer)
        at = start % capacity
        head = min(end - start, capacity - at)
        return np.concatenate([self.buffer[at : at + head], self.buffer[: end - start - head]])


def clip_path(event: Event) -> str:
    """Where the clip of `event` goes, below the clip folder: deterministic, so that a recording analysed
    again finds its clips already written. `<UTC day>/<UTC time>Z_<species>_<id>.flac` when the stream's
    start is known, else `undated/<stream>_<seconds into it>s_<species>_<id>.flac`."""
    species = UNSAFE.sub("_", event.label.scientific_name)
    utc = event.stream.utc_at(event.start)
    if utc is None:
        stream = UNSAFE.sub("_", event.stream.id)[-64:]
        return f"undated/{stream}_{event.start_seconds:07.1f}s_{species}_{event.id[:8]}.flac"
    utc = utc.astimezone(UTC) if utc.tzinfo else utc
    return f"{utc:%Y-%m-%d}/{utc:%H%M%S}Z_{species}_{event.id[:8]}.flac"


def clip_metadata(event: Event, span: ClipSpan) -> dict[str, str]:
    """FLAC vorbis comments: what the clip is, without the event record beside it."""
    label = event.label
    metadata = {
        "title": f"{label.common_name} ({label.scientific_name})",
        "software": "edge",
        "comment": f"event={event.id} species={label.scientific_name} stream={event.stream.id} "
        f"start_sample={span.start} end_sample={span.end} rate={event.stream.sample_rate} "
        f"confidence={event.confidence:.3f} model={event.model} {event.model_version}",
    }
    utc = span.stream.utc_at(span.start)
    if utc is not None:
        metadata["date"] = utc.isoformat()
    return metadata


class ClipRecorder:
    """Fed every chunk (`push`) and every event (`observe`, or `begin` and `finish`) of the daemon's loop, in
    the loop's order: a chunk first (after the speech detector has had it), then the events its windows
    caused. `veto(stream, start, end)` returning True refuses a clip (the privacy gate: human speech in it);
    a veto that raises refuses it too. Both are counted."""

    def __init__(self, options: ClipOptions, store: ClipStore, veto: Veto | None = None):
        if Path(options.directory) != store.directory:
            raise ValueError(f"clip options name {options.directory}, the store writes to {store.directory}")
        self.options = options
        self.store = store
        self.veto = veto
        self.refused_speech = 0
        self.unjudged = 0
        self.truncated = 0
        self._ring: _Ring | None = None
        self._captures: dict[str, _Capture] = {}
        self._settled: OrderedDict[str, str | None] = OrderedDict()
        self._news: list[ClipSettled] = []  # settled since `settled()` was last asked

    def push(self, chunk: AudioChunk) -> None:
        """Keep the chunk's audio; write the clips it completes."""
        ring = self._ring
        if ring is None or chunk.stream != ring.stream:
            self.close()
            rate = chunk.stream.sample_rate
            ring = self._ring = _Ring(chunk.stream, int(self.options.ring_seconds * rate), chunk.start)
        # room for a whole chunk more: clips that reach their length cap are written after the chunk's events
        # (write_ready), and must still be held then
        ring.make_room(int(self.options.ring_seconds * chunk.stream.sample_rate) + len(chunk.samples))
        step = max(1, int(STEP_SECONDS * chunk.stream.sample_rate))
        for offset in range(0, len(chunk.samples), step):
            ring.append(chunk.start + offset, to_pcm16(chunk.samples[offset : offset + step]))
            self._write_ready(capped=False)
        if chunk.last:
            ring.ended = True
            self._write_ready(capped=False)

    def write_ready(self) -> None:
        """After the events of the last chunk: write the clips whose length cap the audio has passed too. A
        cap is only judged here, so that an event whose end the chunk's windows revealed is cut at its end,
        not at its cap, however long the chunks are."""
        if self._ring is not None:
            self._write_ready(capped=True)

    def observe(self, event: Event) -> str | None:
        """One event of the smoother, of any kind; the clip's relative path when it is written, else None."""
        if event.kind == "start":
            self.begin(event)
        elif event.kind == "end":
            self.finish(event)
        elif event.id in self._captures:
            self._captures[event.id].event = event
        return self.path_of(event.id)

    def begin(self, event: Event) -> None:
        """An event started: its clip starts `pre_roll` before it (at the stream's start at the earliest)."""
        if event.id in self._captures or event.id in self._settled:
            return
        ring = self._ring
        if ring is None or event.stream != ring.stream:
            log.warning("clip_stream_gone", id=event.id, stream=event.stream.id)
            self._settle(event.id, None)
            return
        rate = event.stream.sample_rate
        o = self.options
        self._captures[event.id] = _Capture(
            event=event,
            start=max(0, event.start - round(o.pre_roll * rate)),
            cap=event.start + round((o.max_seconds + o.post_roll) * rate),
        )
        self._write_ready()

    def finish(self, event: Event) -> str | None:
        """An event ended: its clip ends `post_roll` after it (capped), written as soon as that audio is here,
        at once when the stream has ended. The clip's relative path once written, else None."""
        if event.id not in self._captures and event.id not in self._settled:
            self.begin(event)  # its start was missed (clips enabled mid-event): a clip all the same
        capture = self._captures.get(event.id)
        if capture is not None:
            rate = event.stream.sample_rate
            capture.event = event
            capture.end = min(event.end + round(self.options.post_roll * rate), capture.cap)
            self._write_ready()
        return self.path_of(event.id)

    def alert(self, alert: Alert) -> None:
        """A threat alert: its clip is its window with `pre_roll` before it, written once the veto delay has
        passed (no post-roll: a ranger is waiting for it)."""
        w = alert.window
        subject = Event(
            alert.id, "end", w.stream, alert.label, w.start, w.end, alert.confidence, alert.model, alert.model_version
        )
        self.begin(subject)
        capture = self._captures.get(alert.id)
        if capture is not None:
            capture.end, capture.alert_class = w.end, alert.alert_class
            self._write_ready()

    def settled(self) -> list[ClipSettled]:
        """The clips settled (written, refused, or not made) since the last call, in order."""
        news, self._news = self._news, []
        return news

    def path_of(self, event_id: str) -> str | None:
        """The relative path (below the clip folder) of the event's clip once it is on the card, else None."""
        return self._settled.get(event_id)

    def close(self) -> None:
        """No more audio of the current stream: write every clip still waiting with the audio there is."""
        for capture in list(self._captures.values()):
            self._write(capture, capture.end if capture.end is not None else capture.cap)

    def prune(self) -> None:
        """Remove clips past the store's age, size or free-space limits."""
        self.store.prune()

    @property
    def fault(self) -> StorageFault | None:
        """The store's error writing the last clip, until a write succeeds."""
        return self.store.fault

    def stats(self) -> dict[str, int | bool]:
        """Counters for the health record: the store's, and the recorder's own."""
        return {
            **self.store.stats(),
            "clips_refused_speech": self.refused_speech,
            "clips_unjudged": self.unjudged,
            "clips_truncated": self.truncated,
            "clips_pending": len(self._captures),
        }

    @property
    def _current(self) -> _Ring:
        """The ring of the current stream: push() opens it, and a clip is only captured while there is one."""
        if self._ring is None:
            raise RuntimeError("no audio pushed yet: push() opens the ring clips are cut from")
        return self._ring

    def _write_ready(self, capped: bool = True) -> None:
        """Write the clips whose end (or cap, for an event still going, when `capped`) and veto delay the
        audio has passed; at the stream's end, those whose end is known."""
        ring = self._current
        delay = round(self.options.veto_delay * ring.stream.sample_rate)
        for capture in list(self._captures.values()):
            if capture.end is None and not capped:
                continue
            end = capture.cap if capture.end is None else capture.end
            if ring.pushed >= end + delay or (ring.ended and capture.end is not None):
                self._write(capture, end)

    def _write(self, capture: _Capture, end: int) -> None:
        """Write [capture start, end) with what the ring holds of it, unless vetoed; settle the capture."""
        ring = self._current
        event = capture.event
        del self._captures[event.id]
        span = ClipSpan(ring.stream, max(capture.start, ring.first), min(end, ring.pushed), event.id)
        if span.start > capture.start:
            self.truncated += 1
            log.warning(
                "clip_truncated",
                id=event.id,
                lost_seconds=round((span.start - capture.start) / ring.stream.sample_rate, 2),
            )
        if span.end <= span.start:
            log.warning("clip_empty", id=event.id)
            return self._settle(event.id, None, capture=capture)
        if self._vetoed(span):
            return self._settle(event.id, None, "speech", capture)
        path = clip_path(event)
        written = self.store.write(
            path, ring.read(span.start, span.end), ring.stream.sample_rate, clip_metadata(event, span)
        )
        self._settle(event.id, path if written else None, capture=capture)

    def _vetoed(self, span: ClipSpan) -> bool:
        """Does the privacy gate refuse the span? It does when it cannot tell: no audio is saved unjudged."""
        if self.veto is None:
            return False
        try:
            refused = self.veto(span.stream, span.start, span.end)
        except Exception:
            self.unjudged += 1
            log.exception("clip_veto_failed", id=span.event_id, stream=span.stream.id)
            return True
        if refused:
            self.refused_speech += 1
            log.info(
                "clip_refused_speech",
                id=span.event_id,
                start_s=round(span.start_seconds, 2),
                end_s=round(span.end_seconds, 2),
            )
        return bool(refused)

    def _settle(
        self, event_id: str, path: str | None, refused: str | None = None, capture: _Capture | None = None
    ) -> None:
        if capture is not None:
            self._news.append(ClipSettled(capture.event, path, refused, capture.alert_class))
            del self._news[:-SETTLED_KEPT]  # bounded, should nobody ask
        self._settled[event_id] = path
        while len(self._settled) > SETTLED_KEPT:
            self._settled.popitem(last=False)


class NoClips:
    """The clip recorder when clips are off: keeps no audio, writes nothing, gives no event a clip."""

    fault = None

    def push(self, chunk: AudioChunk) -> None:
        pass

    def observe(self, event: Event) -> str | None:
        return None

    def alert(self, alert: Alert) -> None:
        pass

    def settled(self) -> list[ClipSettled]:
        return []

    def write_ready(self) -> None:
        pass

    def prune(self) -> None:
        pass

    def close(self) -> None:
        pass

    def stats(self) -> dict[str, int | bool]:
        return {}
