"""`edge replay --ray ADDRESS`: runs of recordings analysed by Ray actors spread over a cluster's nodes, their
detections written here, by the driver, as with worker processes on one machine (`workers`).

Each actor takes one CPU, loads the models once and analyses the runs sent to it, one at a time; a run's
progress and results stream back through a Ray streaming generator. An actor, or its node, that dies has
its run put back in the queue (`RunQueue`) and a new actor started in its place while work remains. Files
are read where the actors run: every node must see the recordings at the paths the driver lists. Ray is
imported only here, and only when a replay asks for it: the box never needs it.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import structlog

from edge.app import logs
from edge.app.output import ReplayOutput
from edge.app.replay import ReplayOptions, load_analysis
from edge.app.run_queue import RunQueue
from edge.app.run_worker import RunDone, RunProgress, WorkerFailed, analyse
from edge.sources.runs import Run

log = structlog.get_logger(__name__)

RAY_MISSING = "--ray needs Ray: pip install 'edge[cluster]'"

# A run's messages stream back as the actor yields them; it waits once two are not yet taken by the driver
# (Ray's generator backpressure), so they never pile up, and a run is never done far ahead of what we know.
STREAM = {"num_returns": "streaming", "_generator_backpressure_num_objects": 2}


@dataclass(frozen=True)
class Place:
    """Where an actor runs: its node (Ray's id), the node's host name, its process id there."""

    node_id: str
    host: str
    pid: int

    def __str__(self) -> str:
        return f"{self.host} (node {self.node_id[:12]}, pid {self.pid})"


# Called in the driver with the place of the actor that sent the progress (tests kill its node).
ProgressHook = Callable[[Place, RunProgress], None]


def import_ray() -> Any:
    """The ray module; RuntimeError with the install hint when it is not there."""
    try:
        import ray
    except ImportError as error:
        raise RuntimeError(RAY_MISSING) from error
    return ray


class RunAnalyser:
    """An actor's state: the models, loaded once, and where it runs. A failure to load is kept and told by
    `ready`, so that the driver raises the error itself (ModelError, ValueError) as a local replay would."""

    def __init__(self, models_dir: Path, model_names: list[str], options: ReplayOptions):
        logs.configure()  # its lines go to the node's Ray worker logs
        normal_priority()
        ray = import_ray()
        self.place = Place(ray.get_runtime_context().get_node_id(), socket.gethostname(), os.getpid())
        self.options = options
        self.failed: WorkerFailed | None = None
        try:
            self.analysis = load_analysis(models_dir, model_names, options)
        except Exception as error:  # noqa: BLE001 - whatever stops the models loading stops the replay
            self.failed = WorkerFailed(error)
        log.info("ray_actor_loaded", place=str(self.place), failed=self.failed is not None)

    def ready(self) -> Place | WorkerFailed:
        return self.failed or self.place

    def analyse(self, run: Run) -> Iterator[RunProgress | RunDone]:
        """The run's progress, then its results; a file this node does not have is named as failed here."""
        for message in analyse(run, self.analysis, self.options):
            if isinstance(message, RunDone):
                paths = {stream_id: path for path, stream_id in run.recordings}
                failed = tuple(
                    (stream_id, reason if paths[stream_id].exists() else f"not found on {self.place}: {reason}")
                    for stream_id, reason in message.failed
                )
                message = replace(message, failed=failed)
            yield message


def normal_priority() -> None:
    """Ray starts its workers at niceness 15, below everything else on the node: an actor that is the job's
    work takes the normal priority back where the node allows it (as root, or with CAP_SYS_NICE), so that it
    gets its CPU as a local worker process does."""
    try:
        os.setpriority(os.PRIO_PROCESS, 0, 0)
    except PermissionError:
        log.info("ray_actor_niceness_kept", niceness=os.getpriority(os.PRIO_PROCESS, 0))


@dataclass
class Actor:
    """The driver's view of one actor: `ready` until it is placed (its models loaded), then its run."""

    handle: Any
    ready: Any  # ObjectRef of RunAnalyser.ready
    place: Place | None = None
    run: Run | None = None
    stream: Any = None  # the ObjectRefGenerator of its run's messages
    seconds: float = 0.0  # of its run's audio, shown on the progress bar


class RayWorkers:
    """Actors on the Ray cluster at `address` ("auto": the one this machine belongs to), `count` of them
    (None: one per CPU of the cluster), fed one run at a time. Connects when `analyse` starts unless this
    process already is a Ray driver; stops its actors at the end, never the cluster."""

    def __init__(
        self,
        address: str,
        count: int | None,
        models_dir: Path,
        model_names: list[str],
        options: ReplayOptions,
        output: ReplayOutput,
        on_progress: ProgressHook | None = None,
    ):
        self.address = address
        self.count = count
        self.actor_args = (models_dir, model_names, options)
        self.output = output
        self.on_progress = on_progress

    def analyse(self, runs: list[Run]) -> Iterator[RunDone]:
        """Each run's results as it is done, in the order runs finish."""
        ray = import_ray()
        connected = connect(ray, self.address)
        actors: list[Actor] = []
        try:
            remote = ray.remote(num_cpus=1, max_restarts=0)(RunAnalyser)
            cpus = int(ray.cluster_resources().get("CPU", 0))
            count = self.count or max(1, cpus)
            actors.extend(start(remote, self.actor_args) for _ in range(min(count, len(runs))))
            log.info("ray_actors_started", actors=len(actors), address=self.address, cluster_cpus=cpus)
            pending = RunQueue(runs, self.output)
            while pending or any(a.run is not None for a in actors):
                for actor in actors:
                    if actor.place is not None and actor.run is None and pending:
                        actor.run = pending.take()
                        actor.stream = actor.handle.analyse.options(**STREAM).remote(actor.run)
                waited = [a.ready if a.place is None else a.stream for a in actors if a.place is None or a.run]
                ray.wait(waited, num_returns=1)
                for ref in ray.wait(waited, num_returns=len(waited), timeout=0)[0]:  # all that are in: none waits
                    actor = next(a for a in actors if ref is a.stream or ref is a.ready)
                    if (done := self._receive(ray, actor, pending)) is not None:
                        yield done
                    if actor.handle is None:  # dead: a new one takes its place while there is work
                        actors.remove(actor)
                        if pending and len(actors) < count:
                            actors.append(start(remote, self.actor_args))
        finally:
            for actor in actors:
                if actor.handle is not None:
                    ray.kill(actor.handle)
            if connected:
                ray.shutdown()

    def _receive(self, ray: Any, actor: Actor, pending: RunQueue) -> RunDone | None:
        """Handle one message of an actor: its place once loaded, its run's progress or results. An actor
        that died, or whose node did, is dropped (`handle` None) and its run put back."""
        try:
            if actor.place is None:
                answer = ray.get(actor.ready)
                if isinstance(answer, WorkerFailed):
                    raise answer.error
                actor.place = answer
                log.info("ray_actor_ready", place=str(answer))
                return None
            message = ray.get(next(actor.stream))
        except (ray.exceptions.RayError, StopIteration) as error:
            return self._lost(ray, actor, pending, error)
        if isinstance(message, RunProgress):
            actor.seconds += message.seconds
            self.output.advance(message.seconds, message.stream_id)
            if self.on_progress is not None:
                self.on_progress(actor.place, message)
            return None
        assert isinstance(message, RunDone)
        log.info("ray_run_done", run=message.index, node=actor.place.node_id, place=str(actor.place))
        actor.run, actor.stream, actor.seconds = None, None, 0.0
        return message

    def _lost(self, ray: Any, actor: Actor, pending: RunQueue, error: BaseException) -> RunDone | None:
        ray.kill(actor.handle)  # it may only be out of reach: it must not go on with a run given to another
        actor.handle = None
        run, actor.run = actor.run, None
        why = str(error).strip() or type(error).__name__  # a task's error carries the actor's traceback
        done = pending.lost(run, actor.seconds, "Ray actor", place=str(actor.place), error=why)
        if run is None:
            log.warning("ray_actor_lost", place=str(actor.place), error=why)
        return done


def start(remote: Any, actor_args: tuple) -> Actor:
    """A new actor, on the node with the fewest (SPREAD); ready once its models are loaded."""
    handle = remote.options(scheduling_strategy="SPREAD").remote(*actor_args)
    return Actor(handle, handle.ready.remote())


def connect(ray: Any, address: str) -> bool:
    """Join the cluster as its driver, Ray's own console lines kept off the progress bar (the actors' logs
    stay on their nodes; their errors come back with the runs). False: already connected."""
    if ray.is_initialized():
        return False
    reachable(address)
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    ray.init(address=address, log_to_driver=False, logging_level=logging.WARNING)
    return True


def reachable(address: str) -> None:
    """ConnectionError at once when nothing listens at HOST:PORT (Ray would keep trying for minutes)."""
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():  # "auto", or a form Ray checks itself
        return
    try:
        socket.create_connection((host, int(port)), timeout=10).close()
    except OSError as error:
        raise ConnectionError(f"no Ray cluster answers at {address}: {error}") from error
