"""No password in any error, log line or record: every failure path a box's configuration can take is run, and
all it wrote (stdout, stderr, the JSON log, the data folder's files) is searched for the password."""

import os
import signal

import pytest

from support.broker import Mosquitto
from support.config import write_config
from support.processes import DaemonProcess, edge_cli

SECRET = "S3cr3t-Inline-PW"
NUMERIC_SECRET = 73519468


@pytest.fixture(autouse=True)
def no_edge_variables(monkeypatch):
    for name in [n for n in os.environ if n.upper().startswith("EDGE_")]:
        monkeypatch.delenv(name)


def assert_no_secret(*outputs: str) -> None:
    for output in outputs:
        assert SECRET not in output and str(NUMERIC_SECRET) not in output, output


def source(tmp_path) -> dict:
    return {"type": "folder", "path": str(tmp_path / "inbox")}


# The [mqtt] table of each broken configuration; each is refused, and none may echo the password.
BROKEN = {
    "certificate without its key": {"password": SECRET, "cert_file": "/etc/edge/box.crt"},
    "password and password file": {"password": SECRET, "password_file": "/etc/edge/password"},
    "misspelled password key": {"pasword": SECRET},
    "password not a string": {"password": NUMERIC_SECRET},
    "bad port beside a password": {"password": SECRET, "port": "eighty"},
}


@pytest.mark.parametrize("name", BROKEN)
def test_broken_files_never_echo_the_password(tmp_path, name):
    config = write_config(
        tmp_path / "edge.toml",
        tmp_path / "data",
        source(tmp_path),
        mqtt={"host": "localhost", "username": "box", **BROKEN[name]},
    )
    for result in (
        edge_cli("config", "check", str(config), check=False),
        edge_cli("run", "--config", str(config), check=False),
    ):
        assert result.returncode != 0 and "mqtt" in result.stderr, result.stderr
        assert_no_secret(result.stdout, result.stderr)


@pytest.mark.parametrize(
    "variables",
    [
        {"EDGE_MQTT__PASSWORD": SECRET, "EDGE_MQTT__CERT_FILE": "/etc/edge/box.crt"},
        {"EDGE_MQTT__PASSWROD": SECRET},
        {"EDGE_MQTT": f'{{"host": "localhost", "password": "{SECRET}", "keepalive": "often"}}'},
        {"EDGE_MQTT": f'{{"host": "localhost", "password": "{SECRET}"'},  # not JSON
    ],
)
def test_environment_variables_never_echo_the_password(tmp_path, monkeypatch, variables):
    config = write_config(tmp_path / "edge.toml", tmp_path / "data", source(tmp_path), mqtt={"host": "localhost"})
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    result = edge_cli("config", "check", str(config), check=False)
    assert result.returncode != 0 and "mqtt" in result.stderr.lower(), result.stderr
    assert_no_secret(result.stdout, result.stderr)


def test_unreadable_password_files_are_named_not_shown(tmp_path):
    undecodable = tmp_path / "latin1-password"
    undecodable.write_bytes(SECRET.encode() + b"\xe9\n")
    for password_file in (undecodable, tmp_path / "missing", tmp_path):
        config = write_config(
            tmp_path / "edge.toml",
            tmp_path / "data",
            source(tmp_path),
            mqtt={"host": "localhost", "username": "box", "password_file": str(password_file)},
        )
        daemon = DaemonProcess(config)
        try:
            code = daemon.wait_exit(timeout=120)  # refused before any model is loaded
        finally:
            daemon.close()
        stderr = daemon.process.stderr.read()
        assert code == 1 and f"mqtt.password_file: cannot read {password_file}" in stderr, stderr
        assert_no_secret(repr(daemon.lines), stderr)


def test_wrong_password_and_a_bad_reload_leave_no_trace_of_it(tmp_path):
    """A running daemon refused by the broker (wrong inline password), then sent SIGHUP with a configuration
    that cannot be loaded: its log, its errors and every file it wrote are free of the password."""
    broker = Mosquitto(tmp_path / "broker", users={"box": "the-right-one"}).start()
    mqtt = {
        "host": "127.0.0.1",
        "port": broker.port,
        "username": "box",
        "password": SECRET,
        "reconnect_min_seconds": 0.2,
        "reconnect_max_seconds": 1.0,
    }
    config = write_config(tmp_path / "edge.toml", tmp_path / "data", source(tmp_path), mqtt=mqtt)
    daemon = DaemonProcess(config)
    try:
        daemon.wait_notification("READY=1")
        daemon.wait_log("mqtt_refused")
        write_config(config, tmp_path / "data", source(tmp_path), mqtt={**mqtt, "cert_file": "/etc/edge/box.crt"})
        daemon.process.send_signal(signal.SIGHUP)
        assert "cert_file and key_file go together" in daemon.wait_log("reload_failed", timeout=60)["error"]
        write_config(config, tmp_path / "data", source(tmp_path), mqtt={**mqtt, "passwrd": SECRET})
        daemon.process.send_signal(signal.SIGHUP)
        daemon.wait_for(lambda: len(daemon.logged("reload_failed")) == 2, what="two failed reloads")
        code, _ = daemon.terminate()
    finally:
        daemon.close()
        broker.stop()
    assert code == 0
    assert "mqtt.passwrd: Extra inputs are not permitted" in daemon.logged("reload_failed")[1]["error"]
    assert_no_secret(repr(daemon.lines), daemon.process.stderr.read())
    for path in (p for p in (tmp_path / "data").rglob("*") if p.is_file()):
        assert SECRET.encode() not in path.read_bytes(), path


def test_station_names_an_unreadable_password_file(tmp_path):
    """Before, the station started and died in its network thread with a traceback."""
    undecodable = tmp_path / "latin1-password"
    undecodable.write_bytes(SECRET.encode() + b"\xe9\n")
    for password_file in (undecodable, tmp_path / "missing"):
        result = edge_cli(
            "station",
            "--broker",
            "127.0.0.1:1",
            "--db",
            str(tmp_path / "station.sqlite"),
            "--username",
            "station",
            "--password-file",
            str(password_file),
            "--no-table",
            check=False,
        )
        assert result.returncode == 2 and f"--password-file: cannot read {password_file}" in result.stderr
        assert_no_secret(result.stdout, result.stderr)
        assert not (tmp_path / "station.sqlite").exists()
