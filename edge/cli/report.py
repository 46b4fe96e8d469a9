"""`edge report`: a replay's detections, and an expert's labels, as one HTML page of figures."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import click

from edge.app import logs
from edge.cli.evaluate import read_codes
from edge.evaluation.detections import DetectionsError, read_detections
from edge.evaluation.labels import LabelError, read_labels
from edge.evaluation.matching import by_events, by_segments
from edge.report import INSTALL, find_audio, write_report
from edge.screen.species import SpeciesListError


@click.command(name="report")
@click.option(
    "--detections", type=click.Path(exists=True, path_type=Path), required=True, help="A replay's --out, or a file."
)
@click.option(
    "--audio", type=click.Path(exists=True, file_okay=False, path_type=Path), help="Recordings, found by name."
)
@click.option("--truth", type=click.Path(exists=True, path_type=Path), help="Labels: a file or folder.")
@click.option("--names", type=click.Path(exists=True, path_type=Path), help="'code,scientific name' lines.")
@click.option("--match", type=click.Choice(["segments", "events"]), default="segments", show_default=True)
@click.option("--segment", type=click.FloatRange(0.1, 60), default=3.0, show_default=True, help="Segment, seconds.")
@click.option("--min-overlap", type=click.FloatRange(0, 60), default=0.5, show_default=True, help="Seconds.")
@click.option("--min-conf", type=click.FloatRange(0, 1), default=0.25, show_default=True, help="Drawn and scored.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True, help="The HTML file.")
def report_command(detections, audio, truth, names, match, segment, min_overlap, min_conf, out):
    """Draw detections (and an expert's labels) as one HTML page: spectrograms, timeline, counts, scores."""
    logs.configure()
    if importlib.util.find_spec("matplotlib") is None:
        raise click.ClickException(f"edge report draws with matplotlib, which is not installed: {INSTALL}")
    try:
        codes = read_codes(names) if names else {}
        labels = read_labels(truth, lambda name: codes.get(name.casefold(), name)) if truth else None
        found = read_detections(detections)
    except (LabelError, DetectionsError, SpeciesListError) as error:
        raise click.ClickException(str(error)) from error
    matched, method = None, ""
    if labels is not None:
        if match == "segments":
            matched, method = by_segments(labels, found, segment, min_overlap), f"{segment:g} s segments"
        else:
            matched, method = by_events(labels, found, min_overlap), "events, each label taken once"
        method += f", overlap {min_overlap:g} s or more"
    write_report(out, found, labels, find_audio(audio) if audio else {}, matched, min_conf, method)
    click.echo(f"report written to {out}")
