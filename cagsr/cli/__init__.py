"""Command-line interface: subcommands built from the config dataclasses."""
