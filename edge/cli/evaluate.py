"""`edge evaluate`: detections against an expert's labels, per species and overall; thresholds proposed.

One run of detections, or several side by side (two models, two resamplers, with and without smoothing): each
`--detections` is scored against the same labels, in one table. `--audio` runs the replay itself first.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from edge.app import logs
from edge.cli.models import models_dir_option
from edge.cli.replay import replay_command
from edge.cli.types import FiniteRange
from edge.evaluation.detections import DetectionsError, read_detections
from edge.evaluation.labels import LabelError, read_labels
from edge.evaluation.matching import Matched, Span, by_events, by_segments
from edge.evaluation.names import SpeciesNames, read_codes
from edge.evaluation.summary import evaluation, proposals, thresholds_file
from edge.report import INSTALL, find_audio, write_report
from edge.screen.species import SpeciesListError


def scoring_options(command):
    """How detections are matched to labels and scored: the options `edge evaluate` and `edge report` share."""
    for option in reversed(
        [
            models_dir_option,
            click.option("--names", type=click.Path(exists=True, path_type=Path), help="'code,scientific name' lines."),
            click.option("--match", type=click.Choice(["segments", "events"]), default="segments", show_default=True),
            click.option(
                "--segment", type=click.FloatRange(0.1, 60), default=3.0, show_default=True, help="Segment, seconds."
            ),
            click.option(
                "--min-overlap", type=click.FloatRange(0, 60), default=0.5, show_default=True, help="Seconds."
            ),
            click.option(
                "--min-conf", type=click.FloatRange(0, 1), default=0.25, show_default=True, help="Threshold scored."
            ),
        ]
    ):
        command = option(command)
    return command


# The replay `--audio` runs keeps detections down to this confidence, so the curves, the average precision and
# the proposed thresholds can reach below the --min-conf scored.
REPLAY_FLOOR = 0.05


@click.command(name="evaluate")
@click.option("--truth", type=click.Path(exists=True, path_type=Path), required=True, help="Labels: a file or folder.")
@click.option(
    "--detections",
    "runs",
    multiple=True,
    required=True,
    metavar="[NAME=]PATH",
    help="A replay's --out (JSON lines, CSV or Parquet), a file, or the daemon's data folder (its daily event "
    "files); repeat to compare runs side by side.",
)
@click.option(
    "--audio",
    type=click.Path(exists=True, path_type=Path),
    help="Run the replay over these recordings first, into the one --detections folder (resumed when run again).",
)
@click.option("--model", "model_names", multiple=True, help="With --audio: the model(s) to run.  [default: BirdNET]")
@click.option("--window", type=FiniteRange(0.1, 60), default=3.0, show_default=True, help="With --audio: seconds.")
@click.option("--hop", type=FiniteRange(0.1, 60), help="With --audio: seconds between windows.  [default: --window]")
@scoring_options
@click.option("--format", "output", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.option("--thresholds-out", type=click.Path(dir_okay=False, path_type=Path), help="Write the thresholds here.")
@click.option("--target-precision", type=click.FloatRange(0, 1), default=0.9, show_default=True)
@click.option("--min-support", type=click.IntRange(min=1), default=10, show_default=True, help="Labels to tune on.")
@click.option(
    "--report",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the first run's report (HTML, figures; spectrograms from --audio), as `edge report`.",
)
@click.pass_context
def evaluate_command(ctx, truth, runs, audio, model_names, window, hop, models_dir, **options):
    """Score detections against an expert's labels (Raven tables, Audacity labels or a CSV)."""
    logs.configure()  # on stderr: stdout holds the table or the JSON alone
    named = [named_run(text) for text in runs]
    if audio is not None:
        if len(named) != 1:
            raise click.UsageError("--audio writes into one --detections folder: give exactly one")
        replay_into(ctx, audio, named[0][1], model_names, window, hop or window, models_dir, options["output"])
    try:
        labels, names = read_truth(truth, options["names"], models_dir)
        found = {name: read_detections(existing(path)) for name, path in named}
    except (LabelError, DetectionsError, SpeciesListError) as error:
        raise click.ClickException(str(error)) from error
    results = {name: score(labels, spans, options) for name, spans in found.items()}
    unknown = dict(names.unknown.most_common())
    if options["thresholds_out"] is not None:
        write_thresholds(labels, found, named[0][0], options)
    if options["report"] is not None:
        first = named[0][0]
        draw_report(options["report"], found[first], labels, audio, matched_by(labels, found[first], options), options)
    if options["output"] == "json":
        body = next(iter(results.values())) if len(results) == 1 else {"runs": results}
        click.echo(json.dumps(body | {"unknown_label_names": unknown}, indent=2))
    else:
        print_table(results, unknown)


