"""A box id or topic prefix that would change the topics (a '/', a wildcard, an empty level, a control
character) is refused by `edge config check`, by `edge run` and by `edge station`, before any record is sent
where no station listens."""

import os
import subprocess
import sys

import pytest

from support.config import write_config
from support.paths import ROOT
from support.processes import DaemonProcess, edge_cli

BAD_BOX_IDS = ["a/b", "a+b", "x#", "", "tab\there", "-leading-dash", "b" * 65]
BAD_PREFIXES = ["edge/#", "a+b", "", "/edge", "edge//site", "$SYS", "edge\u0000"]


@pytest.fixture(autouse=True)
def no_edge_variables(monkeypatch):
    for name in [n for n in os.environ if n.upper().startswith("EDGE_")]:
        monkeypatch.delenv(name)


def config_with(tmp_path, **sections):
    return write_config(
        tmp_path / "edge.toml", tmp_path / "data", {"type": "folder", "path": str(tmp_path / "in")}, **sections
    )


@pytest.mark.parametrize("box_id", BAD_BOX_IDS)
def test_config_check_refuses_a_box_id_that_is_no_topic_level(tmp_path, box_id):
    result = edge_cli("config", "check", str(config_with(tmp_path, box_id=box_id)), check=False)
    assert result.returncode == 1 and "  box_id: " in result.stderr, result.stderr


@pytest.mark.parametrize("prefix", BAD_PREFIXES)
def test_config_check_refuses_a_prefix_with_wildcards_or_empty_levels(tmp_path, prefix):
    config = config_with(tmp_path, mqtt={"host": "localhost", "prefix": prefix})
    result = edge_cli("config", "check", str(config), check=False)
    assert result.returncode == 1 and "  mqtt.prefix: topic prefix" in result.stderr, result.stderr


def test_run_refuses_before_publishing(tmp_path):
    """Before, the box ran and the broker acknowledged every record under edge/a/b/events, which no station
    subscribed to; now nothing starts."""
    daemon = DaemonProcess(
        config_with(tmp_path, box_id="a/b", mqtt={"host": "127.0.0.1", "port": 1}), env={"EDGE_BOX_ID": "a/b"}
    )
    try:
        code = daemon.wait_exit(timeout=120)
    finally:
        daemon.close()
    stderr = daemon.process.stderr.read()
    assert code == 1 and "box_id: box id 'a/b' is not" in stderr and "[from environment variable EDGE_BOX_ID]" in stderr
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize("prefix", ["edge/#", "edge/+", ""])
def test_station_refuses_a_prefix_it_could_not_subscribe_under(tmp_path, prefix):
    station = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "edge",
            "station",
            "--broker",
            "127.0.0.1:1",
            "--db",
            str(tmp_path / "station.sqlite"),
            "--prefix",
            prefix,
            "--no-table",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _, stderr = station.communicate(timeout=120)
    finally:
        station.kill()
    assert station.returncode == 2 and "--prefix" in stderr and "topic prefix" in stderr, stderr
    assert not (tmp_path / "station.sqlite").exists()
