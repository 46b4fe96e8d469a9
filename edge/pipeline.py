"""The run loop: source -> windower -> ensemble -> screen -> detector -> sinks, in one direction."""

from __future__ import annotations

from typing import Callable

from edge.events.detector import Detector
from edge.inference.ensemble import Ensemble
from edge.types import AudioChunk, Scores, Sink, Source
from edge.audio.windower import Windower


def run(
    source: Source,
    windower: Windower,
    ensemble: Ensemble,
    detector: Detector,
    sinks: list[Sink],
    on_chunk: Callable[[AudioChunk], None] = lambda chunk: None,
    screen: Callable[[Scores], Scores] = lambda scores: scores,
) -> None:
    """Feed every chunk of the source through the pipeline, then close the sinks (also on error). `screen`
    masks the scores of classes that may not be reported (the species filter) before the detector."""
    try:
        for chunk in source.chunks():
            for scores in ensemble.score(windower.push(chunk)):
                for detection in detector.update(screen(scores)):
                    for sink in sinks:
                        sink.emit(detection)
            on_chunk(chunk)
    finally:
        for sink in sinks:
            sink.close()
