"""`voting results`, `export`, `verify` and `audit verify`: the record of a poll."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from flask.cli import with_appcontext

from voting.cli.base import Command, Group
from voting.services.audit import all_entries, verify_chain
from voting.services.exports import export_bytes, export_poll, sha256_hex
from voting.services.polls import get_poll, results_view
from voting.services.verification import Check, check_export, read_board


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
    """Poll, projects, tally, published ballots and the audit chain, as JSON (and its SHA-256)."""
    doc = export_poll(slug, actor="cli")
    data = export_bytes(doc)
    out.write_bytes(data)
    digest = sha256_hex(data)
    # The `sha256sum` format, so `sha256sum -c FILE.json.sha256` checks it too.
    digest_file = out.with_name(out.name + ".sha256")
    digest_file.write_text(f"{digest}  {out.name}\n", encoding="utf-8")
    click.echo(f"Exported {slug!r} ({len(doc['ballots'])} ballots) to {out}.")
    click.echo(f"SHA-256 {digest} (also in {digest_file})")


@click.command("verify", cls=Command, context_settings={"ignore_unknown_options": False})
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--board",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The public receipt board's CSV download, to compare with the export's ballots.",
)
@with_appcontext
def verify_command(file: Path, board: Path | None) -> None:
    """Check an export alone, item by item; exit 0 only if every check passes."""
    data = file.read_bytes()
    try:
        doc = json.loads(data.decode("utf-8-sig"))
    except (ValueError, UnicodeError, RecursionError) as exc:  # RecursionError: nested too deep
        raise click.ClickException(f"{file} is not a JSON export: {exc}") from None
    if not isinstance(doc, dict):
        raise click.ClickException(f"{file} is not a JSON export: not a JSON object")
    try:
        parsed = read_board(board.read_text(encoding="utf-8-sig")) if board else None
    except UnicodeError:
        raise click.ClickException(f"{board} is not a UTF-8 CSV file") from None
    digest = sha256_hex(data)
    click.echo(f"SHA-256 of {file.name}: {digest}")
    checks = [*check_export(doc, parsed), *_digest_check(file, digest)]
    for check in checks:
        click.echo(check.line)
    failed = sum(1 for c in checks if not c.ok)
    if failed:
        click.echo(f"FAIL: {failed} of {len(checks)} checks failed.", err=True)
        sys.exit(1)
    click.echo(
        f"OK: {len(doc['ballots'])} ballots recount to the stated tally; "
        f"{len(doc['audit'])} audit entries chain; all {len(checks)} checks pass."
    )


def _digest_check(file: Path, digest: str) -> list[Check]:
    """The file against the FILE.json.sha256 written beside it by `voting export`, if present."""
    beside = file.with_name(file.name + ".sha256")
    if not beside.exists():
        return []
    stated = beside.read_text(encoding="utf-8", errors="replace").split()[:1]
    problems = (
        () if stated == [digest] else (f"{beside.name} says {' '.join(stated) or 'nothing'}",)
    )
    return [Check(f"the file's SHA-256 matches {beside.name}", problems)]


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
