"""A Ray cluster of two nodes on this machine, started by the test itself: a head and a second node, each a
`ray start --block` in a session of its own. Stopping one kills every process of its session (Ray's workers
take process groups of their own, never a session): `ray stop` is never used, as it stops every Ray on the
machine.

This process joins the cluster as its driver while it runs (`RayWorkers` then uses that connection).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import psutil

from support.broker import free_port
from support.waiting import wait_for

RAY = Path(sys.executable).parent / "ray"
HEAD_RESOURCE = "node:__internal_head__"


def session_of(leader: int) -> list[psutil.Process]:
    """The live processes of the session `leader` began (zombies are gone already: only a wait is owed)."""
    found = []
    for process in psutil.process_iter(["status"]):
        try:
            if os.getsid(process.pid) == leader and process.info["status"] != psutil.STATUS_ZOMBIE:
                found.append(process)
        except (ProcessLookupError, PermissionError):
            pass
    return found


class RayNode:
    """One `ray start ... --block` in a session of its own, its output in a file of the cluster's folder."""

    def __init__(self, folder: Path, name: str, *args: str):
        env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
        with open(folder / f"{name}.log", "w") as output:
            self.process = subprocess.Popen(
                [str(RAY), "start", "--node-ip-address=127.0.0.1", "--num-cpus=1", *args, "--block"],
                stdout=output,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """`sig` to every process of the node's session."""
        for process in session_of(self.process.pid):
            try:
                process.send_signal(sig)
            except psutil.NoSuchProcess:
                pass

    def stop(self) -> None:
        """SIGTERM to `ray start`, which stops the node's processes in order (in a second or two; SIGTERM to
        all of them at once took half a minute), then SIGKILL to whatever is left of the session, once it has
        exited or after a generous while; no process of it is left."""
        self.process.terminate()
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            pass
        self.kill(signal.SIGKILL)
        self.process.wait(timeout=30)
        wait_for(lambda: not session_of(self.process.pid), 30, "the node's processes gone")


class RayCluster:
    """A head node (1 CPU) on a free port of 127.0.0.1 and a second node (1 CPU) joined to it."""

    def __init__(self):
        # Short: Ray's unix sockets live under it, and their paths may not exceed 107 bytes.
        self.folder = Path(tempfile.mkdtemp(prefix="r", dir="/tmp"))
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.nodes: list[RayNode] = []
        self.head_id = self.second_id = ""

    def start(self) -> RayCluster:
        import ray

        self.nodes.append(
            RayNode(
                self.folder,
                "head",
                "--head",
                f"--port={self.port}",
                "--include-dashboard=false",
                "--disable-usage-stats",
                f"--temp-dir={self.folder}",
            )
        )
        wait_for(self._listening, 120, f"the head listening at {self.address} ({self.folder}/head.log)")
        self.nodes.append(RayNode(self.folder, "second", f"--address={self.address}"))
        ray.init(address=self.address, log_to_driver=False, logging_level="WARNING")
        alive = wait_for(lambda: len(ids := self.alive()) == 2 and ids, 120, "two nodes alive")
        self.head_id = next(node for node, resources in alive.items() if HEAD_RESOURCE in resources)
        self.second_id = next(node for node in alive if node != self.head_id)
        return self

    def _listening(self) -> bool:
        if self.nodes[0].process.poll() is not None:
            raise AssertionError(f"the head exited: {(self.folder / 'head.log').read_text()}")
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=5).close()
        except OSError:
            return False
        return True

    def alive(self) -> dict[str, dict]:
        """Node id -> resources of each node alive."""
        import ray

        return {node["NodeID"]: node["Resources"] for node in ray.nodes() if node["Alive"]}

    def wait_loaded(self, node_id: str) -> None:
        """Until an actor on the node has loaded its models, as its log says (the nodes' logs are here)."""

        def loaded() -> bool:
            for log in (self.folder / "session_latest" / "logs").glob("worker-*.err"):
                if any("ray_actor_loaded" in line and node_id[:12] in line for line in log.read_text().splitlines()):
                    return True
            return False

        wait_for(loaded, 120, f"an actor loaded on node {node_id}")

    def kill_second(self) -> None:
        """The second node dies at once, as a machine that loses power."""
        self.nodes[1].kill()

    def stop(self) -> None:
        import ray

        ray.shutdown()
        for node in reversed(self.nodes):
            node.stop()
        shutil.rmtree(self.folder, ignore_errors=True)
