"""The `voting` command line: a Flask CLI group (so `voting run`, `voting db upgrade` work)."""

from __future__ import annotations

import functools
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
from flask import Flask
from flask.cli import FlaskGroup, NoAppException, with_appcontext

from voting.config import ConfigError
from voting.domain.errors import VotingError
from voting.domain.statuses import Eligibility, Method, ResultsMode

PROGRESS_THRESHOLD = 500


def _app_factory() -> Flask:
    from voting import create_app

    try:
        return create_app()
    except ConfigError as exc:
        # Click prints a UsageError as one clear line instead of a traceback.
        raise NoAppException(str(exc)) from None


def _when(value: str | None) -> datetime | None:
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


cli = FlaskGroup(create_app=_app_factory, help="Community-favorite voting.")


def register_cli(app: Flask) -> None:
    """Make the same commands available as `flask --app voting ...`."""
    for name, command in cli.commands.items():
        if name not in app.cli.commands:
            app.cli.add_command(command, name)


# -- projects -------------------------------------------------------------------------------


@cli.group()
def projects() -> None:
    """Projects (submissions)."""


@projects.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Show what would change without writing.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@with_appcontext
def projects_import(file: Path, dry_run: bool, as_json: bool) -> None:
    """Import submissions from CSV (ours or Devpost's export) or JSON; upsert by slug."""
    from voting.services.projects import import_projects

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


# -- polls ----------------------------------------------------------------------------------


@cli.group()
def polls() -> None:
    """Polls and their lifecycle."""


@polls.command("create")
@click.argument("slug")
@click.option("--title", required=True)
@click.option("--description", default="")
@click.option(
    "--method",
    type=click.Choice([m.value for m in Method]),
    default=Method.PLURALITY.value,
    show_default=True,
)
@click.option("--max-choices", type=click.IntRange(min=1), default=None)
@click.option(
    "--eligibility",
    type=click.Choice([e.value for e in Eligibility]),
    default=Eligibility.INVITE.value,
    show_default=True,
)
@click.option(
    "--results",
    type=click.Choice([r.value for r in ResultsMode]),
    default=ResultsMode.HIDDEN.value,
    show_default=True,
)
@click.option("--revote/--no-revote", default=False, show_default=True)
@click.option(
    "--category", "categories", multiple=True, help="Only projects of this category (repeatable)."
)
@click.option("--opens-at", default=None, help="ISO time with zone, e.g. 2026-12-01T17:00Z")
@click.option("--closes-at", default=None, help="ISO time with zone, e.g. 2026-12-01T18:00Z")
@with_appcontext
def polls_create(slug: str, **options: Any) -> None:
    """Create a draft poll over all (or the named categories') projects."""
    from voting.services.polls import PollSpec, create_poll

    spec = PollSpec(
        slug=slug,
        title=options["title"],
        description=options["description"],
        method=options["method"],
        max_choices=options["max_choices"],
        eligibility=options["eligibility"],
        results_mode=options["results"],
        allow_revote=options["revote"],
        categories=options["categories"],
        opens_at=_when(options["opens_at"]),
        closes_at=_when(options["closes_at"]),
    )
    poll = create_poll(spec, actor="cli")
    click.echo(f"Created poll {poll.slug!r} with {len(poll.choices)} projects (draft).")


@polls.command("open")
@click.argument("slug")
@with_appcontext
def polls_open(slug: str) -> None:
    """Open a poll for voting (idempotent)."""
    from voting.services.polls import open_poll

    poll = open_poll(slug, actor="cli")
    click.echo(f"Poll {poll.slug!r} is open. Tie-break seed hash: {poll.tie_seed_hash}")


@polls.command("close")
@click.argument("slug")
@with_appcontext
def polls_close(slug: str) -> None:
    """Close a poll (idempotent); prints the final turnout."""
    from voting.services.polls import close_poll, turnout

    poll = close_poll(slug, actor="cli")
    click.echo(f"Poll {poll.slug!r} is closed with {turnout(poll)} ballots.")


@polls.command("reveal")
@click.argument("slug")
@click.option("--step", is_flag=True, help="Reveal one more place (last place first).")
@click.option(
    "--auto",
    "auto_seconds",
    type=click.IntRange(min=1),
    default=None,
    help="Auto-play: seconds per place.",
)
@with_appcontext
def polls_reveal(slug: str, step: bool, auto_seconds: int | None) -> None:
    """Reveal the results: all at once (idempotent), one place at a time, or auto-played."""
    from voting.services.polls import reveal

    poll = reveal(slug, actor="cli", step=step, auto_seconds=auto_seconds)
    click.echo(
        f"Poll {poll.slug!r}: {poll.status}, {poll.reveal_step} place(s) shown. Tie-break seed: {poll.tie_seed}"
    )


