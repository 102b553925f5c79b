"""Tallies equal a plain count of random ballots; the tie order is recomputable from the seed."""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Callable

from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support import project_slugs
from voting.domain import tally
from voting.services import polls

PROJECTS = [f"p{i}" for i in range(6)]


@given(
    ballots=st.lists(
        st.lists(st.sampled_from(PROJECTS), min_size=1, max_size=3, unique=True), max_size=60
    ),
    seed=st.text(min_size=1, max_size=20),
)
def test_rank_is_a_plain_count_ordered_by_votes_then_seed(
    ballots: list[list[str]], seed: str
) -> None:
    counts = tally.count(ballots, PROJECTS)
    plain = {p: sum(1 for b in ballots if p in b) for p in PROJECTS}
    assert counts == plain
    placings = tally.rank(counts, seed)
    assert [p.rank for p in placings] == list(range(1, len(PROJECTS) + 1))
    assert [p.votes for p in placings] == sorted(plain.values(), reverse=True)
    for a, b in itertools.pairwise(placings):
        if a.votes == b.votes:
            # Anyone can recompute the order: sha256("seed:slug"), smaller first.
            key = lambda s: hashlib.sha256(f"{seed}:{s}".encode()).hexdigest()  # noqa: E731
            assert key(a.project) < key(b.project)


def test_seed_commitment() -> None:
    seed = tally.new_seed()
    assert tally.seed_hash(seed) == hashlib.sha256(seed.encode()).hexdigest()
    assert len(seed) == 64


def test_revealed_steps_from_last_to_winner() -> None:
    placings = tally.rank({"a": 3, "b": 2, "c": 1}, "s")
    assert tally.revealed(placings, 0) == []
    assert [p.project for p in tally.revealed(placings, 1)] == ["c"]
    assert [p.project for p in tally.revealed(placings, 2)] == ["b", "c"]
    assert [p.project for p in tally.revealed(placings, 5)] == ["a", "b", "c"]


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_service_tally_equals_plain_count_for_both_methods(
    app: Flask, make_poll: Callable[..., str], mint: Callable[..., list[str]], data: st.DataObject
) -> None:
    method = data.draw(st.sampled_from(["plurality", "approval"]))
    slug = make_poll(
        method=method, max_choices=1 if method == "plurality" else 3, results_mode="live"
    )
    choices = project_slugs(app, slug)
    size = 1 if method == "plurality" else 3
    ballots = data.draw(
        st.lists(
            st.lists(st.sampled_from(choices), min_size=1, max_size=size, unique=True), max_size=12
        )
    )
    tokens = mint(slug, max(1, len(ballots)))
    client = app.test_client()
    for token, ballot in zip(tokens, ballots, strict=False):
        response = client.post(
            f"/api/polls/{slug}/ballots", json={"token": token, "choices": ballot}
        )
        assert response.status_code == 201
    with app.app_context():
        poll = polls.get_poll(slug)
        _, counts = polls.counted(poll)
        placings = [
            tally.Placing(project=r["project"], votes=r["votes"], rank=r["rank"])
            for r in polls.results_view(poll)["results"]
        ]
        seed = poll.tie_seed
    assert counts == tally.count(ballots, choices)
    assert placings == tally.rank(tally.count(ballots, choices), seed)
