"""`voting polls` (create, open, close, reveal) and `voting overlay-url`."""

from __future__ import annotations

from typing import Any

import click
from flask.cli import with_appcontext

from voting.cli.base import Command, Group, when
from voting.domain.statuses import Eligibility, Method, ResultsMode
from voting.services import rehearsals
from voting.services.overlay import overlay_url, rotate_overlay_key
from voting.services.polls import (
    PollSpec,
    close_poll,
    create_poll,
    get_poll,
    open_poll,
    reveal,
    turnout,
)


@click.group(cls=Group)
def polls() -> None:
    """Polls and their lifecycle."""


@polls.command("create")
@click.argument("slug")
@click.option("--title", required=True)
@click.option("--description", default="")
@click.option(
    "--award",
    default="",
    help='The prize the winner card names, e.g. "Best Demo Award" (default: the title).',
)
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
    spec = PollSpec(
        slug=slug,
        title=options["title"],
        description=options["description"],
        award=options["award"],
        method=options["method"],
        max_choices=options["max_choices"],
        eligibility=options["eligibility"],
        results_mode=options["results"],
        allow_revote=options["revote"],
        categories=options["categories"],
        opens_at=when(options["opens_at"]),
        closes_at=when(options["closes_at"]),
    )
    poll = create_poll(spec, actor="cli")
    click.echo(f"Created poll {poll.slug!r} with {len(poll.choices)} projects (draft).")


@polls.command("open")
@click.argument("slug")
@with_appcontext
def polls_open(slug: str) -> None:
    """Open a poll for voting (idempotent)."""
    poll = open_poll(slug, actor="cli")
    click.echo(f"Poll {poll.slug!r} is open. Tie-break seed hash: {poll.tie_seed_hash}")


@polls.command("close")
@click.argument("slug")
@with_appcontext
def polls_close(slug: str) -> None:
    """Close a poll (idempotent); prints the final turnout."""
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
    poll = reveal(slug, actor="cli", step=step, auto_seconds=auto_seconds)
    click.echo(
        f"Poll {poll.slug!r}: {poll.status}, {poll.reveal_step} place(s) shown. Tie-break seed: {poll.tie_seed}"
    )


@polls.command("rehearse")
@click.argument("slug")
@click.option(
    "--reset", is_flag=True, help="Empty the rehearsal (tokens, ballots) back to a draft."
)
@click.option("--delete", is_flag=True, help="Delete the rehearsal.")
@with_appcontext
def polls_rehearse(slug: str, reset: bool, delete: bool) -> None:
    """Make a rehearsal copy of a poll (same projects, its own tokens), or reset or delete it.

    SLUG is the real poll (or its rehearsal). The real poll is never changed.
    """
    if reset and delete:
        raise click.UsageError("Choose --reset or --delete, not both.")
    target = slug if slug.endswith(rehearsals.SUFFIX) else rehearsals.rehearsal_slug(slug)
    if reset:
        poll = rehearsals.reset_rehearsal(target, actor="cli")
        click.echo(f"Rehearsal {poll.slug!r} is a fresh draft again: no tokens, no ballots.")
    elif delete:
        of = rehearsals.delete_rehearsal(target, actor="cli")
        click.echo(f"Rehearsal {target!r} deleted; {of!r} was never touched.")
    else:
        poll = rehearsals.create_rehearsal(slug, actor="cli")
        click.echo(
            f"Rehearsal {poll.slug!r} created (draft) with {len(poll.choices)} projects. Run the "
            f"day on it: voting polls open {poll.slug}; voting tokens mint {poll.slug} ...; "
            f"then voting polls rehearse {slug} --reset (or --delete)."
        )


@click.command("overlay-url", cls=Command)
@click.argument("slug")
@click.option(
    "--rotate", is_flag=True, help="Revoke every overlay URL handed out so far and print a new one."
)
@with_appcontext
def overlay_url_command(slug: str, rotate: bool) -> None:
    """Print the stream overlay's signed, read-only URL (for an OBS browser source)."""
    poll = get_poll(slug)
    url = rotate_overlay_key(poll, actor="cli") if rotate else overlay_url(poll)
    if rotate:
        click.echo("Rotated: overlays using an older URL stop updating.", err=True)
    click.echo(url)
    click.echo(
        "Options: &theme=dark|light  &layout=bars|podium  &top=N  (OBS browser source, 1920x1080)",
        err=True,
    )
