"""Rangers' marks and acknowledgements in the station's database (edge.station.reviews): the newest mark counts,
a cleared one is none, notes are text without control characters, an unknown event is refused, an alert is
taken on once."""

from __future__ import annotations

import json

import pytest

from edge.station import reviews
from edge.station.messages import parse
from edge.station.store import Store
from support import paths

ALERT = json.loads((paths.GOLDEN / "alert_v2.json").read_text()) | {"detected_utc": "2026-11-23T09:00:00.000+00:00"}
EVENT = json.loads((paths.GOLDEN / "event_v1.json").read_text())
RECEIVED = "2026-11-23T09:00:30.000+00:00"


@pytest.fixture
def db(tmp_path):
    """A station database holding one alert (box-a, ALERT's id) and one event (box-a, EVENT's id)."""
    store = Store.open(tmp_path / "station.sqlite")
    store.add(parse("box-a", "alerts", json.dumps(ALERT | {"box": "box-a", "seq": 1}).encode(), RECEIVED))
    store.add(parse("box-a", "events", json.dumps(EVENT | {"box": "box-a", "seq": 2}).encode(), RECEIVED))
    yield store.db
    store.close()


def current(db, event_id):
    return db.execute("SELECT verdict, note, user FROM marks WHERE box = 'box-a' AND id = ?", (event_id,)).fetchone()


def counted(db) -> int:
    return db.execute(f"SELECT count(*) FROM detections d WHERE {reviews.COUNTED}").fetchone()[0]


def test_the_newest_mark_is_the_mark_and_every_one_is_kept(db):
    reviews.mark(db, "box-a", EVENT["id"], "confirmed", "a wren, clear", "ana")
    assert tuple(current(db, EVENT["id"])) == ("confirmed", "a wren, clear", "ana")
    assert counted(db) == 2
    reviews.mark(db, "box-a", EVENT["id"], "false", "the kettle", "bo")
    assert tuple(current(db, EVENT["id"])) == ("false", "the kettle", "bo")
    assert counted(db) == 1, "an event marked false is not counted"
    rows = db.execute("SELECT verdict, user FROM reviews ORDER BY rowid").fetchall()
    assert [tuple(r) for r in rows] == [("confirmed", "ana"), ("false", "bo")]


def test_a_cleared_mark_is_no_mark(db):
    reviews.mark(db, "box-a", ALERT["id"], "false", "", "ana")
    reviews.mark(db, "box-a", ALERT["id"], "cleared", "", "ana")
    assert current(db, ALERT["id"]) is None
    assert counted(db) == 2
    reviews.mark(db, "box-a", ALERT["id"], "confirmed", "", "bo")
    assert current(db, ALERT["id"])["verdict"] == "confirmed"


def test_notes_lose_control_characters_and_keep_lines(db):
    note = "door\x00 slam\x1b[31m\u202e ok\r\nsecond line\t\x07 "
    reviews.mark(db, "box-a", EVENT["id"], "false", note, "ana")
    assert current(db, EVENT["id"])["note"] == "door slam[31m ok\nsecond line"
    with pytest.raises(reviews.ReviewError, match="at most 1000"):
        reviews.mark(db, "box-a", EVENT["id"], "false", "x" * 1001, "ana")
    assert reviews.clean_note("\x00" * 2000 + "fine") == "fine", "the limit counts what is kept"


def test_unknown_events_and_verdicts_are_refused(db):
    with pytest.raises(reviews.UnknownEvent, match="no event 'nope' of box 'box-a'"):
        reviews.mark(db, "box-a", "nope", "false", "", "ana")
    with pytest.raises(reviews.UnknownEvent):
        reviews.mark(db, "box-b", EVENT["id"], "false", "", "ana")
    with pytest.raises(reviews.ReviewError, match="one of confirmed, false, cleared"):
        reviews.mark(db, "box-a", EVENT["id"], "maybe", "", "ana")
    with pytest.raises(reviews.UnknownEvent):
        reviews.acknowledge(db, "box-a", "nope", "ana")
    assert db.execute("SELECT count(*) FROM reviews").fetchone()[0] == 0


def test_an_alert_is_taken_on_once(db):
    first = reviews.acknowledge(db, "box-a", ALERT["id"], "ana", "leaving\x00 now")
    assert (first.user, first.note, first.new) == ("ana", "leaving now", True)
    second = reviews.acknowledge(db, "box-a", ALERT["id"], "bo", "me too")
    assert (second.user, second.note, second.at_utc, second.new) == ("ana", "leaving now", first.at_utc, False)
    assert db.execute("SELECT count(*) FROM acknowledgements").fetchone()[0] == 1
    with pytest.raises(reviews.ReviewError, match="only an alert"):
        reviews.acknowledge(db, "box-a", EVENT["id"], "ana")
