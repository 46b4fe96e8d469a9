"""Configurations that cannot work are refused by `edge config check` and by `edge run`, in the same words, each
problem naming its option: bounds and consistency from the file alone, folders, files and models from this
machine."""

import json
import signal

import pytest

from edge.app.preflight import problems
from edge.app.settings import SettingsError, load_settings
from support.config import write_config
from support.processes import DaemonProcess, edge_cli


@pytest.fixture(autouse=True)
def no_edge_variables(monkeypatch):
    import os

    for name in [n for n in os.environ if n.upper().startswith("EDGE_")]:
        monkeypatch.delenv(name)


def found(config) -> str:
    """What `edge config check` reports, found in this process."""
    try:
        return "\n".join(problems(load_settings(config)))
    except SettingsError as error:
        return str(error)


# (case, settings written, the option named, words of the problem)
CASES = [
    ("window shorter than hop", {"window": {"seconds": 2.0, "hop": 3.0}}, "window", "would leave gaps"),
    ("hop of a nanosecond", {"window": {"hop": 1e-9}}, "window.hop", "greater than or equal to 0.1"),
    ("settle time infinite", {"source": {"settle_seconds": float("inf")}}, "source.settle_seconds", "finite"),
    ("smoothing NaN", {"smoothing": {"end_after": float("nan")}}, "smoothing.end_after", "finite"),
    ("unknown model", {"model": {"members": ["birdnet-v9"]}}, "model.members", "no model named 'birdnet-v9'"),
    ("missing models folder", {"models_dir": "{tmp}/no-models"}, "models_dir", "no such models folder"),
    ("unknown language", {"language": "xx"}, "language", "unknown language 'xx'"),
    (
        "missing thresholds file",
        {"species": {"thresholds_file": "{tmp}/none.csv"}},
        "species.thresholds_file",
        "cannot read the thresholds file",
    ),
    ("source path is a file", {"source": {"path": "{tmp}/a-file"}}, "source.path", "exists and is not a folder"),
    ("data_dir under /proc", {"data_dir": "/proc/edge"}, "data_dir", "kernel file system (/proc)"),
    ("data_dir behind a link to /proc", {"data_dir": "{tmp}/to-proc/edge"}, "data_dir", "kernel file system (/proc)"),
    ("data_dir empty", {"data_dir": ""}, "data_dir", "must name a folder"),
    ("data_dir under a file", {"data_dir": "{tmp}/a-file/data"}, "data_dir", "a-file is not a folder"),
    (
        "derived folder is a file",
        {"source": {"done_dir": "{tmp}/a-file"}},
        "source.done_dir",
        "a-file exists and is not a folder",
    ),
    (
        "records folder is a file",
        {"data_dir": "{tmp}/data-with-file"},
        "output.directory",
        "records exists and is not a folder",
    ),
    (
        "state database a folder",
        {"data_dir": "{tmp}/data-with-folder"},
        "data_dir",
        "state.sqlite is a folder, not the database",
    ),
    (
        "missing password file",
        {"mqtt": {"host": "localhost", "username": "box", "password_file": "{tmp}/none"}},
        "mqtt.password_file",
        "cannot read",
    ),
    (
        "password file a folder",
        {"mqtt": {"host": "localhost", "username": "box", "password_file": "{tmp}"}},
        "mqtt.password_file",
        "cannot read",
    ),
    ("unknown alert class", {"alerts": {"classes": ["Gunn"]}}, "alerts.classes", "'Gunn' is not a class"),
    (
        "scheduled member without a place",
        {"model": {"members": [{"name": "birdnet-v2.4", "active": "night"}]}},
        "model.members",
        "birdnet-v2.4 is active by night only: sunrise and sunset need the box's place, set [species] latitude and "
        "longitude",
    ),
    (
        "member active at an unknown time",
        {"model": {"members": [{"name": "birdnet-v2.4", "active": "dusk"}]}},
        "model.members.0.active",
        "'always', 'day' or 'night'",
    ),
    (
        "missing recording to replay",
        {"source": {"type": "replay", "paths": ["{tmp}/none.wav"]}},
        "source.paths",
        "none.wav: no such file or folder",
    ),
    (
        "missing key file",
        {"mqtt": {"host": "localhost", "cert_file": "{tmp}/a-file", "key_file": "{tmp}/none"}},
        "mqtt.key_file",
        "not a readable file",
    ),
]


