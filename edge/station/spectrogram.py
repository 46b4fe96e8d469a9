"""A clip's spectrogram as a PNG for the pages: time across, frequency up from 0 Hz at the bottom to the
clip's Nyquist frequency at the top, log power in a perceptual colour map (viridis: dark blue for quiet,
yellow for loud, so that brightness alone reads as power, in grey print and for colour-blind eyes too).

The image is computed once per clip and cached beside its FLAC file (`<stem>.spectrogram-v1.png`: a change of
the drawing changes the name, and the old images are simply not used); written to a temporary name and renamed,
so that a page never gets half an image.
"""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf
from PIL import Image, ImageDraw

from edge.clips.store import TEMP_SUFFIX

WIDTH, HEIGHT = 600, 200
N_FFT = 1024
DYNAMIC_RANGE_DB = 80.0  # quieter than the loudest bin by more than this is drawn as the darkest colour
VERSION = 1
# viridis at nine points (matplotlib's table), interpolated to 256 entries.
VIRIDIS = np.array(
    [
        (68, 1, 84),
        (71, 44, 122),
        (59, 81, 139),
        (44, 113, 142),
        (33, 144, 141),
        (39, 173, 129),
        (92, 200, 99),
        (170, 220, 50),
        (253, 231, 37),
    ],
    dtype=float,
)
COLOURS = np.stack(
    [np.interp(np.linspace(0, 1, 256), np.linspace(0, 1, len(VIRIDIS)), VIRIDIS[:, c]) for c in range(3)], axis=1
).astype(np.uint8)


def cache_path(clip: Path) -> Path:
    """Where the spectrogram of the clip file `clip` is kept."""
    return clip.with_name(f"{clip.stem}.spectrogram-v{VERSION}.png")


def power_db(samples: np.ndarray, max_frames: int) -> np.ndarray:
    """Log power (dB) of a mono signal, frequency bins (0 Hz first) by frames: Hann windows of N_FFT samples,
    a hop that keeps at most `max_frames` frames (a long clip is not analysed finer than it can be drawn)."""
    if len(samples) < N_FFT:
        samples = np.pad(samples, (0, N_FFT - len(samples)))
    hop = max(N_FFT // 4, -(-(len(samples) - N_FFT) // max(max_frames - 1, 1)))
    starts = np.arange(0, len(samples) - N_FFT + 1, hop)
    frames = samples[starts[:, None] + np.arange(N_FFT)] * np.hanning(N_FFT)
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2
    return 10 * np.log10(power.T + 1e-12)


def draw(samples: np.ndarray, rate: int, width: int = WIDTH, height: int = HEIGHT) -> Image.Image:
    """The spectrogram of a mono signal as an RGB image of width × height, with a kHz scale on the left."""
    db = power_db(samples, 2 * width)
    levels = np.clip((db - (db.max() - DYNAMIC_RANGE_DB)) / DYNAMIC_RANGE_DB, 0, 1)[::-1]  # high frequencies on top
    # Scaled as levels, coloured after: every pixel is a colour of the map.
    scaled = np.asarray(Image.fromarray(levels.astype(np.float32), "F").resize((width, height), Image.Resampling.BOX))
    image = Image.fromarray(COLOURS[np.round(np.clip(scaled, 0, 1) * 255).astype(np.uint8)], "RGB")
    scale(ImageDraw.Draw(image), rate / 2, height)
    return image


def scale(pen: ImageDraw.ImageDraw, nyquist_hz: float, height: int) -> None:
    """Ticks and labels in kHz along the left edge, a round step giving about five of them."""
    step = next(s for s in (0.5, 1, 2, 5, 10, 20, 50, 100) if nyquist_hz / 1000 / s <= 6)
    khz = step
    while khz < nyquist_hz / 1000:
        y = round(height * (1 - khz * 1000 / nyquist_hz))
        pen.line([(0, y), (4, y)], fill="white")
        pen.text((6, y - 6), f"{khz:g} kHz", fill="white")
        khz += step


def png(clip: Path) -> bytes:
    """The spectrogram of a clip file as PNG bytes. soundfile.LibsndfileError (a RuntimeError) for a file that
    is not audio."""
    samples, rate = sf.read(clip, dtype="float32", always_2d=True)
    buffer = io.BytesIO()
    draw(samples.mean(axis=1), rate).save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def cached(clip: Path) -> bytes:
    """The spectrogram of a clip file, from its cache beside it or drawn now and cached. A cache that cannot be
    written (a full or read-only disk) costs only the time of drawing it again next time."""
    path = cache_path(clip)
    try:
        data = path.read_bytes()
        if data:
            return data
    except OSError:  # none yet, or unreadable: drawn again
        pass
    data = png(clip)
    try:
        write_once(path, data)
    except OSError:
        pass
    return data


def write_once(target: Path, data: bytes) -> None:
    """`data` under a temporary name of its own beside `target` (two requests drawing the same clip at once
    each write theirs), then renamed over it. The station removes such temporary files left by a crash at
    start-up (edge.station.clips: hidden, TEMP_SUFFIX)."""
    fd, temp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=TEMP_SUFFIX)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, target)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
