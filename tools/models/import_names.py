"""Bring birdnet-analyzer's translated BirdNET V2.4 labels into models/birdnet-v2.4-names/, for edge/inference/names.py.

Each `<lang>.txt` is a byte-for-byte copy of the package's BirdNET_GLOBAL_6K_V2.4_Labels_<lang>.txt, in the
same "Scientific name_Common name" format as models/birdnet-v2.4/labels.txt. Copies, not a rewrite, because
then our sha256 is the one in the package's own RECORD (checked here), anyone can verify where a file came from,
and the CC BY-NC-SA material is passed on unmodified. Cleaning (a stray no-break space, Arabic combining marks
out of canonical order) is left to the loader.

The manifest is `names.toml`, not `manifest.toml`: edge.inference.manifest.discover loads every directory of the models
folder that has a manifest.toml as a model, and this directory is not one.

Upstream wrote these files from the eBird taxonomy API and kept the English name wherever eBird had no name in
that language, sometimes re-cased ("Red-Capped Parrot" in pt_BR) or from an older taxonomy. So a name equal to
the English one (ignoring case) is counted as untranslated (`same_as_english`); an empty name falls back to
English in edge; a file whose scientific names differ from labels.txt in any way, or in order, fails the run.

Usage: python -m tools.models.import_names [--out models/birdnet-v2.4-names] [--labels models/birdnet-v2.4/labels.txt]
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import importlib.metadata
import importlib.util
import json
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = "birdnet_analyzer"
LABELS_DIR = "labels/V2.4"
PATTERN = re.compile(r"BirdNET_GLOBAL_6K_V2\.4_Labels_(?P<lang>[A-Za-z_]+)\.txt")
LICENCE = "CC-BY-NC-SA-4.0"


@dataclass(frozen=True)
class Language:
    """One translated label file as found upstream, and what was odd about it."""

    code: str
    source: Path
    data: bytes
    lines: int
    same_as_english: int
    empty: tuple[str, ...]  # scientific names without a name in this language
    padded: tuple[str, ...]  # names with whitespace around them
    shared: tuple[tuple[str, tuple[str, ...]], ...]  # a name given to more than one species

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


def package_labels() -> Path:
    """The package's labels folder, found without importing the package (its dependencies are absent)."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        sys.exit(f"{PACKAGE} is not installed")
    return Path(list(spec.submodule_search_locations)[0]) / LABELS_DIR


def record_hashes() -> dict[str, str]:
    """sha256 (hex) of each file of the package by its path, as pip recorded it at installation."""
    hashes = {}
    for file in importlib.metadata.distribution(PACKAGE).files or []:
        if file.hash and file.hash.mode == "sha256":
            hashes[str(file)] = base64.urlsafe_b64decode(file.hash.value + "==").hex()
    return hashes


def split(line: str) -> tuple[str, str]:
    scientific, _, common = line.partition("_")
    return scientific, common


def read_language(code: str, source: Path, english: list[tuple[str, str]]) -> Language:
    data = source.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        sys.exit(f"{source}: not UTF-8: {error}")
    pairs = [split(line) for line in text.splitlines()]
    if "\r" in text or text.startswith("\ufeff"):
        sys.exit(f"{source}: CR line ends or a byte-order mark, unlike labels.txt")
    wanted = [scientific for scientific, _ in english]
    found = [scientific for scientific, _ in pairs]
    if found != wanted:
        at = next(
            (i for i, (a, b) in enumerate(zip(found, wanted, strict=False)) if a != b), min(len(found), len(wanted))
        )
        sys.exit(
            f"{source}: scientific names differ from labels.txt at line {at + 1} "
            f"({found[at] if at < len(found) else 'end of file'!r} vs "
            f"{wanted[at] if at < len(wanted) else 'end of file'!r}; {len(found)} vs {len(wanted)} lines)"
        )
    by_name: dict[str, list[str]] = {}
    for scientific, common in pairs:
        if common.strip():
            by_name.setdefault(common.strip(), []).append(scientific)
    return Language(
        code=code,
        source=source,
        data=data,
        lines=len(pairs),
        same_as_english=sum(
            c.strip().casefold() == e.casefold() for (_, c), (_, e) in zip(pairs, english, strict=True)
        ),
        empty=tuple(s for s, c in pairs if not c.strip()),
        padded=tuple(s for s, c in pairs if c.strip() and c != c.strip()),
        shared=tuple((name, tuple(species)) for name, species in sorted(by_name.items()) if len(species) > 1),
    )


