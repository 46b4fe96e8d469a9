"""A clip's spectrogram as a PNG for the pages: time across, frequency up from 0 Hz at the bottom to the
clip's Nyquist frequency at the top, log power in a perceptual colour map (viridis: dark blue for quiet,
yellow for loud, so that brightness alone reads as power, in grey print and for colour-blind eyes too).

The image is computed once per clip and cached beside its FLAC file (`<stem>.spectrogram-v1.png`: a change of
the drawing changes the name, and the old images are simply not used); written to a temporary name and renamed,
so that a page never gets half an image.

The file is not trusted, though the station checked its header on arrival (a clip kept before, a file replaced
on disk): its header must declare at most two channels and a length the station would have taken, the audio is
read in blocks mixed down as they come and only the windows drawn are kept, so that memory stays bounded
whatever the file holds. A clip that cannot be drawn is refused with the reason, and the refusal is cached
beside it (`<stem>.spectrogram-v1.refused`) like an image, so that it is not decoded again on every request.
"""

from __future__ import annotations

import io
import textwrap
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import soundfile as sf
import structlog
from PIL import Image, ImageDraw

from edge.clips.store import write_atomically
from edge.station.schemas import MAX_CLIP_SECONDS
from edge.wire.clips import MAX_CHANNELS

log = structlog.get_logger(__name__)

WIDTH, HEIGHT = 600, 200
N_FFT = 1024
DYNAMIC_RANGE_DB = 80.0  # quieter than the loudest bin by more than this is drawn as the darkest colour
VERSION = 1
BLOCK_FRAMES = 65536  # read at a time: 512 kB of float32 on two channels
# Decoded at most: the longest clip taken at 48 kHz in stereo (ultrasound clips that long are not drawn).
MAX_SAMPLES = round(MAX_CLIP_SECONDS * 48000 * 2)
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


class Undrawable(Exception):
    """A clip whose spectrogram is not drawn: the reason, in words."""


def cache_path(clip: Path) -> Path:
    """Where the spectrogram of the clip file `clip` is kept."""
    return clip.with_name(f"{clip.stem}.spectrogram-v{VERSION}.png")


def refusal_path(clip: Path) -> Path:
    """Where the reason a clip file is not drawn is kept."""
    return clip.with_name(f"{clip.stem}.spectrogram-v{VERSION}.refused")


def forget(clip: Path) -> None:
    """Deletes what was drawn or refused of the clip file `clip` (it is being deleted). OSError when it cannot."""
    cache_path(clip).unlink(missing_ok=True)
    refusal_path(clip).unlink(missing_ok=True)


def refusal(channels: int, frames: int, rate: int) -> str | None:
    """Why a file of this header is not decoded for drawing (None when it may be): more channels than a clip
    has, a length unknown (libsndfile counts it as 2**63 - 1 then) or longer than a clip the station takes."""
    if channels > MAX_CHANNELS:
        return f"the clip has {channels} channels; a clip has at most {MAX_CHANNELS}"
    if frames <= 0 or rate <= 0 or frames >= 2**63 - 1:
        return "the clip's file does not declare its length"
    if frames / rate > MAX_CLIP_SECONDS or frames * channels > MAX_SAMPLES:
        return f"the clip lasts {frames / rate:.0f} s at {rate} Hz: longer than the station draws"
    return None


