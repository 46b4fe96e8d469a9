"""A private PulseAudio server for the live tests: a virtual microphone that plays recordings.

Recordings played into the null sink "fieldmic" come out of its monitor source, the server's default source,
which PortAudio opens as the ALSA device "pulse" (the PulseAudio ALSA plugin, libasound2-plugins). The
server runs in the foreground as our own child process, with its runtime, state and socket in a temporary
folder, so that it neither meets nor disturbs another PulseAudio. This process talks to it through
PULSE_SERVER, and never autospawns one.
"""

from __future__ import annotations

import importlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

SINK = "fieldmic"
TOOLS = ("pulseaudio", "pactl", "paplay")


def require_tools() -> None:
    """Skip without PulseAudio, but fail under CI=true, where the live tests must run."""
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    try:
        importlib.import_module("sounddevice")  # loads the PortAudio library, or fails
    except OSError:
        missing.append("libportaudio2")
    if missing:
        message = f"the live microphone tests need {', '.join(missing)} (tools/setup.sh test installs them)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)


class PulseServer:
    """`start()`, `kill()` (the device vanishes), `start()` again, `stop()`; `play(path)` plays a file."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.socket = folder / "run" / "native"
        client_conf = folder / "client.conf"
        client_conf.parent.mkdir(parents=True, exist_ok=True)
        client_conf.write_text("autospawn = no\n")
        self.env = {
            **os.environ,
            "HOME": str(folder / "home"),
            "XDG_RUNTIME_DIR": str(folder / "run"),
            "XDG_CONFIG_HOME": str(folder / "home" / ".config"),
            "PULSE_SERVER": f"unix:{self.socket}",
            "PULSE_CLIENTCONFIG": str(client_conf),
        }
        self.process: subprocess.Popen | None = None

    def command(self) -> list[str]:
        return [
            "pulseaudio",
            "--daemonize=no",
            "--exit-idle-time=-1",
            "-n",
            "-F",
            "/dev/null",
            "--realtime=no",
            "--high-priority=no",
            "--log-target=stderr",
            # The best of its resamplers, so that a 44.1 kHz recording reaches 48 kHz as a good ADC would.
            "--resample-method=soxr-vhq",
            # Without rewinds: a rewinding null sink re-renders audio its monitor has already delivered, so
            # a new recording would land up to ~0.6 s early on the capture clock, its start cut off.
            f"--load=module-null-sink sink_name={SINK} format=float32le rate=48000 channels=2 norewinds=1",
            f"--load=module-native-protocol-unix auth-anonymous=1 socket={self.socket}",
        ]

    def start(self, timeout: float = 15.0) -> None:
        for sub in ("home", "run"):
            (self.folder / sub).mkdir(mode=0o700, exist_ok=True)
        log = (self.folder / "pulseaudio.log").open("ab")
        self.process = subprocess.Popen(self.command(), env=self.env, stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        log.close()
        deadline = time.monotonic() + timeout
        while self.pactl("info").returncode != 0:
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"pulseaudio did not start:\n{self.log_tail()}")
            time.sleep(0.05)
        self.pactl("set-default-source", f"{SINK}.monitor", check=True)

    def kill(self) -> None:
        """SIGKILL, as when a USB microphone is pulled out: no goodbye to the clients."""
        self._end(signal.SIGKILL)

    def stop(self) -> None:
        self._end(signal.SIGTERM)

    def _end(self, sig: int) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def pactl(self, *args: str, check: bool = False) -> subprocess.CompletedProcess:
        return subprocess.run(["pactl", *args], env=self.env, capture_output=True, text=True, timeout=10, check=check)

    def play(self, path: Path) -> subprocess.Popen:
        return subprocess.Popen(
            ["paplay", f"--device={SINK}", str(path)], env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )

    def log_tail(self, lines: int = 30) -> str:
        path = self.folder / "pulseaudio.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""


@contextmanager
def pulse_server(folder: Path) -> Iterator[PulseServer]:
    """A started server, with this process pointed at it (PortAudio's ALSA plugin reads the environment)."""
    require_tools()
    server = PulseServer(folder)
    with pytest.MonkeyPatch.context() as env:
        for name in ("PULSE_SERVER", "PULSE_CLIENTCONFIG"):
            env.setenv(name, server.env[name])
        server.start()
        try:
            yield server
        finally:
            server.stop()
