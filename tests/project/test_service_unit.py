"""systemd/edge.service: systemd's own checker accepts it, and it keeps the settings a field box relies on."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from support.paths import ROOT

UNIT = ROOT / "systemd" / "edge.service"
INSTALLED_EXEC_START = "ExecStart=/opt/edge/.venv/bin/edge run --config /etc/edge/edge.toml"


def settings(text: str) -> dict[str, list[str]]:
    """`Section.Key` -> every value it is given, in order (systemd keys may repeat, unlike INI keys)."""
    found: dict[str, list[str]] = {}
    section = ""
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        found.setdefault(f"{section}.{key.strip()}", []).append(value.strip())
    return found


def systemd_analyze() -> str:
    path = shutil.which("systemd-analyze")
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail("systemd-analyze is missing (Debian package `systemd`, installed by tools/setup.sh test)")
        pytest.skip("systemd-analyze is not installed")
    return path


def test_systemd_accepts_the_unit(tmp_path: Path) -> None:
    # verify checks that ExecStart's program exists: point it at this environment's `edge`.
    edge = Path(sys.executable).parent / "edge"
    config = tmp_path / "edge.toml"
    config.write_text("")
    text = UNIT.read_text()
    assert INSTALLED_EXEC_START in text
    unit = tmp_path / "edge.service"
    unit.write_text(text.replace(INSTALLED_EXEC_START, f"ExecStart={edge} run --config {config}"))
    verify(unit)


def verify(unit: Path) -> None:
    result = subprocess.run(
        [systemd_analyze(), "verify", "--man=no", str(unit)], capture_output=True, text=True, timeout=120
    )
    # verify exits 0 on unknown keys and bad values, which it only prints; what it says about other units
    # of the machine it runs on is not ours to judge.
    about_ours = [line for line in (result.stdout + result.stderr).splitlines() if unit.name in line]
    assert result.returncode == 0, result.stderr
    assert about_ours == []


def test_the_unit_keeps_its_service_and_hardening_settings() -> None:
    unit = settings(UNIT.read_text())

    assert unit["Service.Type"] == ["notify"]
    assert unit["Service.NotifyAccess"] == ["main"]
    assert int(unit["Service.WatchdogSec"][0]) > 0
    assert unit["Service.Restart"] == ["on-failure"]
    assert unit["Unit.StartLimitIntervalSec"] == ["0"]  # restarts forever: nobody is there to reset it
    assert unit["Service.ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    assert unit["Service.User"] == ["edge"] and unit["Service.Group"] == ["edge"]
    assert "audio" in unit["Service.SupplementaryGroups"][0].split()
    assert unit["Service.StateDirectory"] == ["edge"]
    assert unit["Service.ProtectSystem"] == ["strict"]
    assert {"/var/lib/edge", "/srv/edge"} <= set(unit["Service.ReadWritePaths"][0].split())
    for key in ("NoNewPrivileges", "PrivateTmp", "ProtectHome"):
        assert unit[f"Service.{key}"] == ["yes"], key
    # The microphone: sound devices allowed, and nothing that would hide them or refuse cffi's callbacks.
    assert unit["Service.DeviceAllow"] == ["char-alsa rw"]
    assert "Service.PrivateDevices" not in unit
    assert "Service.MemoryDenyWriteExecute" not in unit
    assert "PYTHONUNBUFFERED=1" in unit["Service.Environment"]


def test_systemd_accepts_the_station_unit(tmp_path: Path) -> None:
    edge = Path(sys.executable).parent / "edge"
    text = (ROOT / "systemd" / "edge-station.service").read_text()
    assert "ExecStart=/opt/edge/.venv/bin/edge station " in text
    unit = tmp_path / "edge-station.service"
    unit.write_text(text.replace("/opt/edge/.venv/bin/edge", str(edge)))
    verify(unit)
    station = settings(text)
    assert station["Service.Restart"] == ["on-failure"] and station["Service.StateDirectory"] == ["edge-station"]
