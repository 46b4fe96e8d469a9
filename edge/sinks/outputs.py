"""Where every record the daemon publishes goes, in this order:

1. skipped if its key was published before (a recording analysed again after a crash repeats its events);
2. numbered with the box's next sequence number;
3. written to the daily files (always, or only while the uplink is down);
4. committed to the outbox, with its key and the counter, in one transaction;
5. handed to the uplink, which sends it and removes it from the outbox at the broker's acknowledgement.

A crash between 3 and 4 writes the record to the daily file a second time, with the same seq, when the
recording is analysed again: the daily files hold each record at least once, the broker too.
"""

from __future__ import annotations

from typing import Literal

import structlog

from edge.outbox import Outbox
from edge.sinks.daily import DailyFiles
from edge.sinks.mqtt import MqttPublisher

log = structlog.get_logger(__name__)

FilesWhen = Literal["always", "offline"]


class Outputs:
    def __init__(self, outbox: Outbox, files: DailyFiles, uplink: MqttPublisher | None,
                 files_when: FilesWhen = "always"):
        self.outbox = outbox
        self.files = files
        self.uplink = uplink
        self.files_when = files_when
        self.repeated = 0

    def start(self) -> None:
        if self.uplink is not None:
            self.uplink.start()

    def publish(self, kind: str, record: dict, key: str | None = None) -> dict | None:
        """The record as published (with its seq), or None if it had been published already."""
        if key is not None and self.outbox.seen(key):
            self.repeated += 1
            log.info("record_already_published", kind=kind, key=key)
            return None
        record = {**record, "seq": self.outbox.next_seq()}
        if self.files_when == "always" or self.uplink is None or not self.uplink.connected:
            self.files.publish(kind, record)
        self.outbox.add(kind, record, key)
        if self.uplink is not None:
            self.uplink.wake()
        return record

    def stats(self) -> dict:
        uplink = self.uplink.stats() if self.uplink is not None else {"mqtt_connected": None}
        return {**self.outbox.stats(), **uplink, "records_repeated": self.repeated}

    def stop(self) -> None:
        """Let the uplink drain and say `stopped`, then close the outbox and the files."""
        if self.uplink is not None:
            self.uplink.stop()
        self.outbox.close()
        self.files.close()
