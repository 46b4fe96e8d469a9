"""Where every record the daemon publishes goes, in this order:

1. skipped if its key was published before (a recording analysed again after a crash repeats its events);
2. numbered with the box's next sequence number;
3. written to the daily files (always, or only while the uplink is down);
4. committed to the outbox, with its key and the counter, in one transaction;
5. handed to the uplink, which sends it and removes it from the outbox at the broker's acknowledgement.

A crash between 3 and 4 writes the record to the daily file a second time, with the same seq, when the
recording is analysed again: the daily files hold each record at least once, the broker too.

A full or read-only disk never stops the analysis. A record that a store (the daily files, or the outbox)
refuses waits in memory for that store, in order, while the other store goes on taking it; every
`retry_seconds`, and at the next record after that, the waiting records are written again, oldest first, and
the fault ends when they all are. At most `max_held` records wait per store: past that the oldest are dropped
(health records first, as in the outbox) and counted as lost for that store, with an error in the log.
The numbering goes on in memory while the outbox is failing, so that the daily files and the outbox agree.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass
from typing import Literal, overload

import structlog

from edge.sinks.clip_queue import QueuedClip
from edge.sinks.daily import DailyFiles
from edge.sinks.mqtt import MqttPublisher
from edge.sinks.outbox import EXPENDABLE, Outbox
from edge.storage.faults import DISK_ERRORS, StorageFault, in_words

log = structlog.get_logger(__name__)

FilesWhen = Literal["always", "offline"]
STORES = ("records", "outbox")  # the daily files, the outbox
RETRY_SECONDS = 5.0
MAX_HELD = 10_000  # records per store: about 6 MB


@dataclass(frozen=True)
class Held:
    """A record waiting in memory for a store, as it was published (its seq, key and day)."""

    kind: str
    record: dict
    key: str | None
    day: str


class Outputs:
    def __init__(
        self,
        outbox: Outbox,
        files: DailyFiles,
        uplink: MqttPublisher | None,
        files_when: FilesWhen = "always",
        max_held: int = MAX_HELD,
        retry_seconds: float = RETRY_SECONDS,
    ):
        self.outbox = outbox
        self.files = files
        self.uplink = uplink
        self.files_when = files_when
        self.max_held = max_held
        self.retry_seconds = retry_seconds
        self.repeated = 0
        self.faults: dict[str, StorageFault] = {}
        self.held: dict[str, deque[Held]] = {store: deque() for store in STORES}
        self.lost = dict.fromkeys(STORES, 0)
        self._seq = outbox.last_seq
        self._retry_at = 0.0
        self._paths = {"records": files.folder, "outbox": outbox.path}
        if outbox.open_error is not None:
            self._failed("outbox", outbox.open_error)

    def start(self) -> None:
        if self.uplink is not None:
            self.uplink.start()

    @overload
    def publish(self, kind: str, record: dict, key: None = None) -> dict: ...

    @overload
    def publish(self, kind: str, record: dict, key: str) -> dict | None: ...

    def publish(self, kind: str, record: dict, key: str | None = None) -> dict | None:
        """The record as published (with its seq), or None if its `key` had been published already (a record
        without a key is always published)."""
        if key is not None and self._seen(key):
            self.repeated += 1
            log.info("record_already_published", kind=kind, key=key)
            return None
        self._seq += 1
        held = Held(kind, {**record, "seq": self._seq}, key, self.files.today())
        self.retry()
        if self.files_when == "always" or self.uplink is None or not self.uplink.connected:
            self._write("records", held)
        self._write("outbox", held)
        if self.uplink is not None:
            self.uplink.wake()
        return held.record

    def offer_clip(self, clip: QueuedClip, names: tuple[str, ...]) -> None:
        """A clip written to the card, for the station if the uplink sends clips of its kind."""
        if self.uplink is None or self.uplink.clips is None:
            return
        try:
            if self.uplink.clips.offer(clip, names):
                self.uplink.wake()
        except DISK_ERRORS as error:  # the records go on; this clip stays on the card only
            log.error("clip_not_queued", id=clip.id, error=in_words(error, self.outbox.path))

    def _seen(self, key: str) -> bool:
        if any(h.key == key for h in self.held["outbox"]):
            return True
        try:
            return self.outbox.seen(key)
        except DISK_ERRORS:
            return False  # unreadable: the key is checked again when the outbox takes the record

    def _write(self, store: str, held: Held) -> None:
        """Write `held` to `store`, or hold it in memory behind the records already waiting there."""
        if not self.held[store]:
            try:
                self._store(store, held)
            except DISK_ERRORS as error:
                self._failed(store, in_words(error, self._paths[store]))
            else:
                if store in self.faults:  # a fault with nothing waiting (the outbox could not be opened)
                    self._recovered(store, 1)
                return
        self._hold(store, held)

    def _store(self, store: str, held: Held) -> None:
        if store == "records":
            self.files.publish(held.kind, held.record, held.day)
        else:
            self.outbox.add(held.kind, held.record, held.key)

    def _hold(self, store: str, held: Held) -> None:
        waiting = self.held[store]
        waiting.append(held)
        if len(waiting) > self.max_held:
            victim = next((h for h in waiting if h.kind == EXPENDABLE), waiting[0])
            waiting.remove(victim)
            self.lost[store] += 1
            log.error(
                "record_lost",
                store=store,
                kind=victim.kind,
                seq=victim.record["seq"],
                lost_total=self.lost[store],
                max_held=self.max_held,
                error=self.faults[store].error,
            )
        self.faults[store].waiting = len(waiting)

    def _failed(self, store: str, error: str) -> None:
        fault = self.faults.get(store)
        if fault is None:
            self.faults[store] = StorageFault(store, error)
            log.error(
                "storage_fault",
                store=store,
                error=error,
                hint="analysis goes on; records wait in memory and are written when the disk takes them",
            )
        else:
            fault.error = error
        self._retry_at = time.monotonic() + self.retry_seconds

    def retry(self) -> None:
        """Write the records waiting for a failed store, oldest first, if its retry is due; end the fault when
        none is left waiting."""
        if not self.faults or time.monotonic() < self._retry_at:
            return
        for store, waiting in self.held.items():
            written = 0
            try:
                while waiting:
                    self._store(store, waiting[0])
                    waiting.popleft()
                    written += 1
            except DISK_ERRORS as error:
                self._failed(store, in_words(error, self._paths[store]))
                self.faults[store].waiting = len(waiting)
            if written and not waiting:
                self._recovered(store, written)

    def _recovered(self, store: str, written: int) -> None:
        fault = self.faults.pop(store)
        log.info("storage_recovered", store=store, written=written, lost=self.lost[store], since_utc=fault.since_utc)
        if self.uplink is not None:
            self.uplink.wake()

    def stats(self) -> dict:
        uplink = self.uplink.stats() if self.uplink is not None else {"mqtt_connected": None}
        return {
            **self.outbox.stats(),
            **uplink,
            "records_repeated": self.repeated,
            "records_held": sum(len(h) for h in self.held.values()),
            "records_lost": dict(self.lost),
            "storage_faults": [fault.as_record() for fault in self.faults.values()],
        }

    def stop(self) -> None:
        """Let the uplink drain and say `stopped`, then close the outbox and the files. Records still held in
        memory are lost with the process: counted in the log."""
        if self.uplink is not None:
            self.uplink.stop()
        self._retry_at = 0.0
        self.retry()
        for store, waiting in self.held.items():
            if waiting:
                log.error(
                    "records_lost_at_stop",
                    store=store,
                    records=len(waiting),
                    first_seq=waiting[0].record["seq"],
                    last_seq=waiting[-1].record["seq"],
                )
        self.outbox.close()
        self.files.close()
