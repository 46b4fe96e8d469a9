"""`edge evaluate` on five soundscapes an expert labelled (176 boxes of Screaming Piha): the numbers the README
gives, as JSON, and the thresholds file it proposes, which the daemon's species filter reads."""

import json

import pytest

from edge.screen.species import read_thresholds
from support.paths import DATA
from support.processes import edge_cli

PIHA = "Lipaugus vociferans"


@pytest.fixture(scope="module")
def replayed(tmp_path_factory):
    """BirdNET-Analyzer's segmentation (3 s windows, no overlap) over the labelled soundscapes."""
    out = tmp_path_factory.mktemp("piha")
    labelled = str(DATA / "labelled")
    edge_cli("replay", labelled, "--window", "3", "--hop", "3", "--min-conf", "0.1", "--out", str(out))
    return out


def evaluate(data, out, *options):
    result = edge_cli("evaluate", "--truth", str(data / "labelled"), "--detections", str(out), *options)
    return result.stdout


def test_segments_and_events_scored_as_json(data, replayed):
    segments = json.loads(evaluate(data, replayed, "--format", "json"))
    piha = segments["species"][PIHA]
    print(json.dumps(piha))
    assert (segments["match"], segments["segment_s"], segments["min_conf"]) == ("segments", 3.0, 0.25)
    assert piha["support"] == 98, "3 s segments holding at least 0.5 s of a box (or half of a shorter one)"
    assert (piha["tp"], piha["fp"], piha["fn"]) == (58, 1, 40)
    assert piha["precision"] == pytest.approx(58 / 59) and piha["recall"] == pytest.approx(58 / 98)
    assert piha["f1"] == pytest.approx(2 * 58 / (2 * 58 + 1 + 40))
    assert segments["overall"]["support"] == 98
    assert segments["unlabelled"], "the background's other birds are detected, and kept apart"
    assert PIHA not in segments["unlabelled"]

    events = json.loads(evaluate(data, replayed, "--format", "json", "--match", "events", "--min-conf", "0.1"))
    assert events["species"][PIHA]["support"] == 176, "every box once"


def test_the_thresholds_file_reaches_the_precision_asked_for(data, replayed, tmp_path):
    thresholds = tmp_path / "thresholds.csv"
    evaluate(data, replayed, "--thresholds-out", str(thresholds), "--target-precision", "0.95", "--min-conf", "0.1")
    text = thresholds.read_text()
    print(text)
    proposed = read_thresholds(thresholds)
    assert set(proposed) == {PIHA}, "only the labelled species with support enough"
    assert 0.1 <= proposed[PIHA] <= 1
    segments = json.loads(evaluate(data, replayed, "--format", "json", "--min-conf", str(proposed[PIHA])))
    assert segments["species"][PIHA]["precision"] >= 0.95
