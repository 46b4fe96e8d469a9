"""Model directories: a manifest.toml that says everything edge knows about a model, its labels and checksum.

A model is added by dropping a directory into the models folder; nothing about a model lives in the code.
Every kind of model folder (this module's audio classifiers, the range model, the speech detector, the
translated names) reads its manifest with `read_manifest_file` and opens each file it names through `verified`,
which checks the file's sha256 at load: no model file is used unchecked, and every failure reads alike.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from edge.types import Label

MANIFEST = "manifest.toml"

# /proc/cpuinfo flags that make INT8 inference fast: VNNI on x86 (AVX-512 or AVX), the dot-product and int8
# matrix instructions on Arm. A quantized model names those it was tuned on; without them it runs, slower.
INT8_CPU_FEATURES = ("avx2", "avx_vnni", "avx512_vnni", "asimddp", "i8mm")


class ModelError(Exception):
    """A model directory that cannot be used, with the reason."""


@dataclass(frozen=True)
class LogMelSpec:
    """Log-mel spectrogram computed by edge for members that take one as input.

    Frames of `n_fft` samples every `hop_length` (Hann window, `center` pads n_fft // 2 each side), power
    spectrum to the `power`, `n_mels` triangular filters between `fmin` and `fmax` Hz on the `mel_scale`
    ("htk" or "slaney", filters area-normalised when `mel_norm` = "slaney"), then `10 * log10(max(x, amin))`
    clipped to `top_db` below the peak (when set), then `normalise`: "none", "zscore" (per example) or
    "minmax" (per example, to 0..1). `layout` is the tensor the model takes: "nchw" = [batch, 1, mels, frames],
    "nct" = [batch, mels, frames].
    """

    n_fft: int
    hop_length: int
    n_mels: int
    fmin: float = 0.0
    fmax: float | None = None
    power: float = 2.0
    center: bool = True
    mel_scale: Literal["htk", "slaney"] = "htk"
    mel_norm: Literal["slaney"] | None = None
    amin: float = 1e-10
    top_db: float | None = 80.0
    normalise: Literal["none", "zscore", "minmax"] = "none"
    layout: Literal["nchw", "nct"] = "nchw"


@dataclass(frozen=True)
class Manifest:
    directory: Path
    name: str
    version: str
    title: str
    licence: str
    file: str
    sha256: str
    labels_file: str
    label_format: Literal["scientific_common", "scientific"]
    sample_rate: int
    input_length: int
    input_kind: Literal["waveform", "logmel", "spectrogram"]
    input_name: str
    output_kind: Literal["logits", "probabilities", "calls"]
    output_name: str
    logmel: LogMelSpec | None = None
    batch: int | None = None  # most crops per session run that pays off (large activations: 1)
    precision: str = "fp32"
    tuned_for: tuple[str, ...] = ()
    not_species: frozenset[str] | None = None  # scientific names of classes that are not species, if listed
    # The lowest rate a source must record at for the model to hear anything (bats: far above 48 kHz); a
    # stream recorded below it is not given to the model.
    min_source_rate: int | None = None

    @property
    def path(self) -> Path:
        return self.directory / self.file

    @property
    def input_seconds(self) -> float:
        return self.input_length / self.sample_rate

    def labels(self) -> tuple[Label, ...]:
        lines = (self.directory / self.labels_file).read_text(encoding="utf-8").splitlines()
        labels = tuple(parse_label(line.strip(), self.label_format) for line in lines if line.strip())
        if self.not_species is None:
            return labels
        return tuple(replace(label, species=label.scientific_name not in self.not_species) for label in labels)

    def checksum_ok(self) -> bool:
        try:
            self.verified_path()
        except ModelError:
            return False
        return True

    def verified_path(self) -> Path:
        """The model file, once its sha256 is the manifest's (ModelError otherwise: a damaged card, a
        half-copied file)."""
        return verified(self.path, self.sha256, self.directory / MANIFEST)

    def missing_features(self, available: frozenset[str]) -> tuple[str, ...]:
        """The CPU features this model was tuned for that `available` (see cpu_features) lacks."""
        return tuple(f for f in self.tuned_for if f not in available)


def parse_label(text: str, label_format: str) -> Label:
    if label_format == "scientific_common" and "_" in text:
        scientific, common = text.split("_", 1)
        return Label(scientific_name=scientific, common_name=common, label=text)
    return Label(scientific_name=text, common_name=text, label=text)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verified(path: Path, expected: str, manifest: Path) -> Path:
    """`path`, once it exists and has the sha256 that `manifest` gives it; ModelError in one line otherwise.
    Hashed at every load, never remembered: a card can go bad between two loads, and hashing BirdNET's 55 MB
    takes about 0.1 s on an x86 core, a third of building its session."""
    if not path.is_file():
        raise ModelError(f"{path}: missing (named in {manifest}); reinstall edge or rebuild the model")
    actual = file_sha256(path)
    if actual != expected:
        raise ModelError(
            f"{path}: sha256 {actual[:16]}... differs from {manifest.name} ({expected[:16]}...): "
            f"damaged or replaced; reinstall edge or rebuild the model"
        )
    return path


def read_manifest_file(path: Path, missing: str = "no manifest") -> dict:
    """The table of a model folder's manifest (any kind); ModelError `<path>: <missing>` when there is none,
    `<path>: invalid manifest: ...` when it cannot be read as TOML."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise ModelError(f"{path}: {missing}") from error
    except OSError as error:
        raise ModelError(f"{path}: cannot read: {error}") from error
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise ModelError(f"{path}: invalid manifest: {error!r}") from error


