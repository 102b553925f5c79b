"""`voting admin create`: organizer accounts."""

from __future__ import annotations

import sys

import click
from flask import current_app
from flask.cli import with_appcontext

from voting.cli.base import Group
from voting.services.organizers import create_organizer, record_unlock
from voting.web.admin.login_limits import clear_username


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


@admin.command("unlock")
@click.argument("username")
@with_appcontext
def admin_unlock(username: str) -> None:
    """Lift the sign-in limit that strangers' wrong passwords put on USERNAME."""
    if not current_app.config.get("REDIS_URL"):
        raise click.ClickException(
            "Without REDIS_URL the sign-in counters live in each server process's memory: "
            "restart the server to clear them (or wait an hour)."
        )
    clear_username(username)
    record_unlock(username, actor="cli")
    click.echo(f"Sign-ins for {username!r} are no longer held back; the audit log records it.")
