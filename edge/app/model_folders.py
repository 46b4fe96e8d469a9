"""Every folder of a models directory, whatever it holds, with the sha256 of each of its files.

Audio classifiers and call detectors have a `manifest.toml` (edge.inference.manifest); BirdNET's range model a
`range.toml` (edge.screen.range_model), the speech detector a `speech.toml` (edge.screen.speech) and the translated
common names a `names.toml` (edge.inference.names). Each reader loads its own kind, all through
edge.inference.manifest's `read_manifest_file` and `verified`; this module only lists and checks them all, for `edge
models` and `edge config check`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from edge.inference.manifest import MANIFEST, ModelError, load_manifest, read_manifest_file, require_folder, verified
from edge.inference.names import NAMES_MANIFEST
from edge.screen import range_model, speech

KINDS = (
    (MANIFEST, "classifier"),
    (range_model.MANIFEST_FILE, "range filter"),
    (speech.MANIFEST, "speech detector"),
    (NAMES_MANIFEST, "common names"),
)


@dataclass(frozen=True)
class ModelFolder:
    directory: Path
    manifest: Path
    kind: str
    name: str
    version: str
    licence: str
    files: tuple[tuple[str, str], ...]  # (file name, sha256 its manifest gives)
    detail: str  # what it holds, in a few words

    @property
    def size(self) -> int:
        paths = (self.directory / name for name, _ in self.files)
        return sum(path.stat().st_size for path in paths if path.is_file())

    def problems(self) -> list[str]:
        """One line per file that is missing or whose sha256 is not its manifest's; empty when all is well."""
        found = []
        for name, sha256 in self.files:
            try:
                verified(self.directory / name, sha256, self.manifest)
            except ModelError as error:
                found.append(str(error))
        return found


def model_folders(models_dir: Path) -> list[ModelFolder]:
    """Every model folder under `models_dir`, by folder name; ModelError for a missing models folder or a
    manifest that cannot be read."""
    require_folder(models_dir)
    folders = (folder_at(path) for path in sorted(models_dir.iterdir()) if path.is_dir())
    return [folder for folder in folders if folder is not None]


def folder_at(directory: Path) -> ModelFolder | None:
    """The model folder `directory` is, read by the manifest it holds; None when it holds none."""
    kind = next(((name, kind) for name, kind in KINDS if (directory / name).is_file()), None)
    return None if kind is None else read_folder(directory, *kind)


def read_folder(directory: Path, manifest_name: str, kind: str) -> ModelFolder:
    path = directory / manifest_name
    data = read_manifest_file(path)
    if kind == "classifier" and data.get("output", {}).get("kind") == "calls":
        kind = "call detector"
    try:
        if kind == "common names":
            languages = data["languages"]
            files = tuple((entry["file"], entry["sha256"]) for entry in languages.values())
            name, version, detail = directory.name, str(data["source_version"]), f"{len(languages)} languages"
        else:
            files = ((data["file"], data["sha256"]),)
            name, version, detail = data["name"], str(data["version"]), describe(directory, kind, data)
        licence = data["licence"]
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise ModelError(f"{path}: invalid manifest: {error!r}") from error
    return ModelFolder(directory, path, kind, name, version, licence, files, detail)


def describe(directory: Path, kind: str, data: dict) -> str:
    if kind == "classifier":
        m = load_manifest(directory)
        return f"{m.input_kind} {m.input_seconds:g} s @ {m.sample_rate} Hz, {len(m.labels())} classes, {m.precision}"
    if kind == "call detector":
        m = load_manifest(directory)
        return f"calls in {m.input_seconds:g} s chunks @ {m.sample_rate} Hz, {len(m.labels())} classes, {m.precision}"
    if kind == "speech detector":
        return f"{data['input']['frame']}-sample frames @ {data['input']['sample_rate']} Hz"
    return f"{data['output']['shape'][-1]} classes by place and week"


def find_folder(models_dir: Path, folder_name: str) -> ModelFolder:
    """The folder `folder_name` (e.g. "silero-vad"), read as `model_folders` reads each; only it is read."""
    folder = folder_at(models_dir / folder_name) if (models_dir / folder_name).is_dir() else None
    if folder is None:
        raise ModelError(f"{models_dir / folder_name}: missing; reinstall edge or rebuild the model")
    return folder