def cpu_features(cpuinfo: Path = Path("/proc/cpuinfo")) -> frozenset[str] | None:
    """The flags of this CPU (x86 "flags", Arm "Features"), or None where there is no /proc/cpuinfo."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return None
    return frozenset(
        word
        for line in text.splitlines()
        if re.match(r"(flags|Features)\s*:", line)
        for word in line.split(":", 1)[1].split()
    )


def string_list(value, key: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise TypeError(f"{key} must be a list of names, got {value!r}")
    return tuple(value)


def load_manifest(directory: Path) -> Manifest:
    path = directory / MANIFEST
    data = read_manifest_file(path)
    try:
        inp, out = data["input"], data["output"]
        manifest = Manifest(
            directory=directory,
            name=data["name"],
            version=str(data["version"]),
            title=data.get("title", data["name"]),
            licence=data["licence"],
            file=data["file"],
            sha256=data["sha256"],
            labels_file=data["labels"],
            label_format=data.get("label_format", "scientific_common"),
            sample_rate=int(inp["sample_rate"]),
            input_length=int(inp["length"]),
            input_kind=inp["kind"],
            input_name=inp.get("name", "input"),
            output_kind=out["kind"],
            output_name=out.get("name", "output"),
            logmel=LogMelSpec(**inp["logmel"]) if inp["kind"] == "logmel" else None,
            batch=int(inp["batch"]) if "batch" in inp else None,
            min_source_rate=int(inp["min_source_rate"]) if "min_source_rate" in inp else None,
            # A quantized model says so in an optional [quantization] table; FP32 manifests have none.
            precision=str(data.get("quantization", {}).get("precision", "fp32")),
            tuned_for=string_list(data.get("quantization", {}).get("tuned_for", []), "tuned_for"),
            not_species=frozenset(string_list(data["not_species"], "not_species")) if "not_species" in data else None,
        )
    except (KeyError, TypeError, ValueError) as error:
        raise ModelError(f"{path}: invalid manifest: {error!r}") from error
    if manifest.input_kind not in ("waveform", "logmel", "spectrogram"):
        raise ModelError(f"{path}: input kind {manifest.input_kind!r} is not 'waveform', 'logmel' or 'spectrogram'")
    if manifest.output_kind not in ("logits", "probabilities", "calls"):
        raise ModelError(f"{path}: output kind {manifest.output_kind!r} is not 'logits', 'probabilities' or 'calls'")
    for needed in (manifest.path, directory / manifest.labels_file):
        if not needed.is_file():
            raise ModelError(f"{path}: missing {needed.name}")
    return manifest


def discover(models_dir: Path, calls: bool = False) -> list[Manifest]:
    """Every classifier's model directory under `models_dir`, by name; with `calls`, the call detectors'
    (output kind "calls", edge.inference.calls) instead: they find calls in a spectrogram, they do not score
    windows."""
    require_folder(models_dir)
    found = [load_manifest(d) for d in sorted(models_dir.iterdir()) if (d / MANIFEST).is_file()]
    return sorted((m for m in found if (m.output_kind == "calls") == calls), key=lambda m: m.name)


def find(models_dir: Path, name: str) -> Manifest:
    """The model named `name`: a window classifier or a call detector."""
    models = {m.name: m for m in [*discover(models_dir), *discover(models_dir, calls=True)]}
    if name not in models:
        known = ", ".join(models) or "none"
        raise ModelError(f"no model named {name!r} in {models_dir} (bundled: {known})")
    return models[name]


def require_folder(models_dir: Path) -> None:
    if not models_dir.is_dir():
        raise ModelError(
            f"{models_dir}: no such models folder (set --models-dir or EDGE_MODELS_DIR to the folder "
            f"holding one directory per model)"
        )


def default_models_dir() -> Path:
    """The bundled models: edge/models in an installed package; in a checkout, a link to the models/ folder."""
    return Path(__file__).resolve().parents[1] / "models"
