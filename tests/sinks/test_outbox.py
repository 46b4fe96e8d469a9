"""The outbox on its own: numbering, keys of published records, the bound and its policy, acknowledgement."""

import json

import pytest

from edge.sinks.outbox import Outbox


def add(outbox: Outbox, kind: str, key: str | None = None, **fields) -> dict:
    record = {"kind": kind, **fields, "seq": outbox.next_seq()}
    outbox.add(kind, record, key)
    return record


def test_sequence_survives_reopening_and_acknowledgement(tmp_path):
    outbox = Outbox(tmp_path / "outbox.sqlite")
    first = [add(outbox, "events")["seq"] for _ in range(3)]
    outbox.acknowledge(first)
    outbox.close()
    reopened = Outbox(tmp_path / "outbox.sqlite")
    assert first == [1, 2, 3]
    assert add(reopened, "events")["seq"] == 4, "a seq is never reused, even once the outbox is empty"
    assert [p.seq for p in reopened.pending(0, 10)] == [4]


def test_pending_is_oldest_first_and_holds_the_payload(tmp_path):
    outbox = Outbox(tmp_path / "outbox.sqlite")
    records = [add(outbox, kind, n=n) for n, kind in enumerate(["events", "health", "alerts", "events"])]
    pending = outbox.pending(0, 10)
    assert [p.seq for p in pending] == [1, 2, 3, 4]
    assert [json.loads(p.payload) for p in pending] == records
    assert [p.seq for p in outbox.pending(1, 2)] == [2, 3]
    assert [p.seq for p in outbox.pending(0, 10, upto=2)] == [1, 2]
    outbox.acknowledge([2, 3])
    assert [p.seq for p in outbox.pending(0, 10)] == [1, 4]
    assert outbox.stats()["outbox_pending"] == 2


def test_a_key_is_published_once(tmp_path):
    outbox = Outbox(tmp_path / "outbox.sqlite")
    add(outbox, "events", key="edge.event/1/a/start/5.0")
    outbox.close()
    reopened = Outbox(tmp_path / "outbox.sqlite")
    assert reopened.seen("edge.event/1/a/start/5.0")
    assert not reopened.seen("edge.event/1/a/end/9.0")


def test_without_an_uplink_records_are_numbered_but_not_queued(tmp_path):
    outbox = Outbox(tmp_path / "outbox.sqlite", queue=False)
    assert [add(outbox, "events")["seq"] for _ in range(2)] == [1, 2]
    assert outbox.pending(0, 10) == []


@pytest.mark.parametrize("policy, kept", [("drop_oldest", [3, 4, 5, 6, 7]), ("drop_newest", [1, 3, 4, 5, 6])])
def test_a_full_outbox_drops_health_first_then_by_policy(tmp_path, policy, kept):
    outbox = Outbox(tmp_path / "outbox.sqlite", max_records=5, when_full=policy)
    kinds = ["events", "health", "events", "events", "events", "events", "events"]
    for kind in kinds:
        add(outbox, kind)
    # seq 6 pushed out the health record (2); seq 7 found nothing expendable: the policy decided.
    assert [p.seq for p in outbox.pending(0, 10)] == kept
    stats = outbox.stats()
    assert stats["outbox_dropped"] == 2
    assert stats["outbox_full"] is True
    assert stats["outbox_pending"] == 5


def test_a_failed_commit_leaves_nothing_half_done(tmp_path):
    outbox = Outbox(tmp_path / "outbox.sqlite")
    add(outbox, "events", key="k")
    with pytest.raises(Exception):  # noqa: B017 - whatever fails the commit, it must leave nothing behind
        outbox.add("events", {"seq": 2, "bad": object()}, key="k2")  # not JSON: the transaction rolls back
    assert not outbox.seen("k2")
    assert outbox.next_seq() == 2
    assert outbox.stats()["outbox_pending"] == 1


def test_adding_a_committed_key_again_queues_nothing(tmp_path):
    outbox = Outbox(tmp_path / "outbox.sqlite")
    add(outbox, "events", key="k")
    outbox.add("events", {"seq": 2}, key="k")  # held in memory while the disk failed, then added once more
    assert [p.seq for p in outbox.pending(0, 10)] == [1]
