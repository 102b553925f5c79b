"""`voting demo`: a dozen shipped projects, an organizer, an open live poll, a few links, served."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import click
from flask import Flask
from werkzeug.serving import WSGIRequestHandler, run_simple

from voting.app import create_app
from voting.database import upgrade_schema
from voting.domain.statuses import ResultsMode
from voting.extensions import db
from voting.links import voter_url
from voting.logs import redact
from voting.models import utcnow
from voting.services import issuing, organizers, overlay, polls, projects

DEMO_POLL = "community-favorite"


class RedactingRequestHandler(WSGIRequestHandler):
    """The development server's request log, with voter tokens redacted."""

    def log(self, type: str, message: str, *args: Any) -> None:
        clean = tuple(redact(a) if isinstance(a, str) else a for a in args)
        super().log(type, redact(message), *clean)


@dataclass
class DemoInfo:
    username: str
    password: str
    poll_slug: str
    voter_links: list[str]
    overlay_url: str
    links_file: Path


def seed(app: Flask, *, fresh: bool = True) -> DemoInfo:
    """Build the demo database from nothing and return what to print."""
    database = Path(app.instance_path) / "demo.db"
    if fresh:
        db.engine.dispose()
        for suffix in ("", "-wal", "-shm"):
            Path(f"{database}{suffix}").unlink(missing_ok=True)
    upgrade_schema()
    data = resources.files("voting").joinpath("demo_data/projects.json").read_bytes()
    projects.import_projects(data, "projects.json", actor="demo")
    password = secrets.token_urlsafe(12)
    organizers.create_organizer("organizer", password, actor="demo")
    spec = polls.PollSpec(
        slug=DEMO_POLL,
        title="NumHack Community Favorite (demo)",
        description="Pick the project you would most like to see win. One vote per link.",
        results_mode=ResultsMode.LIVE,
        closes_at=utcnow().replace(microsecond=0) + timedelta(hours=2),
    )
    poll = polls.create_poll(spec, actor="demo")
    polls.open_poll(DEMO_POLL, actor="demo")
    minted = issuing.mint_tokens(DEMO_POLL, 50, actor="demo", batch="demo")
    links_file = Path(app.instance_path) / "demo-links.csv"
    links_file.write_text(minted.csv_text(), encoding="utf-8")
    links = [voter_url(t) for t in minted.tokens[:3]]
    return DemoInfo(
        username="organizer",
        password=password,
        poll_slug=poll.slug,
        voter_links=links,
        overlay_url=overlay.overlay_url(poll),
        links_file=links_file,
    )


@click.command("demo")
@click.option("--port", type=click.IntRange(1, 65535), default=5000, show_default=True)
@click.option("--no-serve", is_flag=True, help="Seed and print, but do not serve.")
def demo_command(port: int, no_serve: bool) -> None:
    """Seed demo projects, an organizer and an open poll; print links; serve on 127.0.0.1."""
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
        run_simple("127.0.0.1", port, app, threaded=True, request_handler=RedactingRequestHandler)
