"""Between the ensemble and the smoother: what the field asks of each window's scores.

1. alerts, from the raw scores, so that a gunshot is reported from the window that heard it;
2. the species filter (range, include/exclude), so that a species the box may not report never starts an
   event;
3. optionally, speech suppression: a window that overlaps human speech starts or extends no event (a
   hiker's voice is not left in the records as a detection at a known place and time). Alerts are not
   suppressed: poachers talk too.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from edge.screen.alerts import AlertGate
from edge.screen.species import SpeciesFilter
from edge.screen.speech import NoSpeech, SpeechDetector
from edge.types import Scores, Screened, Window


class Screen:
    def __init__(
        self,
        alerts: AlertGate,
        species: SpeciesFilter,
        speech: SpeechDetector | NoSpeech = NoSpeech(),
        suppress_speech: bool = False,
    ):
        if suppress_speech and isinstance(speech, NoSpeech):
            raise ValueError("suppressing detections during speech needs the speech detector")
        self.alerts = alerts
        self.species = species
        self.speech = speech
        self.suppress_speech = suppress_speech
        self.windows_with_speech = 0
        self.windows_suppressed = 0

    def has_speech(self, window: Window) -> bool:
        return self.speech.speech_between(window.stream, window.start, window.end) > 0

    def screen(self, scores: Scores) -> Screened:
        """The alerts of one window, and its scores as the smoother may see them."""
        alerts = self.alerts.check(scores)
        scores = self.species.apply(scores)
        if self.has_speech(scores.window):
            self.windows_with_speech += 1
            if self.suppress_speech:
                self.windows_suppressed += 1
                scores = replace(scores, probabilities=np.zeros_like(scores.probabilities))
        return Screened(tuple(alerts), scores)

    def swap(self, alerts: AlertGate, species: SpeciesFilter) -> None:
        """After a reload: the new alert classes (keeping the intervals of the classes kept) and species filter."""
        alerts.carry_over(self.alerts)
        self.alerts, self.species = alerts, species

    def stats(self) -> dict:
        return {
            **self.speech.stats(),
            "windows_with_speech": self.windows_with_speech,
            "windows_suppressed_for_speech": self.windows_suppressed,
            "alerts": self.alerts.stats(),
            "species_week": self.species.week,
        }
