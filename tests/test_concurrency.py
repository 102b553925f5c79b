"""The concurrency rules, tested directly: many threads, one token; votes racing the close."""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from tests.support import in_app, project_slugs
from voting.models import Ballot
from voting.services import polls


def votes_in(doc: dict[str, Any]) -> dict[str, int]:
    """Votes per project, as a results document (live mode) states them."""
    return {row["project"]: row["votes"] for row in doc["results"]}


def run_threads(n: int, target: Callable[[int], None]) -> None:
    threads = [threading.Thread(target=target, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a thread hung"


def test_200_threads_one_token_one_ballot(
    app: Flask, make_poll: Callable[..., str], mint: Callable[..., list[str]]
) -> None:
    slug = make_poll()
    [token] = mint(slug, 1)
    choice = project_slugs(app, slug)[0]
    barrier = threading.Barrier(200)
    statuses: list[int] = []
    errors: list[str] = []
    lock = threading.Lock()

    def vote(_: int) -> None:
        client = app.test_client()
        barrier.wait()
        response = client.post(
            f"/api/polls/{slug}/ballots", json={"token": token, "choices": [choice]}
        )
        with lock:
            statuses.append(response.status_code)
            if response.status_code == 409 and response.get_json()["error"] != "already_voted":
                errors.append(response.get_json()["error"])

    run_threads(200, vote)
    counts = Counter(statuses)
    assert counts[201] == 1, counts
    assert counts[409] == 199, counts
    assert not errors
    assert in_app(app, select(func.count(Ballot.id))) == 1


@pytest.mark.parametrize("round_", range(20))
def test_votes_racing_the_close(
    app: Flask, make_poll: Callable[..., str], mint: Callable[..., list[str]], round_: int
) -> None:
    slug = make_poll(results_mode="live")
    voters = 8
    per_voter = 6
    tokens = mint(slug, voters * per_voter)
    choices = project_slugs(app, slug)
    start = threading.Event()
    results: list[tuple[int, str | None]] = []
    lock = threading.Lock()

    def vote(i: int) -> None:
        client = app.test_client()
        rng = random.Random(round_ * 100 + i)
        start.wait()
        for token in tokens[i * per_voter : (i + 1) * per_voter]:
            response = client.post(
                f"/api/polls/{slug}/ballots",
                json={"token": token, "choices": [rng.choice(choices)]},
            )
            body = response.get_json()
            with lock:
                results.append((response.status_code, body.get("error")))

    closer_tally: dict[str, int] = {}

    def close(_: int) -> None:
        start.wait()
        # Let some ballots in first, at a point that varies from round to round.
        threading.Event().wait(0.005 * (round_ % 5))
        with app.app_context():
            polls.close_poll(slug, actor="test")
            # What the live snapshot counts right after the close (live.notify's recompute).
            documents = polls.live_documents(slug)
            assert documents is not None
            closer_tally.update(votes_in(documents.public))

    start_threads = [threading.Thread(target=vote, args=(i,)) for i in range(voters)]
    closer = threading.Thread(target=close, args=(0,))
    for t in [*start_threads, closer]:
        t.start()
    start.set()
    for t in [*start_threads, closer]:
        t.join(timeout=120)

    with app.app_context():
        final = votes_in(polls.results_view(polls.get_poll(slug)))
    accepted = sum(1 for status, _ in results if status == 201)
    refused = [(s, e) for s, e in results if s != 201]
    assert all((s, e) == (409, "poll_not_open") for s, e in refused), refused
    assert closer_tally == final
    assert sum(final.values()) == accepted
    assert in_app(app, select(func.count(Ballot.id))) == accepted