def read_truth(truth: Path, codes: Path | None, models_dir: Path) -> tuple[list[Span], SpeciesNames]:
    """The labels, their species named as the models name them; the names resolver tells which it could not."""
    names = SpeciesNames.of_models(models_dir, read_codes(codes) if codes else {})
    return read_labels(truth, names), names


def draw_report(
    path: Path,
    detections: list[Span],
    labels: list[Span] | None,
    audio: Path | None,
    matched: dict[str, Matched] | None,
    options: dict,
) -> None:
    """`edge report`'s page; matplotlib is an extra, and the error says which."""
    if importlib.util.find_spec("matplotlib") is None:
        raise click.ClickException(f"the report draws with matplotlib, which is not installed: {INSTALL}")
    files = find_audio(audio) if audio is not None and audio.is_dir() else {audio.stem: audio} if audio else {}
    write_report(path, detections, labels, files, matched, options["min_conf"], method_of(options))


def method_of(options: dict) -> str:
    """How the detections were matched, in a few words."""
    if options["match"] == "segments":
        how = f"{options['segment']:g} s segments"
    else:
        how = "events: a detection right when it overlaps a label, each label found once"
    return how + f", overlap {options['min_overlap']:g} s or more (half of a shorter call)"


def named_run(text: str) -> tuple[str, Path]:
    """ "NAME=PATH" or PATH (named after the folder or file)."""
    name, sep, path = text.partition("=")
    if sep and name and not Path(text).exists():
        return name, Path(path)
    return Path(text).name or text, Path(text)


def existing(path: Path) -> Path:
    if not path.exists():
        raise DetectionsError(f"{path}: no such file or folder")
    return path


def replay_into(ctx, audio: Path, out: Path, model_names, window: float, hop: float, models_dir, output) -> None:
    """The replay's own command, with its defaults but for the windows, the models and a low floor."""
    extra = {"model_names": tuple(model_names)} if model_names else {}
    ctx.invoke(
        replay_command,
        paths=(audio,),
        out=out,
        window=window,
        hop=hop,
        min_conf=REPLAY_FLOOR,
        models_dir=models_dir,
        quiet=output == "json",  # the JSON alone on stdout
        **extra,
    )


def matched_by(labels: list[Span], spans: list[Span], options: dict) -> dict[str, Matched]:
    if options["match"] == "segments":
        return by_segments(labels, spans, options["segment"], options["min_overlap"])
    return by_events(labels, spans, options["min_overlap"])


def score(labels: list[Span], spans: list[Span], options: dict) -> dict:
    result = {key: options[key] for key in ("match", "min_conf")}
    result |= {"segment_s": options["segment"], "min_overlap_s": options["min_overlap"]}
    return result | evaluation(matched_by(labels, spans, options), options["min_conf"])


def write_thresholds(labels: list[Span], found: dict[str, list[Span]], first: str, options: dict) -> None:
    """The thresholds of the first run: the one a box is to be tuned for."""
    matched = matched_by(labels, found[first], options)
    proposed = proposals(matched, options["target_precision"], options["min_support"])
    text = thresholds_file(proposed, options["target_precision"])
    options["thresholds_out"].write_text(text, encoding="utf-8")


def print_table(results: dict[str, dict], unknown: dict[str, int]) -> None:
    first = next(iter(results.values()))
    kind = {"segments": "segment", "events": "event"}[first["match"]]
    several = len(results) > 1
    table = Table(title=f"{kind}-based, at {first['min_conf']}")
    columns = ("species", *(("run",) if several else ()), "support", "precision", "recall", "F1", "AP")
    for column in columns:
        table.add_column(column, justify="left" if column in ("species", "run") else "right", no_wrap=True)
    species = sorted({s for r in results.values() for s in r["species"]})
    for row in [*species, "overall"]:
        for n, (name, result) in enumerate(results.items()):
            s = result["overall"] if row == "overall" else result["species"].get(row)
            if s is None:
                continue
            cells = [s["precision"], s["recall"], s["f1"], s["ap"]]
            head = [row if n == 0 else "", *((name,) if several else ())]
            table.add_row(*head, str(s["support"]), *("-" if v is None else f"{v:.3f}" for v in cells))
        if several:
            table.add_section()
    console = Console()
    console.print(table)
    for name, result in results.items():
        if result["unlabelled"]:
            run = f" ({name})" if several else ""
            console.print(f"detected but not labelled{run}: " + ", ".join(result["unlabelled"]), soft_wrap=True)
    if unknown:
        listed = ", ".join(f"{n} ({count})" for n, count in unknown.items())
        console.print(f"label names no model knows (kept as written): {listed}", soft_wrap=True)
