"""The watched folder against what a broken recorder does: names that are not UTF-8 or hold newlines, and
writers that pause with the file open or reopen it to append. Writers are real processes; their progress
reaches the test through a pipe, and the source's clock is the test's, so no verdict depends on speed."""

import contextlib
import dataclasses
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
import time

import soundfile as sf
import structlog.testing

from edge.sources import writers
from edge.sources.folder import FolderConfig, FolderSource
from edge.sources.state import RecordingState
from edge.storage.file_names import name_bytes, shown
from support.broker import Mosquitto, Subscriber
from support.config import write_config
from support.processes import DaemonProcess, edge_cli
from support.records import read_records
from support.sources import analysed, make_source

NAMES = [
    b"caf\xe9.wav",
    b"new\nline.wav",
    b"-rf.wav",
    b"back\\x41slash.wav",
    b"\xe2\x80\xaeflow.wav",
    b"x" * 251 + b".wav",
    "café.wav".encode(),
]
SETTLE = 5.0
# A recorder writing `source` to `target`: first `pieces` parts, waiting for a line on stdin before each part
# after the first; "reopen": each part in an open of its own (append), else all in one open. It says "wrote N"
# after each part, with the file still open when one open.
WRITER = r"""
import sys
source, target, pieces, reopen = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == "reopen"
data = open(source, "rb").read()
step = -(-len(data) // pieces)
f = open(target, "wb")
for i in range(pieces):
    if i:
        sys.stdin.readline()
        if reopen:
            f = open(target, "ab")
    f.write(data[i * step:(i + 1) * step])
    f.flush()
    if reopen:
        f.close()
    print("wrote", i + 1, flush=True)
f.close()
print("closed", flush=True)
"""


class Clock:
    """Monotonic time that moves only as the test says: by `step` at each reading."""

    def __init__(self):
        self.now, self.step = 1000.0, 0.0

    def __call__(self):
        self.now += self.step
        return self.now


def write(folder, name: bytes, content: bytes) -> None:
    with open(os.fsencode(folder) + b"/" + name, "wb") as f:
        f.write(content)


def test_shown_names_are_printable_distinct_and_give_the_bytes_back():
    shown_names = [shown(os.fsdecode(raw)) for raw in NAMES]
    assert shown_names[:5] == ["caf\\xe9.wav", "new\\x0aline.wav", "-rf.wav", "back\\\\x41slash.wav", "\\u202eflow.wav"]
    assert shown_names[6] == "café.wav", "a UTF-8 name as it is"
    assert all(name.isprintable() and name.encode("utf-8") for name in shown_names)
    assert [name_bytes(name) for name in shown_names] == NAMES
    assert len(set(shown_names)) == len(NAMES)


def test_any_file_name_is_analysed_recorded_and_put_away_with_its_bytes(data, tmp_path):
    source, inbox, state = make_source(tmp_path)
    audio = (data / "curlew_call_1.wav").read_bytes()
    for raw in NAMES:
        write(inbox, raw, audio)
    write(inbox, b"n" * 251 + b".wav", b"not audio, and a name as long as a name can be\n" * 10)
    done = sorted(analysed(source, expected=len(NAMES), linger=2.0))
    assert done == sorted(shown(os.fsdecode(raw)) for raw in NAMES)
    assert sorted(os.listdir(os.fsencode(tmp_path / "done"))) == sorted(NAMES), "moved with their exact bytes"
    quarantined = sorted(os.listdir(os.fsencode(tmp_path / "quarantine")))
    assert quarantined == [b"n" * 245 + b".error.txt", b"n" * 251 + b".wav"], "the note's name cut to fit"
    note = (tmp_path / "quarantine" / ("n" * 245 + ".error.txt")).read_text(encoding="utf-8")
    assert note.startswith("n" * 251 + ".wav: is not a readable audio file")
    with sqlite3.connect(tmp_path / "state.sqlite") as db:
        stored = {name_bytes(path) for (path,) in db.execute("SELECT path FROM recordings")}
    assert stored == set(NAMES) | {b"n" * 251 + b".wav"}, "the state keeps each name exactly"


def test_a_restart_knows_files_with_any_name(data, tmp_path):
    source, inbox, state = make_source(tmp_path, after="keep")
    for raw in NAMES[:2]:
        write(inbox, raw, (data / "curlew_call_1.wav").read_bytes())
    assert len(analysed(source, expected=2)) == 2
    state.close()
    source, inbox, state = make_source(tmp_path, after="keep")
    (inbox / "new.wav").write_bytes((data / "curlew_call_1.wav").read_bytes())
    assert analysed(source, expected=1, linger=2.0) == ["new.wav"], "the others are known as analysed"


