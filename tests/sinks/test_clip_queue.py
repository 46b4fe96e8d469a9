"""The clip queue: alerts before events (newest alert first), a byte budget over a sliding hour that a restart
does not reset, each clip queued once, and what can never go dropped and counted."""

from edge.sinks.clip_queue import ClipQueue, QueuedClip


class Clock:
    def __init__(self, now: float = 1_000_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


def clip(id: str, kind: str = "event", size: int = 100) -> QueuedClip:
    return QueuedClip(id, kind, f"2026-11-30/{id}.flac", {"id": id}, size)


def queue(tmp_path, clock, bytes_per_hour=1000, max_age=86400.0) -> ClipQueue:
    return ClipQueue(tmp_path / "outbox.sqlite", bytes_per_hour, max_age, clock=clock)


def send_all(q: ClipQueue) -> list[str]:
    sent = []
    while (c := q.next()) is not None:
        q.acknowledge(c)
        sent.append(c.id)
    return sent


def test_alerts_go_first_newest_first_then_events_oldest_first(tmp_path):
    clock = Clock()
    q = queue(tmp_path, clock, bytes_per_hour=10_000)
    for i, (id, kind) in enumerate([("e1", "event"), ("a1", "alert"), ("e2", "event"), ("a2", "alert")]):
        clock.now += i
        assert q.add(clip(id, kind))
    assert send_all(q) == ["a2", "a1", "e1", "e2"]


def test_each_clip_is_queued_once_even_after_it_was_sent(tmp_path):
    clock = Clock()
    q = queue(tmp_path, clock)
    assert q.add(clip("e1")) and not q.add(clip("e1"))
    assert send_all(q) == ["e1"]
    assert not q.add(clip("e1")), "a recording analysed again does not send its clips again"
    assert q.stats()["clips_sent"] == 1


def test_the_budget_holds_over_a_sliding_hour_and_across_a_restart(tmp_path):
    clock = Clock()
    q = queue(tmp_path, clock, bytes_per_hour=1000)
    for i in range(25):
        q.add(clip(f"e{i:02}", size=100))
    assert len(send_all(q)) == 10, "1000 bytes an hour: ten clips of 100"
    q.close()
    q = queue(tmp_path, clock, bytes_per_hour=1000)  # restarted: the hour is not spent again
    assert q.next() is None and q.stats()["clip_bytes_last_hour"] == 1000
    clock.now += 3601
    assert len(send_all(q)) == 10
    assert q.stats()["clips_waiting"] == 5


def test_what_can_never_go_is_dropped_and_counted(tmp_path):
    clock = Clock()
    q = queue(tmp_path, clock, bytes_per_hour=1000, max_age=3600)
    q.add(clip("old"))
    clock.now += 1800
    q.add(clip("huge", size=5000))
    q.add(clip("gone"))
    q.add(clip("young"))
    clock.now += 1801  # "old" is now past max_age
    waiting = q.next()
    assert waiting is not None and waiting.id == "gone"
    q.drop(waiting, "clips_file_gone")
    assert send_all(q) == ["young"]
    stats = q.stats()
    assert (stats["clips_too_big"], stats["clips_too_old"], stats["clips_file_gone"]) == (1, 1, 1)
    assert stats["clips_dropped"] == 3 and stats["clips_waiting"] == 0
