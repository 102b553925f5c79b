"""What every `voting` command shares: a refusal as one sentence, and parsing times."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import click
from flask import current_app
from flask.cli import AppGroup

from voting.domain.errors import VotingError

# Files or counts above this many rows show a progress bar on standard error.
PROGRESS_THRESHOLD = 500


class Command(click.Command):
    """A command that answers a domain error with its sentence (exit 1), never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except VotingError as exc:
            raise click.ClickException(exc.message) from None


class Group(AppGroup):
    """A command group whose commands run in an app context and are Commands."""

    command_class = Command


def when(value: str | None) -> datetime | None:
    """An ISO time with a zone from the command line, in UTC; None when not given."""
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not a date and time like 2026-12-01T18:00Z"
        ) from None
    if moment.tzinfo is None:
        raise click.BadParameter(f"{value!r} needs a time zone, like 2026-12-01T18:00Z or +01:00")
    return moment.astimezone(UTC)


def use_base_url(value: str | None) -> None:
    """--base-url: links and QR codes of this command point there (an explicit choice, so a
    loopback address is allowed: a rehearsal on this machine)."""
    if not value:
        return
    if not value.startswith(("http://", "https://")):
        raise click.BadParameter("must start with http:// or https://", param_hint="--base-url")
    current_app.config["BASE_URL"] = value.rstrip("/")
    current_app.config["ALLOW_LOCAL_BASE_URL"] = True
