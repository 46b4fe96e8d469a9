"""A small archive of real recordings for the replays that split the work (worker processes, Ray actors), and
what a replay wrote, in a form that compares whatever order the runs finished in."""

from __future__ import annotations

import shutil
from pathlib import Path

from edge.app.replay import ReplayOptions
from edge.audio.windower import WindowSpec
from edge.events.detector import DetectorOptions
from edge.inference.member import MemberOptions
from edge.sources.files import DecodeOptions
from support.audio import cut_recording

RECORDINGS = (
    "S4A03895_20190522_120000.wav",
    "S4A03895_20190522_230000.wav",
    "opso_birds_10s.wav",
    "curlew_call_1.wav",
    "opso_aru_1_CSWA_3s.wav",
)


def make_archive(data: Path, folder: Path, names: tuple[str, ...] = RECORDINGS, moth: bool = True) -> Path:
    """Copies of the real recordings `names`, and with `moth` the spinetail recording cut into three files an
    AudioMoth would write back to back in the subfolder `moth` (one joined stream)."""
    folder.mkdir()
    for name in names:
        shutil.copy(data / name, folder)
    if moth:
        cut_recording(data / "maad_spinetail.wav", folder / "moth")
    return folder


def written(out: Path) -> dict[str, object]:
    """Each detection file's lines, sorted; each Raven table as written."""
    files = {name: sorted((out / name).read_text().splitlines()) for name in ("detections.jsonl", "detections.csv")}
    return files | {p.name: p.read_text() for p in sorted((out / "raven").iterdir())}


def block_options(formats=("jsonl",)) -> ReplayOptions:
    """Replay's defaults, decoded a second at a time so that every run sends progress many times."""
    return ReplayOptions(
        window=WindowSpec(),
        member=MemberOptions(),
        detector=DetectorOptions(),
        decode=DecodeOptions(block_seconds=1.0),
        formats=formats,
    )
