"""The species filter on real recordings: BirdNET's range model, include/exclude lists and per-species
thresholds, reloaded by SIGHUP; `edge species`."""

from __future__ import annotations

import json
import shutil
import signal
from datetime import date

import numpy as np
import pytest
import soundfile as sf

from edge.inference.manifest import find
from edge.screen.range_model import RangeModel
from edge.screen.species import SpeciesFilter, SpeciesListError, SpeciesOptions, read_thresholds
from support.config import FAST_FOLDER, write_config
from support.paths import MODELS
from support.processes import DaemonProcess, edge_cli
from support.records import read_records

SPINETAIL = "Cranioleuca erythrops"  # Red-faced Spinetail: the bird of maad_spinetail.wav, recorded in Colombia
ROBIN = "Erithacus rubecula"  # European Robin
COLOMBIA = (5.0, -75.5)  # the Central Andes, Caldas: occurrence 0.10-0.15 through the year
GERMANY = (50.1, 8.7)  # Frankfurt
LABELS = find(MODELS, "birdnet-v2.4").labels()
COLUMN = {label.scientific_name: i for i, label in enumerate(LABELS)}


@pytest.fixture(scope="module")
def range_model():
    return RangeModel.load(MODELS)


def allowed(range_model, place, day=date(2024, 6, 10), **options) -> set[str]:
    species = SpeciesFilter(SpeciesOptions(*place, **options), LABELS, range_model)
    mask = species.allowed_on(day)
    return {LABELS[i].scientific_name for i in np.flatnonzero(mask)}


def test_range_filter_keeps_a_species_in_its_range_and_drops_it_outside(range_model):
    in_colombia, in_germany = allowed(range_model, COLOMBIA), allowed(range_model, GERMANY)
    assert SPINETAIL in in_colombia and SPINETAIL not in in_germany
    assert ROBIN in in_germany and ROBIN not in in_colombia
    # not species: never range-filtered
    assert {"Engine", "Gun", "Human vocal"} <= in_germany & in_colombia
    assert 100 < len(in_germany) < len(in_colombia) < 1000


def test_lists_and_the_range_threshold(range_model):
    assert SPINETAIL in allowed(range_model, GERMANY, include=("Red-faced Spinetail",))
    assert SPINETAIL not in allowed(range_model, COLOMBIA, exclude=(SPINETAIL,))
    assert SPINETAIL not in allowed(range_model, COLOMBIA, include=(SPINETAIL,), exclude=(SPINETAIL,))
    assert len(allowed(range_model, GERMANY, range_threshold=0.3)) < len(allowed(range_model, GERMANY))


def test_season_moves_migrants(range_model):
    """A Barn Swallow is in Germany in June and in southern Africa in January."""
    swallow = "Hirundo rustica"
    assert swallow in allowed(range_model, GERMANY, date(2024, 6, 10))
    assert swallow not in allowed(range_model, GERMANY, date(2024, 1, 10))


def test_thresholds_file_is_checked_line_by_line(tmp_path):
    path = tmp_path / "thresholds.csv"
    path.write_text("# species,threshold\nTurdus merula, 0.8\nStrix aluco,0.2  # owls are rare\n")
    assert read_thresholds(path) == {"Turdus merula": 0.8, "Strix aluco": 0.2}
    path.write_text("Turdus merula,0.8\nStrix aluco;0.2\n")
    with pytest.raises(SpeciesListError, match=r"thresholds.csv:2: expected"):
        read_thresholds(path)


def spinetail_events(records_dir) -> list[dict]:
    return [e for e in read_records(records_dir) if e["scientific_name"] == SPINETAIL]


