"""Common names in the station's language: a ranger in Brazil reads "Sabiá-Laranjeira", not "Rufous-bellied Thrush".

Only `Label.common_name` changes; the scientific name stays the key of every payload, so detections from
stations in different languages still join. The translations are BirdNET's own (models/birdnet-v2.4-names,
written by tools/models/import_names.py); English is the model's labels themselves and needs no file.
"""

from __future__ import annotations

import difflib
import unicodedata
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from types import MappingProxyType

from edge.inference.manifest import ModelError, read_manifest_file, verified
from edge.types import Label

NAMES_DIR = "birdnet-v2.4-names"
NAMES_MANIFEST = (
    "names.toml"  # not manifest.toml: edge.inference.manifest.discover would take the directory for a model
)
ENGLISH = "en"
# Codes people type for languages upstream files under another code; used for suggestions only.
ALIASES = {"id": "in", "nb": "no", "nn": "no", "en_gb": "en_uk", "en_us": "en"}


@dataclass(frozen=True)
class CommonNames(Mapping[str, str]):
    """Scientific name -> common name in `language`; species without a name in it are absent."""

    language: str
    names: Mapping[str, str]

    def __getitem__(self, scientific_name: str) -> str:
        return self.names[scientific_name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.names)

    def __len__(self) -> int:
        return len(self.names)

    @classmethod
    def load(cls, models_dir: Path, language: str) -> CommonNames:
        """The names of `language`, from a file whose sha256 must match names.toml (ModelError otherwise);
        ValueError for a language without a file, naming those there are."""
        if language == ENGLISH:
            return cls(ENGLISH, MappingProxyType({}))
        entries = _entries(models_dir)
        if language not in entries:
            raise ValueError(_unknown(language, available_languages(models_dir)))
        folder = models_dir / NAMES_DIR
        path = verified(folder / entries[language]["file"], entries[language]["sha256"], folder / NAMES_MANIFEST)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise ModelError(f"{path}: cannot read the {language} names: {error}") from error
        return cls(language, MappingProxyType(_parse(text)))


def available_languages(models_dir: Path) -> tuple[str, ...]:
    """ "en" (always there: the model's own labels), then every language with a names file, sorted."""
    return (ENGLISH, *sorted(_entries(models_dir)))


def localise(labels: tuple[Label, ...], names: Mapping[str, str]) -> tuple[Label, ...]:
    """`labels` with the common name of `names` where it has one; scientific_name and label unchanged, so a
    species the translation does not know (another ensemble member's) keeps the name its model gave it."""
    return tuple(_localised(label, names.get(label.scientific_name, "")) for label in labels)


def _localised(label: Label, name: str) -> Label:
    # Upstream filled gaps with the English name, sometimes re-cased (pt_BR: "Red-Capped Parrot"): not a
    # translation, so the model's own spelling stays.
    if not name or name.casefold() == label.common_name.casefold():
        return label
    return replace(label, common_name=name)


def _parse(text: str) -> dict[str, str]:
    """ "Scientific_Common" lines. NFC because upstream's Arabic has combining marks out of canonical order;
    strip because of stray no-break spaces; an empty name is left out, so English is kept."""
    names = {}
    for line in text.splitlines():
        scientific, _, common = line.partition("_")
        common = unicodedata.normalize("NFC", common).strip()
        if scientific and common:
            names[scientific] = common
    return names


def _entries(models_dir: Path) -> dict[str, dict]:
    path = models_dir / NAMES_DIR / NAMES_MANIFEST
    if not path.is_file():
        return {}
    try:
        return dict(read_manifest_file(path)["languages"])
    except (KeyError, TypeError, ValueError) as error:
        raise ModelError(f"{path}: invalid manifest: {error!r}") from error


def _unknown(language: str, available: tuple[str, ...]) -> str:
    key = language.lower().replace("-", "_")
    close = [ALIASES.get(key, "")]
    close += [code for code in available if code.lower() == key]
    close += [code for code in available if code.lower().split("_")[0] == key.split("_")[0]]
    close += difflib.get_close_matches(language, available, n=3)
    close = [code for code in dict.fromkeys(close) if code in available]
    hint = f"; did you mean {' or '.join(close)}?" if close else "."
    return f"unknown language {language!r}{hint} Available: {', '.join(available)}"
