"""The `voting` console script: the organizer's commands, `demo`, and Flask's run, routes, db."""

from __future__ import annotations

import sys
from contextlib import suppress

import click
from flask import Flask
from flask.cli import FlaskGroup, NoAppException, ScriptInfo

from voting.app import create_app
from voting.cli import COMMANDS
from voting.config import ConfigError
from voting.database import bind_migrations
from voting.demo import demo_command


def _app_factory() -> Flask:
    try:
        return create_app()
    except ConfigError as exc:
        # Click prints a UsageError as one clear line instead of a traceback.
        raise NoAppException(str(exc)) from None


class VotingGroup(FlaskGroup):
    """Flask's group, with two changes for the commands a plugin brings (Flask-Migrate's `db`).

    - Only they load the plugins: importing Flask-Migrate pulls in Alembic, about half a
      second that `voting polls close` and the rest need not wait for.
    - Their app is bound to the migrations, and an app that cannot start says why once,
      instead of also reporting "No such command 'db'".
    """

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in self.commands:
            return self.commands[name]
        try:
            bind_migrations(ctx.ensure_object(ScriptInfo).load_app())
        except NoAppException as exc:
            raise click.ClickException(exc.format_message()) from None
        return super().get_command(ctx, name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        with suppress(NoAppException):  # Flask's own listing reports it
            bind_migrations(ctx.ensure_object(ScriptInfo).load_app())
        return super().list_commands(ctx)


cli = VotingGroup(create_app=_app_factory, help="Community-favorite voting.")
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
