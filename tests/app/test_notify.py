"""The systemd notification protocol against real unix datagram sockets standing in for systemd's."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from edge.app.notify import Notifier


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def receive_all(sock: socket.socket) -> list[str]:
    """Every datagram waiting on the socket (sends are synchronous, so all have arrived)."""
    messages = []
    while True:
        try:
            messages.append(sock.recv(4096).decode())
        except BlockingIOError:
            return messages


@pytest.fixture
def path_socket(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(tmp_path / "notify"))
        sock.setblocking(False)
        yield sock, str(tmp_path / "notify")


@pytest.fixture
def abstract_socket() -> Iterator[tuple[socket.socket, str]]:
    name = f"edge-test-notify-{os.getpid()}-{time.monotonic_ns()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.setblocking(False)
        yield sock, "@" + name


@pytest.mark.parametrize("listener", ["path_socket", "abstract_socket"])
def test_lifecycle_messages_reach_the_socket(listener: str, request: pytest.FixtureRequest) -> None:
    sock, address = request.getfixturevalue(listener)
    notifier = Notifier.from_environ({"NOTIFY_SOCKET": address})

    notifier.ready()
    notifier.status("listening: 3 detections\nsecond line")
    notifier.stopping()

    assert notifier.enabled
    assert receive_all(sock) == ["READY=1", "STATUS=listening: 3 detections second line", "STOPPING=1"]


def test_watchdog_is_sent_at_most_every_half_interval(path_socket: tuple[socket.socket, str]) -> None:
    sock, address = path_socket
    clock = FakeClock()
    notifier = Notifier.from_environ(
        {"NOTIFY_SOCKET": address, "WATCHDOG_USEC": "60000000", "WATCHDOG_PID": str(os.getpid())}, clock=clock
    )
    assert notifier.watchdog_interval == 60.0

    sent = []
    for step in range(121):  # two minutes, one loop iteration per second
        notifier.watchdog()
        sent += [step] * len(receive_all(sock))
        clock.now += 1.0

    assert sent == [0, 30, 60, 90, 120]


def test_watchdog_is_silent_without_a_watchdog(path_socket: tuple[socket.socket, str]) -> None:
    sock, address = path_socket
    for environ in (
        {},
        {"WATCHDOG_USEC": "0"},
        {"WATCHDOG_USEC": "junk"},
        {"WATCHDOG_USEC": "60000000", "WATCHDOG_PID": str(os.getpid() + 1)},
    ):
        notifier = Notifier.from_environ({"NOTIFY_SOCKET": address, **environ})
        notifier.watchdog()
        assert notifier.watchdog_interval is None
    assert receive_all(sock) == []


def test_reloading_carries_the_monotonic_time(path_socket: tuple[socket.socket, str]) -> None:
    sock, address = path_socket
    before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    Notifier.from_environ({"NOTIFY_SOCKET": address}).reloading()
    after = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000

    [message] = receive_all(sock)
    reloading, monotonic = message.split("\n")
    assert reloading == "RELOADING=1"
    assert monotonic.startswith("MONOTONIC_USEC=") and before <= int(monotonic.split("=")[1]) <= after


def test_without_notify_socket_nothing_happens() -> None:
    notifier = Notifier.from_environ({"WATCHDOG_USEC": "60000000"})
    with capture_logs() as logs:
        notifier.ready()
        notifier.status("idle")
        notifier.watchdog()
        notifier.reloading()
        notifier.stopping()
    assert not notifier.enabled
    assert logs == []


@pytest.mark.parametrize("address", ["/nonexistent/edge-notify", "relative/socket"])
def test_a_failed_send_is_logged_once_and_never_raised(address: str) -> None:
    notifier = Notifier.from_environ({"NOTIFY_SOCKET": address, "WATCHDOG_USEC": "1"})
    with capture_logs() as logs:
        for _ in range(3):
            notifier.ready()
            notifier.watchdog()
            notifier.stopping()
    assert [entry["event"] for entry in logs] == ["systemd_notify_failed"]
    assert logs[0]["socket"] == address and logs[0]["message"] == "READY=1"
