"""`edge report`: a replay's detections, and an expert's labels, as one HTML page of figures."""

from __future__ import annotations

from pathlib import Path

import click

from edge.app import logs
from edge.cli.evaluate import draw_report, matched_by, read_truth, scoring_options
from edge.evaluation.detections import DetectionsError, read_detections
from edge.evaluation.labels import LabelError
from edge.screen.species import SpeciesListError


@click.command(name="report")
@click.option(
    "--detections",
    type=click.Path(exists=True, path_type=Path),
    required=True,
    help="A replay's --out, a file, or the daemon's data folder.",
)
@click.option("--audio", type=click.Path(exists=True, path_type=Path), help="Recordings (a folder), found by name.")
@click.option("--truth", type=click.Path(exists=True, path_type=Path), help="Labels: a file or folder.")
@scoring_options
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True, help="The HTML file.")
def report_command(detections, audio, truth, models_dir, out, **options):
    """Draw detections (and an expert's labels) as one HTML page: spectrograms, timeline, counts, scores."""
    logs.configure()
    try:
        labels = read_truth(truth, options["names"], models_dir)[0] if truth else None
        found = read_detections(detections)
    except (LabelError, DetectionsError, SpeciesListError) as error:
        raise click.ClickException(str(error)) from error
    matched = matched_by(labels, found, options) if labels is not None else None
    draw_report(out, found, labels, audio, matched, options)
    click.echo(f"report written to {out}")
