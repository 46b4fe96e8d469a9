"""`edge replay --workers N`: the same detection files whatever the number of worker processes, a recorder's
joined files analysed whole by one of them, and a worker killed part-way replaced without a detection twice."""

import os
import signal
from collections import Counter

import pytest

from edge.app.job import replay
from support.archive import RECORDINGS, block_options, make_archive, written
from support.processes import edge_cli


@pytest.fixture
def archive(data, tmp_path):
    return make_archive(data, tmp_path / "archive")


def test_detection_files_are_the_same_for_any_number_of_workers(archive, tmp_path):
    outs = {n: tmp_path / f"out-{n}" for n in (1, 2, 3)}
    for n, out in outs.items():
        edge_cli("replay", str(archive), "--out", str(out), "--workers", str(n), "--quiet")
    one = written(outs[1])
    print(f"{len(one['detections.jsonl'])} detections, {len(one) - 2} Raven tables")
    assert len(one) - 2 == len(RECORDINGS) + 1, "a table per stream: the three cut files are one"
    assert any(
        '"source": "moth/20240501_060000.WAV"' in line and "Cranioleuca erythrops" in line
        for line in one["detections.jsonl"]
    )
    assert written(outs[2]) == one
    assert written(outs[3]) == one


def test_a_worker_killed_mid_run_has_its_run_analysed_again_and_written_once(archive, models_dir, tmp_path):
    replay([archive], models_dir, ["birdnet-v2.4"], tmp_path / "one", block_options())
    seen = []  # (worker pid, run) of every progress message, in order

    def kill_the_first(pid, progress):
        if not seen:
            os.kill(pid, signal.SIGKILL)
        seen.append((pid, progress.index))

    result = replay(
        [archive], models_dir, ["birdnet-v2.4"], tmp_path / "two", block_options(), 2, on_progress=kill_the_first
    )
    killed, run = seen[0]
    assert any(pid != killed and index == run for pid, index in seen[1:]), "another worker took the run up"
    lines = (tmp_path / "two" / "detections.jsonl").read_text().splitlines()
    assert not [line for line, count in Counter(lines).items() if count > 1], "no detection written twice"
    assert sorted(lines) == sorted((tmp_path / "one" / "detections.jsonl").read_text().splitlines())
    assert not result.failed
