"""`edge models`: the bundled model folders, each file's sha256 checked, and what this CPU means for them."""

from __future__ import annotations

import platform
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from edge.app.model_folders import model_folders
from edge.inference.manifest import ModelError, cpu_features, default_models_dir, discover

models_dir_option = click.option(
    "--models-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=default_models_dir,
    envvar="EDGE_MODELS_DIR",
    show_default="models/ of this checkout",
    help="Folder holding one directory per model.",
)


@click.command(name="models")
@models_dir_option
def models_command(models_dir: Path) -> None:
    """List every bundled model folder and check each file's sha256."""
    try:
        folders = model_folders(models_dir)
        classifiers = discover(models_dir)
    except ModelError as error:
        raise click.ClickException(str(error)) from error
    table = Table(title=f"models in {models_dir}")
    for column in ("name", "kind", "version", "licence", "holds", "size", "sha256"):
        table.add_column(column)
    problems = []
    for folder in folders:
        found = folder.problems()
        problems += found
        table.add_row(
            folder.name,
            folder.kind,
            folder.version,
            folder.licence,
            folder.detail,
            f"{folder.size / 1e6:.1f} MB",
            "MISMATCH" if found else "ok",
        )
    console = Console(width=140)
    console.print(table)
    # Below the table, where no column width can cut a feature name; a missing feature slows a model, no more.
    for m in (m for m in classifiers if m.tuned_for):
        console.print(
            f"{m.name}: {m.precision}, tuned for {', '.join(m.tuned_for)}; "
            f"{int8_verdict(m, cpu_features(), platform.machine())}",
            highlight=False,
        )
    for problem in problems:
        console.print(problem, highlight=False, soft_wrap=True)
    if problems:
        raise click.ClickException(f"{len(problems)} model file(s) missing or not matching their manifest's sha256")


def int8_verdict(manifest, features: frozenset[str] | None, machine: str) -> str:
    """What this CPU means for a quantized model's speed. On Arm the x86 flags it was tuned on say nothing:
    INT8 kernels are fast there with the dot-product instructions (Armv8.2 asimddp: a Raspberry Pi 5 has
    them, a Pi 4 does not)."""
    if features is None:
        return "this system does not say which it has (no /proc/cpuinfo)"
    if machine.lower().startswith(("aarch64", "arm")) or "asimd" in features:
        if "asimddp" in features:
            return "on Arm what matters is the dot-product instructions (asimddp): this CPU has them"
        return (
            "on Arm what matters is the dot-product instructions (asimddp): this CPU lacks them (as a "
            "Raspberry Pi 4): it runs, but no faster than FP32"
        )
    if missing := manifest.missing_features(features):
        return f"this CPU lacks {', '.join(missing)}: it runs, but slower than measured"
    return "this CPU has them all"
