"""`edge evaluate`: detections against an expert's labels, per species and overall; thresholds proposed."""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from edge.evaluation.detections import DetectionsError, read_detections
from edge.evaluation.labels import LabelError, read_labels
from edge.evaluation.matching import by_events, by_segments
from edge.evaluation.summary import evaluation, proposals, thresholds_file
from edge.screen.species import SpeciesListError


@click.command(name="evaluate")
@click.option("--truth", type=click.Path(exists=True, path_type=Path), required=True, help="Labels: a file or folder.")
@click.option(
    "--detections", type=click.Path(exists=True, path_type=Path), required=True, help="A replay's --out, or a file."
)
@click.option("--match", type=click.Choice(["segments", "events"]), default="segments", show_default=True)
@click.option("--segment", type=click.FloatRange(0.1, 60), default=3.0, show_default=True, help="Segment, seconds.")
@click.option("--min-overlap", type=click.FloatRange(0, 60), default=0.5, show_default=True, help="Seconds.")
@click.option("--min-conf", type=click.FloatRange(0, 1), default=0.25, show_default=True, help="Threshold scored.")
@click.option("--names", type=click.Path(exists=True, path_type=Path), help="'code,scientific name' lines.")
@click.option("--format", "output", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.option("--thresholds-out", type=click.Path(dir_okay=False, path_type=Path), help="Write the thresholds here.")
@click.option("--target-precision", type=click.FloatRange(0, 1), default=0.9, show_default=True)
@click.option("--min-support", type=click.IntRange(min=1), default=10, show_default=True, help="Labels to tune on.")
def evaluate_command(
    truth,
    detections,
    match,
    segment,
    min_overlap,
    min_conf,
    names,
    output,
    thresholds_out,
    target_precision,
    min_support,
):
    """Score detections against an expert's labels (Raven tables, Audacity labels or a CSV)."""
    try:
        codes = read_codes(names) if names else {}
        labels = read_labels(truth, lambda name: codes.get(name.casefold(), name))
        found = read_detections(detections)
    except (LabelError, DetectionsError, SpeciesListError) as error:
        raise click.ClickException(str(error)) from error
    matched = (
        by_segments(labels, found, segment, min_overlap)
        if match == "segments"
        else by_events(labels, found, min_overlap)
    )
    result = {"match": match, "segment_s": segment, "min_overlap_s": min_overlap, "min_conf": min_conf}
    result |= evaluation(matched, min_conf)
    if thresholds_out is not None:
        proposed = proposals(matched, target_precision, min_support)
        thresholds_out.write_text(thresholds_file(proposed, target_precision, min_conf), encoding="utf-8")
    if output == "json":
        click.echo(json.dumps(result, indent=2))
    else:
        print_table(result)


def read_codes(path: Path) -> dict[str, str]:
    """'code,scientific name' lines (`#` comments): the names labels use, mapped to the models' names."""
    codes = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        code, _, name = text.partition(",")
        if not code.strip() or not name.strip():
            raise SpeciesListError(f"{path}:{number}: expected 'code,scientific name', got {line.strip()!r}")
        codes[code.strip().casefold()] = name.strip()
    return codes


def print_table(result: dict) -> None:
    kind = {"segments": "segment", "events": "event"}[result["match"]]
    table = Table(title=f"{kind}-based, at {result['min_conf']}")
    for column in ("species", "support", "precision", "recall", "F1", "AP"):
        table.add_column(column, justify="left" if column == "species" else "right")
    rows = [*result["species"].items(), ("overall", result["overall"])]
    for species, s in rows:
        cells = [s["precision"], s["recall"], s["f1"], s["ap"]]
        table.add_row(species, str(s["support"]), *("-" if v is None else f"{v:.3f}" for v in cells))
    console = Console()
    console.print(table)
    if result["unlabelled"]:
        console.print("detected but not labelled: " + ", ".join(result["unlabelled"]))
