"""The `edge` command: the group every subcommand (one module each in this package) is registered on."""

from __future__ import annotations

import click

from edge.cli.evaluate import evaluate_command
from edge.cli.models import models_command
from edge.cli.replay import replay_command
from edge.cli.report import report_command
from edge.cli.run import config_group, run_command
from edge.cli.species import species_command
from edge.cli.station import station_group


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="edge")
def main() -> None:
    """edge: identify wildlife and threats in field recordings with ONNX models on the CPU."""


main.add_command(replay_command)
main.add_command(models_command)
main.add_command(run_command)
main.add_command(config_group)
main.add_command(station_group)
main.add_command(species_command)
main.add_command(evaluate_command)
main.add_command(report_command)
