"""The report's figures over every recording: a species-by-time timeline, the counts per species, and with an
expert's labels the precision-recall curves."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np

from edge.evaluation.matching import Matched, Span
from edge.evaluation.metrics import curve
from edge.report.figures import WIDTH_IN, clock_axis, plt, png

TIMELINE_ROWS = 20  # species in rows of their own; the rest share one
MAX_BINS = 240
BIN_SECONDS = (1, 3, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 86400)
COUNT_ROWS = 25
CURVES = 8


def bin_seconds(span: float) -> float:
    """The smallest usual bin that cuts `span` seconds into at most MAX_BINS."""
    return next((float(s) for s in BIN_SECONDS if span / s <= MAX_BINS), span / MAX_BINS)


def timeline(recordings: Sequence[tuple[str, float]], detections: Sequence[Span], min_conf: float) -> bytes:
    """Rows species, columns time bins over the recordings laid end to end; colour the highest confidence."""
    offsets, at = {}, 0.0
    for name, seconds in recordings:
        offsets[name], at = at, at + seconds
    step = bin_seconds(max(at, 1.0))
    counts = Counter(d.species for d in detections)
    kept = [s for s, _ in counts.most_common(TIMELINE_ROWS)]
    names = kept + ([f"{len(counts) - len(kept)} other species"] if len(counts) > len(kept) else [])
    grid = np.full((len(names), max(1, int(np.ceil(at / step)))), np.nan, dtype=np.float32)
    for d in detections:
        row = kept.index(d.species) if d.species in kept else len(kept)
        column = min(int((offsets.get(d.recording, 0.0) + d.start) // step), grid.shape[1] - 1)
        grid[row, column] = np.fmax(grid[row, column], d.confidence or 0.0)
    figure, ax = plt.subplots(figsize=(WIDTH_IN, 0.28 * max(len(names), 2) + 1.3))
    image = ax.imshow(
        np.ma.masked_invalid(grid),
        aspect="auto",
        cmap="viridis",
        vmin=min_conf,
        vmax=1.0,
        extent=(0, grid.shape[1] * step, len(names) - 0.5, -0.5),
        interpolation="nearest",
    )
    ax.set_yticks(range(len(names)), names, fontsize=8)
    for start in offsets.values():
        if start > 0:
            ax.axvline(start, color="0.6", linewidth=0.6)
    if 1 < len(offsets) <= 12:
        ax.set_xticks([offsets[n] + s / 2 for n, s in recordings], [n[:18] for n, _ in recordings], fontsize=7)
        ax.set_xlabel(f"recordings end to end (bins of {step:g} s)")
    else:
        clock_axis(ax, at, f"time from the start, bins of {step:g} s")
    figure.colorbar(image, ax=ax, label="highest confidence", pad=0.01)
    figure.tight_layout(pad=0.4)
    return png(figure)


def counts(detections: Sequence[Span], labels: Sequence[Span] | None) -> bytes:
    """Horizontal bars: detections per species, beside the expert's boxes when there are labels."""
    found = Counter(d.species for d in detections)
    boxed = Counter(s.species for s in labels or ())
    species = sorted(found.keys() | boxed.keys(), key=lambda s: (-(found[s] + boxed[s]), s))[:COUNT_ROWS]
    figure, ax = plt.subplots(figsize=(WIDTH_IN * 0.75, 0.3 * max(len(species), 2) + 1.0))
    y = np.arange(len(species))
    height = 0.4 if labels else 0.8
    ax.barh(y - (height / 2 if labels else 0), [found[s] for s in species], height, label="detections (windows)")
    if labels:
        ax.barh(y + height / 2, [boxed[s] for s in species], height, label="expert's boxes", color="#00a5b8")
        ax.legend(loc="lower right", fontsize=8)
    ax.set_yticks(y, species, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("count")
    ax.grid(axis="x", alpha=0.3)
    figure.tight_layout(pad=0.4)
    return png(figure)


def pr_curves(matched: dict[str, Matched], min_conf: float) -> bytes:
    """Precision against recall per labelled species (the most labelled CURVES), the threshold marked."""
    species = sorted((s for s, m in matched.items() if m.positives), key=lambda s: -matched[s].positives)[:CURVES]
    figure, ax = plt.subplots(figsize=(6.5, 4.6))
    for name in species:
        m = matched[name]
        points = curve(m.predictions, m.positives, m.found)  # a labelled species': every recall a number
        if not points:
            continue
        line = ax.step(
            [0.0, *(p.recall or 0.0 for p in points)],
            [points[0].precision, *(p.precision for p in points)],
            where="post",
            label=f"{name} ({m.positives})",
        )
        kept = [p for p in points if p.threshold >= min_conf]
        if kept:
            ax.plot(kept[-1].recall or 0.0, kept[-1].precision, "o", color=line[0].get_color())
    ax.set_xlim(0, 1.02)
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.grid(alpha=0.3)
    if species:
        ax.legend(fontsize=8, loc="lower left")
    figure.tight_layout(pad=0.4)
    return png(figure)
