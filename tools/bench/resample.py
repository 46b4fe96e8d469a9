"""The resamplers' cost beside the model's: CPU seconds per audio second, in one process.

Each input rate is converted to BirdNET's 48 kHz by each resampler, streamed in one-second blocks as the
daemon's sources deliver them; the model's cost is BirdNET (FP32, one thread) scoring 3 s windows without
overlap (BirdNET-Analyzer's segmentation) of the same recording already at 48 kHz.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import soundfile as sf

from edge.audio.resample import RESAMPLERS, rate_converter
from edge.audio.windower import Windower, WindowSpec
from edge.inference.ensemble import MemberSpec, load_ensemble
from edge.inference.member import MemberOptions
from edge.types import AudioChunk, Stream

RATES = (22050, 32000, 256000)
MODEL_SECONDS = 120.0  # enough windows for a steady cost; the model dominates the run time


def resampling_cost(audio: np.ndarray, rate: int, resampler: str) -> float:
    """CPU seconds per audio second of streaming `audio` (at `rate`) to 48 kHz."""
    converter = rate_converter(rate, 48000, resampler)
    started = time.process_time()
    for start in range(0, len(audio), rate):
        converter.push(audio[start : start + rate])
    converter.push(audio[:0], last=True)
    return (time.process_time() - started) / (len(audio) / rate)


def model_cost(audio_48k: np.ndarray, models: Path, model: str) -> float:
    """CPU seconds per audio second of BirdNET on 3 s windows without overlap (windowing included)."""
    audio_48k = audio_48k[: int(MODEL_SECONDS * 48000)]
    spec = WindowSpec(3.0, 3.0)
    ensemble = load_ensemble(models, [MemberSpec(model)], spec, MemberOptions(intra_op_threads=1))
    windower = Windower(spec, ensemble.sample_rates)
    stream = Stream("bench", 48000)
    started = time.process_time()
    for start in range(0, len(audio_48k), 48000):
        chunk = audio_48k[start : start + 48000]
        ensemble.score(windower.push(AudioChunk(stream, start, chunk, last=start + 48000 >= len(audio_48k))))
    return (time.process_time() - started) / (len(audio_48k) / 48000)


def resample_table(make_input, folder: Path, minutes: float, models: Path, model: str) -> str:
    """`make_input(folder, minutes, rate)` -> (path, seconds): the benchmark recording at `rate`."""
    path, _ = make_input(folder, minutes, 48000)
    model_cpu = model_cost(sf.read(str(path), dtype="float32")[0], models, model)
    lines = [
        f"\n## Resampling to 48 kHz, {minutes:.0f} min streamed in 1 s blocks; {model} on 3 s windows: "
        f"{model_cpu:.4f} CPU-s per audio s",
        f"  {'':12}" + "".join(f"{name + ' CPU-s/s':>22}{'of model':>10}" for name in RESAMPLERS),
    ]
    for rate in RATES:
        path, _ = make_input(folder, minutes, rate)
        audio = sf.read(str(path), dtype="float32")[0]
        costs = [resampling_cost(audio, rate, name) for name in RESAMPLERS]
        lines.append(f"  {f'{rate / 1000:g} kHz':12}" + "".join(f"{c:22.5f}{c / model_cpu:10.1%}" for c in costs))
    return "\n".join(lines)
