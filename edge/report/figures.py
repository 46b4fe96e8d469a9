"""A recording's figure: its spectrogram with the expert's boxes, and under it, on the same time axis, a lane
per species of edge's detections (overlapping or touching windows merged into one bar labelled with their
highest confidence) and a lane of the expert's boxes.

An hour-long recording stays readable: the spectrogram is a summary of at most the figure's width in columns
(`spectrogram.summarise`), the lanes are the most detected species with the rest in one, and a bar is labelled
only where its label fits."""

from __future__ import annotations

import io
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import matplotlib
import numpy as np

matplotlib.use("Agg")  # files only, never a window

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402
from matplotlib.ticker import FuncFormatter, MaxNLocator  # noqa: E402

from edge.evaluation.matching import Span  # noqa: E402
from edge.report.spectrogram import Summary  # noqa: E402

WIDTH_IN, DPI = 12.0, 100  # every figure 1200 pixels wide
LANES = 8  # species drawn in lanes of their own; the rest share one
MIN_LABEL_PX = 34  # a bar narrower than this carries no confidence label
MIN_BOX_PX = 6  # a box without a band narrower than this is a mark along the top
EXPERT = "#00e5ff"


@dataclass(frozen=True)
class Bar:
    """Detections of one species merged over `start`..`end`, `confidence` the highest of them."""

    start: float
    end: float
    confidence: float
    windows: int


def merged(detections: Sequence[Span]) -> list[Bar]:
    """Overlapping or touching detections (one species) as bars."""
    bars: list[Bar] = []
    for d in sorted(detections, key=lambda d: d.start):
        confidence = d.confidence or 0.0
        if bars and d.start <= bars[-1].end + 1e-6:
            last = bars[-1]
            bars[-1] = Bar(last.start, max(last.end, d.end), max(last.confidence, confidence), last.windows + 1)
        else:
            bars.append(Bar(d.start, d.end, confidence, 1))
    return bars


def lanes(detections: Sequence[Span], limit: int = LANES) -> list[tuple[str, list[Bar]]]:
    """The `limit` most detected species, each with its bars, then the others sharing a lane."""
    counts = Counter(d.species for d in detections)
    kept = [species for species, _ in counts.most_common(limit)]
    by_species: dict[str, list[Span]] = defaultdict(list)
    for d in detections:
        by_species[d.species if d.species in kept else ""].append(d)
    rows = [(species, merged(by_species[species])) for species in kept]
    if by_species[""]:
        others = len(counts) - len(kept)
        rows.append((f"{others} other species", merged(by_species[""])))
    return rows


def png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    plt.close(figure)
    return buffer.getvalue()


def recording_figure(summary: Summary | None, detections: Sequence[Span], labels: Sequence[Span]) -> bytes:
    """The PNG of one recording (without audio, `summary` None: the lanes alone)."""
    rows = lanes(detections)
    if labels:
        rows.append(("expert's boxes", merged([Span("", s.start, s.end, "", 1.0) for s in labels])))
    lane_height = 0.32 * max(1, len(rows)) + 0.6
    heights = [3.2, lane_height] if summary is not None else [lane_height]
    figure, axes = plt.subplots(
        len(heights), 1, figsize=(WIDTH_IN, sum(heights) + 0.4), sharex=True, height_ratios=heights, squeeze=False
    )
    seconds = max([summary.seconds if summary else 0.0, *(s.end for s in [*detections, *labels])] or [1.0])
    if summary is not None:
        draw_spectrogram(axes[0][0], summary, labels)
    draw_lanes(axes[-1][0], rows, seconds, labels_lane=bool(labels))
    axes[-1][0].set_xlim(0, seconds)
    clock_axis(axes[-1][0], seconds)
    figure.tight_layout(pad=0.4, h_pad=0.2)
    return png(figure)


