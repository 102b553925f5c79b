"""Results modes everywhere: no public response carries counts the mode hides (rule 5).

While ballots flow, every public surface is scanned: the JSON API, the event stream (public,
overlay key, an organizer asking for the public view), the results page, the ballot and home
pages, and the overlay. A control stream (a logged-in organizer) proves the scan can see
counts when they are there.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.live_support import SSEClient, get_text, post_ballot
from tests.support import project_slugs
from voting.services import organizers, overlay, polls

HEAVY = ["flood-watch"] * 5 + ["crop-doctor"] * 3 + ["bias-lens"] * 2 + ["paper-trail"]


@pytest.fixture
def app(make_app: Callable[..., Flask]) -> Flask:
    return make_app(LIVE_HEARTBEAT_SECONDS=1, LIVE_MIN_INTERVAL=0.05)


def counts_in(value: Any) -> bool:
    """Does a JSON document hold per-project counts anywhere?"""
    if isinstance(value, dict):
        if "votes" in value or isinstance(value.get("results"), list):
            return True
        return any(counts_in(v) for v in value.values())
    if isinstance(value, list):
        return any(counts_in(v) for v in value)
    return False


def initial_doc(html: str) -> Any:
    match = re.search(
        r'<script type="application/json" id="initial-doc">(.*?)</script>', html, re.S
    )
    assert match, "the overlay embeds its first document"
    return json.loads(match.group(1))


class Scanner:
    """Fetches every public surface and records what leaked."""

    def __init__(self, base: str, slug: str, key: str, cookie: str, titles: dict[str, str]) -> None:
        self.base, self.slug, self.key, self.cookie, self.titles = base, slug, key, cookie, titles
        self.scans = 0

    def scan(self, allowed: set[str]) -> None:
        """`allowed`: the projects whose counts may be public now (the revealed ones)."""
        hidden_titles = [t for p, t in self.titles.items() if p not in allowed]
        status, body = get_text(f"{self.base}/api/polls/{self.slug}/results")
        assert status == 200
        doc = json.loads(body)
        shown = {r["project"] for r in doc.get("results", [])}
        assert shown <= allowed, ("API results", shown - allowed)
        if not allowed:
            assert not counts_in(doc), doc
        status, body = get_text(f"{self.base}/api/polls/{self.slug}")
        assert status == 200 and not counts_in(json.loads(body))
        # Pages are public even in an organizer's browser: it may be on the projector.
        for headers in ({}, {"Cookie": self.cookie}):
            status, page = get_text(f"{self.base}/p/{self.slug}/results", headers)
            assert status == 200
            for title in hidden_titles:
                assert title not in page, ("results page", title)
            if not allowed:
                assert 'class="votes"' not in page

            for path in (f"/p/{self.slug}", "/"):
                status, page = get_text(self.base + path, headers)
                assert status in (200, 403) and 'class="votes"' not in page, path

            status, page = get_text(f"{self.base}/overlay/{self.slug}?key={self.key}", headers)
            assert status == 200
            first = initial_doc(page)
            assert {r["project"] for r in first.get("results", [])} <= allowed
            for title in hidden_titles:
                assert title not in page, ("overlay", title)
        self.scans += 1


@pytest.mark.parametrize("mode", ["hidden", "sealed"])
def test_no_public_response_carries_hidden_counts(
    mode: str,
    app: Flask,
    client: FlaskClient,
    live_server: str,
    make_poll: Callable[..., str],
    mint: Callable[..., list[str]],
) -> None:
    slug = make_poll(results_mode=mode, title="Scan me")
    tokens = mint(slug, len(HEAVY) * 3)
    with app.app_context():
        poll = polls.get_poll(slug)
        key = overlay.overlay_key(poll)
        titles = {c.project.slug: c.project.title for c in poll.choices}
        organizer = organizers.create_organizer("org", "correct horse battery", actor="t")
        organizer_id = organizer.id
    with client.session_transaction() as session:
        session["_user_id"] = str(organizer_id)
    cookie = f"session={client.get_cookie('session').value}"  # type: ignore[union-attr]
    assert len(project_slugs(app, slug)) == 12

    events = f"{live_server}/api/polls/{slug}/events"
    public_streams = [
        SSEClient(events),
        SSEClient(f"{events}?key={key}"),
        SSEClient(f"{events}?view=public", {"Cookie": cookie}),
    ]
    control = SSEClient(events, {"Cookie": cookie})
    scanner = Scanner(live_server, slug, key, cookie, titles)
    try:
        # Ballots flow while everything is scanned.
        statuses: list[int] = []

        def vote() -> None:
            for token, choice in zip(tokens, HEAVY * 3, strict=True):
                try:
                    statuses.append(post_ballot(live_server, slug, token, [choice]))
                except OSError:
                    statuses.append(0)  # the server went away: the test has failed already
                time.sleep(0.01)

        voter = threading.Thread(target=vote)
        voter.start()
        while voter.is_alive():
            scanner.scan(allowed=set())
        voter.join()
        assert statuses.count(201) == len(tokens)
        for stream in [*public_streams, control]:
            stream.wait_for(lambda e: e.data.get("turnout") == len(tokens), 10)
        scanner.scan(allowed=set())
        assert scanner.scans >= 2

        with app.app_context():
            polls.close_poll(slug, actor="test")
        for stream in [*public_streams, control]:
            stream.wait_for(lambda e: e.data.get("status") == "closed", 10)
        scanner.scan(allowed=set())

        # The control: the organizer's own stream does carry counts (hidden: all along;
        # sealed: from the close), so the scan above would have seen a leak.
        organizer_doc = control.tallies()[-1].data
        assert {r["project"]: r["votes"] for r in organizer_doc["results"]}["flood-watch"] == 15
        if mode == "sealed":
            assert all(
                "results" not in e.data for e in control.tallies() if e.data["status"] == "open"
            )
        else:
            assert any("results" in e.data for e in control.tallies() if e.data["status"] == "open")

        # The reveal's first step shows exactly the last place, nothing above it.
        with app.app_context():
            polls.reveal(slug, actor="test", step=True)
            last = polls.results_view(polls.get_poll(slug), organizer=True)["results"][-1][
                "project"
            ]
        for stream in public_streams:
            step = stream.wait_for(lambda e: e.data.get("status") == "revealing", 10)
            assert [r["project"] for r in step.data["results"]] == [last]
        scanner.scan(allowed={last})

        with app.app_context():
            polls.reveal(slug, actor="test")
        for stream in public_streams:
            done = stream.wait_for(lambda e: e.data.get("status") == "revealed", 10)
            assert len(done.data["results"]) == 12 and done.data["tie_seed"]
    finally:
        for stream in [*public_streams, control]:
            stream.close()

    # Everything the public streams ever carried before the reveal: no counts at all.
    for stream in public_streams:
        before = [e.data for e in stream.tallies() if e.data["status"] in ("open", "closed")]
        assert before and not any(counts_in(doc) for doc in before)
