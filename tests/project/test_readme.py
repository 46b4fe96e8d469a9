"""The README's command lines run as written after the README's own set-up.

Every command in a `sh` block starts with a program the set-up provides (or the system has); every `edge`
command names only options that command has; those that need no box, broker or recorder card are run for
real. (The `mosquitto_sub` lines are run against a broker in tests/sinks/test_uplink.py.)
"""

import re
import shlex
import shutil
import subprocess
import sys

import pytest

from support.paths import ROOT

# Programs the README may start a command with: what the set-up installs, or Debian itself has.
PROGRAMS = {
    ".venv/bin/edge",
    ".venv/bin/python",
    ".venv/bin/ray",  # bash tools/setup.sh cluster
    "/opt/edge/.venv/bin/edge",
    "bash",
    "pip",
    "python3",
    "mosquitto_sub",
    "systemctl",
    "journalctl",
    "systemd-analyze",
    "editor",
    "git",
    "cd",
    "du",
}


def readme_commands() -> list[str]:
    """The command lines of the README's sh blocks, continuation lines joined, comments cut."""
    blocks = re.findall(r"```sh\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)
    commands = []
    for block in blocks:
        for line in block.replace("\\\n", " ").splitlines():
            line = re.split(r"\s+#", line, maxsplit=1)[0].strip()
            if line and not line.startswith("#"):
                commands += [part.strip() for part in re.split(r"&&|\|\|", line)]
    return commands


COMMANDS = readme_commands()
EDGE_COMMANDS = [c for c in COMMANDS if c.startswith(".venv/bin/edge ")]


def test_the_readme_has_commands():
    assert COMMANDS[:2] == ["bash tools/demo.sh", "bash tools/test.sh"]
    assert len(EDGE_COMMANDS) >= 10


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_starts_with_a_program_that_is_there(command):
    program = shlex.split(command)[0]
    assert program in PROGRAMS, f"{command!r}: {program} is not on a fresh box after set-up (sudo neither)"
    argv = shlex.split(command)
    if program == "bash":
        assert (ROOT / argv[1]).is_file(), command
    if program == ".venv/bin/python" and argv[1].endswith(".py"):
        assert (ROOT / argv[1]).is_file(), command
    if program == ".venv/bin/python" and argv[1] == "-m" and argv[2].startswith("tools."):
        module = ROOT.joinpath(*argv[2].split("."))
        assert module.with_suffix(".py").is_file() or (module / "__main__.py").is_file(), command
    if program == ".venv/bin/edge":
        assert shutil.which("edge", path=str(ROOT / ".venv" / "bin")), "set-up puts edge in .venv/bin"


def subcommand(argv: list[str]) -> list[str]:
    words = []
    for word in argv[1:]:
        if word.startswith("-") or "/" in word or "." in word:
            break
        words.append(word)
    return words


@pytest.mark.parametrize("command", EDGE_COMMANDS)
def test_edge_commands_name_only_options_they_have(command):
    argv = shlex.split(command)
    words = subcommand(argv)
    help_text = subprocess.run(
        [sys.executable, "-m", "edge", *words, "--help"], capture_output=True, text=True, check=True, cwd=ROOT
    ).stdout
    for option in (a.split("=")[0] for a in argv if a.startswith("--")):
        assert re.search(rf"{re.escape(option)}\b", help_text), f"{command!r}: edge {' '.join(words)} has no {option}"


def runnable(argv: list[str]) -> bool:
    """Needs nothing this machine lacks: no box configuration, broker, card or file of the reader's."""
    paths = [a for a in argv[1:] if "/" in a or re.search(r"\.\w+$", a)]
    return all((ROOT / p).exists() for p in paths) and not {"station", "run", "config"} & set(argv)


@pytest.mark.parametrize("command", [c for c in EDGE_COMMANDS if runnable(shlex.split(c))])
def test_edge_commands_that_need_nothing_else_run(command):
    argv = shlex.split(command)
    result = subprocess.run(
        [sys.executable, "-m", "edge", *argv[1:]], capture_output=True, text=True, cwd=ROOT, timeout=600
    )
    assert result.returncode == 0, f"{command!r}:\n{result.stderr}"


def test_the_demo_runs_as_written(tmp_path):
    """The README's first command, after the tests' own set-up: nothing to install again, a replay."""
    result = subprocess.run(
        ["bash", "tools/demo.sh", "--quiet", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=1800,
    )
    assert result.returncode == 0, result.stderr
    assert "Cranioleuca erythrops" in (tmp_path / "detections.jsonl").read_text()
