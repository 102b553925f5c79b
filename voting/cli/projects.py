"""`voting projects`: importing submissions."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from flask.cli import with_appcontext

from voting.cli.base import PROGRESS_THRESHOLD, Group
from voting.services.projects import import_projects


@click.group(cls=Group)
def projects() -> None:
    """Projects (submissions)."""


@projects.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Show what would change without writing.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@with_appcontext
def projects_import(file: Path, dry_run: bool, as_json: bool) -> None:
    """Import submissions from CSV (ours or Devpost's export) or JSON; upsert by slug."""
    data = file.read_bytes()
    rows = data.count(b"\n")
    if rows > PROGRESS_THRESHOLD and not as_json:
        with click.progressbar(length=rows, label="Importing", file=sys.stderr) as bar:
            report = import_projects(
                data, file.name, dry_run=dry_run, progress=lambda n: bar.update(1)
            )
    else:
        report = import_projects(data, file.name, dry_run=dry_run)
    if as_json:
        click.echo(json.dumps(report.as_dict(), indent=2, ensure_ascii=False))
    else:
        prefix = "Dry run, nothing written: " if dry_run else ""
        click.echo(
            f"{prefix}{len(report.created)} created, {len(report.updated)} updated, "
            f"{len(report.unchanged)} unchanged, {len(report.rejected)} rejected ({report.source_format})."
        )
        for rejected in report.rejected:
            title = f" ({rejected.title})" if rejected.title else ""
            click.echo(f"  line {rejected.line}{title}: {rejected.reason}", err=True)
    if report.rejected:
        sys.exit(1)
