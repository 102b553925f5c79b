"""An election from start to export: 1,200 tokens, seeded random voters, checks after every 100.

The voters go through the real API (the test client): first ballots, duplicate casts (409
already_voted, with the first receipt), revoked tokens (403), revotes on a second poll, and
ballots after the close (409 poll_not_open). After every 100 requests an independent check
compares the service with what the test itself recorded: the tally is a plain count of the
accepted ballots, the ballots in the database are exactly the tokens used, and no receipt was
lost or duplicated. At the end each poll is exported, `verify_export` passes, and the tie
order is recomputed from the export alone, the way README describes it.

The seed is printed; VOTING_ELECTION_SEED=<seed> replays a failing run.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import random
import secrets
import time
from collections import Counter
from dataclasses import dataclass, field
from itertools import groupby
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from tests.support import make_poll_on, mint_on, project_slugs
from voting.domain.statuses import Method, ResultsMode
from voting.domain.tokens import read_voter_token
from voting.extensions import db
from voting.models import Ballot
from voting.services import exports, issuing, polls
from voting.services.verification import read_board

SEED = int(os.environ.get("VOTING_ELECTION_SEED") or secrets.randbelow(2**32))
BATCH = 100


@dataclass
class Ledger:
    """What the test saw accepted on one poll, kept apart from anything the service says."""

    slug: str
    tokens: list[str]
    choices: list[str]
    current: dict[str, tuple[str, list[str]]] = field(default_factory=dict)  # token: ballot
    superseded: dict[str, list[str]] = field(default_factory=dict)  # receipt: choices
    revoked: list[str] = field(default_factory=list)
    unused: list[str] = field(default_factory=list)

    def counts(self) -> Counter[str]:
        found: Counter[str] = Counter({project: 0 for project in self.choices})
        for _, chosen in self.current.values():
            found.update(chosen)
        return found

    def counted(self) -> dict[str, list[str]]:
        """Receipt: sorted choices, for every ballot that counts now."""
        return {receipt: sorted(chosen) for receipt, chosen in self.current.values()}


class Election:
    """Casts ballots through the API, asserting each answer, and checks after every batch."""

    def __init__(self, app: Flask, client: FlaskClient, ledgers: list[Ledger]) -> None:
        self.app, self.client, self.ledgers = app, client, ledgers
        self.requests = 0
        self.answers: Counter[str] = Counter()

    def post(self, ledger: Ledger, token: str, chosen: list[str]) -> tuple[int, dict[str, Any]]:
        response = self.client.post(
            f"/api/polls/{ledger.slug}/ballots", json={"token": token, "choices": chosen}
        )
        self.requests += 1
        body = response.get_json()
        self.answers[f"{response.status_code} {body.get('error', 'receipt')}"] += 1
        return response.status_code, body

    def recorded(self) -> None:
        """An answer is checked and recorded: every BATCH requests, the independent check."""
        if self.requests % BATCH == 0:
            self.check()

    def cast(self, ledger: Ledger, token: str, chosen: list[str]) -> None:
        """A first ballot, or a revote where the poll allows it: it must count."""
        status, body = self.post(ledger, token, chosen)
        assert status == 201, (status, body)
        if token in ledger.current:
            old_receipt, old_choices = ledger.current[token]
            ledger.superseded[old_receipt] = sorted(old_choices)
        ledger.current[token] = (body["receipt"], chosen)
        self.recorded()

    def cast_again(self, ledger: Ledger, token: str, chosen: list[str]) -> None:
        status, body = self.post(ledger, token, chosen)
        assert (status, body["error"]) == (409, "already_voted"), body
        assert body["receipt"] == ledger.current[token][0]
        self.recorded()

    def refused(self, ledger: Ledger, token: str, chosen: list[str], code: str) -> None:
        status, body = self.post(ledger, token, chosen)
        assert body.get("error") == code, (status, body)
        assert status == {"invalid_token": 403, "poll_not_open": 409}[code]
        self.recorded()

    def check(self) -> None:
        """The independent check: tally, ballots per token, receipts."""
        for ledger in self.ledgers:
            with self.app.app_context():
                poll = polls.get_poll(ledger.slug)
                tally = polls.results_view(poll, organizer=True)
                rows = db.session.execute(
                    select(Ballot.token_id, Ballot.receipt).where(Ballot.poll_id == poll.id)
                ).all()
                signer = issuing.voter_signer()
                used = {read_voter_token(signer, t).token_id for t in ledger.current}
            where = f"{ledger.slug} after {self.requests} requests (seed {SEED})"
            public = self.client.get(f"/api/polls/{ledger.slug}/results").get_json()
            assert public["turnout"] == len(ledger.current), where
            if tally["results_mode"] == ResultsMode.SEALED and tally["status"] == "open":
                assert "results" not in public and "results" not in tally, where
            if "results" in tally:
                stated = {row["project"]: row["votes"] for row in tally["results"]}
                assert stated == dict(ledger.counts()), where
            assert tally["turnout"] == len(ledger.current), where
            assert {token_id for token_id, _ in rows} == used, where
            receipts = [receipt for _, receipt in rows]
            assert len(receipts) == len(set(receipts)) == len(used), where
            assert set(receipts) == set(ledger.counted()), where
            assert not set(receipts) & set(ledger.superseded), where


def tie_order_from_export(doc: dict[str, Any]) -> list[str]:
    """README's tie-break, written out: most votes first; within equal votes, projects in
    ascending order of sha256(f"{seed}:{slug}"), the seed being the one the export publishes."""
    seed = doc["poll"]["tie_seed"]
    assert hashlib.sha256(seed.encode()).hexdigest() == doc["poll"]["tie_seed_hash"]
    votes = Counter({c["project"]: 0 for c in doc["poll"]["choices"]})
    for ballot in doc["ballots"]:
        votes.update(set(ballot["choices"]))

    def key(slug: str) -> tuple[int, str]:
        return -votes[slug], hashlib.sha256(f"{seed}:{slug}".encode()).hexdigest()

    return sorted(votes, key=key)


def check_receipt_board(app: Flask, ledger: Ledger, doc: dict[str, Any]) -> None:
    """The public receipt board, as published, holds what the test recorded and the export.

    Its CSV (`receipt,choices,status`, choices `;`-joined and sorted, rows sorted by receipt)
    must equal the test's own ledger, and `voting verify`'s board check must pass on it.
    """
    expected = board_rows(ledger)
    published = [[b["receipt"], ";".join(sorted(b["choices"])), "counted"] for b in doc["ballots"]]
    assert published == [row for row in expected if row[2] == "counted"]
    response = app.test_client().get(f"/p/{ledger.slug}/receipts.csv")
    assert response.status_code == 200
    text = response.get_data(as_text=True)
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    assert rows[0] == ["receipt", "choices", "status"]
    assert rows[1:] == expected, f"{ledger.slug}: the board differs (seed {SEED})"
    assert exports.verify_export(doc, read_board(text)) == []


def board_rows(ledger: Ledger) -> list[list[str]]:
    """The receipt board's rows as the test recorded them (receipt, choices, status)."""
    rows = [[r, ";".join(c), "counted"] for r, c in ledger.counted().items()]
    rows += [[r, ";".join(c), "superseded"] for r, c in ledger.superseded.items()]
    return sorted(rows)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_an_election_from_first_ballot_to_verified_export(
    app: Flask, client: FlaskClient, capsys: pytest.CaptureFixture[str]
) -> None:
    with capsys.disabled():  # in CI's log, so a failure can be replayed
        print(f"\nelection seed {SEED} (VOTING_ELECTION_SEED={SEED} replays it)")
    started = time.monotonic()
    rng = random.Random(SEED)
    main = make_poll_on(app, "election", results_mode=ResultsMode.LIVE)
    second = make_poll_on(
        app,
        "election-revote",
        method=Method.APPROVAL,
        max_choices=3,
        allow_revote=True,
        results_mode=ResultsMode.SEALED,
    )
    a = Ledger(main, mint_on(app, main, 1000), project_slugs(app, main))
    b = Ledger(second, mint_on(app, second, 200), project_slugs(app, second))
    election = Election(app, client, [a, b])

    # 50 links cancelled before anyone votes; 60 kept back, to settle a tie (up to 50) and
    # for ballots after the close. The 890 others are the crowd. Only 8 of the 12 projects
    # get votes, so the other 4 tie at zero.
    a.revoked, reserve, crowd = a.tokens[:50], a.tokens[50:110], a.tokens[110:]
    with app.app_context():
        issuing.revoke(main, actor="test", tokens=a.revoked)
    favourites, weights = a.choices[:8], [8, 7, 6, 5, 5, 4, 3, 2]
    waiting_a, waiting_b = list(crowd), list(b.tokens)
    rng.shuffle(waiting_a)
    while waiting_a or waiting_b:
        roll = rng.random()
        if roll < 0.70 and waiting_a:
            election.cast(a, waiting_a.pop(), rng.choices(favourites, weights)[:1])
        elif roll < 0.75 and a.current:
            token = rng.choice(list(a.current))
            election.cast_again(a, token, rng.choices(favourites, weights)[:1])
        elif roll < 0.78:
            election.refused(a, rng.choice(a.revoked), favourites[:1], "invalid_token")
        elif roll < 0.95 and waiting_b:
            election.cast(b, waiting_b.pop(), rng.sample(b.choices[:6], rng.randint(1, 3)))
        elif b.current:
            token = rng.choice(list(b.current))  # a revote: replaces that token's ballot
            election.cast(b, token, rng.sample(b.choices[:6], rng.randint(1, 3)))

    # A tie above zero: the two closest favourites are made equal with reserved tokens.
    counts = a.counts()
    gap, low, _ = min(
        (counts[q] - counts[p], p, q)
        for p in favourites
        for q in favourites
        if p != q and counts[q] >= counts[p]
    )
    assert gap <= 50, f"no two favourites within 50 votes: {counts} (seed {SEED})"
    for _ in range(gap):
        election.cast(a, reserve.pop(), [low])
    a.unused = reserve
    election.check()

    with app.app_context():
        polls.close_poll(main, actor="test")
        polls.close_poll(second, actor="test")
    for token in a.unused:
        election.refused(a, token, favourites[:1], "poll_not_open")
    for token in rng.sample(sorted(a.current), 5):
        election.refused(a, token, favourites[:1], "poll_not_open")
    for token in rng.sample(sorted(b.current), 5):
        election.refused(b, token, b.choices[:1], "poll_not_open")
    election.check()

    docs = {}
    for ledger in (a, b):
        with app.app_context():
            polls.reveal(ledger.slug, actor="test")
            doc = docs[ledger.slug] = exports.export_poll(ledger.slug, actor="test")
        assert exports.verify_export(doc) == []
        assert {r["receipt"]: r["choices"] for r in doc["ballots"]} == ledger.counted()
        stated = [row["project"] for row in doc["tally"]["results"]]
        assert stated == tie_order_from_export(doc), f"{ledger.slug} (seed {SEED})"
        assert [row["rank"] for row in doc["tally"]["results"]] == list(range(1, len(stated) + 1))
        check_receipt_board(app, ledger, doc)
    # The ties this election was built to have are in the export (a zero tie and one above).
    tied = [
        votes
        for votes, group in groupby(r["votes"] for r in docs[main]["tally"]["results"])
        if len(list(group)) > 1
    ]
    assert 0 in tied and any(v > 0 for v in tied), tied
    assert b.superseded, "no revote happened"

    elapsed = time.monotonic() - started
    with app.app_context():
        backend = db.engine.dialect.name
    with capsys.disabled():
        print(
            f"{election.requests} ballot requests in {elapsed:.1f} s on "
            f"{backend}: {dict(sorted(election.answers.items()))}"
        )


def test_the_board_rows_follow_the_agreed_format() -> None:
    """The helper the board check will use: sorted by receipt, choices sorted and `;`-joined."""
    ledger = Ledger("p", [], ["a", "b", "c"])
    ledger.current = {"t1": ("R2", ["c", "a"]), "t2": ("R1", ["b"])}
    ledger.superseded = {"R0": ["b", "c"]}
    assert board_rows(ledger) == [
        ["R0", "b;c", "superseded"],
        ["R1", "b", "counted"],
        ["R2", "a;c", "counted"],
    ]
    assert tie_order_from_export(
        {
            "poll": {
                "tie_seed": "s",
                "tie_seed_hash": hashlib.sha256(b"s").hexdigest(),
                "choices": [{"project": p} for p in "abc"],
            },
            "ballots": [{"choices": ["b"]}],
        }
    ) == ["b", *sorted("ac", key=lambda p: hashlib.sha256(f"s:{p}".encode()).hexdigest())]
