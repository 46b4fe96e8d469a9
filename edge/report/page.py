"""The report as one HTML file: every figure a PNG inside it (a data URI), no script, nothing fetched, so it
can be mailed or opened offline. Whatever comes from a file (recording and species names) is escaped by the
template (Jinja2 autoescape)."""

from __future__ import annotations

import base64
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import jinja2
import structlog

from edge.evaluation.matching import Matched, Span, by_segments
from edge.evaluation.summary import evaluation
from edge.sources.files import AUDIO_SUFFIXES

log = structlog.get_logger(__name__)

TEMPLATES = Path(__file__).parent / "templates"


@dataclass(frozen=True)
class Figure:
    """A PNG, with the alt text a screen reader gives and the caption under it."""

    png: bytes
    alt: str
    caption: str

    @property
    def uri(self) -> str:
        return "data:image/png;base64," + base64.b64encode(self.png).decode("ascii")


@dataclass(frozen=True)
class Recording:
    name: str
    anchor: str
    seconds: float
    detections: int
    labels: int
    figure: Figure
    audio: bool


def find_audio(folder: Path) -> dict[str, Path]:
    """The audio files under `folder` (recursively), by their name without extension, as records name them."""
    found: dict[str, Path] = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file() and path.suffix.lower() in AUDIO_SUFFIXES:
            found.setdefault(path.stem, path)
    return found


def write_report(
    path: Path,
    detections: Sequence[Span],
    labels: Sequence[Span] | None = None,
    audio: Mapping[str, Path] | None = None,
    matched: dict[str, Matched] | None = None,
    min_conf: float = 0.25,
    method: str = "3 s segments, 0.5 s overlap",
    title: str = "edge report",
) -> None:
    """Write the report of `detections` (those at `min_conf` or more drawn and counted) to `path`.

    `audio`: recording name -> its file, for the spectrograms. With `labels`, the expert's boxes are drawn and
    the detections scored: `matched` as `edge evaluate` matched them (`method` says how), by default by 3 s
    segments."""
    began = time.monotonic()
    shown = [d for d in detections if (d.confidence or 0.0) >= min_conf]
    names = sorted({s.recording for s in [*detections, *(labels or ())]})
    recordings = [recording_section(i, name, shown, labels, audio or {}) for i, name in enumerate(names)]
    overview = overview_figures(recordings, shown, labels, min_conf)
    scored = None
    if labels is not None:
        from edge.report.charts import pr_curves  # see recording_section

        matched = matched if matched is not None else by_segments(labels, detections)
        scored = evaluation(matched, min_conf)
        overview.append(
            Figure(
                pr_curves(matched, min_conf),
                "Precision-recall curves per labelled species",
                f"Precision against recall as the threshold falls ({method}); the dot marks {min_conf}. "
                "The number after a species is its support.",
            )
        )
    html = render(title, recordings, overview, scored, shown, labels, min_conf, method)
    Path(path).write_text(html, encoding="utf-8")
    log.info("report_written", path=os.fspath(path), recordings=len(recordings), seconds=time.monotonic() - began)


def recording_section(
    index: int, name: str, shown: Sequence[Span], labels: Sequence[Span] | None, audio: Mapping[str, Path]
) -> Recording:
    """One recording's facts and figure (its spectrogram when `audio` has it)."""
    # Here, not at the top: `edge.report` imports without matplotlib, and the command says what to install.
    from edge.report.figures import recording_figure
    from edge.report.spectrogram import summarise

    found = [d for d in shown if d.recording == name]
    boxed = [s for s in labels or () if s.recording == name]
    summary = summarise(audio[name]) if name in audio else None
    seconds = max([summary.seconds if summary else 0.0, *(s.end for s in [*found, *boxed])] or [0.0])
    alt = f"Spectrogram of {name} with {len(found)} detections" if summary else f"Detections in {name}"
    figure = Figure(recording_figure(summary, found, boxed), alt, recording_caption(summary is not None, bool(labels)))
    return Recording(name, f"rec-{index + 1}", seconds, len(found), len(boxed), figure, summary is not None)


def overview_figures(
    recordings: Sequence[Recording], shown: Sequence[Span], labels: Sequence[Span] | None, min_conf: float
) -> list[Figure]:
    from edge.report.charts import counts, timeline  # see recording_section

    return [
        Figure(
            timeline([(r.name, r.seconds) for r in recordings], shown, min_conf),
            "Timeline: species by time, coloured by the highest confidence",
            "Each row a species, each cell a time bin over the recordings laid end to end; the colour is the "
            "highest confidence detected there.",
        ),
        Figure(
            counts(shown, labels),
            "Detections per species" + (" beside the expert's boxes" if labels else ""),
            "Detection windows per species" + (", beside the expert's boxes of that species." if labels else "."),
        ),
    ]


def recording_caption(spectrogram: bool, labels: bool) -> str:
    parts = ["Spectrogram (up to 12 kHz, each column the loudest of its time) and, under it, " if spectrogram else ""]
    parts.append(
        "edge's detections, a lane per species: overlapping windows merged, labelled with their highest "
        "confidence (darker: lower)."
    )
    if labels:
        parts.append(
            " The expert's boxes are outlined in cyan (dashed: no frequency band given; a mark along the top "
            "where too short to outline) and drawn again in the last lane."
        )
    return "".join(parts)


def render(title, recordings, overview, scored, shown, labels, min_conf, method) -> str:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True)
    env.filters["num"] = lambda v: "-" if v is None else f"{v:.3f}"
    env.filters["duration"] = duration
    return env.get_template("report.html").render(
        title=title,
        recordings=recordings,
        overview=overview,
        scored=scored,
        detections=len(shown),
        species=len({d.species for d in shown}),
        labels=len(labels) if labels is not None else None,
        seconds=sum(r.seconds for r in recordings),
        min_conf=min_conf,
        method=method,
    )


def duration(seconds: float) -> str:
    minutes, s = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min {s:02d} s" if hours else f"{minutes} min {s:02d} s"
