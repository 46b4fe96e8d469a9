"""A real MQTT broker for the tests: Debian's mosquitto on 127.0.0.1, a free port, a config of its own.

With CI=true a missing mosquitto is a failure; elsewhere the tests that need it are skipped.
"""

from __future__ import annotations

import os
import queue
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def require_mosquitto() -> str:
    path = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None)
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail("mosquitto is not installed (tools/setup.sh test installs it)")
        pytest.skip("mosquitto is not installed")
    return path


class Mosquitto:
    """One broker process; `stop()` and `start()` again keep its port, its users and its persisted sessions."""

    def __init__(self, folder: Path, users: dict[str, str] | None = None, tls: dict[str, Path] | None = None):
        self.binary = require_mosquitto()
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.tls_port = free_port() if tls else None
        self.users = users
        self.tls = tls
        self.process: subprocess.Popen | None = None
        self.log_path = folder / "mosquitto.log"

    def _config(self) -> Path:
        # As the README tells a station to configure its broker: sessions survive a restart, and a slow or
        # absent station has a backlog queued for it rather than dropped (mosquitto's default keeps 1000).
        lines = [
            "user root",
            "persistence true",
            f"persistence_location {self.folder}/",
            "max_queued_messages 1000000",
            "log_type all",
            f"log_dest file {self.log_path}",
            f"listener {self.port} 127.0.0.1",
        ]
        if self.users:
            passwords = self.folder / "passwords"
            passwords.write_text("")
            for name, password in self.users.items():
                subprocess.run(["mosquitto_passwd", "-b", str(passwords), name, password], check=True)
            lines += ["allow_anonymous false", f"password_file {passwords}"]
        else:
            lines.append("allow_anonymous true")
        if self.tls:
            lines += [
                f"listener {self.tls_port} 127.0.0.1",
                f"cafile {self.tls['ca']}",
                f"certfile {self.tls['cert']}",
                f"keyfile {self.tls['key']}",
                "require_certificate true",
            ]
        path = self.folder / "mosquitto.conf"
        path.write_text("\n".join(lines) + "\n")
        return path

    def start(self) -> Mosquitto:
        self.process = subprocess.Popen(
            [self.binary, "-c", str(self._config())], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"mosquitto exited: {self.process.stderr.read().decode()} {self.log()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"mosquitto did not listen on {self.port}: {self.log()}")

    def stop(self) -> None:
        """SIGTERM: the broker saves its persistent sessions, as a broker does when its host shuts down."""
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        self.process = None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def mosquitto_pub(broker: Mosquitto, topic: str, payload: bytes, folder: Path) -> None:
    """Publishes one message, QoS 1, with Debian's command-line client as anyone on the network can; a payload
    too long for the command line goes through a file."""
    client = shutil.which("mosquitto_pub")
    if client is None:
        if os.environ.get("CI") == "true":
            pytest.fail("mosquitto_pub is not installed (tools/setup.sh test installs mosquitto-clients)")
        pytest.skip("mosquitto_pub is not installed")
    message = ["-m", payload.decode()]
    if len(payload) > 100_000:
        (folder / "payload").write_bytes(payload)
        message = ["-f", str(folder / "payload")]
    subprocess.run(
        [client, "-h", "127.0.0.1", "-p", str(broker.port), "-q", "1", "-t", topic, *message],
        check=True,
        timeout=60,
        capture_output=True,
    )


class Subscriber:
    """A plain MQTT client collecting messages into a queue; `expect` waits on it with a timeout."""

    def __init__(self, broker: Mosquitto, topic: str, session: str | None = None, **credentials):
        """`session`: a client id whose session the broker keeps (and queues for) across disconnections."""
        self.messages: queue.Queue = queue.Queue()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=session or "", protocol=mqtt.MQTTv5)
        self.client.reconnect_delay_set(0.2, 1)
        if credentials:
            self.client.username_pw_set(credentials["username"], credentials["password"])
        subscribed = queue.Queue()
        self.client.on_message = lambda client, userdata, message: self.messages.put(message)
        self.client.on_subscribe = lambda *args: subscribed.put(True)
        self.client.on_connect = lambda client, *args: client.subscribe(topic, qos=1)
        properties = None
        if session:
            properties = Properties(PacketTypes.CONNECT)
            properties.SessionExpiryInterval = 3600
        self.client.connect("127.0.0.1", broker.port, clean_start=session is None, properties=properties)
        self.client.loop_start()
        subscribed.get(timeout=10)

    def expect(self, count: int, timeout: float = 30) -> list[mqtt.MQTTMessage]:
        got, deadline = [], time.monotonic() + timeout
        while len(got) < count:
            try:
                got.append(self.messages.get(timeout=max(0.01, deadline - time.monotonic())))
            except queue.Empty:
                raise AssertionError(f"{len(got)} of {count} messages within {timeout} s") from None
        return got

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


class Relay:
    """A TCP listener on 127.0.0.1 in front of `broker`: `_serve` handles each client connection."""

    def __init__(self, broker: Mosquitto):
        self.target = ("127.0.0.1", broker.port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        raise NotImplementedError

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while chunk := source.recv(65536):
                sink.sendall(chunk)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        self.listener.close()


class OldBroker(Relay):
    """A broker that speaks MQTT 3.1.1 only, as older installations do: a TCP relay to mosquitto that answers
    an MQTT 5 CONNECT the way a 3.1.1 broker must (CONNACK return code 1, then close) and relays the rest."""

    def __init__(self, broker: Mosquitto):
        self.levels: list[int] = []
        super().__init__(broker)

    def _serve(self, client: socket.socket) -> None:
        head = b""
        while len(head) < 12:
            chunk = client.recv(4096)
            if not chunk:
                return client.close()
            head += chunk
        length_bytes = next(i for i in range(1, 5) if head[i] < 0x80)  # the remaining length's varint
        level = head[1 + length_bytes + 6]  # after the protocol name: 2-byte length, "MQTT"
        self.levels.append(level)
        if level == 5:
            client.sendall(bytes([0x20, 0x02, 0x00, 0x01]))
            return client.close()
        upstream = socket.create_connection(self.target)
        upstream.sendall(head)
        for source, sink in ((client, upstream), (upstream, client)):
            threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()
