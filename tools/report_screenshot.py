"""The README's picture of `edge report` (docs/report.png): the report of the labelled soundscapes, replayed
with 3 s windows, as Debian's chromium shows it 1200 pixels wide, its top part.

    .venv/bin/python tools/report_screenshot.py
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LABELLED = ROOT / "tests" / "data" / "labelled"
OUT = ROOT / "docs" / "report.png"
FLAGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]


def edge(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "edge", *args], check=True, capture_output=True)


def main() -> None:
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as folder:
        replayed, page_path = Path(folder) / "piha", Path(folder) / "report.html"
        edge("replay", str(LABELLED), "--window", "3", "--hop", "3", "--min-conf", "0.1", "--out", str(replayed))
        edge(
            "report",
            "--detections",
            str(replayed),
            "--audio",
            str(LABELLED),
            "--truth",
            str(LABELLED),
            "--out",
            str(page_path),
        )
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=FLAGS)
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.goto(page_path.as_uri())
            page.locator("#rec-1").scroll_into_view_if_needed()
            OUT.parent.mkdir(exist_ok=True)
            box = page.locator("#rec-1").bounding_box()
            assert box is not None, "the report has its first recording"
            page.screenshot(path=str(OUT), clip={"x": 0, "y": box["y"], "width": 1200, "height": box["height"] + 12})
            browser.close()
    small(OUT)
    print(OUT)


def small(path: Path) -> None:
    """256 colours: a third of the bytes, and a spectrogram's colour map loses nothing one can see."""
    from PIL import Image

    with Image.open(path) as image:
        paletted = image.convert("RGB").quantize(256)
    paletted.save(path, optimize=True)


if __name__ == "__main__":
    main()
