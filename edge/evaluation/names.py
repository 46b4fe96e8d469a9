"""Species names as an expert writes them, turned into the models' scientific names.

Labellers write what they know: "Screaming Piha", "lipaugus vociferans", "Sabiá-laranjeira", a four-letter code
such as "GWWA". A codes file maps codes (it comes first: a code may spell a common word); then every name the
bundled models' labels carry (scientific, common, the label itself) and the common names of every language
BirdNET's translations hold, matched without regard to case. A name nothing knows is kept as written, and
counted, so the evaluation can say which labels it could not place.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from pathlib import Path

import structlog

from edge.inference.manifest import ModelError, discover
from edge.inference.names import CommonNames, available_languages
from edge.screen.species import SpeciesListError

log = structlog.get_logger(__name__)


class SpeciesNames:
    """A callable from a labeller's name to a scientific name; `unknown` counts the names it kept as written."""

    def __init__(self, known: Mapping[str, str], codes: Mapping[str, str] | None = None) -> None:
        self.known = {key_of(name): scientific for name, scientific in known.items()}
        self.codes = {key_of(code): scientific for code, scientific in (codes or {}).items()}
        self.unknown: Counter[str] = Counter()

    def __call__(self, name: str) -> str:
        key = key_of(name)
        if key in self.codes:
            return self.codes[key]
        if key in self.known:
            return self.known[key]
        self.unknown[name] += 1
        return name

    @classmethod
    def of_models(cls, models_dir: Path, codes: Mapping[str, str] | None = None) -> SpeciesNames:
        """The names the models under `models_dir` know; none when there is no such folder (the codes alone)."""
        return cls(known_names(models_dir), codes)


def key_of(name: str) -> str:
    """A name as compared: case and runs of spaces do not count."""
    return " ".join(name.split()).casefold()


def known_names(models_dir: Path) -> dict[str, str]:
    """Every name of every label of the bundled models, and the translated common names, to its scientific
    name; the first model (by name) to claim a name keeps it, and scientific names are never overridden."""
    names: dict[str, str] = {}
    try:
        manifests = discover(models_dir)
        languages = [CommonNames.load(models_dir, code) for code in available_languages(models_dir)]
    except (ModelError, ValueError) as error:
        log.warning("species_names_unavailable", models_dir=str(models_dir), error=str(error))
        return names
    labels = [label for m in manifests for label in m.labels()]
    for label in labels:
        names.setdefault(key_of(label.scientific_name), label.scientific_name)
    for label in labels:
        for name in label.names:
            names.setdefault(key_of(name), label.scientific_name)
    for language in languages:
        for scientific, common in language.items():
            names.setdefault(key_of(common), scientific)
    return names


def read_codes(path: Path) -> dict[str, str]:
    """'code,scientific name' lines (`#` comments): the names labels use, mapped to the models' names."""
    codes = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        code, _, name = text.partition(",")
        if not code.strip() or not name.strip():
            raise SpeciesListError(f"{path}:{number}: expected 'code,scientific name', got {line.strip()!r}")
        codes[code.strip()] = name.strip()
    return codes
