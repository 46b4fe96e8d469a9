"""`edge replay --ray`: on a two-node Ray cluster started here, the detection files one process writes, both
nodes at work; a node killed mid-run has its run analysed again on the other and nothing written twice; a
file a node lacks named as failed there; without Ray or a cluster, a message instead of a traceback."""

import re
import subprocess
import sys
from collections import Counter
from functools import partial

import pytest

from edge.app.job import replay
from edge.app.output import ReplayOutput
from edge.app.ray_workers import RAY_MISSING, RayWorkers
from edge.sources.runs import Run
from support.archive import block_options, make_archive, written
from support.broker import free_port
from support.processes import edge_cli
from support.ray_cluster import RayCluster


@pytest.fixture
def archive(data, tmp_path):
    return make_archive(data, tmp_path / "archive")


@pytest.fixture
def cluster():
    cluster = RayCluster()
    try:
        yield cluster.start()
    finally:
        cluster.stop()


def test_a_replay_on_two_nodes_writes_what_one_process_writes(cluster, archive, tmp_path):
    one, spread = tmp_path / "one", tmp_path / "ray"
    edge_cli("replay", str(archive), "--out", str(one), "--workers", "1", "--quiet")
    result = edge_cli(
        "replay", str(archive), "--ray", cluster.address, "--out", str(spread), "--format", "jsonl,csv,raven"
    )
    assert written(spread) == written(one)
    assert all(re.match(r"\d{4}-\d\d-\d\dT", line) for line in result.stderr.splitlines()), "only our log lines"
    nodes = re.findall(r"ray_run_done .*node=(\w+)", result.stderr)
    # Which node analysed how many runs depends on how fast each loaded its models; that both do is the next test's.
    print(f"runs done per node: {Counter(nodes)}")
    assert len(nodes) == 5, "a run per recorder: the Song Meter's two files are one, the three cut files one"
    assert set(nodes) <= {cluster.head_id, cluster.second_id}


def test_a_node_killed_mid_run_has_its_run_analysed_again_on_the_other(cluster, archive, models_dir, tmp_path):
    replay([archive], models_dir, ["birdnet-v2.4"], tmp_path / "one", block_options())
    seen = []  # (node, run) of every progress message, in order
    killed = []  # the run the second node was analysing when it died

    def kill_the_second(place, progress):
        if place.node_id == cluster.head_id and not seen:  # the second node gets a run before they are all taken
            cluster.wait_loaded(cluster.second_id)
        if place.node_id == cluster.second_id and not killed:
            cluster.kill_second()
            killed.append(progress.index)
        seen.append((place.node_id, progress.index))

    result = replay(
        [archive],
        models_dir,
        ["birdnet-v2.4"],
        tmp_path / "two",
        block_options(),
        None,  # an actor per CPU of the cluster
        on_progress=kill_the_second,
        pool=partial(RayWorkers, cluster.address),
    )
    after = seen[seen.index((cluster.second_id, killed[0])) + 1 :]
    assert (cluster.head_id, killed[0]) in after, "the head took the run up"
    assert {node for node, index in seen if index != killed[0]} == {cluster.head_id}, "the head analysed the rest"
    lines = (tmp_path / "two" / "detections.jsonl").read_text().splitlines()
    assert not [line for line, count in Counter(lines).items() if count > 1], "no detection written twice"
    assert sorted(lines) == sorted((tmp_path / "one" / "detections.jsonl").read_text().splitlines())
    assert not result.failed


def test_a_file_a_node_lacks_is_named_as_failed_on_that_node(cluster, models_dir, tmp_path):
    missing = tmp_path / "elsewhere" / "20240501_060000.wav"
    output = ReplayOutput(tmp_path / "out", block_options(), {"20240501_060000.wav": missing}, 0.0, 1, False)
    pool = RayWorkers(cluster.address, 1, models_dir, ["birdnet-v2.4"], block_options(), output)
    [done] = pool.analyse([Run(0, ((missing, "20240501_060000.wav"),))])
    [(stream_id, reason)] = done.failed
    print(reason)
    assert stream_id == "20240501_060000.wav"
    assert re.search(r"not found on \S+ \(node (\w+)", reason)[1] in (cluster.head_id[:12], cluster.second_id[:12])


def test_without_ray_or_a_cluster_the_replay_says_so(data, tmp_path):
    recording = str(data / "opso_aru_1_CSWA_3s.wav")
    without_ray = "import sys; sys.modules['ray'] = None; from edge.cli.main import main; main()"
    result = subprocess.run(
        [sys.executable, "-c", without_ray, "replay", recording, "--ray", "auto", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2 and RAY_MISSING in result.stderr
    nobody = f"127.0.0.1:{free_port()}"
    result = edge_cli("replay", recording, "--ray", nobody, "--out", str(tmp_path), check=False)
    assert result.returncode == 1 and f"no Ray cluster answers at {nobody}" in result.stderr


def test_a_model_the_actors_cannot_load_stops_the_replay_with_its_error(cluster, data, tmp_path):
    recording = str(data / "opso_aru_1_CSWA_3s.wav")
    result = edge_cli(
        "replay", recording, "--ray", cluster.address, "--model", "nope", "--out", str(tmp_path), check=False
    )
    assert result.returncode == 1
    assert "Error: no model named 'nope'" in result.stderr
