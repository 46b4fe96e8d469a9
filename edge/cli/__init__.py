"""The `edge` command: its subcommands and option types. The top of the package: imports anything."""
