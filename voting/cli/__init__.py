"""The organizer's commands, one module per group; register_cli adds them to an app's CLI."""

from __future__ import annotations

import click
from flask import Flask

from voting.cli import backup, organizers, polls, projects, records, tokens

COMMANDS: tuple[click.Command, ...] = (
    projects.projects,
    polls.polls,
    polls.overlay_url_command,
    tokens.tokens,
    tokens.roster,
    records.results_command,
    records.export_command,
    records.verify_command,
    records.audit,
    organizers.admin,
    backup.backup_command,
)


def register_cli(app: Flask) -> None:
    """Make the commands available as `flask --app voting ...` and to app.test_cli_runner()."""
    for command in COMMANDS:
        if command.name not in app.cli.commands:
            app.cli.add_command(command)
