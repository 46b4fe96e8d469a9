"""`edge species`: the species a box would report at a place and date, as its range filter and lists allow."""

from __future__ import annotations

import functools
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from edge.app import logs
from edge.app.sections import DEFAULT_MODEL
from edge.app.settings import SettingsError, load_settings
from edge.cli.types import FiniteRange
from edge.inference.manifest import ModelError, default_models_dir, find
from edge.inference.names import CommonNames, available_languages, localise
from edge.screen.range_model import YEAR_ROUND, week_of
from edge.screen.species import SpeciesFilter, SpeciesListError, SpeciesOptions, read_names
from edge.types import Label

latitude_option = click.option(
    "--lat", "latitude", type=FiniteRange(-90, 90), help="Latitude, degrees north (with --lon: BirdNET's range filter)."
)
longitude_option = click.option("--lon", "longitude", type=FiniteRange(-180, 180), help="Longitude, degrees east.")
date_formats = click.DateTime(formats=["%Y-%m-%d"])


def model_labels(models_dir: Path, language: str) -> tuple[Label, ...]:
    labels = find(models_dir, DEFAULT_MODEL).labels()
    return labels if language == "en" else localise(labels, CommonNames.load(models_dir, language))


@click.command(name="species")
@latitude_option
@longitude_option
@click.option(
    "--date", "day", type=date_formats, default=None, help="Date (YYYY-MM-DD) whose week is used; default today (UTC)."
)
@click.option(
    "--threshold",
    type=FiniteRange(0, 1),
    default=None,
    help="Occurrence below which a species is dropped [default: the config's, else 0.03].",
)
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="Take location, threshold, lists, thresholds file and language from a daemon configuration.",
)
@click.option("--language", default=None, help="Language of common names (default: the config's, else en).")
@click.option("--languages", "list_languages", is_flag=True, help="List the languages of common names and exit.")
@click.option(
    "--models-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    envvar="EDGE_MODELS_DIR",
    help="Folder holding one directory per model.",
)
def species_command(latitude, longitude, day, threshold, config_path, language, list_languages, models_dir):
    """Print the species expected at a location and date (BirdNET's range model, 48-week year)."""
    logs.configure(level="warning")
    options = SpeciesOptions()
    if config_path is not None:
        try:
            settings = load_settings(config_path)
        except SettingsError as error:
            raise click.ClickException(str(error)) from error
        options, language = settings.species.options(), language or settings.language
        models_dir = models_dir or settings.models_dir
    models_dir = models_dir or default_models_dir()
    if list_languages:
        try:
            languages = available_languages(models_dir)
        except ModelError as error:
            raise click.ClickException(str(error)) from error
        click.echo("\n".join("en (the models' own)" if code == "en" else code for code in languages))
        return
    if latitude is not None or longitude is not None:
        options = replace(options, latitude=latitude, longitude=longitude)
    if not options.located:
        raise click.UsageError("give both --lat and --lon (or a --config with [species] latitude and longitude)")
    if threshold is not None:
        options = replace(options, range_threshold=threshold)
    day = day.date() if day else datetime.now(UTC).date()
    try:
        labels = model_labels(models_dir, language or "en")
        rows = SpeciesFilter.load(options, labels, models_dir).expected(day)
    except (ModelError, SpeciesListError, ValueError) as error:
        raise click.ClickException(str(error)) from error
    print_species(rows, options, day)


def print_species(rows: list, options: SpeciesOptions, day: date) -> None:
    console = Console()
    title = (
        f"{sum(score is not None for _, score in rows)} species expected at {options.latitude:g}, "
        f"{options.longitude:g} in week {week_of(day)} of 48 ({day.isoformat()}), occurrence ≥ "
        f"{options.range_threshold:g}"
    )
    table = Table(title=title)
    for column in ("occurrence", "scientific name", "common name"):
        table.add_column(column, justify="right" if column == "occurrence" else "left")
    for label, score in rows:
        table.add_row("always" if score is None else f"{score:.3f}", label.scientific_name, label.common_name)
    console.print(table)


def species_filter_options(command):
    """`edge replay`'s range filter and lists, handed to `command` as one SpeciesOptions `species`."""
    options = [
        latitude_option,
        longitude_option,
        click.option(
            "--date",
            "day",
            type=date_formats,
            default=None,
            help="With --lat/--lon: filter for this date's week (YYYY-MM-DD) instead of each recording's "
            "own date (name or header; year-round when it carries none).",
        ),
        click.option(
            "--week",
            type=click.IntRange(1, 48),
            default=None,
            help="With --lat/--lon: BirdNET week 1-48 (four per month: 1 is January 1-7) instead of "
            "each recording's date.",
        ),
        click.option(
            "--range-threshold",
            type=FiniteRange(0, 1),
            default=SpeciesOptions.range_threshold,
            show_default=True,
            help="With --lat/--lon: species expected below this occurrence are dropped.",
        ),
        click.option(
            "--include",
            multiple=True,
            help="Species always reported, whatever the range filter says "
            "(repeat; scientific or common name, or label).",
        ),
        click.option(
            "--include-file",
            multiple=True,
            type=click.Path(exists=True, dir_okay=False, path_type=Path),
            help="File of species always reported, one a line ('#' starts a comment).",
        ),
        click.option("--exclude", multiple=True, help="Species never reported; wins over --include (repeat)."),
        click.option(
            "--exclude-file",
            multiple=True,
            type=click.Path(exists=True, dir_okay=False, path_type=Path),
            help="File of species never reported, one a line.",
        ),
    ]

    @functools.wraps(command)
    def with_species(
        *args, latitude, longitude, day, week, range_threshold, include, include_file, exclude, exclude_file, **kwargs
    ):
        return command(
            *args,
            species=species_options(
                latitude,
                longitude,
                day,
                week,
                range_threshold,
                [*include, *listed(include_file, "--include-file")],
                [*exclude, *listed(exclude_file, "--exclude-file")],
            ),
            **kwargs,
        )

    for option in reversed(options):
        with_species = option(with_species)
    return with_species


def species_options(latitude, longitude, day, week, range_threshold, include, exclude) -> SpeciesOptions:
    """The options replay's filter runs with; a date or week without a place, or both, is refused."""
    if (latitude is None) != (longitude is None):
        raise click.UsageError("--lat and --lon go together: give both for the range filter, or neither")
    if day is not None and week is not None:
        raise click.UsageError("give --date or --week, not both")
    if (day is not None or week is not None) and latitude is None:
        raise click.UsageError("--date and --week choose the range filter's week: give --lat and --lon too")
    return SpeciesOptions(
        latitude=latitude,
        longitude=longitude,
        range_threshold=range_threshold,
        include=tuple(include),
        exclude=tuple(exclude),
        week=week_of(day.date()) if day else week,
        undated_week=YEAR_ROUND,
    )


def listed(paths, option: str) -> list[str]:
    names: list[str] = []
    for path in paths:
        try:
            names += read_names(path)
        except SpeciesListError as error:
            raise click.BadParameter(str(error), param_hint=option) from error
    return names
