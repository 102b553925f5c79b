"""`voting tokens` (mint, revoke, reissue, stats) and `voting roster import`."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from flask.cli import with_appcontext

from voting.cli.base import PROGRESS_THRESHOLD, Group, use_base_url
from voting.domain.statuses import Eligibility
from voting.services.issuing import issuance_stats, mint_tokens, reissue, revoke
from voting.services.polls import get_poll
from voting.services.roster import import_roster
from voting.web.qrsheet import render_sheet


@click.group(cls=Group)
def tokens() -> None:
    """Voter tokens."""


@tokens.command("mint")
@click.argument("slug")
@click.option("--count", type=click.IntRange(min=1), required=True)
@click.option(
    "--out", type=click.Path(dir_okay=False, path_type=Path), required=True, help="CSV of token,url"
)
@click.option(
    "--qr-sheet",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Printable QR cards (HTML)",
)
@click.option("--batch", default=None, help="A label for this batch (default: a timestamp).")
@click.option(
    "--base-url", default=None, help="The address links point at (default: VOTING_BASE_URL)."
)
@with_appcontext
def tokens_mint(
    slug: str, count: int, out: Path, qr_sheet: Path | None, batch: str | None, base_url: str | None
) -> None:
    """Mint COUNT single-use voter links for a poll."""
    use_base_url(base_url)
    if count > PROGRESS_THRESHOLD:
        with click.progressbar(length=count, label="Minting", file=sys.stderr) as bar:
            minted = mint_tokens(slug, count, actor="cli", batch=batch, progress=bar.update)
    else:
        minted = mint_tokens(slug, count, actor="cli", batch=batch)
    out.write_text(minted.csv_text(), encoding="utf-8")
    click.echo(f"Minted {count} tokens for {slug!r} (batch {minted.batch}) into {out}.")
    if qr_sheet is not None:
        qr_sheet.write_text(render_sheet(minted), encoding="utf-8")
        click.echo(f"QR sheet: {qr_sheet}")


@tokens.command("revoke")
@click.argument("slug")
@click.argument("token", nargs=-1)
@click.option("--batch", default=None, help="Revoke every token of this batch.")
@with_appcontext
def tokens_revoke(slug: str, token: tuple[str, ...], batch: str | None) -> None:
    """Revoke tokens (or their links), or a whole batch."""
    count = revoke(slug, actor="cli", tokens=token, batch=batch)
    click.echo(f"Revoked {count} token(s).")


@tokens.command("reissue")
@click.argument("slug")
@click.argument("lost")
@click.option(
    "--out", type=click.Path(dir_okay=False, path_type=Path), required=True, help="CSV of token,url"
)
@click.option("--qr-sheet", type=click.Path(dir_okay=False, path_type=Path), default=None)
@click.option(
    "--base-url", default=None, help="The address links point at (default: VOTING_BASE_URL)."
)
@with_appcontext
def tokens_reissue(
    slug: str, lost: str, out: Path, qr_sheet: Path | None, base_url: str | None
) -> None:
    """Revoke a lost card (its token or link) and mint its replacement in one step."""
    use_base_url(base_url)
    minted = reissue(slug, lost, actor="cli")
    out.write_text(minted.csv_text(), encoding="utf-8")
    click.echo(f"Revoked the lost card; its replacement is in {out}.")
    if qr_sheet is not None:
        qr_sheet.write_text(render_sheet(minted), encoding="utf-8")


@tokens.command("stats")
@click.argument("slug")
@with_appcontext
def tokens_stats(slug: str) -> None:
    """How many tokens were issued, revoked, claimed and used."""
    poll = get_poll(slug)
    stats = issuance_stats(poll)
    kinds = ", ".join(f"{k} {v}" for k, v in sorted(stats.by_kind.items())) or "none"
    click.echo(
        f"{slug} ({poll.eligibility}): issued {stats.issued} ({kinds}), revoked {stats.revoked}, used {stats.used}"
    )
    if poll.eligibility == Eligibility.ROSTER:
        click.echo(f"roster: {stats.roster_entries} attendees, {stats.claimed} claimed")


@click.group(cls=Group)
def roster() -> None:
    """Attendee rosters for --eligibility roster polls."""


@roster.command("import")
@click.argument("slug")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True)
@with_appcontext
def roster_import(slug: str, file: Path, dry_run: bool) -> None:
    """Ticket codes or emails (column code/email, optional project column), stored hashed."""
    report = import_roster(slug, file.read_bytes(), actor="cli", dry_run=dry_run)
    prefix = "Dry run, nothing written: " if dry_run else ""
    click.echo(
        f"{prefix}{report.added} added, {report.updated} updated, {report.unchanged} unchanged, "
        f"{len(report.rejected)} rejected; {report.conflicts} attendees belong to a project."
    )
    for line, reason in report.rejected:
        click.echo(f"  line {line}: {reason}", err=True)
    if report.rejected:
        sys.exit(1)
