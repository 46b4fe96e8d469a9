"""Debian's chromium, driven by Playwright, for the station's pages (never a browser Playwright downloads).

`browser()` starts a headless chromium with an empty profile and the flags a machine without internet needs;
`screenshot(page, name)` takes the whole page: into docs/screenshots/NAME.png for the README when
EDGE_UPDATE_SCREENSHOTS=1 (as EDGE_UPDATE_GOLDEN rewrites the golden files), else into a temporary folder, so
that a test run leaves the checkout as it was."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from support.paths import ROOT

CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = ROOT / "docs" / "screenshots"
TEMPORARY = Path(tempfile.gettempdir()) / "edge-screenshots"
# Without these, chromium keeps trying to reach Google's services, and a closed network refuses it many times.
FLAGS = [
    "--no-sandbox",  # the tests may run as root
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


def require_chromium() -> str:
    path = shutil.which("chromium") or (CHROMIUM if Path(CHROMIUM).exists() else None)
    if path is None:
        pytest.fail("chromium is not installed: run tools/setup.sh test")
    return path


@contextmanager
def browser(*extra_flags: str) -> Iterator:
    """A Playwright Browser of the system chromium; `extra_flags` e.g. a fake microphone."""
    from playwright.sync_api import sync_playwright

    executable = require_chromium()
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=executable, args=[*FLAGS, *extra_flags])
        try:
            yield chromium
        finally:
            chromium.close()


def screenshot(page, name: str) -> Path:
    """The whole page as NAME.png (see the module's docstring for where)."""
    folder = SCREENSHOTS if os.environ.get("EDGE_UPDATE_SCREENSHOTS") == "1" else TEMPORARY
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 0
    return path
