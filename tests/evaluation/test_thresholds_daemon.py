"""The thresholds file `edge evaluate --thresholds-out` writes, as the daemon takes it: `edge config check`
accepts it (and names the line of a broken one), and the daemon, on a labelled soundscape in its watched
folder, reports the species it tunes from the file's threshold rather than the smoother's `on`: more of it,
every event at least as confident as the threshold, every other species' events unchanged. Its daily event
files are then scored by `edge evaluate` as they lie."""

import json
import shutil

import pytest

from edge.events.smoother import SmootherOptions
from edge.screen.species import read_thresholds
from support.config import FAST_FOLDER, write_config
from support.paths import DATA
from support.processes import DaemonProcess, edge_cli
from support.records import read_records

PIHA = "Lipaugus vociferans"
# The quietest of the five: the piha is heard throughout, mostly far off, its windows scoring 0.02 to 0.7.
RECORDING = "ScreamingPiha7"
LABELLED = DATA / "labelled"


@pytest.fixture(scope="module")
def thresholds(tmp_path_factory):
    """The file proposed for precision 0.95 from BirdNET-Analyzer's segmentation of the five soundscapes."""
    folder = tmp_path_factory.mktemp("thresholds")
    replayed = folder / "replay"
    edge_cli("replay", str(LABELLED), "--window", "3", "--hop", "3", "--min-conf", "0.1", "--out", str(replayed))
    path = folder / "thresholds.csv"
    edge_cli(
        "evaluate",
        *("--truth", str(LABELLED), "--detections", str(replayed), "--min-conf", "0.1"),
        *("--thresholds-out", str(path), "--target-precision", "0.95", "--min-support", "10"),
    )
    print(path.read_text())
    return path


def config(folder, thresholds_file=None):
    inbox = folder / "inbox"
    inbox.mkdir(parents=True, exist_ok=True)
    species = {"species": {"thresholds_file": str(thresholds_file)}} if thresholds_file else {}
    source = {"type": "folder", "path": str(inbox), "after": "keep", **FAST_FOLDER}
    return write_config(folder / "edge.toml", folder / "data", source, **species), inbox


def test_config_check_takes_the_file_and_names_a_broken_line(thresholds, tmp_path):
    tuned = read_thresholds(thresholds)[PIHA]
    assert tuned < SmootherOptions.on / 2, "noticeably lower than the smoother's own start"
    checked = edge_cli("config", "check", str(config(tmp_path / "good", thresholds)[0]))
    assert "valid" in checked.stdout

    broken = tmp_path / "broken.csv"
    broken.write_text(thresholds.read_text().replace(f"{PIHA},{tuned:.4f}", f"{PIHA},{tuned:.4f}.5"))
    refused = edge_cli("config", "check", str(config(tmp_path / "bad", broken)[0]), check=False)
    assert refused.returncode != 0
    assert f"species.thresholds_file: {broken}:2: expected 'Scientific name,threshold'" in refused.stderr


def daemon_events(folder, thresholds_file=None) -> tuple[list[dict], dict]:
    """The daemon over the labelled soundscape: its event ends, and `edge evaluate` of its records folder."""
    path, inbox = config(folder, thresholds_file)
    shutil.copy(LABELLED / f"{RECORDING}.mp3", inbox)
    daemon = DaemonProcess(path)
    try:
        daemon.wait_log("recording_done", file=f"{RECORDING}.mp3", timeout=300)
        code, _ = daemon.terminate()
    finally:
        daemon.close()
    assert code == 0, daemon.stderr_now()
    records = folder / "data" / "records"
    ends = [r for r in read_records(records) if r["kind"] == "end"]
    truth = LABELLED / f"{RECORDING}.Table.1.selections.txt"
    scored = edge_cli(
        "evaluate", "--truth", str(truth), "--detections", str(records), "--min-conf", "0", "--format", "json"
    )
    return ends, json.loads(scored.stdout)


def piha(ends: list[dict]) -> list[dict]:
    return [r for r in ends if r["scientific_name"] == PIHA]


def others(ends: list[dict]) -> list[tuple]:
    return sorted(
        (r["scientific_name"], r["start_s"], r["end_s"], r["confidence"]) for r in ends if r["scientific_name"] != PIHA
    )


def heard(ends: list[dict]) -> float:
    """Seconds of the piha's events."""
    return sum(r["end_s"] - r["start_s"] for r in piha(ends))


def test_the_daemon_reports_the_tuned_species_from_its_threshold(thresholds, tmp_path):
    tuned = read_thresholds(thresholds)[PIHA]
    default, default_scored = daemon_events(tmp_path / "default")
    with_file, tuned_scored = daemon_events(tmp_path / "tuned", thresholds)
    print(json.dumps({"default": piha(default), "tuned": piha(with_file)}))

    assert piha(with_file), "the tuned threshold reports the distant piha"
    assert heard(with_file) > heard(default), "for longer than the default threshold does"
    assert all(r["confidence"] >= tuned for r in piha(with_file))
    assert all(r["confidence"] >= SmootherOptions.on for r in default + with_file if r["scientific_name"] != PIHA)
    assert others(with_file) == others(default), "the file names the piha alone"

    found = [s["species"][PIHA] for s in (default_scored, tuned_scored)]
    print(json.dumps(found))
    assert found[0]["support"] == found[1]["support"] > 0
    assert found[1]["recall"] > found[0]["recall"], "more of the expert's segments found"
