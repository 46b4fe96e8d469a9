"""CallBox detectors: models that find each echolocation call in a spectrogram, as BatDetect2 does.

Such a model's manifest says `[output] kind = "calls"`. Its input is a PCEN spectrogram computed here in NumPy
(`[input.spectrogram]`); the graph subtracts each frequency bin's mean, resizes and runs the network, whose
three outputs are a detection heatmap [batch, 1, height, time], the size of the call centred on each pixel
[batch, 2 (duration, bandwidth in pixels), height, time] and the class probabilities [batch, classes, height,
time]. `decode` turns them into calls: the heatmap's local maxima (non-maximum suppression by max pooling),
the best of them, those over the threshold, with their box and class probabilities read at the peak.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from edge.inference.manifest import MANIFEST, Manifest, ModelError, read_manifest_file
from edge.inference.sessions import make_session


@dataclass(frozen=True)
class CallSpec:
    """How a call detector's input is computed and its outputs decoded; see the module docstring.

    Spectrogram: frames of `n_fft` samples every `hop_length` (periodic Hann window, no centring), the
    magnitude of the bins from `min_freq` to `max_freq` Hz (the highest first), times `scale`, then librosa's
    PCEN with a smoothing filter of `pcen_time_frames` frames and `pcen_gain`, `pcen_bias`, `pcen_power`,
    `pcen_eps`. Audio is zero-padded at the end until the resized width is a multiple of `width_multiple`
    (`resize` halves the frames). Decoding: a peak is a pixel equal to the maximum of the `nms_kernel` square
    around it; at most `top_k_per_second` per second of input are kept (counted as BatDetect2 counts them,
    see `top_k`), and those whose score is above `threshold`.
    """

    sample_rate: int
    n_fft: int
    hop_length: int
    min_freq: float
    max_freq: float
    scale: float
    pcen_time_frames: float
    pcen_gain: float
    pcen_bias: float
    pcen_power: float
    pcen_eps: float
    resize: float
    width_multiple: int
    height: int
    nms_kernel: int
    top_k_per_second: int
    threshold: float
    detection_name: str
    size_name: str
    classes_name: str

    @property
    def overlap(self) -> int:
        return self.n_fft - self.hop_length

    @property
    def bins(self) -> slice:
        """The FFT bins kept, lowest first: BatDetect2 keeps the bins above min_freq up to max_freq (bins 21
        to 240 of 2 ms frames, each 500 Hz wide)."""
        seconds = self.n_fft / self.sample_rate
        return slice(round(self.min_freq * seconds) + 1, round(self.max_freq * seconds) + 1)

    def padded_length(self, samples: int) -> int:
        """`samples` zero-padded until the resized spectrogram's width is a multiple of `width_multiple`
        (BatDetect2's pad_audio: a width already a multiple is left as it is, however many samples trail)."""
        width = int(((samples - self.overlap) // self.hop_length) * self.resize)
        if width >= self.width_multiple and width % self.width_multiple == 0:
            return samples
        target = max(self.width_multiple, -(-width // self.width_multiple) * self.width_multiple)
        return int(target / self.resize) * self.hop_length + self.overlap

    def time_of(self, x: np.ndarray) -> np.ndarray:
        """Seconds from the start of the input of resized column `x` (fractional columns too)."""
        return ((x / self.resize) * self.hop_length + self.overlap) / self.sample_rate

    def top_k(self, width: int) -> int:
        """How many peaks are kept for a resized width: BatDetect2 takes the input's duration from that width
        as if it were not resized, so keeps about half its nominal `top_k_per_second`; kept as it is."""
        duration = (width * self.hop_length + self.overlap) / self.sample_rate
        return int(duration * self.top_k_per_second)


@dataclass(frozen=True)
class CallBox:
    """One call: `start` and `end` in seconds from the start of the audio, `low_freq` and `high_freq` in Hz,
    `score` the detection probability (0..1), `probabilities` each class's (labels order; they sum to `score`)."""

    start: float
    end: float
    low_freq: float
    high_freq: float
    score: float
    probabilities: np.ndarray
    peak_freq: float | None = None  # Hz: where most of its energy is (see peak_frequency)

    def best(self) -> int:
        return int(np.argmax(self.probabilities))


SPECTROGRAM_KEYS = ("n_fft", "hop_length", "min_freq", "max_freq", "scale", "pcen_time_frames", "pcen_gain",
                    "pcen_bias", "pcen_power", "pcen_eps", "resize", "width_multiple", "height")  # fmt: skip
CALLS_KEYS = ("nms_kernel", "top_k_per_second", "threshold", "detection_name", "size_name", "classes_name")


def read_call_spec(manifest: Manifest) -> CallSpec:
    path = manifest.directory / MANIFEST
    data = read_manifest_file(path)
    try:
        spectrogram, calls = data["input"]["spectrogram"], data["output"]["calls"]
        return CallSpec(
            sample_rate=manifest.sample_rate,
            **{key: spectrogram[key] for key in SPECTROGRAM_KEYS},
            **{key: calls[key] for key in CALLS_KEYS},
        )
    except (KeyError, TypeError) as error:
        raise ModelError(f"{path}: invalid call detector manifest: {error!r}") from error


def pcen_spectrogram(audio: np.ndarray, spec: CallSpec) -> np.ndarray:
    """The model's input for `audio` (float, at spec.sample_rate): [bins (highest first), frames], float32."""
    return model_input(magnitudes(audio, spec), spec)


def model_input(magnitude: np.ndarray, spec: CallSpec) -> np.ndarray:
    """The model's input from the audio's `magnitudes`."""
    energy = magnitude[:, spec.bins].T[::-1].astype(np.float64) * np.float32(spec.scale)
    return pcen(energy, spec).astype(np.float32)


def magnitudes(audio: np.ndarray, spec: CallSpec) -> np.ndarray:
    """|STFT| of `audio`, padded as the model's input: [frames, every bin], float32."""
    audio = np.asarray(audio, np.float32)
    audio = np.pad(audio, (0, spec.padded_length(len(audio)) - len(audio)))
    frames = np.lib.stride_tricks.sliding_window_view(audio, spec.n_fft)[:: spec.hop_length]
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(spec.n_fft) / spec.n_fft)
    # librosa's STFT: float64 window times float32 frames, stored as complex64; its magnitude as float32.
    return np.abs(np.fft.rfft(frames * window, axis=-1).astype(np.complex64)).astype(np.float32)


def peak_frequency(magnitude: np.ndarray, call: CallBox, spec: CallSpec) -> float:
    """The frequency (Hz) of most energy inside the call's box, summed over its frames: bat workers' peak
    frequency (FmaxE). The box's own low frequency when it holds no whole bin."""
    bin_hz = spec.sample_rate / spec.n_fft
    first = max(0, int(call.start * spec.sample_rate) // spec.hop_length)
    last = max(first + 1, int(call.end * spec.sample_rate) // spec.hop_length)
    low, high = int(np.ceil(call.low_freq / bin_hz)), int(call.high_freq / bin_hz) + 1
    box = magnitude[first:last, low:high].astype(np.float64)
    if box.size == 0:
        return call.low_freq
    return float((low + int(np.argmax((box**2).sum(axis=0)))) * bin_hz)


def pcen(energy: np.ndarray, spec: CallSpec) -> np.ndarray:
    """librosa.pcen along the last axis, with its default initial state (the filter settled on a unit input)."""
    t = spec.pcen_time_frames
    b = (np.sqrt(1 + 4 * t**2) - 1) / (2 * t**2)
    smooth = first_order_smoothing(energy, b)
    gain = np.exp(-spec.pcen_gain * (np.log(spec.pcen_eps) + np.log1p(smooth / spec.pcen_eps)))
    bias, power = spec.pcen_bias, spec.pcen_power
    return (bias**power) * np.expm1(power * np.log1p(energy * gain / bias))


def first_order_smoothing(x: np.ndarray, b: float, block: int = 64) -> np.ndarray:
    """m[t] = (1 - b) m[t - 1] + b x[t] along the last axis from m[-1] = 1 (scipy's lfilter, vectorised).

    Within a block, m[j] = a^(j+1) m[-1] + b a^j sum_{k<=j} a^-k x[k] with a = 1 - b: a cumulative sum, exact
    in float64 while a^-block stays small (block 64: e^3 for BatDetect2's a = 0.95)."""
    a = 1.0 - b
    out = np.empty_like(x, dtype=np.float64)
    state = np.ones(x.shape[:-1])
    for lo in range(0, x.shape[-1], block):
        chunk = x[..., lo : lo + block]
        j = np.arange(chunk.shape[-1])
        out[..., lo : lo + len(j)] = a ** (j + 1) * state[..., None] + b * a**j * np.cumsum(chunk * a**-j, axis=-1)
        state = out[..., lo + len(j) - 1]
    return out


def peaks(heat: np.ndarray, kernel: int) -> np.ndarray:
    """`heat` [height, width] where a pixel is the maximum of the kernel x kernel square centred on it, 0
    elsewhere (BatDetect2's max-pool non-maximum suppression; the square is cut at the edges)."""
    square_max = running_max(running_max(heat, kernel, axis=0), kernel, axis=1)
    return np.where(square_max == heat, heat, 0.0)


def running_max(x: np.ndarray, kernel: int, axis: int) -> np.ndarray:
    """The maximum of the `kernel` values centred on each along `axis` (a square's maximum is the maximum of
    its rows' maxima: 2 k comparisons a pixel instead of k^2)."""
    pad = (kernel - 1) // 2
    widths = [(0, 0)] * x.ndim
    widths[axis] = (pad, kernel - 1 - pad)
    padded = np.pad(x, widths, constant_values=-np.inf)
    n = x.shape[axis]
    out = padded.take(range(0, n), axis=axis)
    for shift in range(1, kernel):
        np.maximum(out, padded.take(range(shift, shift + n), axis=axis), out=out)
    return out


def decode(
    detection: np.ndarray,
    size: np.ndarray,
    classes: np.ndarray,
    spec: CallSpec,
    threshold: float | None = None,
) -> list[CallBox]:
    """The calls in one example's outputs ([1, h, w], [2, h, w], [classes, h, w]), in time order."""
    threshold = spec.threshold if threshold is None else threshold
    heat = peaks(detection[0], spec.nms_kernel)
    height, width = heat.shape
    k = min(spec.top_k(width), heat.size)
    best = np.argpartition(-heat.ravel(), k - 1)[:k] if k else np.array([], dtype=np.int64)
    best = best[np.argsort(-heat.ravel()[best], kind="stable")]
    y, x = np.divmod(best, width)
    order = np.argsort(x, kind="stable")
    y, x = y[order], x[order]
    scores = heat[y, x]
    keep = scores > threshold
    y, x, scores = y[keep], x[keep], scores[keep]
    duration, bandwidth = size[0, y, x], size[1, y, x]
    freq_step = np.float32((spec.max_freq - spec.min_freq) / height)
    low = (height - y).astype(np.float32) * freq_step + np.float32(spec.min_freq)
    start = spec.time_of(x.astype(np.float32))
    end = spec.time_of(x.astype(np.float32) + duration)
    high = low + bandwidth * freq_step
    return [
        CallBox(float(start[i]), float(end[i]), float(low[i]), float(high[i]), float(scores[i]), classes[:, y[i], x[i]])
        for i in range(len(scores))
    ]


class CallDetector:
    """A call detector's ONNX Runtime session: audio at the model's rate in, calls out.

    `calls` runs one piece of audio as a whole (the network's attention spans all of it); `calls_in_chunks`
    runs a recording as BatDetect2 runs a file: in consecutive chunks of the manifest's input length, each on
    its own, their calls' times counted from the recording's start.
    """

    def __init__(self, manifest: Manifest, intra_op_threads: int = 1):
        if manifest.output_kind != "calls":
            raise ModelError(f"{manifest.directory}: {manifest.name} is not a call detector")
        self.manifest = manifest
        self.spec = read_call_spec(manifest)
        self.labels = manifest.labels()
        self.session = make_session(manifest.verified_path(), intra_op_threads)

    def outputs(self, audio: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The network's detection, size and class outputs for `audio`, batch dimension removed."""
        return self._run(magnitudes(audio, self.spec))

    def _run(self, magnitude: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        features = model_input(magnitude, self.spec)[None, None]
        names = [self.spec.detection_name, self.spec.size_name, self.spec.classes_name]
        detection, size, classes = self.session.run(names, {self.manifest.input_name: features})
        return detection[0], size[0], classes[0]

    def calls(self, audio: np.ndarray, threshold: float | None = None) -> list[CallBox]:
        """The calls in `audio`, each with its peak frequency."""
        magnitude = magnitudes(audio, self.spec)
        found = decode(*self._run(magnitude), self.spec, threshold)
        return [replace(call, peak_freq=peak_frequency(magnitude, call, self.spec)) for call in found]

    def calls_in_chunks(
        self, audio: np.ndarray, threshold: float | None = None, nyquist: float | None = None
    ) -> list[CallBox]:
        """Calls of a whole recording; with `nyquist` (half the recording's own rate, Hz), those reaching
        above it are dropped, as BatDetect2 drops them."""
        length = self.manifest.input_length
        return [
            call
            for start in range(0, len(audio), length)
            for call in self.calls_at(audio[start : start + length], start, nyquist, threshold)
        ]

    def calls_at(
        self, audio: np.ndarray, start: int, nyquist: float | None = None, threshold: float | None = None
    ) -> list[CallBox]:
        """The calls of a piece of audio that starts `start` samples into its recording, their times counted
        from the recording's start; with `nyquist`, those reaching above it dropped, as BatDetect2 drops them
        (comparing the whole Hz)."""
        offset = start / self.spec.sample_rate
        return [
            replace(call, start=call.start + offset, end=call.end + offset)
            for call in self.calls(audio, threshold)
            if nyquist is None or int(call.high_freq) <= nyquist
        ]
