"""A station database filled as boxes and rangers fill it: event and alert records checked by
edge.station.messages.parse and stored by Store.add, clips of real audio kept by the ClipArchive, marks given
through edge.station.reviews. Never rows written by hand."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import soundfile as sf

from edge.station import reviews
from edge.station.clips import ClipArchive, parse_clip
from edge.station.messages import parse
from edge.station.search import today
from edge.station.store import Store
from edge.wire.clips import CLIP_SCHEMA, audio_fields, frame
from edge.wire.records import ALERT_SCHEMA, EVENT_SCHEMA, iso
from support.paths import DATA

SPECIES = [  # (scientific, common), as BirdNET names them
    ("Cranioleuca erythrops", "Red-faced Spinetail"),
    ("Troglodytes troglodytes", "Eurasian Wren"),
    ("Turdus merula", "Eurasian Blackbird"),
    ("Pitangus sulphuratus", "Great Kiskadee"),
    ("Crypturellus soui", "Little Tinamou"),
    ("Boana boans", "Gladiator Treefrog"),
    ("Numenius arquata", "Eurasian Curlew"),
    ("Alisterus scapularis", "Australian King-Parrot"),
]
SCRIPT = ("<script>window.pwned = 1</script>", "<script>window.pwned = 2</script><b>bold</b>")
FORMULA = ('=HYPERLINK("http://x.example","owl")', "=cmd|' /C calc'!A0")


def spinetail_flac(seconds: float = 3.0) -> bytes:
    """The start of a real recording (tests/data/maad_spinetail.wav) as FLAC, as a box's clip is."""
    audio, rate = sf.read(str(DATA / "maad_spinetail.wav"), frames=int(seconds * 44100), always_2d=True)
    buffer = io.BytesIO()
    sf.write(buffer, audio.mean(axis=1), rate, subtype="PCM_16", format="FLAC")
    return buffer.getvalue()


def local_time(days_ago: int, hour: float) -> datetime:
    """A time of the station's local day `days_ago` before today, `hour` hours after its midnight, in UTC."""
    midnight = datetime.combine(today() - timedelta(days=days_ago), time()).astimezone()
    return (midnight + timedelta(hours=hour)).astimezone(UTC)