def test_daemon_filters_a_real_recording_and_sighup_reloads_lists_and_thresholds(data, tmp_path):
    """In Germany the spinetail of a Colombian recording is dropped; put on the include list and reloaded
    with SIGHUP it is reported; a thresholds file above its confidence silences it again, after another SIGHUP
    re-reads the file."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    thresholds = tmp_path / "thresholds.csv"
    thresholds.write_text("")
    source = {"type": "folder", "path": str(inbox), **FAST_FOLDER}

    def configure(**species):
        write_config(
            tmp_path / "edge.toml",
            tmp_path / "data",
            source,
            species={"latitude": GERMANY[0], "longitude": GERMANY[1], "thresholds_file": str(thresholds), **species},
        )

    configure()
    records = tmp_path / "data" / "records"
    daemon = DaemonProcess(tmp_path / "edge.toml")
    try:
        daemon.wait_notification("READY=1")
        shutil.copy(data / "maad_spinetail.wav", inbox / "a.wav")
        daemon.wait_log("recording_done", file="a.wav", timeout=120)
        assert daemon.wait_log("species_list_updated")["latitude"] == GERMANY[0]
        assert spinetail_events(records) == []

        configure(include=[SPINETAIL])
        daemon.process.send_signal(signal.SIGHUP)
        assert daemon.wait_log("config_reloaded", timeout=20)["applied"] == ["species"]
        shutil.copy(data / "maad_spinetail.wav", inbox / "b.wav")
        daemon.wait_log("recording_done", file="b.wav", timeout=120)
        found = spinetail_events(records)
        assert found and {e["source"] for e in found} == {"b.wav"}
        best = max(e["confidence"] for e in found)

        thresholds.write_text(f"{SPINETAIL},{min(1.0, best + 0.02):.2f}\n")
        daemon.process.send_signal(signal.SIGHUP)
        daemon.wait_log("config_reloaded", timeout=20)
        shutil.copy(data / "maad_spinetail.wav", inbox / "c.wav")
        daemon.wait_log("recording_done", file="c.wav", timeout=120)
        assert {e["source"] for e in spinetail_events(records)} == {"b.wav"}
        code, _ = daemon.terminate()
    finally:
        daemon.close()
    assert code == 0


def test_daemon_keeps_the_species_in_its_range(data, tmp_path):
    config = write_config(
        tmp_path / "edge.toml",
        tmp_path / "data",
        {"type": "replay", "paths": [str(data / "maad_spinetail.wav")]},
        species={"latitude": COLOMBIA[0], "longitude": COLOMBIA[1]},
    )
    daemon = DaemonProcess(config)
    assert daemon.wait_exit() == 0
    daemon.close()
    assert {e["kind"] for e in spinetail_events(tmp_path / "data" / "records")} == {"start", "end"}


def test_species_command_prints_the_expected_list():
    colombia = edge_cli("species", "--lat", str(COLOMBIA[0]), "--lon", str(COLOMBIA[1]), "--date", "2024-06-10")
    assert SPINETAIL in colombia.stdout and "week 22 of 48" in colombia.stdout
    germany = edge_cli(
        "species", "--lat", str(GERMANY[0]), "--lon", str(GERMANY[1]), "--date", "2024-06-10", "--language", "de"
    )
    assert SPINETAIL not in germany.stdout and ROBIN in germany.stdout and "Rotkehlchen" in germany.stdout
    languages = edge_cli("species", "--languages").stdout.split()
    assert "pt_BR" in languages and languages.count("en") == 1
    # Crickets named only by their scientific name are species: in range or not, never "always".
    always = [line for line in colombia.stdout.splitlines() if "always" in line]
    assert any("Engine" in line for line in always) and not any("Gryllus" in line for line in always)
    wrong = edge_cli("species", "--lat", "10", "--lon", "10", "--language", "klingon", check=False)
    assert wrong.returncode != 0 and "pt_BR" in wrong.stderr


# `edge replay` with the range filter. The three QUT recordings are of Australian birds; BirdNET also reports
# birds of other continents in them (Black-chested Jay 0.31 and White-bellied Woodpecker 0.42 in the king-parrot
# recording). At Mackay, Queensland, the range model expects the Bush Stone-curlew (Bush Thick-knee, 0.69 over the
# year) and the Eastern Whipbird (0.22), and none of the others (below 0.01).
QUEENSLAND = ("-20.92", "149.44")
AUSTRALIAN_RECORDINGS = ("curlew_call_1.wav", "kingParrot_cabin.wav", "pheasantCoucal_file0123.wav")
IN_RANGE = {"Burhinus grallarius", "Psophodes olivaceus"}
OUT_OF_RANGE = {
    "Cyanocorax affinis",
    "Dryocopus javensis",
    "Nasica longirostris",
    "Spilornis cheela",
    "Turtur tympanistria",
    "Centropus sinensis",
}
# opso_birds_10s.wav holds three wood warblers that pass Pittsburgh on migration: expected there in May (week 18:
# Tennessee Warbler 0.15), not in January (week 2: below 0.01).
PITTSBURGH = ("40.44", "-79.96")
WARBLERS = {
    "Leiothlypis peregrina",
    "Setophaga fusca",
}  # Tennessee and Blackburnian: in Pittsburgh in May, not in January


def replayed(paths, out, *options) -> dict[str, set[str]]:
    """Scientific names detected by `edge replay`, per recording."""
    edge_cli("replay", *map(str, paths), "--out", str(out), "--format", "jsonl", *options)
    found: dict[str, set[str]] = {}
    for line in (out / "detections.jsonl").read_text().splitlines():
        record = json.loads(line)
        found.setdefault(record["source"], set()).add(record["scientific_name"])
    return found


def species_in(found: dict[str, set[str]]) -> set[str]:
    return set().union(*found.values())


def test_replay_range_filter_drops_birds_of_other_continents(data, tmp_path):
    paths = [data / name for name in AUSTRALIAN_RECORDINGS]
    unfiltered = species_in(replayed(paths, tmp_path / "all"))
    assert IN_RANGE | OUT_OF_RANGE <= unfiltered
    filtered = species_in(replayed(paths, tmp_path / "queensland", "--lat", QUEENSLAND[0], "--lon", QUEENSLAND[1]))
    assert filtered == IN_RANGE


def test_replay_include_and_exclude_lists_as_options_and_files(data, tmp_path):
    """As the daemon's lists: names scientific, common or label; exclude wins; files hold one name a line."""
    exclude = tmp_path / "exclude.txt"
    exclude.write_text("# BirdNET-Analyzer species-list lines work as they are\nBurhinus grallarius_Bush Thick-knee\n")
    paths = [data / name for name in AUSTRALIAN_RECORDINGS]
    found = species_in(
        replayed(
            paths,
            tmp_path / "lists",
            "--lat",
            QUEENSLAND[0],
            "--lon",
            QUEENSLAND[1],
            "--include",
            "Black-chested Jay",
            "--include",
            "Burhinus grallarius",
            "--exclude-file",
            str(exclude),
        )
    )
    assert found == {"Psophodes olivaceus", "Cyanocorax affinis"}
    include = tmp_path / "include.txt"
    include.write_text("white-bellied woodpecker\n")
    found = species_in(
        replayed(paths, tmp_path / "no-place", "--include-file", str(include), "--exclude", "Eastern Whipbird")
    )
    assert "Dryocopus javensis" in found and "Psophodes olivaceus" not in found and OUT_OF_RANGE - found == set()
    typo = edge_cli(
        "replay", str(paths[0]), "--out", str(tmp_path / "typo"), "--include", "Black-chested Jya", check=False
    )
    assert typo.returncode != 0 and "'Black-chested Jya'" in typo.stderr