@cli.command("overlay-url")
@click.argument("slug")
@click.option(
    "--rotate", is_flag=True, help="Revoke every overlay URL handed out so far and print a new one."
)
@with_appcontext
def overlay_url_command(slug: str, rotate: bool) -> None:
    """Print the stream overlay's signed, read-only URL (for an OBS browser source)."""
    from voting.services.overlay import overlay_url, rotate_overlay_key
    from voting.services.polls import get_poll

    poll = get_poll(slug)
    url = rotate_overlay_key(poll, actor="cli") if rotate else overlay_url(poll)
    if rotate:
        click.echo("Rotated: overlays using an older URL stop updating.", err=True)
    click.echo(url)
    click.echo(
        "Options: &theme=dark|light  &layout=bars|podium  &top=N  (OBS browser source, 1920x1080)",
        err=True,
    )


# -- tokens ---------------------------------------------------------------------------------


@cli.group()
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
@with_appcontext
def tokens_mint(slug: str, count: int, out: Path, qr_sheet: Path | None, batch: str | None) -> None:
    """Mint COUNT single-use voter links for a poll."""
    from voting.services.issuing import mint_tokens

    if count > PROGRESS_THRESHOLD:
        with click.progressbar(length=count, label="Minting", file=sys.stderr) as bar:
            minted = mint_tokens(slug, count, actor="cli", batch=batch, progress=bar.update)
    else:
        minted = mint_tokens(slug, count, actor="cli", batch=batch)
    out.write_text(minted.csv_text(), encoding="utf-8")
    click.echo(f"Minted {count} tokens for {slug!r} (batch {minted.batch}) into {out}.")
    if qr_sheet is not None:
        from voting.web.qrsheet import render_sheet

        qr_sheet.write_text(render_sheet(minted), encoding="utf-8")
        click.echo(f"QR sheet: {qr_sheet}")


@tokens.command("revoke")
@click.argument("slug")
@click.argument("token", nargs=-1)
@click.option("--batch", default=None, help="Revoke every token of this batch.")
@with_appcontext
def tokens_revoke(slug: str, token: tuple[str, ...], batch: str | None) -> None:
    """Revoke tokens (or their links), or a whole batch."""
    from voting.services.issuing import revoke

    count = revoke(slug, actor="cli", tokens=token, batch=batch)
    click.echo(f"Revoked {count} token(s).")


@tokens.command("reissue")
@click.argument("slug")
@click.argument("lost")
@click.option(
    "--out", type=click.Path(dir_okay=False, path_type=Path), required=True, help="CSV of token,url"
)
@click.option("--qr-sheet", type=click.Path(dir_okay=False, path_type=Path), default=None)
@with_appcontext
def tokens_reissue(slug: str, lost: str, out: Path, qr_sheet: Path | None) -> None:
    """Revoke a lost card (its token or link) and mint its replacement in one step."""
    from voting.services.issuing import reissue

    minted = reissue(slug, lost, actor="cli")
    out.write_text(minted.csv_text(), encoding="utf-8")
    click.echo(f"Revoked the lost card; its replacement is in {out}.")
    if qr_sheet is not None:
        from voting.web.qrsheet import render_sheet

        qr_sheet.write_text(render_sheet(minted), encoding="utf-8")


@tokens.command("stats")
@click.argument("slug")
@with_appcontext
def tokens_stats(slug: str) -> None:
    """How many tokens were issued, revoked, claimed and used."""
    from voting.services.issuing import issuance_stats
    from voting.services.polls import get_poll

    poll = get_poll(slug)
    stats = issuance_stats(poll)
    kinds = ", ".join(f"{k} {v}" for k, v in sorted(stats.by_kind.items())) or "none"
    click.echo(
        f"{slug} ({poll.eligibility}): issued {stats.issued} ({kinds}), revoked {stats.revoked}, used {stats.used}"
    )
    if poll.eligibility == Eligibility.ROSTER:
        click.echo(f"roster: {stats.roster_entries} attendees, {stats.claimed} claimed")


# -- roster ---------------------------------------------------------------------------------


@cli.group()
def roster() -> None:
    """Attendee rosters for --eligibility roster polls."""


@roster.command("import")
@click.argument("slug")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True)
@with_appcontext
def roster_import(slug: str, file: Path, dry_run: bool) -> None:
    """Ticket codes or emails (column code/email, optional project column), stored hashed."""
    from voting.services.roster import import_roster

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