class Boxes:
    """What boxes send, into a station database (created when absent)."""

    def __init__(self, db_path: Path, clip_folder: Path | None = None):
        self.store = Store.open(db_path)
        self.store.db.execute("PRAGMA synchronous = NORMAL")  # no fsync per record: the same rows, sooner
        self.clips = ClipArchive(self.store, clip_folder or db_path.parent / "clips", None, None)
        # each box numbers its records on from where it was
        self.seqs: dict[str, int] = dict(self.store.db.execute("SELECT box, seq_max FROM boxes WHERE seq_max > 0"))

    def send(self, box: str, kind: str, payload: dict, received: datetime) -> None:
        self.seqs[box] = self.seqs.get(box, 0) + 1
        text = json.dumps({**payload, "box": box, "seq": self.seqs[box]}).encode()
        self.store.add(parse(box, kind, text, iso(received)))

    def event(
        self,
        box: str,
        event_id: str,
        start: datetime,
        species: tuple[str, str] = SPECIES[0],
        confidence: float = 0.8,
        seconds: float = 6.0,
        clock: bool = True,
    ) -> None:
        """An event's start and end records; `clock` False: a box that did not know the time."""
        scientific, common = species
        end = start + timedelta(seconds=seconds)
        record = {
            "schema": EVENT_SCHEMA,
            "id": event_id,
            "source": "mic",
            "start_s": 0.0,
            "end_s": seconds,
            "start_utc": iso(start) if clock else None,
            "end_utc": iso(end) if clock else None,
            "scientific_name": scientific,
            "common_name": common,
            "label": f"{scientific}_{common}",
            "model": "birdnet-v2.4",
            "model_version": "2.4",
            "clip": None,
        }
        self.send(box, "events", {**record, "kind": "start", "confidence": round(confidence * 0.7, 4)}, start)
        self.send(box, "events", {**record, "kind": "end", "confidence": confidence}, end + timedelta(seconds=1))

    def alert(self, box: str, alert_id: str, start: datetime, alert_class: str = "gunshot", confidence: float = 0.9):
        record = {
            "schema": ALERT_SCHEMA,
            "id": alert_id,
            "kind": "alert",
            "alert_class": alert_class,
            "source": "mic",
            "start_s": 0.0,
            "end_s": 3.0,
            "start_utc": iso(start),
            "end_utc": iso(start + timedelta(seconds=3)),
            "scientific_name": "Gun",
            "common_name": "Gun",
            "label": "Gun_Gun",
            "confidence": confidence,
            "model": "birdnet-v2.4",
            "model_version": "2.4",
            "threshold": 0.5,
            "held_back": 0,
            "detected_utc": iso(start + timedelta(seconds=3)),
        }
        self.send(box, "alerts", record, start + timedelta(seconds=4))

    def clip(self, box: str, event_id: str, audio: bytes, alert_class: str | None = None) -> None:
        """The clip of a stored event or alert, as its box sends it."""
        row = self.store.db.execute("SELECT * FROM detections WHERE box = ? AND id = ?", (box, event_id)).fetchone()
        metadata = {
            "schema": CLIP_SCHEMA,
            "id": event_id,
            "kind": "alert" if alert_class else "event",
            "box": box,
            "source": row["source"],
            "scientific_name": row["scientific_name"],
            "common_name": row["common_name"],
            "label": row["label"],
            "alert_class": alert_class,
            "start_utc": row["start_utc"],
            "end_utc": row["end_utc"],
            "start_s": row["start_s"],
            "end_s": row["end_s"],
            "sample_rate": 44100,
            "duration_s": 3.0,
            **audio_fields(audio),
            "refused": None,
        }
        self.clips.add(parse_clip(box, frame(metadata, audio), row["last_received_utc"]))

    def mark(self, box: str, event_id: str, verdict: str, note: str = "", user: str = "ana") -> None:
        with self.store.transaction():
            reviews.mark(self.store.db, box, event_id, verdict, note, user)

    def acknowledge(self, box: str, event_id: str, user: str = "bo") -> None:
        with self.store.transaction():
            reviews.acknowledge(self.store.db, box, event_id, user)

    def close(self) -> None:
        self.store.close()


def a_week(db_path: Path) -> None:
    """Three boxes over the last seven local days: species at dawn and dusk, not each every day; clips of some
    events; yesterday an alert with its clip, taken on, and marks on box-b's first events (one false); a
    species whose name is a script and one whose name is a formula."""
    boxes = Boxes(db_path)
    audio = spinetail_flac()
    n = 0
    for days_ago in range(6, -1, -1):
        for b, box in enumerate(("box-a", "box-b", "box-c")):
            for i, species in enumerate(SPECIES[: 8 - 2 * b]):
                if (i + days_ago + b) % 3 == 0:
                    continue
                hours = (5.3 + 0.2 * i + 0.1 * b, 6.2 + 0.15 * i, 18.0 + 0.3 * i + 0.1 * days_ago)
                for hour in hours[: 1 + (i + days_ago) % 3]:
                    n += 1
                    boxes.event(box, f"{box}-{n}", local_time(days_ago, hour), species, 0.3 + 0.08 * (n * 7 % 9))
                    if n % 7 == 0:
                        boxes.clip(box, f"{box}-{n}", audio)
    yesterday = boxes.store.db.execute(
        "SELECT id FROM detections WHERE box = 'box-b' AND start_utc >= ? AND start_utc < ? ORDER BY start_utc",
        (iso(local_time(1, 0)), iso(local_time(0, 0))),
    ).fetchall()
    boxes.mark("box-b", yesterday[0]["id"], "confirmed", "seen from the hide")
    boxes.mark("box-b", yesterday[1]["id"], "false", "a dog barking")
    boxes.alert("box-b", "shot-1", local_time(1, 3.2))
    boxes.clip("box-b", "shot-1", audio, "gunshot")
    boxes.acknowledge("box-b", "shot-1")
    boxes.event("box-c", "script-1", local_time(0, 7.0), SCRIPT, 0.77)
    boxes.event("box-c", "formula-1", local_time(1, 7.5), FORMULA, 0.66)
    boxes.close()
