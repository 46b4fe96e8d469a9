"""How fast the station's pages load over a season of detections (the `pages` section of the benchmark).

A station database is filled as boxes would fill it: 100,000 detection events (by default) from 20 boxes, of
150 species over the last 60 days, most at dawn and dusk, each a start and an end record checked by
edge.station.messages.parse and added by Store.add; one in a hundred an alert of a threat class; clips for some
(real FLAC, kept by the station's ClipArchive), and rangers' marks and acknowledgements given through
edge.station.reviews. Only the commit is made cheaper than a station's (synchronous=OFF): the rows are the
same. The web server then runs on 127.0.0.1 in this process, and each page is asked for several times in turn;
the table gives the median and the worst time to the last byte of the answer, in ms.

Usage: python -m tools.bench --sections pages [--detections 100000], or python -m tools.bench.station_pages.
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import math
import random
import statistics
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

import numpy as np
import soundfile as sf

from edge.station import reviews
from edge.station.clips import ClipArchive, parse_clip
from edge.station.messages import parse
from edge.station.search import today
from edge.station.store import Store
from edge.station.web.server import WebServer
from edge.station.web.site import HttpSettings, Site
from edge.wire.clips import CLIP_SCHEMA, audio_fields, frame
from edge.wire.records import ALERT_SCHEMA, EVENT_SCHEMA, iso

ROOT = Path(__file__).resolve().parents[2]
LABELS = ROOT / "models" / "birdnet-v2.4" / "labels.txt"
THREATS = [("gunshot", "Gun"), ("chainsaw", "Power tools"), ("engine", "Engine")]
ALERT_SHARE = 0.01
CLIP_SHARE = 0.02
MARK_SHARE = 0.01
REQUESTS = 11  # per page


@dataclass(frozen=True)
class Season:
    detections: int = 100_000
    boxes: int = 20
    species: int = 150
    days: int = 60
    seed: int = 18


def species_names(count: int, rng: random.Random) -> list[tuple[str, str]]:
    """(scientific, common) names of `count` BirdNET species, the most often heard first."""
    labels = LABELS.read_text(encoding="utf-8").splitlines()
    return [tuple(line.split("_", 1)) for line in rng.sample(labels, count)]  # type: ignore[misc]


def moment(rng: random.Random, first_day: datetime, days: int, now: datetime) -> datetime:
    """A time in the season, before now: most at dawn and dusk (the station's local hours), some at any hour."""
    while True:
        day = first_day + timedelta(days=rng.randrange(days))
        pick = rng.random()
        hour = rng.gauss(6, 1.5) if pick < 0.45 else rng.gauss(18.5, 1.5) if pick < 0.7 else rng.uniform(0, 24)
        heard = (day + timedelta(hours=min(max(hour, 0), 23.99))).astimezone(UTC)
        if heard < now:
            return heard


def records(season: Season) -> tuple[list[tuple[str, str, dict, str]], list[tuple[str, dict, str]]]:
    """The records the boxes send, in each box's order: (box, kind, payload, received_utc); and the clips'
    (box, metadata, received_utc) to send with audio."""
    rng = random.Random(season.seed)
    names = species_names(season.species, rng)
    weights = [1 / (rank + 1) ** 0.9 for rank in range(len(names))]
    first_day = datetime.combine(today() - timedelta(days=season.days - 1), datetime.min.time()).astimezone()
    now = datetime.now(UTC) - timedelta(minutes=1)
    heard = []
    for number in range(season.detections):
        box = f"box-{rng.randrange(season.boxes) + 1:02d}"
        heard.append((moment(rng, first_day, season.days, now), box, number))
    heard.sort()
    seqs: dict[str, int] = {}
    out, clips = [], []
    for start, box, number in heard:
        alert = rng.random() < ALERT_SHARE
        if alert:
            alert_class, name = rng.choice(THREATS)
            scientific, common = name, name
        else:
            scientific, common = rng.choices(names, weights)[0]
        seconds = rng.uniform(3, 30) if not alert else 3.0
        base = {
            "id": f"{box}-{number:06d}",
            "box": box,
            "source": f"mic/{start:%Y%m%d}",
            "start_s": 0.0,
            "end_s": round(seconds, 3),
            "start_utc": iso(start),
            "end_utc": iso(start + timedelta(seconds=seconds)),
            "scientific_name": scientific,
            "common_name": common,
            "label": f"{scientific}_{common}",
            "model": "birdnet-v2.4",
            "model_version": "2.4",
        }
        confidence = round(min(0.25 + rng.betavariate(2, 2.5) * 0.75, 1.0), 4)
        received = iso(start + timedelta(seconds=seconds + rng.uniform(0.5, 5)))
        if alert:
            seqs[box] = seqs.get(box, 0) + 1
            payload = {**base, "schema": ALERT_SCHEMA, "kind": "alert", "alert_class": alert_class}
            payload |= {"threshold": 0.5, "held_back": 0, "detected_utc": received, "confidence": confidence}
            out.append((box, "alerts", payload | {"seq": seqs[box]}, received))
        else:
            for kind, value in (("start", round(confidence * 0.8, 4)), ("end", confidence)):
                seqs[box] = seqs.get(box, 0) + 1
                payload = {**base, "schema": EVENT_SCHEMA, "kind": kind, "confidence": value, "clip": None}
                out.append((box, "events", payload | {"seq": seqs[box]}, received))
        if alert or rng.random() < CLIP_SHARE:
            meta = {key: base[key] for key in ("id", "box", "source", "scientific_name", "common_name", "label")}
            meta |= {key: base[key] for key in ("start_utc", "end_utc", "start_s", "end_s")}
            meta |= {"schema": CLIP_SCHEMA, "kind": "alert" if alert else "event"}
            clips.append((box, meta | {"alert_class": alert_class if alert else None, "refused": None}, received))
    return out, clips


def flac(seconds: float = 3.0, rate: int = 16000) -> bytes:
    """A quiet whistle as FLAC: a few kilobytes a clip (the pages never read the audio)."""
    t = np.arange(int(seconds * rate)) / rate
    whistle = 0.05 * np.sin(2 * np.pi * (3000 + 500 * np.sin(2 * np.pi * 2 * t)) * t)
    buffer = io.BytesIO()
    sf.write(buffer, whistle.astype(np.float32), rate, subtype="PCM_16", format="FLAC")
    return buffer.getvalue()


def fill(db_path: Path, clip_folder: Path, season: Season) -> dict[str, int]:
    """The station's database and clip folder as the season's boxes and rangers would leave them."""
    rng = random.Random(season.seed + 1)
    store = Store.open(db_path)
    store.db.execute("PRAGMA synchronous = OFF")  # a benchmark fixture: what is written is the same
    sent, clips = records(season)
    for box, kind, payload, received in sent:
        store.add(parse(box, kind, json.dumps(payload).encode(), received))
    audio = flac()
    archive = ClipArchive(store, clip_folder, max_age_days=None, max_megabytes=None)
    for box, metadata, received in clips:
        metadata |= {"sample_rate": 16000, "duration_s": 3.0, **audio_fields(audio)}
        archive.add(parse_clip(box, frame(metadata, audio), received))
    events = store.db.execute("SELECT box, id FROM detections").fetchall()
    marked = rng.sample(events, int(len(events) * MARK_SHARE))
    with store.transaction():
        for box, event_id in marked:
            verdict = "false" if rng.random() < 0.2 else "confirmed"
            reviews.mark(store.db, box, event_id, verdict, "heard it again at the box", "ana")
        for box, event_id in store.db.execute("SELECT box, id FROM detections WHERE alert").fetchall():
            if rng.random() < 0.5:
                reviews.acknowledge(store.db, box, event_id, "bo")
    figures = {
        "records": store.db.execute("SELECT count(*) FROM records").fetchone()[0],
        "detections": store.db.execute("SELECT count(*) FROM detections").fetchone()[0],
        "events": store.db.execute("SELECT count(*) FROM detections WHERE NOT alert").fetchone()[0],
        "clips": store.db.execute("SELECT count(*) FROM clips").fetchone()[0],
        "marks": len(marked),
    }
    store.db.execute("PRAGMA synchronous = FULL")
    store.close()
    return figures


def pages(db_path: Path) -> dict[str, str]:
    """The pages to time, named: their paths with a realistic choice of filters."""
    store = Store.open(db_path)
    db = store.db
    common = db.execute(
        "SELECT common_name FROM detections WHERE NOT alert GROUP BY scientific_name ORDER BY count(*) DESC LIMIT 1"
    ).fetchone()[0]
    rare = db.execute(
        "SELECT scientific_name FROM detections WHERE NOT alert GROUP BY scientific_name ORDER BY count(*), 1 LIMIT 1"
    ).fetchone()[0]
    box = db.execute("SELECT box FROM boxes ORDER BY box LIMIT 1").fetchone()[0]
    store.close()
    day = (today() - timedelta(days=3)).isoformat()
    season = (today() - timedelta(days=59)).isoformat()
    return {
        "/ (boxes)": "/",
        "/alerts": "/alerts",
        "/detections": "/detections",
        "/detections?box&day": "/detections?" + urlencode({"box": box, "day": day}),
        "/detections?species (the commonest, by name)": "/detections?" + urlencode({"species": common}),
        "/detections?species (the rarest)&confidence=0.8": "/detections?"
        + urlencode({"species": rare, "confidence": 0.8}),
        "/detections?reviewed=unreviewed&kind=all": "/detections?reviewed=unreviewed&kind=all",
        "/detections?reviewed=false": "/detections?reviewed=false",
        "/species (the last 7 days)": "/species",
        "/species?box": "/species?" + urlencode({"box": box}),
        "/species?from (60 days)&by=box": "/species?" + urlencode({"from": season, "by": "box"}),
        "/detections.csv (all events)": "/detections.csv",
        "/detections.csv?day": "/detections.csv?" + urlencode({"day": day}),
    }


def later_page(connection: http.client.HTTPConnection, pages: int) -> str:
    """The path of the `pages`-th page of /detections, reached by its Older links."""
    path = "/detections"
    for _ in range(pages - 1):
        body = fetch(connection, path)[1].decode()
        start = body.index('rel="next" href="') + len('rel="next" href="')
        path = body[start : body.index('"', start)].replace("&amp;", "&")
    return path


def fetch(connection: http.client.HTTPConnection, path: str) -> tuple[float, bytes]:
    """Seconds to the last byte of a GET, and the body; PageMissing for a 404."""
    started = time.perf_counter()
    connection.request("GET", path)
    response = connection.getresponse()
    body = response.read()
    elapsed = time.perf_counter() - started
    if response.status == 404:
        raise PageMissing(path)
    if response.status != 200:
        raise SystemExit(f"GET {path}: {response.status} {body[:300]!r}")
    return elapsed, body


class PageMissing(Exception):
    """A page this version of the station does not serve."""


def time_pages(
    db_path: Path, clip_folder: Path, figures: dict[str, int], requests: int = REQUESTS
) -> list[tuple[str, float, float, int]]:
    """(page, median ms, worst ms, bytes) of each page, asked for `requests` times in turn."""
    site = Site(db_path, clip_folder, HttpSettings(address="127.0.0.1:0"))
    server = WebServer(site, "127.0.0.1:0")
    server.start()
    try:
        while not server.server.started:
            time.sleep(0.05)
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
        paths = pages(db_path)
        middle = max(1, figures["events"] // 200)  # half-way down the events, by the pages' own links
        paths[f"/detections, page {middle} (rows {(middle - 1) * 100 + 1:,}-{middle * 100:,})"] = later_page(
            connection, middle
        )
        times: dict[str, list[float]] = {name: [] for name in paths}
        sizes = {}
        for _ in range(requests):
            for name, path in paths.items():
                try:
                    elapsed, body = fetch(connection, path)
                except PageMissing:
                    continue
                times[name].append(elapsed * 1000)
                sizes[name] = len(body)
        connection.close()
    finally:
        server.stop()
    return [
        (name, statistics.median(t), max(t), sizes[name]) if t else (name, math.nan, math.nan, 0)
        for name, t in times.items()
    ]


def pages_table(season: Season = Season(), folder: Path | None = None) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        where = Path(folder or tmp)
        db_path, clip_folder = where / "station.sqlite", where / "clips"
        started = time.perf_counter()
        figures = fill(db_path, clip_folder, season)
        filled = time.perf_counter() - started
        rows = time_pages(db_path, clip_folder, figures)
    lines = [
        f"\n## Station pages: {figures['detections']:,} detections ({figures['records']:,} records, "
        f"{figures['clips']:,} clips, {figures['marks']:,} marks) of {season.boxes} boxes, {season.species} "
        f"species, {season.days} days (filled in {filled:.0f} s); {REQUESTS} requests each, one at a time",
        f"  {'page':50}{'median ms':>10}{'worst ms':>10}{'kB':>8}",
    ]
    lines += [
        f"  {name[:50]:50}{median:10.1f}{worst:10.1f}{size / 1000:8.0f}"
        if size
        else f"  {name[:50]:50}{'(not served by this version)':>28}"
        for name, median, worst, size in rows
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tools.bench.station_pages", description=__doc__.splitlines()[0])
    parser.add_argument("--detections", type=int, default=Season.detections)
    parser.add_argument("--keep", type=Path, default=None, help="build the database in this folder and keep it")
    args = parser.parse_args()
    print(pages_table(Season(detections=args.detections), args.keep))


if __name__ == "__main__":
    main()
