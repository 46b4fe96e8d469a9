"""Common names in the station's language, from the bundled BirdNET translations (models/birdnet-v2.4-names):
the names a ranger reads change, the scientific names payloads are keyed by do not."""

import hashlib
import importlib.util
import shutil
import subprocess
import sys
import tomllib
import unicodedata

import pytest

from edge.inference.manifest import ModelError, discover, load_manifest
from edge.inference.names import NAMES_DIR, CommonNames, available_languages, localise
from edge.types import Label
from support.paths import ROOT

TOOL = ["-m", "tools.models.import_names"]


@pytest.fixture
def birdnet_labels(models_dir):
    return load_manifest(models_dir / "birdnet-v2.4").labels()


@pytest.fixture
def names_copy(tmp_path, models_dir):
    """A models folder holding a copy of the names directory, free to alter."""
    shutil.copytree(models_dir / NAMES_DIR, tmp_path / NAMES_DIR)
    return tmp_path


def test_portuguese_names_for_a_brazilian_station(models_dir):
    names = CommonNames.load(models_dir, "pt_BR")
    assert names["Turdus rufiventris"] == "Sabiá-Laranjeira"
    assert names["Pitangus sulphuratus"] == "Bem-Te-Vi"
    assert CommonNames.load(models_dir, "pt_PT")["Turdus rufiventris"] == "Sabiá-de-barriga-ruiva"


@pytest.mark.parametrize(
    "language, blackbird, robin",
    [
        ("es", "Mirlo Común", "Petirrojo Europeo"),
        ("fr", "Merle noir", "Rougegorge familier"),
        ("de", "Amsel", "Rotkehlchen"),
    ],
)
def test_european_names(models_dir, language, blackbird, robin):
    names = CommonNames.load(models_dir, language)
    assert names.language == language
    assert (names["Turdus merula"], names["Erithacus rubecula"]) == (blackbird, robin)


def test_every_language_covers_every_label_in_model_order(models_dir, birdnet_labels):
    entries = tomllib.loads((models_dir / NAMES_DIR / "names.toml").read_text())["languages"]
    assert {"pt_BR", "pt_PT", "en_uk", "es", "fr", "de", "zh"} <= set(entries)
    assert available_languages(models_dir) == ("en", *sorted(entries))
    wanted = [label.scientific_name for label in birdnet_labels]
    assert len(wanted) == 6522
    for language, entry in entries.items():
        lines = (models_dir / NAMES_DIR / entry["file"]).read_text(encoding="utf-8").splitlines()
        assert [line.partition("_")[0] for line in lines] == wanted, language
        assert entry["lines"] == 6522
        assert set(CommonNames.load(models_dir, language)) <= set(wanted)  # and its sha256 matches


def test_names_are_cleaned_of_stray_spaces_and_put_in_canonical_form(models_dir):
    assert CommonNames.load(models_dir, "es")["Horornis canturians"] == "Cetia Manchú"  # upstream: trailing NBSP
    assert CommonNames.load(models_dir, "zh")["Phoeniconaias minor"] == "小红鹳"
    arabic = CommonNames.load(models_dir, "ar")
    assert all(name == unicodedata.normalize("NFC", name) for name in arabic.values())


def test_altered_file_is_refused(names_copy):
    path = names_copy / NAMES_DIR / "pt_BR.txt"
    data = path.read_bytes()
    path.write_bytes(data.replace("Sabiá-Laranjeira".encode(), "Sabiá-Laranjeirb".encode()))
    with pytest.raises(ModelError, match="pt_BR.txt: sha256 .* differs from names.toml"):
        CommonNames.load(names_copy, "pt_BR")
    assert CommonNames.load(names_copy, "de")["Turdus merula"] == "Amsel"  # the others still load


def test_unknown_language_names_the_available_ones(models_dir):
    with pytest.raises(ValueError) as error:
        CommonNames.load(models_dir, "pt")
    message = str(error.value)
    assert "did you mean pt_BR or pt_PT?" in message
    assert all(language in message for language in available_languages(models_dir))
    with pytest.raises(ValueError, match="did you mean in\\?"):  # upstream's code for Indonesian
        CommonNames.load(models_dir, "id")