def write_case(tmp_path, settings: dict):
    (tmp_path / "a-file").write_text("not a folder\n")
    (tmp_path / "data-with-file").mkdir(exist_ok=True)
    (tmp_path / "data-with-file" / "records").write_text("not a folder\n")
    (tmp_path / "data-with-folder" / "state.sqlite").mkdir(parents=True, exist_ok=True)
    if not (tmp_path / "to-proc").is_symlink():
        (tmp_path / "to-proc").symlink_to("/proc/self")
    settings = json.loads(json.dumps(settings).replace("{tmp}", str(tmp_path)))
    data_dir = settings.pop("data_dir", str(tmp_path / "data"))
    source = settings.pop("source", {})
    if "type" not in source:  # options of the folder source
        source = {"type": "folder", "path": str(tmp_path / "inbox"), **source}
    return write_config(tmp_path / "edge.toml", data_dir, source, **settings)


@pytest.mark.parametrize("case, settings, option, words", CASES, ids=[c[0] for c in CASES])
def test_config_check_finds_the_problem_and_names_the_option(tmp_path, case, settings, option, words):
    report = found(write_case(tmp_path, settings))
    assert f"  {option}: " in f"  {report}" and words in report, report


def test_a_good_configuration_has_no_problem(tmp_path):
    assert found(write_case(tmp_path, {})) == ""


def test_check_and_run_refuse_in_the_same_words(tmp_path):
    """The command line reports what `found` reports; `edge run` refuses to start on it, before loading models."""
    config = write_case(
        tmp_path,
        {
            "source": {"done_dir": "/etc/passwd"},
            "mqtt": {"host": "localhost", "username": "box", "password_file": "/none"},
        },
    )
    check = edge_cli("config", "check", str(config), check=False)
    run = edge_cli("run", "--config", str(config), check=False)
    expected = [
        "source.done_dir: /etc/passwd exists and is not a folder",
        "mqtt.password_file: cannot read /none: No such file or directory",
    ]
    for result in (check, run):
        assert result.returncode == 1 and all(line in result.stderr for line in expected), result.stderr
    assert "Errno" not in run.stderr and not (tmp_path / "data").exists(), "nothing started"


def test_a_reload_with_an_unknown_alert_class_keeps_the_running_one(tmp_path):
    """SIGHUP applies [alerts] at once; a class no model knows is refused in the words of config check, and the
    running classes stay (before, the reload was applied and the misspelled class never alerted)."""
    config = write_case(tmp_path, {"alerts": {"classes": ["Gun"]}})
    daemon = DaemonProcess(config)
    try:
        daemon.wait_notification("READY=1")
        write_case(tmp_path, {"alerts": {"classes": ["Gunn"]}})
        daemon.process.send_signal(signal.SIGHUP)
        failed = daemon.wait_log("reload_failed", timeout=60)
        code, _ = daemon.terminate()
    finally:
        daemon.close()
    assert "alerts.classes: 'Gunn' is not a class of the models" in failed["error"]
    assert code == 0 and not daemon.logged("config_reloaded")


@pytest.mark.parametrize(
    "args, option",
    [
        (["replay", "{recording}", "--quiet", "--hop", "nan"], "--hop"),
        (["replay", "{recording}", "--quiet", "--min-conf", "nan"], "--min-conf"),
        (["species", "--lat", "nan", "--lon", "8", "--date", "2024-06-10"], "--lat"),
    ],
)
def test_command_line_numbers_are_finite(data, tmp_path, args, option):
    """click's ranges let NaN through (every comparison with it is false): before, `--hop nan` failed deep in
    the windower with "cannot convert float NaN to integer"."""
    args = [a.replace("{recording}", str(data / "curlew_call_1.wav")) for a in args]
    result = edge_cli(*args, cwd=tmp_path, check=False)
    assert result.returncode == 2 and f"Invalid value for '{option}': 'nan' is not a finite number" in result.stderr
