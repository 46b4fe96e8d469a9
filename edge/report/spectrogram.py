"""A recording's spectrogram summarised to a picture's width: read in blocks, each pixel column the loudest of
the short-time spectra it covers, so an hour-long file takes as little memory as a minute and a short call
still shows in an hour's summary (a mean would wash it out)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import structlog
from numpy.lib.stride_tricks import sliding_window_view

log = structlog.get_logger(__name__)

N_FFT = 512
HOP = N_FFT // 2
BLOCK_FRAMES = 512  # spectra computed at once: a block of ~0.13 M samples, whatever the file's length


@dataclass(frozen=True)
class Summary:
    """`power_db[bin, column]`: dB (re 1, full scale), lowest frequency first, bins up to `top_hz`; the columns
    share `seconds` equally."""

    power_db: np.ndarray
    seconds: float
    top_hz: float

    @property
    def columns(self) -> int:
        return int(self.power_db.shape[1])


def summarise(path: Path, columns: int = 1200, top_hz: float = 12_000.0) -> Summary:
    """The spectrogram of `path` (its channels mixed) in at most `columns` columns, up to `top_hz` (or the
    file's Nyquist frequency)."""
    with sf.SoundFile(os.fsencode(path)) as f:
        rate, frames = f.samplerate, f.frames
        spectra = max(1, (frames - N_FFT) // HOP + 1)
        width = max(1, min(columns, spectra))
        bins = int(min(top_hz, rate / 2) * N_FFT // rate) + 1
        loudest = np.zeros((width, bins), dtype=np.float32)
        taper = np.hanning(N_FFT).astype(np.float32)
        done = 0
        carry = np.zeros(0, dtype=np.float32)
        for block in f.blocks(blocksize=HOP * BLOCK_FRAMES, dtype="float32", always_2d=True):
            samples = np.concatenate([carry, block.mean(axis=1)])
            count = (len(samples) - N_FFT) // HOP + 1 if len(samples) >= N_FFT else 0
            if count:
                power = spectra_of(samples, count, taper, bins)
                pool(loudest, power, np.minimum((done + np.arange(count)) * width // spectra, width - 1))
                done += count
                carry = samples[count * HOP :]
            else:
                carry = samples
    log.debug("spectrogram_summarised", recording=path.name, spectra=done, columns=width)
    db = 10 * np.log10(loudest.T + 1e-12, dtype=np.float32)
    return Summary(db, frames / rate if rate else 0.0, (bins - 1) * rate / N_FFT)


def spectra_of(samples: np.ndarray, count: int, taper: np.ndarray, bins: int) -> np.ndarray:
    """Power of `count` tapered frames, hop HOP, float32."""
    frames = sliding_window_view(samples, N_FFT)[::HOP][:count] * taper
    spectrum = np.fft.rfft(frames, axis=1)[:, :bins]
    return (spectrum.real**2 + spectrum.imag**2).astype(np.float32) / N_FFT


def pool(loudest: np.ndarray, power: np.ndarray, column: np.ndarray) -> None:
    """Each column keeps the loudest power of the spectra that fall in it (`column` is non-decreasing)."""
    starts = np.flatnonzero(np.r_[True, column[1:] != column[:-1]])
    peaks = np.maximum.reduceat(power, starts, axis=0)
    where = column[starts]
    loudest[where] = np.maximum(loudest[where], peaks)
