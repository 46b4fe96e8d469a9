"""An hour-long recording with thousands of detections: the report is made, its figures no wider than the page,
the audio read in blocks (never the hour at once), and a two-second call still shows in the hour's summary."""

from __future__ import annotations

import base64
import io
import json
import re
import tracemalloc

import numpy as np
import pytest
import soundfile as sf
from PIL import Image

from edge.evaluation.detections import read_detections
from edge.evaluation.labels import read_labels
from edge.report import find_audio, write_report
from edge.report.figures import LANES, lanes
from edge.report.spectrogram import N_FFT, summarise

RATE, SECONDS = 16_000, 3600
TONES = [(600.0, 602.0, 3000.0), (1800.0, 1805.0, 5000.0)]  # start s, end s, Hz


@pytest.fixture(scope="module")
def hour(tmp_path_factory):
    """A folder with night.wav: an hour of quiet noise and two tones, written a minute at a time."""
    folder = tmp_path_factory.mktemp("hour")
    rng = np.random.default_rng(7)
    with sf.SoundFile(folder / "night.wav", "w", RATE, 1, "PCM_16") as f:
        for minute in range(SECONDS // 60):
            t = minute * 60 + np.arange(60 * RATE) / RATE
            block = 0.01 * rng.standard_normal(len(t))
            for start, end, hz in TONES:
                block += np.where((t >= start) & (t < end), 0.3 * np.sin(2 * np.pi * hz * t), 0.0)
            f.write(block.astype(np.float32))
    return folder


@pytest.fixture(scope="module")
def records(hour):
    """A 3 s window of one species all night, and 40 others now and then: 3,200 detections."""
    rng = np.random.default_rng(8)
    lines = [detection(start, "Strix aluco", rng.uniform(0.1, 1)) for start in range(0, SECONDS, 3)]
    for k in range(40):
        lines += [detection(s, f"Species number {k}", rng.uniform(0.1, 1)) for s in rng.integers(0, SECONDS - 3, 50)]
    path = hour / "detections.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    labels = hour / "labels.csv"
    labels.write_text(
        "file,start,end,species\n" + "".join(f"night.wav,{s},{s + 2},Strix aluco\n" for s in range(0, 3600, 30))
    )
    return read_detections(path), read_labels(labels)


def detection(start: float, species: str, confidence: float) -> dict:
    end = float(start) + 3
    return {
        "source": "night.wav",
        "start_s": float(start),
        "end_s": end,
        "confidence": confidence,
        "scientific_name": species,
    }


def test_an_hour_is_summarised_in_blocks_and_a_short_call_still_shows(hour):
    tracemalloc.start()
    try:
        summary = summarise(hour / "night.wav")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    print(f"summary {summary.power_db.shape}, peak traced {peak / 1e6:.1f} MB")
    assert summary.power_db.shape == (N_FFT * 8000 // RATE + 1, 1200)
    assert summary.seconds == SECONDS
    assert peak < 32e6, "read in blocks: the hour as float32 alone would be 230 MB"
    for start, _, hz in TONES:
        column, row = int(start / SECONDS * 1200), round(hz * N_FFT / RATE)
        assert summary.power_db[row, column] > np.median(summary.power_db[row]) + 20, f"the {hz} Hz call"


def test_the_report_of_an_hour_stays_small(hour, records, tmp_path):
    detections, labels = records
    out = tmp_path / "night.html"
    tracemalloc.start()
    try:
        write_report(out, detections, labels, find_audio(hour), min_conf=0.25)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    html = out.read_text(encoding="utf-8")
    sizes = [Image.open(io.BytesIO(base64.b64decode(b))).size for b in re.findall(r"base64,([A-Za-z0-9+/=]+)", html)]
    print(f"report {len(html) / 1e6:.2f} MB, figures {sizes}, peak traced {peak / 1e6:.1f} MB")
    assert len(sizes) == 4 and html.count('class="spectrogram"') == 1
    assert all(width <= 1200 and height <= 1200 for width, height in sizes)
    # Bounded by the figures' pixels (matplotlib draws an image as floats at the figure's size), not the hour's
    # samples: the hour as float32 alone would be 230 MB.
    assert peak < 96e6
    rows = lanes(detections)
    assert [name for name, _ in rows][-1] == "33 other species" and len(rows) == LANES + 1
    assert len(rows[0][1]) == 1, "an hour of touching windows: one bar"
