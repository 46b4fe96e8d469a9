"""`edge report` on the five labelled soundscapes: a spectrogram per recording, the numbers `edge evaluate`
gives, names from files escaped, nothing fetched from elsewhere, and every figure shown by a real browser."""

from __future__ import annotations

import base64
import io
import json
import re
from html.parser import HTMLParser

import pytest
from PIL import Image

from support.browser import browser, screenshot
from support.paths import DATA
from support.processes import edge_cli

LABELLED = DATA / "labelled"
RECORDINGS = sorted(p.stem for p in LABELLED.glob("*.mp3"))


@pytest.fixture(scope="module")
def replayed(tmp_path_factory):
    """BirdNET-Analyzer's segmentation (3 s windows, no overlap), every detection at 0.1 or more kept."""
    out = tmp_path_factory.mktemp("piha")
    edge_cli("replay", str(LABELLED), "--window", "3", "--hop", "3", "--min-conf", "0.1", "--out", str(out))
    return out


@pytest.fixture(scope="module")
def report(replayed, tmp_path_factory):
    path = tmp_path_factory.mktemp("report") / "report.html"
    truth = ("--truth", str(LABELLED), "--audio", str(LABELLED))
    edge_cli("report", "--detections", str(replayed), *truth, "--min-conf", "0.25", "--out", str(path))
    return path.read_text(encoding="utf-8")


class Page(HTMLParser):
    """The images (their attributes) and the table rows (their cells' text) of a page."""

    def __init__(self, html: str):
        super().__init__()
        self.images: list[dict] = []
        self.rows: list[list[str]] = []
        self.links: list[str] = []
        self._cell: list[str] | None = None
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        found = dict(attrs)
        if tag == "img":
            self.images.append(found)
        if tag == "tr":
            self.rows.append([])
        if tag == "td":
            self._cell = []
        for name in ("src", "href"):
            if found.get(name) is not None:
                self.links.append(found[name])

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)

    def handle_endtag(self, tag):
        if tag == "td" and self._cell is not None:
            self.rows[-1].append("".join(self._cell).strip())
            self._cell = None


def test_a_spectrogram_per_recording_and_nothing_fetched(report):
    page = Page(report)
    spectrograms = [i for i in page.images if i.get("class") == "spectrogram"]
    assert len(spectrograms) == len(RECORDINGS) == 5
    assert all(i["alt"] for i in page.images), "every figure has its alt text"
    assert all(link.startswith(("data:image/png;base64,", "#")) for link in page.links), "self-contained"
    assert not re.search(r"(?:src|href)\s*=\s*[\"']?\s*(?:https?:)?//", report)
    assert "<script" not in report
    for recording in RECORDINGS:
        assert f">{recording}</h3>" in report
    widths = [Image.open(io.BytesIO(base64.b64decode(i["src"].split(",", 1)[1]))).size[0] for i in page.images]
    print("figure widths", widths)
    assert max(widths) <= 1200


def test_the_numbers_are_those_of_edge_evaluate(report, replayed):
    result = edge_cli("evaluate", "--truth", str(LABELLED), "--detections", str(replayed), "--format", "json")
    expected = json.loads(result.stdout)
    rows = {row[0]: row[1:] for row in Page(report).rows if len(row) == 9}
    print(rows)
    for name, s in [*expected["species"].items(), ("overall", expected["overall"])]:
        numbers = [s["precision"], s["recall"], s["f1"], s["ap"]]
        cells = [str(s["support"]), *("-" if v is None else f"{v:.3f}" for v in numbers)]
        cells += [str(s["tp"]), str(s["fp"]), str(s["fn"])]
        assert rows[name] == cells, name
    unlabelled = {row[0] for row in Page(report).rows if len(row) == 3}
    assert unlabelled == set(expected["unlabelled"]), "the detected but unlabelled species, listed apart"


def test_evaluate_writes_the_report_of_what_it_scored(replayed, tmp_path):
    """`edge evaluate --report`: the page scores as the JSON printed beside it, event-based here."""
    path = tmp_path / "evaluated.html"
    options = ("--match", "events", "--format", "json", "--report", str(path))
    result = edge_cli("evaluate", "--truth", str(LABELLED), "--detections", str(replayed), *options)
    expected = json.loads(result.stdout)["overall"]
    page = path.read_text(encoding="utf-8")
    rows = {row[0]: row[1:] for row in Page(page).rows if len(row) == 9}
    assert rows["overall"][:5] == [
        str(expected["support"]),
        *(f"{expected[k]:.3f}" for k in ("precision", "recall", "f1", "ap")),
    ]
    assert "each label found once" in page
    assert not Page(page).images[0].get("alt", "").startswith("Spectrogram"), "no --audio: no spectrograms"


def test_names_from_files_are_escaped(tmp_path):
    evil = "<script>alert(1)</script>"
    detections = tmp_path / "detections.jsonl"
    record = {"source": f"{evil}.wav", "start_s": 0, "end_s": 3, "confidence": 0.9, "scientific_name": evil}
    detections.write_text(json.dumps(record) + "\n")
    labels = tmp_path / "labels.csv"
    labels.write_text(f"file,start,end,species\n{evil}.wav,0.5,2,{evil}\n{evil}.wav,4,5,<img src=x onerror=alert(2)>\n")
    out = tmp_path / "report.html"
    edge_cli("report", "--detections", str(detections), "--truth", str(labels), "--out", str(out))
    html = out.read_text(encoding="utf-8")
    assert "<script" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_every_figure_shows_in_chromium(report, tmp_path):
    path = tmp_path / "report.html"
    path.write_text(report, encoding="utf-8")
    with browser() as chromium:
        page = chromium.new_page(viewport={"width": 1200, "height": 900})
        page.goto(path.as_uri())
        widths = page.eval_on_selector_all("img", "images => images.map(i => i.complete ? i.naturalWidth : 0)")
        kept = screenshot(page, "report")
        print("screenshot:", kept)
    assert len(widths) == 5 + 3, "a figure per recording, the timeline, the counts and the curves"
    assert all(w > 0 for w in widths), widths