# -- results, export, verify, audit -------------------------------------------------------


@cli.command("results")
@click.argument("slug")
@click.option("--json", "as_json", is_flag=True)
@with_appcontext
def results_command(slug: str, as_json: bool) -> None:
    """The tally as the organizer sees it."""
    from voting.services.polls import get_poll, results_view

    doc = results_view(get_poll(slug), organizer=True)
    if as_json:
        click.echo(json.dumps(doc, indent=2, ensure_ascii=False))
        return
    click.echo(f"{slug}: {doc['status']}, {doc['turnout']} ballots")
    if "results" not in doc:
        click.echo("Counts are sealed until the poll closes.")
    for row in doc.get("results", []):
        click.echo(f"{row['rank']:>3}. {row['title']} ({row['team']}): {row['votes']}")


@cli.command("export")
@click.argument("slug")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True)
@with_appcontext
def export_command(slug: str, out: Path) -> None:
    """Poll, projects, tally, published ballots and the audit chain, as JSON."""
    from voting.services.exports import export_poll

    doc = export_poll(slug, actor="cli")
    out.write_text(json.dumps(doc, indent=2, ensure_ascii=False), encoding="utf-8")
    click.echo(f"Exported {slug!r} ({len(doc['ballots'])} ballots) to {out}.")


@cli.command("verify", context_settings={"ignore_unknown_options": False})
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def verify_command(file: Path) -> None:
    """Recompute the tally and check the audit chain from an export alone."""
    from voting.services.exports import verify_export

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


@cli.group()
def audit() -> None:
    """The organizer audit log."""


@audit.command("verify")
@with_appcontext
def audit_verify() -> None:
    """Check the stored audit chain; exit 1 if any entry was changed."""
    from voting.services.audit import all_entries, verify_chain

    entries = all_entries()
    problems = verify_chain(entries)
    if problems:
        for problem in problems:
            click.echo(f"FAIL: {problem}", err=True)
        sys.exit(1)
    click.echo(f"OK: {len(entries)} audit entries chain.")


# -- organizers -----------------------------------------------------------------------------


@cli.group()
def admin() -> None:
    """Organizer accounts."""


@admin.command("create")
@click.argument("username")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@with_appcontext
def admin_create(username: str, password_stdin: bool) -> None:
    """Create an organizer account."""
    from voting.services.organizers import create_organizer

    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    create_organizer(username, password, actor="cli")
    click.echo(f"Organizer {username!r} created.")


# -- demo -----------------------------------------------------------------------------------


@cli.command("demo", with_appcontext=False)
@click.option("--port", type=click.IntRange(1, 65535), default=5000, show_default=True)
@click.option("--no-serve", is_flag=True, help="Seed and print, but do not serve.")
def demo(port: int, no_serve: bool) -> None:
    """Seed demo projects, an organizer and an open poll; print links; serve on 127.0.0.1."""
    from voting import create_app
    from voting.demo import seed

    base_url = f"http://127.0.0.1:{port}"
    app = create_app(
        {"DEMO": True, "SQLALCHEMY_DATABASE_URI": "sqlite:///demo.db", "BASE_URL": base_url}
    )
    with app.app_context():
        info = seed(app, fresh=True)
    click.echo("")
    click.echo(f"  Community Favorite demo on {base_url}/")
    click.echo(
        f"  Organizer login: {base_url}/admin  user: {info.username}  password: {info.password}"
    )
    click.echo("  Voter links (each votes once):")
    for link in info.voter_links:
        click.echo(f"    {link}")
    click.echo(f"  Ballot page: {base_url}/p/{info.poll_slug}")
    click.echo(f"  Results: {base_url}/p/{info.poll_slug}/results")
    click.echo(f"  Overlay: {info.overlay_url}")
    click.echo(f"  More voter links: {info.links_file}")
    click.echo("")
    if not no_serve:
        from werkzeug.serving import run_simple

        from voting.demo import RedactingRequestHandler

        run_simple("127.0.0.1", port, app, threaded=True, request_handler=RedactingRequestHandler)


def _domain_errors_as_sentences(command: click.Command) -> None:
    """Every command answers a domain error with its sentence (exit 1), never a traceback."""
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            _domain_errors_as_sentences(sub)
        return
    callback = command.callback
    if callback is None:
        return

    @functools.wraps(callback)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return callback(*args, **kwargs)
        except VotingError as exc:
            raise click.ClickException(exc.message) from None

    command.callback = run


_domain_errors_as_sentences(cli)


def main() -> None:
    """Console script entry point."""
    try:
        cli.main(prog_name="voting")
    except ConfigError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(2)