def start_writer(source, target, pieces, mode):
    return subprocess.Popen(
        [sys.executable, "-c", WRITER, str(source), str(target), str(pieces), mode],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )


def told(writer, expected: str) -> None:
    line = writer.stdout.readline().strip()
    assert line == expected, (line, expected)


class Pump:
    """The source's loop, turned by the test: `until(condition)` runs it until the condition holds, and
    notes every recording it finished and the audio seconds of each."""

    def __init__(self, source):
        self.source, self.stop = source, threading.Event()
        self.finished, self.seconds = [], {}
        source.start()
        self.chunks = source.chunks(self.stop)

    def until(self, condition, what: str, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout  # fails only when the source makes no progress at all
        while not condition():
            assert time.monotonic() < deadline, f"no {what} within {timeout} s: {self.source.stats()}"
            chunk = next(self.chunks)
            if chunk is not None:
                sid = chunk.stream.id
                self.seconds[sid] = self.seconds.get(sid, 0.0) + chunk.seconds
                if chunk.last:
                    self.finished.append(sid)

    def polls(self, n: int) -> None:
        """Let the source look `n` times more (each takes in the notifications that arrived)."""
        seen = [0]

        def counted():
            seen[0] += 1
            return seen[0] > n

        self.until(counted, f"{n} polls")

    def close(self) -> None:
        self.stop.set()
        self.chunks.close()
        self.source.stop()


def clocked_source(tmp_path):
    """A source on tmp_path/inbox whose clock is the test's."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    clock = Clock()
    config = FolderConfig(path=inbox, settle_seconds=SETTLE, rescan_seconds=1e9)
    source = FolderSource(
        config, RecordingState(tmp_path / "state.sqlite"), tmp_path / "done", tmp_path / "quarantine", clock=clock
    )
    return clock, source, inbox


@contextlib.contextmanager
def writing(tmp_path, recording, pieces: int, mode: str):
    """A writer process writing `recording` into the watched folder as `mode` says, and the source's loop
    turned by the test on a clock of the test's: (clock, source, writer, pump)."""
    clock, source, inbox = clocked_source(tmp_path)
    writer = start_writer(recording, inbox / recording.name, pieces, mode)
    pump = Pump(source)
    try:
        yield clock, source, writer, pump
    finally:
        pump.close()
        writer.stdin.close()  # a writer still waiting for its next part writes it and ends
        writer.wait(timeout=30)


def next_part(writer) -> None:
    writer.stdin.write("next\n")
    writer.stdin.flush()


def analysed_whole_once(tmp_path, pump, recording) -> None:
    info = sf.info(str(recording))
    assert pump.finished == [recording.name]
    assert abs(pump.seconds[recording.name] - info.frames / info.samplerate) < 1e-6, "all of it analysed"
    assert (tmp_path / "done" / recording.name).read_bytes() == recording.read_bytes()
    assert not list((tmp_path / "inbox").iterdir()), "no piece left behind"
    assert not (tmp_path / "quarantine").exists() or not any((tmp_path / "quarantine").iterdir())


def test_a_writer_pausing_with_the_file_open_keeps_its_file(data, tmp_path):
    recording = data / "opso_birds_10s.wav"
    with writing(tmp_path, recording, 2, "hold") as (clock, source, writer, pump):
        told(writer, "wrote 1")  # half written, the header promising all of it, the file still open
        clock.step = SETTLE  # from now on, a settle time passes at every look at the clock
        pump.until(lambda: source.stats().get("files_held_open") == 1 or pump.finished, "look at the open file")
        assert not pump.finished, "taken while its writer had it open"
        pump.polls(3)
        assert not pump.finished and source.stats().get("files_held_open") == 1
        next_part(writer)
        told(writer, "wrote 2")
        told(writer, "closed")
        pump.until(lambda: source.stats()["files_done"], "analysis once closed")
    analysed_whole_once(tmp_path, pump, recording)


def test_a_writer_reopening_to_append_is_not_cut_into_pieces(data, tmp_path):
    recording, pieces = data / "opso_birds_10s.wav", 6
    # The clock stands still while the writer appends: no settle time passes between its appends.
    with writing(tmp_path, recording, pieces, "reopen") as (clock, source, writer, pump):
        for i in range(1, pieces + 1):
            if i > 1:
                next_part(writer)
            told(writer, f"wrote {i}")  # closed again after this part
            pump.polls(3)
            assert not pump.finished, f"taken after part {i} of {pieces}"
        told(writer, "closed")
        clock.step = SETTLE / 2  # the writer is gone: time passes again
        pump.until(lambda: source.stats()["files_done"], "analysis once the writer is done")
    analysed_whole_once(tmp_path, pump, recording)


def test_the_daemon_takes_a_latin_1_name_to_every_output(data, tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    write(inbox, b"caf\xe9.wav", (data / "maad_spinetail.wav").read_bytes())  # present at start-up
    write(inbox, b"notes\xe9.wav", b"field notes, not audio\n" * 40)
    broker = Mosquitto(tmp_path / "broker").start()
    subscriber = Subscriber(broker, "edge/test-box/events")
    config = write_config(
        tmp_path / "edge.toml",
        tmp_path / "data",
        {"type": "folder", "path": str(inbox), "settle_seconds": 0.2},
        mqtt={"host": "127.0.0.1", "port": broker.port},
        clips={"enabled": True},
    )
    daemon = DaemonProcess(config)
    try:
        daemon.wait_log("recording_done", file="caf\\xe9.wav")
        daemon.wait_log("recording_quarantined", file="notes\\xe9.wav")
        published = [json.loads(m.payload.decode("utf-8")) for m in subscriber.expect(1, timeout=120)]
        assert daemon.terminate(timeout=60)[0] == 0
    finally:
        daemon.close()
        subscriber.close()
        broker.stop()
    assert published[0]["source"] == "caf\\xe9.wav", "valid UTF-8 JSON, the name shown escaped"
    events = read_records(tmp_path / "data" / "records")
    assert events and {e["source"] for e in events} == {"caf\\xe9.wav"}
    clips = [e["clip"] for e in events if e["kind"] == "end" and e["clip"]]
    assert clips and all((tmp_path / "data" / "clips" / clip).is_file() for clip in clips)
    assert os.listdir(os.fsencode(tmp_path / "data" / "done")) == [b"caf\xe9.wav"]
    quarantine = os.fsencode(tmp_path / "data" / "quarantine")
    assert sorted(os.listdir(quarantine)) == [b"notes\xe9.wav", b"notes\xe9.wav.error.txt"]
    with open(quarantine + b"/notes\xe9.wav.error.txt", encoding="utf-8") as note:
        assert note.read().startswith("notes\\xe9.wav: is not a readable audio file")
    assert not [line for line in daemon.lines if line.get("event") == "non_json_output"]


def test_a_replay_takes_a_latin_1_name_to_its_detection_files(data, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    write(folder, b"caf\xe9.wav", (data / "maad_spinetail.wav").read_bytes())
    edge_cli("replay", str(folder), "--out", str(tmp_path / "out"))
    detections = [json.loads(line) for line in (tmp_path / "out" / "detections.jsonl").read_text().splitlines()]
    assert detections and {d["source"] for d in detections} == {"caf\\xe9.wav"}
    raven = (tmp_path / "out" / "raven" / "caf\\xe9.edge.selection.table.txt").read_text(encoding="utf-8")
    assert "\tcaf\\xe9.wav\t" in raven


def test_without_proc_the_settle_time_alone_decides_and_says_so(data, tmp_path, monkeypatch):
    monkeypatch.setattr(writers, "PROC", str(tmp_path / "no-proc"))  # as under a sandbox without /proc
    source, inbox, state = make_source(tmp_path)
    (inbox / "a.wav").write_bytes((data / "curlew_call_1.wav").read_bytes())
    with structlog.testing.capture_logs() as logged:
        assert analysed(source, expected=1) == ["a.wav"]
    told = [entry for entry in logged if entry["event"] == "writers_partly_hidden"]
    assert len(told) == 1 and told[0]["processes"] == "all"


def test_a_file_written_to_during_its_analysis_stays_and_is_analysed_again(data, tmp_path):
    clock, source, inbox = clocked_source(tmp_path)
    clock.step = SETTLE
    source.decode_options = dataclasses.replace(source.decode_options, block_seconds=1.0)
    recording = data / "opso_birds_10s.wav"
    shutil.copy(recording, inbox / recording.name)
    pump = Pump(source)
    try:
        pump.until(lambda: pump.seconds, "the first second analysed")
        with open(inbox / recording.name, "ab") as recorder:  # a recorder appending meanwhile
            recorder.write(bytes(1000))
        pump.until(lambda: source.stats()["files_done"] == 1, "the end of the first analysis")
        assert (inbox / recording.name).exists(), "not moved: it changed while analysed"
        pump.until(lambda: source.stats()["files_done"] == 2, "the new version analysed")
    finally:
        pump.close()
    assert pump.finished == [recording.name] * 2
    assert (tmp_path / "done" / recording.name).read_bytes() == recording.read_bytes() + bytes(1000)
    assert not list(inbox.iterdir())