def clock_axis(ax, seconds: float, what: str = "time") -> None:
    """Seconds on a short axis; hours, minutes and seconds on a long one."""
    if seconds <= 600:
        ax.set_xlabel(f"{what} (s)")
        return
    ax.xaxis.set_major_locator(MaxNLocator(nbins=12, steps=[1, 2, 3, 6, 10]))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: clock(x)))
    ax.set_xlabel(f"{what} (h:mm:ss)")


def clock(seconds: float) -> str:
    minutes, s = divmod(round(seconds), 60)
    return f"{minutes // 60}:{minutes % 60:02d}:{s:02d}"


def draw_spectrogram(ax, summary: Summary, labels: Sequence[Span]) -> None:
    db = summary.power_db
    low, high = (float(v) for v in _percentiles(db))
    # Coloured here, as bytes: matplotlib would resample the dB values as floats at the figure's size.
    colours = plt.get_cmap("magma")(np.clip((db - low) / (high - low), 0, 1), bytes=True)
    ax.imshow(
        colours,
        origin="lower",
        aspect="auto",
        extent=(0, summary.seconds, 0, summary.top_hz / 1000),
        interpolation="nearest",
    )
    draw_boxes(ax, labels, summary.top_hz / 1000, summary.seconds)
    ax.set_ylabel("kHz")
    ax.set_ylim(0, summary.top_hz / 1000)


def draw_boxes(ax, labels: Sequence[Span], top: float, seconds: float) -> None:
    """The expert's boxes: their band where they give one; else dashed over every frequency where that is
    wide enough to see, and as marks along the top where it is not (an hour of thin dashed boxes is a fog)."""
    px_per_second = WIDTH_IN * DPI * 0.85 / max(seconds, 1e-9)
    marks = []
    for label in labels:
        width = label.end - label.start
        if label.low_hz is not None and label.high_hz is not None:
            corner, height = (label.start, label.low_hz / 1000), (label.high_hz - label.low_hz) / 1000
            ax.add_patch(Rectangle(corner, width, height, fill=False, edgecolor=EXPERT, linewidth=1.0))
        elif width * px_per_second >= MIN_BOX_PX:
            corner = (label.start, 0.02 * top)
            ax.add_patch(Rectangle(corner, width, 0.96 * top, fill=False, edgecolor=EXPERT, linestyle="--"))
        else:
            marks.append(Span("", label.start, label.end, "", 1.0))
    bars = [(b.start, b.end - b.start) for b in merged(marks)]
    ax.broken_barh(bars, (0.96 * top, 0.04 * top), facecolors=EXPERT)


def _percentiles(db: np.ndarray) -> tuple[float, float]:
    """The colour scale: the quiet floor to the loudest, so the noise stays dark."""
    low, high = np.percentile(db, [5, 99.9])
    return low, max(high, low + 1.0)


def draw_lanes(ax, rows: list[tuple[str, list[Bar]]], seconds: float, labels_lane: bool) -> None:
    colours = plt.get_cmap("viridis")
    px_per_second = WIDTH_IN * DPI * 0.85 / max(seconds, 1e-9)
    for row, (_, bars) in enumerate(rows):
        y = len(rows) - 1 - row
        expert = labels_lane and row == len(rows) - 1
        for bar in bars:
            colour = EXPERT if expert else colours(0.15 + 0.85 * bar.confidence)
            ax.broken_barh([(bar.start, bar.end - bar.start)], (y - 0.38, 0.76), facecolors=colour)
        if not expert:
            wide = [b for b in bars if (b.end - b.start) * px_per_second >= MIN_LABEL_PX]
            for bar in sorted(wide, key=lambda b: -b.confidence)[:60]:
                ax.text(
                    (bar.start + bar.end) / 2,
                    y,
                    f"{bar.confidence:.2f}",
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="white" if bar.confidence < 0.6 else "black",
                )
    ax.set_yticks(range(len(rows)), [name for name, _ in reversed(rows)], fontsize=8)
    ax.set_ylim(-0.6, len(rows) - 0.4)
    ax.grid(axis="x", alpha=0.3)
