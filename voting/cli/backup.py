"""`voting backup`: the whole database, plus a checkable export of every poll that opened."""

from __future__ import annotations

from pathlib import Path

import click
from flask.cli import with_appcontext

from voting.cli.base import Command
from voting.domain.statuses import PollStatus
from voting.services.backups import PG_DUMP_FILE, copy_database
from voting.services.exports import export_bytes, export_poll, sha256_hex
from voting.services.polls import list_polls


@click.command("backup", cls=Command)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Folder to write into (made if missing).",
)
@with_appcontext
def backup_command(out: Path) -> None:
    """Back up the database and export every poll that opened (each with its SHA-256)."""
    target = copy_database(out, actor="cli")
    click.echo(f"Database copied to {target}.")
    for poll in list_polls():
        if poll.status == PollStatus.DRAFT or poll.rehearsal_of is not None:
            continue
        data = export_bytes(export_poll(poll.slug, actor="cli"))
        path = out / f"{poll.slug}.json"
        path.write_bytes(data)
        path.with_name(path.name + ".sha256").write_text(
            f"{sha256_hex(data)}  {path.name}\n", encoding="utf-8"
        )
        click.echo(f"Exported {poll.slug!r} to {path} (check it: voting verify {path}).")
    if target.name == PG_DUMP_FILE:
        click.echo(
            f"Restore: createdb NEW && pg_restore --no-owner --dbname postgresql://.../NEW {target}"
        )
    else:
        click.echo(f"Restore: stop the service and copy {target} over the database file.")
