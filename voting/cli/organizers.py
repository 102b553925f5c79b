"""`voting admin create`: organizer accounts."""

from __future__ import annotations

import sys

import click
from flask.cli import with_appcontext

from voting.cli.base import Group
from voting.services.organizers import create_organizer


@click.group(cls=Group)
def admin() -> None:
    """Organizer accounts."""


@admin.command("create")
@click.argument("username")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@with_appcontext
def admin_create(username: str, password_stdin: bool) -> None:
    """Create an organizer account."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    create_organizer(username, password, actor="cli")
    click.echo(f"Organizer {username!r} created.")