def window_starts(length: int, max_frames: int) -> np.ndarray:
    """Where the Hann windows of N_FFT samples start in a signal of `length` samples (one at 0 for a signal
    shorter than a window, zero-padded): a hop that keeps at most `max_frames` of them (a long clip is not
    analysed finer than it can be drawn)."""
    length = max(length, N_FFT)
    hop = max(N_FFT // 4, -(-(length - N_FFT) // max(max_frames - 1, 1)))
    return np.arange(0, length - N_FFT + 1, hop)


def windows(blocks: Iterable[np.ndarray], starts: np.ndarray) -> np.ndarray:
    """The samples of each window (window by N_FFT, zero past the end) out of a mono signal given as
    consecutive blocks: only the windows are kept, never the whole signal."""
    out = np.zeros((len(starts), N_FFT), dtype=np.float32)
    offset = 0
    for block in blocks:
        end = offset + len(block)
        first = int(np.searchsorted(starts, offset - N_FFT, side="right"))  # the first window ending after offset
        for i in range(first, int(np.searchsorted(starts, end))):
            lo, hi = max(starts[i], offset), min(starts[i] + N_FFT, end)
            out[i, lo - starts[i] : hi - starts[i]] = block[lo - offset : hi - offset]
        offset = end
    return out


def power_db(frames: np.ndarray) -> np.ndarray:
    """Log power (dB) of windows of samples (window by N_FFT), frequency bins (0 Hz first) by windows."""
    power = np.abs(np.fft.rfft(frames * np.hanning(N_FFT), axis=1)) ** 2
    return 10 * np.log10(power.T + 1e-12)


def draw(db: np.ndarray, rate: int, width: int = WIDTH, height: int = HEIGHT) -> Image.Image:
    """Log power (`power_db`) of a signal at `rate` as an RGB image of width × height, with a kHz scale on the
    left."""
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


def placeholder(reason: str, width: int = WIDTH, height: int = HEIGHT) -> bytes:
    """A grey PNG of the spectrogram's size saying why there is none, for the page to show in its place."""
    image = Image.new("RGB", (width, height), (90, 90, 90))
    text = "\n".join(textwrap.wrap(f"No spectrogram: {reason}", width // 7))
    ImageDraw.Draw(image).multiline_text((12, 12), text, fill="white", spacing=6)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def mono_blocks(f: sf.SoundFile, frames: int) -> Iterator[np.ndarray]:
    """The first `frames` frames of an open file, mixed down to mono, BLOCK_FRAMES at a time."""
    left = frames
    while left > 0:
        block = f.read(min(BLOCK_FRAMES, left), dtype="float32", always_2d=True)
        if not len(block):
            return
        left -= len(block)
        yield block.mean(axis=1)


def png(clip: Path) -> bytes:
    """The spectrogram of a clip file as PNG bytes. Undrawable when its header is refused (see `refusal`) or
    its audio does not decode."""
    try:
        with sf.SoundFile(clip) as f:
            if why := refusal(f.channels, f.frames, f.samplerate):
                raise Undrawable(why)
            db = power_db(windows(mono_blocks(f, f.frames), window_starts(f.frames, 2 * WIDTH)))
            rate = f.samplerate
    except (sf.SoundFileError, MemoryError) as error:
        raise Undrawable(f"the clip's audio cannot be decoded: {type(error).__name__}") from None
    buffer = io.BytesIO()
    draw(db, rate).save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def cached(clip: Path, drawing: threading.Lock) -> bytes:
    """The spectrogram of a clip file, from its cache beside it or drawn now (holding `drawing`: one at a time)
    and cached; Undrawable, cached likewise, when it is not drawn. A cache that cannot be written (a full or
    read-only disk) costs only the time of drawing it again next time."""
    if (image := _kept(clip)) is not None:
        return image
    with drawing:
        if (image := _kept(clip)) is not None:  # drawn while this request waited
            return image
        try:
            image = png(clip)
        except Undrawable as why:
            log.warning("spectrogram_refused", clip=str(clip), reason=str(why))
            _keep(refusal_path(clip), str(why).encode())
            raise
        _keep(cache_path(clip), image)
        return image


def _kept(clip: Path) -> bytes | None:
    """The cached image of the clip; None when there is none yet; Undrawable when it was refused."""
    try:
        if image := cache_path(clip).read_bytes():
            return image
    except OSError:  # none yet, or unreadable: drawn again
        pass
    try:
        reason = refusal_path(clip).read_text(errors="replace")
    except OSError:
        return None
    raise Undrawable(reason)


def _keep(path: Path, data: bytes) -> None:
    try:
        write_atomically(path, data)  # under `drawing`: no other writer of this name in the process
    except OSError:
        pass
