"""`edge species`: the species a box would report at a place and date, as its range filter and lists allow."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timezone
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from edge import logs
from edge.cli_types import FiniteRange
from edge.manifest import ModelError, default_models_dir, find
from edge.names import CommonNames, available_languages, localise
from edge.range_model import RangeModel, week_of
from edge.settings import DEFAULT_MODEL, SettingsError, load_settings
from edge.species import SpeciesFilter, SpeciesListError, SpeciesOptions
from edge.types import Label


def model_labels(models_dir: Path, language: str) -> tuple[Label, ...]:
    labels = find(models_dir, DEFAULT_MODEL).labels()
    return labels if language == "en" else localise(labels, CommonNames.load(models_dir, language))


@click.command(name="species")
@click.option("--lat", "latitude", type=FiniteRange(-90, 90), help="Latitude, degrees north.")
@click.option("--lon", "longitude", type=FiniteRange(-180, 180), help="Longitude, degrees east.")
@click.option("--date", "day", type=click.DateTime(formats=["%Y-%m-%d"]), default=None,
              help="Date (YYYY-MM-DD) whose week is used; default today (UTC).")
@click.option("--threshold", type=FiniteRange(0, 1), default=None,
              help="Occurrence below which a species is dropped [default: the config's, else 0.03].")
@click.option("--config", "config_path", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="Take location, threshold, lists, thresholds file and language from a daemon configuration.")
@click.option("--language", default=None, help="Language of common names (default: the config's, else en).")
@click.option("--languages", "list_languages", is_flag=True, help="List the languages of common names and exit.")
@click.option("--models-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              envvar="EDGE_MODELS_DIR", help="Folder holding one directory per model.")
def species_command(latitude, longitude, day, threshold, config_path, language, list_languages, models_dir):
    """Print the species expected at a location and date (BirdNET's range model, 48-week year)."""
    logs.configure(level="warning")
    options = SpeciesOptions()
    if config_path is not None:
        try:
            settings = load_settings(config_path)
        except SettingsError as error:
            raise click.ClickException(str(error))
        options, language = settings.species.options(), language or settings.language
        models_dir = models_dir or settings.models_dir
    models_dir = models_dir or default_models_dir()
    if list_languages:
        try:
            languages = available_languages(models_dir)
        except ModelError as error:
            raise click.ClickException(str(error))
        click.echo("\n".join("en (the models' own)" if code == "en" else code for code in languages))
        return
    if latitude is not None or longitude is not None:
        options = replace(options, latitude=latitude, longitude=longitude)
    if not options.located:
        raise click.UsageError("give both --lat and --lon (or a --config with [species] latitude and longitude)")
    if threshold is not None:
        options = replace(options, range_threshold=threshold)
    day = day.date() if day else datetime.now(timezone.utc).date()
    try:
        labels = model_labels(models_dir, language or "en")
        rows = SpeciesFilter(options, labels, RangeModel.load(models_dir)).expected(day)
    except (ModelError, SpeciesListError, ValueError) as error:
        raise click.ClickException(str(error))
    print_species(rows, options, day)


def print_species(rows: list, options: SpeciesOptions, day: date) -> None:
    console = Console()
    title = (f"{sum(score is not None for _, score in rows)} species expected at {options.latitude:g}, "
             f"{options.longitude:g} in week {week_of(day)} of 48 ({day.isoformat()}), occurrence ≥ "
             f"{options.range_threshold:g}")
    table = Table(title=title)
    for column in ("occurrence", "scientific name", "common name"):
        table.add_column(column, justify="right" if column == "occurrence" else "left")
    for label, score in rows:
        table.add_row("always" if score is None else f"{score:.3f}", label.scientific_name, label.common_name)
    console.print(table)
