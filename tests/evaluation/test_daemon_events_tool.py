"""tools/evaluation/daemon_events.py: the daemon over a folder of recordings until each is analysed, its event
files left for `edge evaluate`; with the default smoothing the piha, calling throughout, is one event."""

import json
import shutil
import subprocess
import sys

from support.paths import DATA, ROOT
from support.processes import edge_cli

PIHA = "Lipaugus vociferans"


def daemon_events(*args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "tools.evaluation.daemon_events", *args]
    return subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=600)


def test_the_daemon_events_of_a_folder_scored(tmp_path):
    recordings = tmp_path / "recordings"
    recordings.mkdir()
    shutil.copy(DATA / "labelled" / "ScreamingPiha2.mp3", recordings)
    out = tmp_path / "out"
    done = daemon_events(str(recordings), "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert "1/1 recording_done: ScreamingPiha2.mp3" in done.stderr
    assert (recordings / "ScreamingPiha2.mp3").exists(), "left in place"

    truth = DATA / "labelled" / "ScreamingPiha2.Table.1.selections.txt"
    options = ("--match", "events", "--min-conf", "0", "--format", "json")
    scored = json.loads(edge_cli("evaluate", "--truth", str(truth), "--detections", str(out), *options).stdout)
    piha = scored["species"][PIHA]
    assert (piha["support"], piha["tp"], piha["fp"]) == (20, 1, 0), "one event over the whole recording"

    again = daemon_events(str(recordings), "--out", str(out))
    assert again.returncode != 0 and "is not empty" in again.stderr
