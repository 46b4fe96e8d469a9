"""The order every record goes through: key, seq, daily files, outbox, uplink."""

import json

from edge.sinks.daily import DailyFiles
from edge.sinks.outbox import Outbox
from edge.sinks.outputs import Outputs


class Uplink:
    """Stands in for MqttPublisher: what Outputs reads of it."""

    def __init__(self, connected: bool):
        self.connected = connected
        self.woken = 0

    def wake(self):
        self.woken += 1

    def stats(self):
        return {"mqtt_connected": self.connected}

    def start(self):
        pass

    def stop(self):
        pass


def lines(folder, kind="events"):
    return [
        json.loads(line) for path in sorted((folder / kind).glob("*.jsonl")) for line in path.read_text().splitlines()
    ]


def test_records_are_numbered_written_queued_and_never_repeated(tmp_path):
    uplink = Uplink(connected=True)
    outputs = Outputs(Outbox(tmp_path / "outbox.sqlite"), DailyFiles(tmp_path / "records"), uplink)
    first = outputs.publish("events", {"id": "a", "kind": "start"}, key="a/start")
    second = outputs.publish("health", {"time_utc": "t"})
    again = outputs.publish("events", {"id": "a", "kind": "start"}, key="a/start")
    assert (first["seq"], second["seq"], again) == (1, 2, None)
    assert lines(tmp_path / "records") == [first]
    assert [p.seq for p in outputs.outbox.pending(0, 10)] == [1, 2]
    assert uplink.woken == 2
    assert outputs.stats()["records_repeated"] == 1


def test_offline_files_are_written_only_while_the_uplink_is_down(tmp_path):
    uplink = Uplink(connected=True)
    outputs = Outputs(Outbox(tmp_path / "outbox.sqlite"), DailyFiles(tmp_path / "records"), uplink, "offline")
    outputs.publish("events", {"id": "a", "kind": "start"}, key="a/start")
    uplink.connected = False
    down = outputs.publish("events", {"id": "a", "kind": "end"}, key="a/end")
    assert lines(tmp_path / "records") == [down]
    assert [p.seq for p in outputs.outbox.pending(0, 10)] == [1, 2], "the outbox has both"
