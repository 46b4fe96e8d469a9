"""The daemon's settings: the example file, overrides from the environment, errors that name the option."""

import pytest

from edge.app.settings import SettingsError, load_settings
from edge.sinks.mqtt import MqttConfig
from support.config import write_config
from support.paths import ROOT
from support.processes import edge_cli

EXAMPLE = ROOT / "config" / "edge.toml"


@pytest.fixture(autouse=True)
def no_edge_variables(monkeypatch):
    """The settings are read from the process environment: start each test without EDGE_ variables."""
    import os

    for name in [n for n in os.environ if n.upper().startswith("EDGE_")]:
        monkeypatch.delenv(name)


def test_example_configuration_is_valid_and_documents_every_option():
    settings = load_settings(EXAMPLE)
    assert settings.source.type == "folder" and settings.model.names == ["birdnet-v2.4"]
    text = EXAMPLE.read_text()
    for section in (
        "model",
        "window",
        "smoothing",
        "output",
        "health",
        "outbox",
        "alerts",
        "budget",
        "species",
        "privacy",
        "clips",
    ):
        for option in type(getattr(settings, section)).model_fields:
            assert f"{option} =" in text, f"[{section}] {option} is not in the example"
    for option in MqttConfig.model_fields:
        assert f"# {option} =" in text, f"[mqtt] {option} is not in the example"
    for option in type(settings.source).model_fields:
        assert f"{option} =" in text, f"[source] {option} is not in the example"
    result = edge_cli("config", "check", str(EXAMPLE))
    assert "valid" in result.stdout


def test_environment_overrides_the_file(tmp_path, monkeypatch):
    config = write_config(
        tmp_path / "edge.toml", tmp_path / "data", {"type": "folder", "path": "/srv/in"}, smoothing={"on": 0.6}
    )
    settings = load_settings(config)
    assert settings.smoothing.on == 0.6
    monkeypatch.setenv("EDGE_SMOOTHING__ON", "0.7")
    monkeypatch.setenv("EDGE_SOURCE__AFTER", "keep")
    settings = load_settings(config)
    assert settings.smoothing.on == 0.7 and settings.source.after == "keep"
    assert settings.done_dir == tmp_path / "data" / "done", "derived from data_dir"


def test_errors_name_the_option_and_where_it_came_from(tmp_path, monkeypatch):
    config = write_config(
        tmp_path / "edge.toml",
        tmp_path / "data",
        {"type": "folder", "path": "/srv/in"},
        smoothing={"on": 0.3, "off": 0.4},
        window={"hop": "fast"},
    )
    with pytest.raises(SettingsError) as caught:
        load_settings(config)
    message = str(caught.value)
    assert str(config) in message and "window.hop" in message and "smoothing" in message
    assert "off <= on" in message
    monkeypatch.setenv("EDGE_HEALTH__INTERVAL_SECONDS", "0")
    write_config(config, tmp_path / "data", {"type": "folder", "path": "/srv/in"})
    with pytest.raises(SettingsError, match="health.interval_seconds.*EDGE_HEALTH__INTERVAL_SECONDS"):
        load_settings(config)
    monkeypatch.delenv("EDGE_HEALTH__INTERVAL_SECONDS")
    monkeypatch.setenv("edge_source__settle_seconds", "abc")
    with pytest.raises(SettingsError, match=r"  source.settle_seconds: .*\[from environment variable edge_source"):
        load_settings(config)
    monkeypatch.delenv("edge_source__settle_seconds")
    monkeypatch.setenv("EDGE_MODEL__MEMBERS", "birdnet-v2.4")
    with pytest.raises(SettingsError, match="written as JSON"):
        load_settings(config)


def test_unknown_source_type_and_bad_files(tmp_path):
    config = write_config(tmp_path / "edge.toml", tmp_path / "data", {"type": "radio"})
    result = edge_cli("config", "check", str(config), check=False)
    assert result.returncode != 0 and "source" in result.stderr and "'folder', 'microphone', 'replay'" in result.stderr
    (tmp_path / "broken.toml").write_text("[source\ntype = 'folder'\n")
    result = edge_cli("config", "check", str(tmp_path / "broken.toml"), check=False)
    assert result.returncode != 0 and "not valid TOML" in result.stderr
    result = edge_cli("config", "check", str(tmp_path / "missing.toml"), check=False)
    assert result.returncode != 0 and "no such configuration file" in result.stderr
    config = write_config(
        tmp_path / "edge.toml", tmp_path / "data", {"type": "folder", "path": "/srv/in", "timezone": "Mars/Olympus"}
    )
    result = edge_cli("config", "check", str(config), check=False)
    assert "unknown time zone 'Mars/Olympus'" in result.stderr


def test_mqtt_settings_keep_the_password_secret_and_check_certificates(tmp_path, monkeypatch):
    config = write_config(
        tmp_path / "edge.toml",
        tmp_path / "data",
        {"type": "folder", "path": "/srv/in"},
        mqtt={"host": "station", "username": "box", "password": "hunter2-secret"},
    )
    monkeypatch.setenv("EDGE_MQTT__PORT", "8884")
    settings = load_settings(config)
    assert settings.mqtt.address == ("station", 8884)
    assert "hunter2-secret" not in repr(settings) and "hunter2-secret" not in str(settings.model_dump())
    assert settings.mqtt.secret() == "hunter2-secret"
    bad = write_config(
        tmp_path / "bad.toml",
        tmp_path / "data",
        {"type": "folder", "path": "/srv/in"},
        mqtt={"host": "station", "cert_file": "/etc/edge/box.crt"},
    )
    with pytest.raises(SettingsError, match="cert_file and key_file go together"):
        load_settings(bad)


def test_password_file_is_read_from_systemd_credentials(tmp_path, monkeypatch):
    (tmp_path / "mqtt-password").write_text("from-credentials\n")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    config = write_config(
        tmp_path / "edge.toml",
        tmp_path / "data",
        {"type": "folder", "path": "/srv/in"},
        mqtt={"host": "station", "username": "box", "password_file": "mqtt-password"},
    )
    assert load_settings(config).mqtt.secret() == "from-credentials"
    assert load_settings(config).mqtt.uses_tls is False
