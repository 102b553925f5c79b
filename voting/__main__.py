"""The `voting` console script: the organizer's commands, `demo`, and Flask's run, routes, db."""

from __future__ import annotations

import sys

import click
from flask import Flask
from flask.cli import FlaskGroup, NoAppException

from voting.app import create_app
from voting.cli import COMMANDS
from voting.config import ConfigError
from voting.demo import demo_command


def _app_factory() -> Flask:
    try:
        return create_app()
    except ConfigError as exc:
        # Click prints a UsageError as one clear line instead of a traceback.
        raise NoAppException(str(exc)) from None


cli = FlaskGroup(create_app=_app_factory, help="Community-favorite voting.")
for _command in (*COMMANDS, demo_command):
    cli.add_command(_command)


def main() -> None:
    """Console script entry point."""
    try:
        cli.main(prog_name="voting")
    except ConfigError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
