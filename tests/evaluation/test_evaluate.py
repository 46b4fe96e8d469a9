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
    edge_cli(
        "replay",
        labelled,
        "--window",
        "3",
        "--hop",
        "3",
        "--min-conf",
        "0.1",
        "--out",
        str(out),
        "--format",
        "jsonl,csv,parquet",
    )
    return out


def evaluate(data, out, *options):
    result = edge_cli("evaluate", "--truth", str(data / "labelled"), "--detections", str(out), *options)
    return result.stdout


def test_segments_and_events_scored_as_json(data, replayed):
    segments = json.loads(evaluate(data, replayed, "--format", "json"))
    piha = segments["species"][PIHA]
    print(json.dumps({k: v for k, v in piha.items() if k != "curve"}))
    assert (segments["match"], segments["segment_s"], segments["min_conf"]) == ("segments", 3.0, 0.25)
    assert piha["support"] == 98, "3 s segments holding at least 0.5 s of a box (or half of a shorter one)"
    assert (piha["tp"], piha["fp"], piha["fn"]) == (58, 1, 40)
    assert piha["precision"] == pytest.approx(58 / 59) and piha["recall"] == pytest.approx(58 / 98)
    assert piha["f1"] == pytest.approx(2 * 58 / (2 * 58 + 1 + 40))
    assert segments["overall"]["support"] == 98
    lowest_kept = [point for point in piha["curve"] if point["threshold"] >= 0.25][-1]
    assert (lowest_kept["precision"], lowest_kept["recall"]) == (round(58 / 59, 4), round(58 / 98, 4))
    assert piha["curve"][-1]["threshold"] < 0.25 <= piha["curve"][0]["threshold"], "the curve goes below --min-conf"
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


def test_every_form_of_a_replay_gives_the_same_numbers(data, replayed):
    """JSON lines, CSV and the Parquet dataset of one replay: one evaluation."""
    options = ("--format", "json", "--min-conf", "0.1")
    forms = [replayed, replayed / "detections.csv", replayed / "parquet"]
    results = [json.loads(evaluate(data, form, *options)) for form in forms]
    assert results[0]["species"][PIHA]["tp"] > 0
    assert results[1] == results[0] and results[2] == results[0]


def test_common_names_codes_and_other_languages_are_the_models_names(data, replayed, tmp_path):
    """Boxes named as labellers name them score as those named by their scientific name."""
    spelled = {0: "Screaming Piha", 1: "SCPI", 2: "Schreikotinga", 3: "lipaugus  vociferans"}
    rows = ["file,start,end,species"]
    for n, table in enumerate(sorted((data / "labelled").glob("*.txt"))):
        for line in table.read_text().splitlines()[1:]:
            cells = line.split("\t")
            rows.append(f"{table.name.split('.')[0]},{cells[3]},{cells[4]},{spelled[n % 4]}")
    labels = tmp_path / "labels.csv"
    labels.write_text("\n".join(rows) + "\nScreamingPiha2,1,2,Unheard-of bird\n")
    codes = tmp_path / "codes.csv"
    codes.write_text("# code,scientific name\nSCPI,Lipaugus vociferans\n")
    named = json.loads(
        edge_cli(
            "evaluate", "--truth", str(labels), "--detections", str(replayed), "--names", str(codes), "--format", "json"
        ).stdout
    )
    scientific = json.loads(evaluate(data, replayed, "--format", "json"))
    assert named["species"][PIHA] == scientific["species"][PIHA]
    assert named["unknown_label_names"] == {"Unheard-of bird": 1}
    assert named["never_detected"] == ["Unheard-of bird"], "kept as written, and scored"


def test_runs_side_by_side(data, replayed, tmp_path):
    """Two runs in one evaluation: each scored as alone, both in one table."""
    coarse = tmp_path / "coarse.jsonl"
    lines = [json.loads(line) for line in (replayed / "detections.jsonl").read_text().splitlines()]
    coarse.write_text("".join(json.dumps(r | {"confidence": round(r["confidence"], 1)}) + "\n" for r in lines))
    both = json.loads(evaluate(data, replayed, "--detections", f"rounded={coarse}", "--format", "json"))
    assert list(both["runs"]) == [replayed.name, "rounded"]
    assert both["runs"][replayed.name] == {
        k: v for k, v in json.loads(evaluate(data, replayed, "--format", "json")).items() if k != "unknown_label_names"
    }
    assert both["runs"]["rounded"]["species"][PIHA]["support"] == 98
    table = evaluate(data, replayed, "--detections", f"rounded={coarse}")
    assert "rounded" in table and replayed.name in table and "overall" in table


def test_audio_is_replayed_first_and_resumed(data, tmp_path):
    """--audio runs the replay (3 s windows, as the segments) into --detections, then scores it; the JSON alone
    is printed, and a second run finds the recordings done."""
    audio = tmp_path / "audio"
    audio.mkdir()
    for name in ("ScreamingPiha2.mp3", "ScreamingPiha2.Table.1.selections.txt"):
        (audio / name).write_bytes((data / "labelled" / name).read_bytes())
    out = tmp_path / "out"
    command = ("evaluate", "--truth", str(audio), "--audio", str(audio), "--detections", str(out), "--format", "json")
    first = json.loads(edge_cli(*command).stdout)
    written = (out / "detections.jsonl").read_text()
    assert first["species"][PIHA]["tp"] > 0
    assert min(json.loads(line)["confidence"] for line in written.splitlines()) < 0.25, "kept below --min-conf"
    assert json.loads(edge_cli(*command).stdout) == first
    assert (out / "detections.jsonl").read_text() == written, "nothing analysed twice"