def test_english_needs_no_file(tmp_path, birdnet_labels):
    names = CommonNames.load(tmp_path, "en")
    assert len(names) == 0 and available_languages(tmp_path) == ("en",)
    assert localise(birdnet_labels, names) == birdnet_labels
    with pytest.raises(ValueError, match="Available: en$"):
        CommonNames.load(tmp_path, "pt_BR")


def test_localise_changes_only_common_names(models_dir, birdnet_labels):
    local = localise(birdnet_labels, CommonNames.load(models_dir, "pt_BR"))
    assert [(x.scientific_name, x.label) for x in local] == [(x.scientific_name, x.label) for x in birdnet_labels]
    by_name = {label.scientific_name: label for label in local}
    assert by_name["Turdus rufiventris"] == Label(
        "Turdus rufiventris", "Sabiá-Laranjeira", "Turdus rufiventris_Rufous-bellied Thrush", species=True
    )
    # pt_BR's "Red-Capped Parrot" is upstream's re-cased English fallback, not a translation.
    assert by_name["Purpureicephalus spurius"].common_name == "Red-capped Parrot"
    assert 2000 < sum(a != b for a, b in zip(local, birdnet_labels, strict=True)) < 4000


def test_labels_of_another_member_keep_their_names(models_with_birdclef, models_dir):
    other = next(m for m in discover(models_with_birdclef) if m.name == "birdclef-tiny").labels()
    local = localise(other, CommonNames.load(models_dir, "es"))
    assert local[:-1] == other[:-1]  # "Tonus band000": unknown to BirdNET's translations
    assert local[-1] == Label("Cranioleuca erythrops", "Curutié Carirrojo", "Cranioleuca erythrops_Red-faced Spinetail")
    stranger = Label("Pipistrellus pipistrellus", "Common Pipistrelle", "pippip")
    assert localise((stranger,), CommonNames.load(models_dir, "de")) == (stranger,)


def test_empty_translation_keeps_the_english_name(names_copy, birdnet_labels):
    folder = names_copy / NAMES_DIR
    path = folder / "de.txt"
    old = path.read_bytes()
    path.write_bytes(old.replace(b"Turdus merula_Amsel", b"Turdus merula_"))
    manifest = folder / "names.toml"
    manifest.write_text(
        manifest.read_text().replace(hashlib.sha256(old).hexdigest(), hashlib.sha256(path.read_bytes()).hexdigest())
    )
    names = CommonNames.load(names_copy, "de")
    assert "Turdus merula" not in names and names["Erithacus rubecula"] == "Rotkehlchen"
    local = {x.scientific_name: x.common_name for x in localise(birdnet_labels, names)}
    assert local["Turdus merula"] == "Eurasian Blackbird"


needs_package = pytest.mark.skipif(
    importlib.util.find_spec("birdnet_analyzer") is None,
    reason="birdnet-analyzer (the source of the names) is not installed",
)


@needs_package
def test_import_tool_reproduces_the_bundled_directory(tmp_path, models_dir):
    subprocess.run(
        [sys.executable, *TOOL, "--out", str(tmp_path)], check=True, capture_output=True, timeout=120, cwd=ROOT
    )
    bundled = models_dir / NAMES_DIR
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in bundled.iterdir())
    for path in tmp_path.iterdir():
        assert path.read_bytes() == (bundled / path.name).read_bytes(), path.name


@needs_package
def test_import_tool_refuses_labels_in_another_order(tmp_path, models_dir):
    lines = (models_dir / "birdnet-v2.4" / "labels.txt").read_text(encoding="utf-8").splitlines()
    lines[10], lines[11] = lines[11], lines[10]
    labels = tmp_path / "labels.txt"
    labels.write_text("\n".join(lines), encoding="utf-8")
    result = subprocess.run(
        [sys.executable, *TOOL, "--out", str(tmp_path / "out"), "--labels", str(labels)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert result.returncode != 0
    assert "differ from labels.txt at line 11" in result.stderr
    assert not (tmp_path / "out").exists()
