"""What a configuration needs from this machine, checked without starting anything: `edge config check` reports
it, and `edge run` refuses to start on it, in the same words. Each problem starts with the option it is about.
Folders that are only not writable now are warnings, not problems: `run` starts and reports the storage fault.

What the configuration alone decides (types, ranges, box id, topic prefix) is checked by edge.app.settings; here is
what needs the file system: folders that must be creatable and writable, files that must be readable, and the
model files with the classes and languages they hold.
"""

from __future__ import annotations

import os
from pathlib import Path

from edge.app.model_folders import find_folder
from edge.app.settings import Settings
from edge.inference.manifest import ModelError, find, require_folder
from edge.inference.names import CommonNames, localise
from edge.screen.range_model import MODEL_NAME as RANGE_MODEL
from edge.screen.species import SpeciesListError, read_thresholds
from edge.screen.speech import MODEL_NAME as SPEECH_MODEL
from edge.sources.files import ReplayConfig
from edge.sources.folder import FolderConfig
from edge.types import Label, index_by_name

# Kernel file systems: a folder there cannot hold records, whatever its permissions say (root may "write" /proc).
VIRTUAL = (Path("/proc"), Path("/sys"), Path("/dev"))


def problems(settings: Settings, verify: bool = True) -> list[str]:
    """Every problem found, one line each; empty when the daemon would start. `verify` checks each model file's
    sha256 too (loading the models does that again at start)."""
    return folder_problems(settings) + file_problems(settings) + model_problems(settings, verify)


def folders(settings: Settings) -> dict[str, Path]:
    """The folders the daemon writes to (or watches), by the option that sets them."""
    found = {"data_dir": settings.data_dir, "output.directory": settings.records_dir}
    if settings.clips.enabled:
        found["clips.directory"] = settings.clips_dir
    if isinstance(settings.source, FolderConfig):
        found["source.path"] = settings.source.path
        found["source.quarantine_dir"] = settings.quarantine_dir
        if settings.source.after == "move":
            found["source.done_dir"] = settings.done_dir
    return found


def folder_problems(settings: Settings) -> list[str]:
    found = [f"{option}: {problem}" for option, path in folders(settings).items() if (problem := folder_problem(path))]
    if isinstance(settings.source, FolderConfig) and (problem := creation_problem(settings.source.path)):
        found.append(f"source.path: {problem}")  # nothing to watch: the recorder's folder must exist or be made
    databases = (path for path in (settings.state_path, settings.outbox_path) if path.is_dir())
    return found + [f"data_dir: {path} is a folder, not the database it must be" for path in databases]


def folder_problem(path: Path) -> str | None:
    """Why `path` can never be a folder to write in (None when it can, or can be created): a kernel file system,
    or a file where the folder should be. A folder that is not writable now is a storage fault instead."""
    real = path.resolve()  # through symbolic links
    if root := next((r for r in VIRTUAL if r == real or r in real.parents), None):
        return f"{path} is on a kernel file system ({root})"
    absolute = Path(os.path.abspath(path))
    existing = nearest(absolute)
    if not existing.is_dir():
        return (
            f"{path} exists and is not a folder"
            if existing == absolute
            else f"{path} cannot be created: {existing} is not a folder"
        )
    return None


def nearest(absolute: Path) -> Path:
    """`absolute` if it exists, else its nearest parent that does."""
    return next(p for p in (absolute, *absolute.parents) if p.exists() or p.is_symlink())


def writable_problem(path: Path) -> str | None:
    """Why the folder `path` cannot be written in now (None when it can, or does not exist and can be made)."""
    absolute = Path(os.path.abspath(path))
    existing = nearest(absolute)
    if not existing.is_dir() or os.access(existing, os.W_OK | os.X_OK):
        return None
    if existing == absolute:
        return f"{path} is not writable"
    return f"{path} cannot be created: {existing} is not writable"


def creation_problem(path: Path) -> str | None:
    """Why a folder that does not exist cannot be made (None when it exists or can be)."""
    return None if Path(os.path.abspath(path)).exists() else writable_problem(path)


def storage_warnings(settings: Settings) -> list[str]:
    """Folders the daemon writes to that are not writable now (a card remounted read-only, wrong owner). Not a
    reason to refuse the start: the box goes on analysing, holds records in memory and reports the fault in its
    health record until the disk takes them again (see edge.storage.faults)."""
    found = []
    for option, path in folders(settings).items():
        if option == "source.path" and not (
            isinstance(settings.source, FolderConfig) and settings.source.after == "move"
        ):
            continue  # only read from, unless files are moved out of it
        if problem := writable_problem(path):
            found.append(f"{option}: {problem}")
    return found


def file_problems(settings: Settings) -> list[str]:
    """Files the configuration names that cannot be read: recordings to replay, the thresholds file, the
    broker's password and TLS files. The password read is never shown."""
    found = []
    if settings.species.thresholds_file is not None:
        try:
            read_thresholds(settings.species.thresholds_file)
        except SpeciesListError as error:
            found.append(f"species.thresholds_file: {error}")
    if isinstance(settings.source, ReplayConfig):
        found += [
            f"source.paths: {path}: no such file or folder" for path in settings.source.paths if not path.exists()
        ]
    mqtt = settings.mqtt
    if mqtt is None:
        return found
    if problem := mqtt.secret_problem():
        found.append(f"mqtt.password_file: {problem}")
    for option in ("ca_file", "cert_file", "key_file"):
        path = getattr(mqtt, option)
        if path is not None and not (path.is_file() and os.access(path, os.R_OK)):
            found.append(f"mqtt.{option}: {path} is not a readable file")
    return found


def model_problems(settings: Settings, verify: bool = True) -> list[str]:
    """One line per model that is missing, damaged or unknown, per language without names and per alert class
    no model knows; empty when the daemon would find them all."""
    models_dir = settings.models_dir
    try:
        require_folder(models_dir)
    except ModelError as error:
        return [f"models_dir: {error}"]
    found: list[str] = []
    labels: tuple[Label, ...] = ()
    for name in settings.model.names:
        try:
            manifest = find(models_dir, name)
            if verify:
                manifest.verified_path()  # ModelError for a damaged or missing file
            labels += manifest.labels()
        except (ModelError, OSError) as error:
            found.append(f"model.members: {error}")
    folders = {"species.latitude": RANGE_MODEL} if settings.species.options().located else {}
    folders |= {"privacy.speech_detector": SPEECH_MODEL} if settings.privacy.speech_detector else {}
    for option, folder in folders.items():
        try:
            found += [f"{option}: {p}" for p in (find_folder(models_dir, folder).problems() if verify else [])]
        except ModelError as error:
            found.append(f"{option}: {error}")
    try:
        labels = localise(tuple(labels), CommonNames.load(models_dir, settings.language))
    except (ModelError, ValueError) as error:
        found.append(f"language: {error}")
    return found or alert_problems(settings, labels)


def alert_problems(settings: Settings, labels) -> list[str]:
    """Alert classes no model knows: a typo must not silence an alert."""
    index = index_by_name(tuple(labels))
    unknown = [c.name for c in settings.alerts.classes if c.name.casefold() not in index]
    return [
        f"alerts.classes: {name!r} is not a class of the models (give its scientific name, common name or label)"
        for name in unknown
    ]