def test_replay_filters_each_recording_for_its_own_date_unless_told_the_week(data, tmp_path):
    """A recorder's file name (May) and an AudioMoth header (January) give each recording its week; --week
    and --date override both."""
    recordings = tmp_path / "recordings"
    recordings.mkdir()
    shutil.copy(data / "opso_birds_10s.wav", recordings / "20200510_060000.wav")
    audio, rate = sf.read(str(data / "opso_birds_10s.wav"), dtype="float32")
    with sf.SoundFile(str(recordings / "january.wav"), "w", rate, 1, subtype="PCM_16") as file:
        file.comment = "Recorded at 06:00:00 10/01/2020 (UTC) by AudioMoth 24F319055FDF2F5B"
        file.write(audio)
    place = ("--lat", PITTSBURGH[0], "--lon", PITTSBURGH[1])
    assert WARBLERS <= species_in(replayed([recordings], tmp_path / "all"))
    own_dates = replayed([recordings], tmp_path / "own", *place)
    assert WARBLERS <= own_dates["20200510_060000.wav"] and not WARBLERS & own_dates.get("january.wav", set())
    may = replayed([recordings], tmp_path / "may", *place, "--week", "18")
    assert WARBLERS <= may["january.wav"] and WARBLERS <= may["20200510_060000.wav"]
    january = replayed([recordings], tmp_path / "january", *place, "--date", "2020-01-10")
    assert not WARBLERS & species_in(january)


@pytest.mark.parametrize(
    "options, named",
    [
        (("--lat", "91", "--lon", "0"), "--lat"),
        (("--lat", "0", "--lon", "nan"), "--lon"),
        (("--lat", "0", "--lon", "181"), "--lon"),
        (("--lat", "0", "--lon", "0", "--week", "0"), "--week"),
        (("--lat", "0", "--lon", "0", "--week", "49"), "--week"),
        (("--lat", "0", "--lon", "0", "--date", "2020-13-01"), "--date"),
        (("--lat", "0", "--lon", "0", "--date", "2020-01-01", "--week", "3"), "--week"),
        (
            (
                "--lat",
                "0",
            ),
            "--lon",
        ),
        (
            (
                "--week",
                "3",
            ),
            "--lat",
        ),
    ],
)
def test_replay_refuses_a_bad_place_or_week_naming_the_option(data, tmp_path, options, named):
    result = edge_cli("replay", str(data / "curlew_call_1.wav"), "--out", str(tmp_path), *options, check=False)
    assert result.returncode == 2 and named in result.stderr and "No such option" not in result.stderr
    assert not (tmp_path / "detections.jsonl").exists()


def test_filter_refuses_a_week_outside_birdnets_year(range_model):
    for week in (0, 49):
        with pytest.raises(ValueError, match=f"week {week} is outside 1..48"):
            SpeciesFilter(SpeciesOptions(*COLOMBIA, week=week), LABELS, range_model)
    year_round = SpeciesFilter(SpeciesOptions(*COLOMBIA, week=-1), LABELS, range_model)
    assert year_round.allowed_on(date(2024, 6, 10)).sum() > 0 and year_round.weeks == {-1}
