"""`edge replay --out DIR` is a resumable job: after Ctrl-C, a crash or a run that kills its workers, the same
command analyses only what is missing, and no detection is ever written twice."""

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
from collections import Counter

import pyarrow.dataset as ds
import pytest

from edge.app.job import replay
from edge.app.ledger import LEDGER_NAME
from edge.sources.files import list_recordings
from edge.sources.runs import joined_runs
from support.archive import block_options, make_archive
from support.paths import ROOT
from support.processes import alive_in_group, edge_cli
from support.waiting import wait_for

RECORDINGS = (
    "S4A03895_20190522_120000.wav",
    "S4A03895_20190522_230000.wav",
    "birdvox_warblr_fd79e55d_POSITIVE.wav",
    "curlew_call_1.wav",
    "kingParrot_cabin.wav",
    "maad_spinetail.wav",
    "opso_aru_1_CSWA_3s.wav",
    "opso_birds_10s.wav",
    "opso_great_plains_toad.wav",
    "opso_rugr_drum.wav",
    "pheasantCoucal_file0123.wav",
)


@pytest.fixture
def archive(data, tmp_path):
    """Eleven real recordings of ten recorders (a Song Meter made two): ten runs."""
    return make_archive(data, tmp_path / "archive", RECORDINGS, moth=False)


def lines(out):
    return (out / "detections.jsonl").read_text().splitlines()


def states(out) -> Counter:
    """The ledger's recordings by state, read while a replay may be writing it."""
    path = out / LEDGER_NAME
    if not path.exists():
        return Counter()
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return Counter(state for (state,) in db.execute("SELECT state FROM recordings"))
    except sqlite3.OperationalError:  # the replay is still creating its tables
        return Counter()
    finally:
        db.close()


def assert_written_once(out, whole):
    found = lines(out)
    assert not [line for line, count in Counter(found).items() if count > 1], "no detection written twice"
    assert sorted(found) == sorted(lines(whole))


@pytest.fixture
def whole(archive, tmp_path):
    """The archive replayed in one go, in one process."""
    out = tmp_path / "whole"
    edge_cli("replay", str(archive), "--out", str(out), "--format", "jsonl", "--workers", "1", "--quiet")
    return out


def test_ctrl_c_stops_the_job_and_the_same_command_finishes_it(archive, whole, tmp_path):
    out = tmp_path / "out"
    command = [sys.executable, "-m", "edge", "replay", str(archive), "--out", str(out), "--format", "jsonl"]
    job = subprocess.Popen([*command, "--workers", "2"], cwd=ROOT, start_new_session=True, stderr=subprocess.PIPE)
    try:
        wait_for(lambda: states(out)["done"] or job.poll() is not None, timeout=300, what="a run committed")
        os.killpg(job.pid, signal.SIGINT)  # as Ctrl-C in a terminal: to the whole process group
        _, stderr = job.communicate(timeout=300)
    finally:
        if job.poll() is None:
            os.killpg(job.pid, signal.SIGKILL)
    assert job.returncode == 130, stderr.decode()
    assert b"the same command goes on" in stderr
    assert not alive_in_group(job.pid), "no worker left behind"
    done = states(out)["done"]
    print(f"interrupted with {done} of {len(RECORDINGS)} recordings done")
    assert 0 < done < len(RECORDINGS)

    result = edge_cli("replay", str(archive), "--out", str(out), "--format", "jsonl", "--workers", "2")
    assert f"{done} of them done by an earlier replay" in result.stdout
    assert states(out) == Counter(done=len(RECORDINGS))
    assert_written_once(out, whole)


def test_a_crash_between_writing_and_committing_leaves_nothing_twice(archive, whole, tmp_path):
    """A replay killed after writing a run's detections but before its commit: the run is not in the ledger,
    so the next replay cuts its lines off, removes its Parquet files and analyses it again."""
    out = tmp_path / "out"
    moved = archive.parent / "later"
    moved.mkdir()
    for name in RECORDINGS[:5]:  # the first replay sees six recordings, the second all eleven
        shutil.move(archive / name, moved / name)
    edge_cli("replay", str(archive), "--out", str(out), "--format", "jsonl,parquet", "--quiet")
    committed = lines(out)
    with (out / "detections.jsonl").open("a") as f:
        f.write(committed[0] + "\n" + committed[1][:40])  # what a killed run had written: a line and a half
    part = next((out / "parquet").rglob("part-000001.parquet"))
    shutil.copy(part, part.with_name("part-000009.parquet"))  # and a batch of Parquet files not committed
    for name in RECORDINGS[:5]:
        shutil.move(moved / name, archive / name)
    result = edge_cli("replay", str(archive), "--out", str(out), "--format", "jsonl,parquet")
    assert "6 of them done by an earlier replay" in result.stdout
    assert_written_once(out, whole)
    assert not list((out / "parquet").rglob("part-000009.parquet"))
    table = ds.dataset(out / "parquet", partitioning="hive").to_table()
    assert table.num_rows == len(lines(whole)), "every detection once in the Parquet files too"


def test_a_run_that_kills_its_worker_twice_is_quarantined_and_left_alone(archive, whole, models_dir, tmp_path):
    out = tmp_path / "out"
    killed = []

    def kill_every_worker_of_the_first_run(pid, progress):
        if progress.index == 0:
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)

    result = replay(
        [archive],
        models_dir,
        ["birdnet-v2.4"],
        out,
        block_options(),
        workers=2,
        on_progress=kill_every_worker_of_the_first_run,
    )
    first = [
        stream_id for _, stream_id in joined_runs(list_recordings([archive]), block_options().decode)[0].recordings
    ]
    assert first == ["S4A03895_20190522_120000.wav", "S4A03895_20190522_230000.wav"], "one recorder: one run"
    assert len(set(killed)) == 2, "two workers, one per attempt"
    assert [stream_id for stream_id, _ in result.failed] == first
    assert "died 2 times" in result.failed[0][1]
    assert result.states == {"done": len(RECORDINGS) - 2, "quarantined": 2}

    again = edge_cli("replay", str(archive), "--out", str(out), "--format", "jsonl")
    assert f"{len(RECORDINGS)} of them done by an earlier replay" in again.stdout
    assert "2 recording(s) quarantined" in again.stdout
    assert states(out) == Counter(done=len(RECORDINGS) - 2, quarantined=2)
    kept = [line for line in lines(whole) if not any(f'"source": "{name}"' in line for name in first)]
    assert sorted(lines(out)) == sorted(kept)


def test_other_settings_are_refused_and_fresh_starts_again(archive, tmp_path):
    out = tmp_path / "out"
    one = archive / RECORDINGS[0]
    edge_cli("replay", str(one), "--out", str(out), "--format", "jsonl", "--quiet")
    refused = edge_cli("replay", str(one), "--out", str(out), "--format", "jsonl", "--min-conf", "0.5", check=False)
    assert refused.returncode == 1
    assert "min_conf 0.25 then, 0.5 now" in refused.stderr
    assert "--fresh" in refused.stderr
    again = edge_cli("replay", str(one), "--out", str(out), "--format", "jsonl", "--min-conf", "0.5", "--fresh")
    assert "done by an earlier replay" not in again.stdout
    assert states(out) == Counter(done=1)