def manifest_text(languages: list[Language], version: str, labels: Path) -> str:
    out = [
        "# Written by tools/import_names.py, read by edge/names.py: common names of BirdNET V2.4's classes in",
        '# other languages, one file per language, lines "Scientific name_Common name" in the order of',
        "# birdnet-v2.4/labels.txt. same_as_english: names equal to the English label ignoring case (upstream's",
        "# fallback where eBird had no name in that language; a few are genuinely the same word).",
        f"source = {json.dumps(PACKAGE)}",
        f"source_version = {json.dumps(version)}",
        f"source_files = {json.dumps(f'{PACKAGE}/{LABELS_DIR}/BirdNET_GLOBAL_6K_V2.4_Labels_<lang>.txt')}",
        f"labels_sha256 = {json.dumps(hashlib.sha256(labels.read_bytes()).hexdigest())}",
        f"licence = {json.dumps(LICENCE)}",
        'licence_file = "LICENSE"',
        'attribution = "ATTRIBUTION.md"',
        'label_format = "scientific_common"',
    ]
    for lang in languages:
        out += [
            "",
            f"[languages.{lang.code}]",
            f'file = "{lang.code}.txt"',
            f'sha256 = "{lang.sha256}"',
            f"lines = {lang.lines}",
            f"same_as_english = {lang.same_as_english}",
            f"empty = {len(lang.empty)}",
        ]
    return "\n".join(out) + "\n"


def attribution_text(languages: list[Language], version: str) -> str:
    codes = ", ".join(lang.code for lang in languages)
    return f"""# BirdNET V2.4 common names in other languages

Translated labels of BirdNET V2.4 GLOBAL 6K by the K. Lisa Yang Center for Conservation Bioacoustics, Cornell
Lab of Ornithology, and Chemnitz University of Technology, as shipped in `{PACKAGE}/{LABELS_DIR}/` of the PyPI
package birdnet-analyzer {version}. The package's code is under the MIT licence; its README puts the BirdNET
models under CC BY-NC-SA 4.0, and these label files belong to the model release (the same
BirdNET_GLOBAL_6K_V2.4_Labels file set as models/birdnet-v2.4/labels.txt), so they are redistributed here under
CC BY-NC-SA 4.0 (see LICENSE). Non-commercial use only.

Upstream wrote them from the eBird taxonomy (`birdnet_analyzer/translate.py`) and kept the English name where
eBird had none in a language. The files are unmodified copies (sha256 in names.toml, equal to the package's
RECORD); `<lang>.txt` is upstream's BirdNET_GLOBAL_6K_V2.4_Labels_<lang>.txt renamed.

Languages (upstream's codes): {codes}.

Kahl, S., Wood, C. M., Eibl, M., & Klinck, H. (2021). BirdNET: A deep learning solution for avian
diversity monitoring. Ecological Informatics, 61, 101236.
"""


def report(lang: Language) -> str:
    notes = [f"{lang.code:6} {lang.lines} lines, {lang.same_as_english} same as English"]
    if lang.empty:
        notes.append(f"  empty (English kept): {', '.join(lang.empty)}")
    if lang.padded:
        notes.append(f"  whitespace around the name (stripped on load): {', '.join(lang.padded)}")
    for name, species in lang.shared:
        notes.append(f"  {name!r} names {len(species)} species: {', '.join(species)}")
    return "\n".join(notes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "models" / "birdnet-v2.4-names")
    parser.add_argument("--labels", type=Path, default=ROOT / "models" / "birdnet-v2.4" / "labels.txt")
    parser.add_argument(
        "--licence",
        type=Path,
        default=ROOT / "models" / "birdnet-v2.4" / "LICENSE",
        help="the CC BY-NC-SA 4.0 legal code to ship beside the names",
    )
    args = parser.parse_args()

    english = [split(line) for line in args.labels.read_text(encoding="utf-8").splitlines() if line.strip()]
    source_dir = package_labels()
    version = importlib.metadata.version(PACKAGE)
    recorded = record_hashes()
    languages = []
    for source in sorted(source_dir.iterdir()):
        if match := PATTERN.fullmatch(source.name):
            lang = read_language(match["lang"], source, english)
            relative = f"{PACKAGE}/{LABELS_DIR}/{source.name}"
            if recorded.get(relative) != lang.sha256:
                sys.exit(f"{source}: sha256 differs from the package's RECORD: the installed file was altered")
            languages.append(lang)
    if not languages:
        sys.exit(f"no translated label files in {source_dir}")

    args.out.mkdir(parents=True, exist_ok=True)
    codes = {f"{lang.code}.txt" for lang in languages}
    for stale in args.out.glob("*.txt"):
        if stale.name not in codes:
            stale.unlink()
    for lang in languages:
        (args.out / f"{lang.code}.txt").write_bytes(lang.data)
    shutil.copyfile(args.licence, args.out / "LICENSE")
    (args.out / "ATTRIBUTION.md").write_text(attribution_text(languages, version), encoding="utf-8")
    (args.out / "names.toml").write_text(manifest_text(languages, version, args.labels), encoding="utf-8")

    for lang in languages:
        print(report(lang))
    size = sum(f.stat().st_size for f in args.out.iterdir())
    print(f"{len(languages)} languages from {PACKAGE} {version} into {args.out}: {size} bytes")


if __name__ == "__main__":
    main()
