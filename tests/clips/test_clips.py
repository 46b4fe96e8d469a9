"""Event clips: real FLAC files read back with soundfile, retention on real folders, a real full card (tmpfs)."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from structlog.testing import capture_logs

from edge.clips.recorder import ClipOptions, ClipRecorder
from edge.clips.store import ClipStore
from edge.types import AudioChunk, Event, Label, Stream

RATE = 16000
HALF_STEP = 0.5 / 32768 + 1e-9  # 16-bit quantisation, as soundfile reads PCM_16 back
OWL = Label("Strix aluco", "Tawny Owl", "Strix aluco_Tawny Owl")
STARTED = datetime(2025, 6, 1, 22, 30, 0, tzinfo=UTC)
OWL_ID = "3f2a1c9e-0000-5000-8000-000000000001"
OTHER_ID = "7b00d1e5-0000-5000-8000-000000000002"


def noise(seconds: float, seed: int = 0) -> np.ndarray:
    return (0.1 * np.random.default_rng(seed).standard_normal(int(seconds * RATE))).astype(np.float32)


def event(kind: str, stream: Stream, start_s: float, end_s: float, id: str = OWL_ID) -> Event:
    return Event(
        id=id,
        kind=kind,
        stream=stream,
        label=OWL,
        start=int(start_s * RATE),
        end=int(end_s * RATE),
        confidence=0.9,
        model="m",
        model_version="1",
    )


class Feed:
    """Pushes a stream's samples into a recorder in chunks, up to a time, as the daemon's source would."""

    def __init__(self, recorder: ClipRecorder, stream: Stream, samples: np.ndarray, chunk: int = 4096):
        self.recorder, self.stream, self.samples, self.chunk = recorder, stream, samples, chunk
        self.position = 0

    def to(self, seconds: float) -> None:
        target = min(int(seconds * RATE), len(self.samples))
        while self.position < target:
            end = min(self.position + self.chunk, target)
            self.recorder.push(AudioChunk(self.stream, self.position, self.samples[self.position : end]))
            self.recorder.write_ready()  # as the daemon does after each chunk's events
            self.position = end

    def end(self) -> None:
        self.to(len(self.samples) / RATE)
        self.recorder.push(AudioChunk(self.stream, self.position, np.zeros(0, np.float32), last=True))
        self.recorder.write_ready()


def recorder(directory: Path, veto=None, **options) -> ClipRecorder:
    return ClipRecorder(ClipOptions(directory, **options), ClipStore(directory), veto=veto)


def read(directory: Path, path: str) -> np.ndarray:
    samples, rate = sf.read(directory / path, dtype="float32")
    assert rate == RATE
    return samples


def files(directory: Path) -> list[str]:
    """Every file below `directory`, hidden ones (temporary files) included."""
    return sorted(p.relative_to(directory).as_posix() for p in directory.rglob("*") if p.is_file())


@pytest.mark.parametrize("chunk", [1024, 4096, 7 * RATE + 3])
def test_clip_holds_the_source_samples_from_pre_roll_to_post_roll(tmp_path, chunk):
    """A click at a known sample lands at the same sample of the clip, whatever the chunk size."""
    samples = noise(60)
    click = 10 * RATE + 1234
    samples[click] = 0.95
    stream = Stream("rec.wav", RATE, STARTED, "1")
    clips = recorder(tmp_path)
    feed = Feed(clips, stream, samples, chunk)
    feed.to(13.5)  # the start is reported a window and a hop late
    assert clips.observe(event("start", stream, 10, 13)) is None
    feed.to(25)  # the end, after end_after seconds of quiet
    path = clips.finish(event("end", stream, 10, 14))
    assert path == "2025-06-01/223010Z_Strix_aluco_3f2a1c9e.flac"
    assert clips.path_of(OWL_ID) == path
    clip = read(tmp_path, path)
    np.testing.assert_allclose(clip, samples[7 * RATE : 17 * RATE], atol=HALF_STEP, rtol=0)
    assert int(np.argmax(np.abs(clip))) == click - 7 * RATE
    info = sf.info(tmp_path / path)
    assert info.subtype == "PCM_16" and info.format == "FLAC"
    with sf.SoundFile(tmp_path / path) as f:
        metadata = f.copy_metadata()
    assert metadata["title"] == "Tawny Owl (Strix aluco)"
    assert f"event={OWL_ID}" in metadata["comment"] and f"start_sample={7 * RATE}" in metadata["comment"]
    assert metadata["date"] == "2025-06-01T22:30:07+00:00"
    stats = clips.stats()
    assert stats["clips_written"] == stats["clips_count"] == 1 and stats["clips_pending"] == 0
    assert stats["clips_bytes"] == (tmp_path / path).stat().st_size
    assert files(tmp_path) == [path]


def test_finish_waits_for_the_post_roll_and_the_veto_delay(tmp_path):
    """An end reported sooner than post_roll after the event: the clip waits for its last seconds, and one
    more (veto_delay) for the speech detector to have judged them."""
    samples = noise(30)
    stream = Stream("rec.wav", RATE, STARTED)
    clips = recorder(tmp_path)
    feed = Feed(clips, stream, samples)
    feed.to(6)
    clips.begin(event("start", stream, 5, 6))
    feed.to(9)
    assert clips.finish(event("end", stream, 5, 8)) is None and files(tmp_path) == []
    feed.to(11.9)
    assert clips.path_of(OWL_ID) is None
    feed.to(12)
    path = clips.path_of(OWL_ID)
    np.testing.assert_allclose(read(tmp_path, path), samples[2 * RATE : 11 * RATE], atol=HALF_STEP, rtol=0)


def test_clip_is_clamped_at_the_stream_start_and_end(tmp_path):
    """Pre-roll before the first sample and an end past the last one (a zero-padded window): the whole
    stream, nothing invented. A stream without a known start goes to `undated/`."""
    samples = noise(8)
    stream = Stream("/data/in/rec:1.wav", RATE, None)
    clips = recorder(tmp_path)
    feed = Feed(clips, stream, samples)
    feed.to(4)
    clips.begin(event("start", stream, 1, 4))
    feed.end()
    path = clips.finish(event("end", stream, 1, 9))
    assert path == "undated/_data_in_rec_1.wav_00001.0s_Strix_aluco_3f2a1c9e.flac"
    np.testing.assert_allclose(read(tmp_path, path), samples, atol=HALF_STEP, rtol=0)


def test_long_event_is_capped_and_written_before_it_ends(tmp_path):
    """An event longer than max_seconds: its clip is written as soon as the audio reaches its cap plus the
    post-roll (and the veto delay), and never written again."""
    samples = noise(60)
    stream = Stream("rec.wav", RATE, STARTED)
    clips = recorder(tmp_path, max_seconds=10)
    feed = Feed(clips, stream, samples, chunk=RATE // 2)
    feed.to(8)
    clips.observe(event("start", stream, 5, 8))
    written_at = None
    while feed.position < 40 * RATE:
        feed.to(feed.position / RATE + 0.5)
        if written_at is None and files(tmp_path):
            written_at = feed.position / RATE
    assert written_at == 19.0, "start + max_seconds + post_roll + veto_delay"
    path = clips.observe(event("update", stream, 5, 38))
    assert path is not None
    np.testing.assert_allclose(read(tmp_path, path), samples[2 * RATE : 18 * RATE], atol=HALF_STEP, rtol=0)
    before = (tmp_path / path).stat()
    assert clips.finish(event("end", stream, 5, 40)) == path
    after = (tmp_path / path).stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert clips.stats()["clips_written"] == 1


def test_one_long_chunk_does_not_lose_a_capped_clip(tmp_path):
    """A chunk longer than the ring (a file source's big block) enters it in steps: the capped clip is
    written before its first samples are overwritten."""
    samples = noise(120)
    stream = Stream("rec.wav", RATE, STARTED)
    clips = recorder(tmp_path, max_seconds=10, report_delay=0)  # a ring of 3 + 10 + 3 + 1 + 1 = 18 s
    feed = Feed(clips, stream, samples, chunk=8 * RATE)
    feed.to(8)
    clips.begin(event("start", stream, 5, 8))
    feed.chunk = 112 * RATE
    feed.end()
    np.testing.assert_allclose(
        read(tmp_path, clips.path_of(OWL_ID)), samples[2 * RATE : 18 * RATE], atol=HALF_STEP, rtol=0
    )
    assert clips.stats()["clips_truncated"] == 0


def test_a_start_reported_later_than_the_ring_holds_loses_only_the_beginning(tmp_path):
    samples = noise(40)
    stream = Stream("rec.wav", RATE, STARTED)
    clips = recorder(tmp_path, max_seconds=10, report_delay=0)
    feed = Feed(clips, stream, samples, chunk=RATE)
    feed.to(30)
    clips.begin(event("start", stream, 5, 30))  # the ring holds 18 s + a chunk, [11 s, 30 s): written, capped
    np.testing.assert_allclose(
        read(tmp_path, clips.path_of(OWL_ID)), samples[11 * RATE : 18 * RATE], atol=HALF_STEP, rtol=0
    )
    assert clips.stats()["clips_truncated"] == 1


def test_vetoed_clip_is_never_written(tmp_path):
    """The privacy gate refuses the clip whose span overlaps speech: no file, no temporary file, counted."""
    speech = (20 * RATE, 22 * RATE)
    judged = []

    def veto(stream: Stream, start: int, end: int) -> bool:
        judged.append((stream.id, start, end))
        return start < speech[1] and speech[0] < end

    samples = noise(40)
    stream = Stream("rec.wav", RATE, STARTED)
    clips = recorder(tmp_path, veto=veto)
    feed = Feed(clips, stream, samples)
    feed.to(12)
    clips.begin(event("start", stream, 10, 12))
    feed.to(19)
    clips.begin(event("start", stream, 18, 19, id=OTHER_ID))
    kept = clips.finish(event("end", stream, 10, 14))
    feed.to(30)
    assert clips.finish(event("end", stream, 18, 19, id=OTHER_ID)) is None
    assert clips.path_of(OTHER_ID) is None
    assert judged == [("rec.wav", 7 * RATE, 17 * RATE), ("rec.wav", 15 * RATE, 22 * RATE)]
    assert files(tmp_path) == [kept]
    stats = clips.stats()
    assert stats["clips_refused_speech"] == 1 and stats["clips_written"] == 1


def test_a_veto_that_cannot_judge_refuses(tmp_path):
    """The speech detector follows another stream, or has forgotten the span: no judgement, no clip."""

    def veto(stream: Stream, start: int, end: int) -> bool:
        raise ValueError(f"no speech timeline for stream {stream.id!r}")

    stream = Stream("rec.wav", RATE, STARTED)
    clips = recorder(tmp_path, veto=veto)
    feed = Feed(clips, stream, noise(20))
    feed.to(12)
    clips.begin(event("start", stream, 10, 12))
    feed.end()
    with capture_logs() as logs:
        assert clips.finish(event("end", stream, 10, 14)) is None
    assert [e["event"] for e in logs] == ["clip_veto_failed"]
    assert files(tmp_path) == [] and clips.stats()["clips_unjudged"] == 1


def test_a_new_stream_writes_the_clips_still_waiting(tmp_path):
    """A stream that ends without its last chunk (cut short): its open event gets the audio there was."""
    first, second = noise(20, seed=1), noise(5, seed=2)
    a, b = Stream("a.wav", RATE, STARTED), Stream("b.wav", RATE, STARTED)
    clips = recorder(tmp_path)
    feed = Feed(clips, a, first)
    feed.to(10)
    clips.begin(event("start", a, 8, 10))
    feed.to(20)
    assert files(tmp_path) == []
    Feed(clips, b, second).to(1)
    np.testing.assert_allclose(read(tmp_path, clips.path_of(OWL_ID)), first[5 * RATE :], atol=HALF_STEP, rtol=0)


def test_a_recording_analysed_again_keeps_its_clip(tmp_path):
    """After a crash the recording is analysed again: same event id, same name, the clip is not rewritten."""
    samples = noise(30)
    stream = Stream("rec.wav", RATE, STARTED)
    stamps = []
    for _ in range(2):
        clips = recorder(tmp_path)
        feed = Feed(clips, stream, samples)
        feed.to(12)
        clips.begin(event("start", stream, 10, 12))
        feed.end()
        path = clips.finish(event("end", stream, 10, 14))
        st = (tmp_path / path).stat()
        stamps.append((st.st_ino, st.st_mtime_ns))
    assert stamps[0] == stamps[1] and clips.stats()["clips_written"] == 0 and files(tmp_path) == [path]


def test_stale_temporary_files_are_removed_at_start(tmp_path):
    day = tmp_path / "2025-06-01"
    day.mkdir()
    (day / ".223010Z_Strix_aluco_3f2a1c9e.flac.tmp").write_bytes(b"half a clip")
    sf.write(day / "221000Z_Strix_aluco_00000000.flac", noise(1), RATE, subtype="PCM_16")
    store = ClipStore(tmp_path)
    assert files(tmp_path) == ["2025-06-01/221000Z_Strix_aluco_00000000.flac"]
    stats = store.stats()
    assert stats["clips_count"] == 1
    assert stats["clips_bytes"] == (day / "221000Z_Strix_aluco_00000000.flac").stat().st_size


def test_retention_by_age(tmp_path):
    store = ClipStore(tmp_path)
    for name in ("2025-06-01/a.flac", "2025-06-01/b.flac", "2025-06-02/c.flac"):
        assert store.write(name, noise(0.5), RATE)
    now = time.time()
    for name in ("2025-06-01/a.flac", "2025-06-01/b.flac"):
        os.utime(tmp_path / name, (now - 8 * 86400, now - 8 * 86400))
    store = ClipStore(tmp_path, max_age_days=7)  # a restart: mtimes are read once
    assert store.prune(now) == 2
    assert files(tmp_path) == ["2025-06-02/c.flac"] and not (tmp_path / "2025-06-01").exists()
    assert store.prune(now + 8 * 86400) == 1 and files(tmp_path) == []
    assert store.stats()["clips_bytes"] == 0 and store.stats()["clips_deleted"] == 3


def test_folder_never_exceeds_its_quota(tmp_path):
    """Many writes against a 0.2 MB quota: after each one the folder is within it, the oldest clips gone."""
    store = ClipStore(tmp_path, max_megabytes=0.2)
    names = [f"2025-06-{1 + i // 5:02d}/clip{i:02d}.flac" for i in range(30)]
    for i, name in enumerate(names):
        assert store.write(name, noise(1, seed=i), RATE)
        on_disk = files(tmp_path)
        sizes = sum((tmp_path / f).stat().st_size for f in on_disk)
        assert sizes <= 200_000 and sizes == store.stats()["clips_bytes"]
        assert on_disk == names[i + 1 - len(on_disk) : i + 1], "the oldest go first"
    stats = store.stats()
    assert stats["clips_deleted"] == 30 - stats["clips_count"] > 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["2025-06-05", "2025-06-06"], "empty days removed"


def test_a_clip_larger_than_the_quota_is_refused_and_deletes_nothing(tmp_path):
    """A 10 s clip (about 280 kB) against a 50 kB quota: refused, and the clips already there are kept."""
    store = ClipStore(tmp_path, max_megabytes=0.05)
    assert store.write("2025-06-01/small.flac", noise(0.5), RATE)
    samples = noise(20)
    stream = Stream("rec.wav", RATE, STARTED)
    clips = ClipRecorder(ClipOptions(tmp_path), store)
    feed = Feed(clips, stream, samples)
    feed.to(12)
    clips.begin(event("start", stream, 10, 12))
    feed.end()
    assert clips.finish(event("end", stream, 10, 14)) is None
    stats = clips.stats()
    assert stats["clips_failed"] == 1 and stats["clips_disk_full"] and stats["clips_deleted"] == 0
    assert files(tmp_path) == ["2025-06-01/small.flac"]


@pytest.fixture
def card(tmp_path):
    """A real 1 MB filesystem (tmpfs) to fill up; needs root (CAP_SYS_ADMIN)."""
    mountpoint = tmp_path / "card"
    mountpoint.mkdir()
    if shutil.which("mount") is None:
        pytest.skip("no mount command to make a small tmpfs with")
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mountpoint)], capture_output=True, text=True
    )
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs (root or CAP_SYS_ADMIN needed): {result.stderr.strip()}")
    try:
        yield mountpoint
    finally:
        subprocess.run(["umount", str(mountpoint)], check=True)


def test_a_full_card_is_reported_never_raised(card):
    """Without retention, writes fail once the card is full: False, counted, logged, no temporary file left,
    and every clip written before is whole."""
    store = ClipStore(card / "clips")
    with capture_logs() as logs:
        results = [store.write(f"2025-06-01/clip{i:02d}.flac", noise(3, seed=i), RATE) for i in range(20)]
    assert results[0] and not results[-1]
    assert results == sorted(results, reverse=True), "once full, full"
    stats = store.stats()
    assert stats["clips_failed"] == results.count(False) and stats["clips_disk_full"]
    assert {e["errno"] for e in logs if e["event"] == "clip_write_failed"} == {"ENOSPC"}
    written = files(card / "clips")
    assert not [f for f in written if f.endswith(".tmp")]
    assert len(written) == results.count(True) == stats["clips_count"]
    for name in written:
        assert len(read(card / "clips", name)) == 3 * RATE


def test_min_free_percent_keeps_the_card_from_filling(card):
    store = ClipStore(card / "clips", min_free_percent=30)
    for i in range(20):
        assert store.write(f"2025-06-{1 + i // 5:02d}/clip{i:02d}.flac", noise(3, seed=i), RATE)
        usage = shutil.disk_usage(card)
        assert 100 * usage.free >= 30 * usage.total
    stats = store.stats()
    assert stats["clips_deleted"] > 0 and stats["clips_failed"] == 0 and not stats["clips_disk_full"]
    assert not [f for f in files(card) if f.endswith(".tmp")]
    # 30 s of noise, about 830 kB: even an empty card would be left with less than 30 % free.
    assert not store.write("2025-06-05/huge.flac", noise(30), RATE)
    assert store.stats()["clips_count"] == stats["clips_count"], "nothing deleted for a clip that cannot fit"


def test_a_read_only_card_is_reported_never_raised(card):
    store = ClipStore(card / "clips")
    assert store.write("2025-06-01/a.flac", noise(1), RATE)
    subprocess.run(["mount", "-o", "remount,ro", str(card)], check=True)
    with capture_logs() as logs:
        assert not store.write("2025-06-01/b.flac", noise(1), RATE)
    assert [e["errno"] for e in logs if e["event"] == "clip_write_failed"] == ["EROFS"]
    assert store.stats()["clips_failed"] == 1 and not store.stats()["clips_disk_full"]
