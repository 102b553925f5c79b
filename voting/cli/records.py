"""`voting results`, `export`, `verify` and `audit verify`: the record of a poll."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from flask.cli import with_appcontext

from voting.cli.base import Command, Group
from voting.services.audit import all_entries, verify_chain
from voting.services.exports import export_poll, verify_export
from voting.services.polls import get_poll, results_view


@click.command("results", cls=Command)
@click.argument("slug")
@click.option("--json", "as_json", is_flag=True)
@with_appcontext
def results_command(slug: str, as_json: bool) -> None:
    """The tally as the organizer sees it."""
    doc = results_view(get_poll(slug), organizer=True)
    if as_json:
        click.echo(json.dumps(doc, indent=2, ensure_ascii=False))
        return
    click.echo(f"{slug}: {doc['status']}, {doc['turnout']} ballots")
    if "results" not in doc:
        click.echo("Counts are sealed until the poll closes.")
    for row in doc.get("results", []):
        click.echo(f"{row['rank']:>3}. {row['title']} ({row['team']}): {row['votes']}")


@click.command("export", cls=Command)
@click.argument("slug")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True)
@with_appcontext
def export_command(slug: str, out: Path) -> None:
    """Poll, projects, tally, published ballots and the audit chain, as JSON."""
    doc = export_poll(slug, actor="cli")
    out.write_text(json.dumps(doc, indent=2, ensure_ascii=False), encoding="utf-8")
    click.echo(f"Exported {slug!r} ({len(doc['ballots'])} ballots) to {out}.")


@click.command("verify", cls=Command, context_settings={"ignore_unknown_options": False})
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@with_appcontext
def verify_command(file: Path) -> None:
    """Recompute the tally and check the audit chain from an export alone."""
    try:
        doc = json.loads(file.read_text(encoding="utf-8"))
    except (ValueError, UnicodeError) as exc:
        raise click.ClickException(f"{file} is not a JSON export: {exc}") from None
    problems = verify_export(doc)
    if problems:
        for problem in problems:
            click.echo(f"FAIL: {problem}", err=True)
        sys.exit(1)
    click.echo(
        f"OK: {len(doc['ballots'])} ballots recount to the stated tally; {len(doc['audit'])} audit entries chain."
    )


@click.group(cls=Group)
def audit() -> None:
    """The organizer audit log."""


@audit.command("verify")
@with_appcontext
def audit_verify() -> None:
    """Check the stored audit chain; exit 1 if any entry was changed."""
    entries = all_entries()
    problems = verify_chain(entries)
    if problems:
        for problem in problems:
            click.echo(f"FAIL: {problem}", err=True)
        sys.exit(1)
    click.echo(f"OK: {len(entries)} audit entries chain.")
