"""The per-chunk order, one for `edge replay` and the daemon: chunk in, records out.

AudioChunk ─▶ speech ─▶ clips' ring ─▶ windower ─Window─▶ ensemble ─Scores─▶ screen ─┬─Scores─▶ events ─▶ clips
                                                                                     └─Alert

`events` is the smoother (the daemon: start/update/end events) or the per-window detector (replay); speech and
clips are stages that do nothing when they are off. The pipeline does no I/O of its own but the clip
recorder's writes, starts no thread and reads no clock: what it returns depends on the audio alone.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Generic

from edge.audio.windower import Windower
from edge.clips.recorder import ClipRecorder, NoClips
from edge.inference.budget import Load
from edge.inference.ensemble import Ensemble
from edge.inference.stages import Stages
from edge.screen.alerts import AlertGate
from edge.screen.species import SpeciesFilter
from edge.screen.speech import NoSpeech, SpeechDetector
from edge.screen.stage import Screen
from edge.types import Alert, AudioChunk, Call, ClipSettled, Event, EventRecord, EventStage, Window


class Pipeline(Generic[EventRecord]):
    """`push` runs one chunk through every stage; `windows` are those the last chunk completed (and were
    scored), for the caller's counts and latencies. A Pipeline[Event] (the smoother's) returns events and alerts,
    a Pipeline[Detection] (the per-window detector's) detections and alerts."""

    def __init__(
        self,
        windower: Windower,
        ensemble: Ensemble,
        screen: Screen,
        events: EventStage[EventRecord],
        speech: SpeechDetector | NoSpeech = NoSpeech(),
        clips: ClipRecorder | NoClips = NoClips(),
        stages: Stages | None = None,
    ):
        self.windower = windower
        self.ensemble = ensemble
        self.screen = screen
        self.events: EventStage[EventRecord] = events
        self.speech = speech
        self.clips = clips
        self.stages = stages if stages is not None else Stages()
        self.windows: list[Window] = []

    def push(self, chunk: AudioChunk, load: Load | None = None) -> list[EventRecord | Alert | ClipSettled | Call]:
        """The records of one chunk, in order: each window's alerts, the calls a call detector found in it,
        then the events (or detections) it completed; at the end of its stream, the events still open; last,
        the clips settled (written or refused) while the chunk went through. `load` (the budget guard's) chooses the
        members, TTA and the windows scored; None runs everything."""
        with self.stages.measure("speech"):
            self.speech.push(chunk)  # before the clips' ring: a clip is refused for the speech in it
        self.clips.push(chunk)
        with self.stages.measure("windows"):
            self.windows = [w for w in self.windower.push(chunk) if load is None or w.index % load.hop_factor == 0]
        active, tta = (None, True) if load is None else (load.active, load.tta)
        records: list[EventRecord | Alert | ClipSettled | Call] = []
        for scores in self.ensemble.score(self.windows, active=active, tta=tta):
            screened = self.screen.screen(scores)
            records += screened.alerts
            records += scores.calls
            for alert in screened.alerts:
                self.clips.alert(alert)
            records += self._with_clips(self.events.update(screened.scores))
        if chunk.last:
            records += self._with_clips(self.events.close())
        self.clips.write_ready()  # after the chunk's events: an end they revealed comes before a clip's cap
        return records + self.clips.settled()

    def reload(self, alerts: AlertGate, species: SpeciesFilter) -> None:
        """New alert classes and species filter, from the next window on (see Screen.swap)."""
        self.screen.swap(alerts, species)

    def _with_clips(self, records: list[EventRecord]) -> list[EventRecord]:
        """Events with their clip once it is written (an end; earlier for an event longer than a clip)."""
        return [replace(r, clip=self.clips.observe(r)) if isinstance(r, Event) else r for r in records]
