"""Casting ballots through the service and the JSON API (DESIGN.md rules 1, 2 and 9)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select, update

from voting.domain.errors import AlreadyVoted, InvalidRequest, InvalidToken, NotFound, PollNotOpen
from voting.domain.tokens import VoterToken, read_voter_token, sign_voter_token
from voting.extensions import db
from voting.models import Ballot, BallotChoice, Poll, PollChoice, Project, utcnow
from voting.services import ballots, issuing, polls

MakePoll = Callable[..., str]
Mint = Callable[..., list[str]]


def choice_slugs(slug: str) -> list[str]:
    return [c["project"] for c in polls.poll_document(polls.get_poll(slug))["choices"]]


def ballot_count(slug: str) -> int:
    poll = polls.get_poll(slug)
    return int(
        db.session.execute(
            select(func.count(Ballot.id)).where(Ballot.poll_id == poll.id)
        ).scalar_one()
    )


def chosen_projects(slug: str) -> list[str]:
    poll = polls.get_poll(slug)
    rows = db.session.execute(
        select(Project.slug)
        .join(BallotChoice, BallotChoice.project_id == Project.id)
        .where(BallotChoice.poll_id == poll.id)
        .order_by(Project.slug)
    )
    return list(rows.scalars())


def test_a_ballot_counts_once(ctx: Flask, make_poll: MakePoll, mint: Mint) -> None:
    slug = make_poll()
    [token] = mint(slug)
    first = choice_slugs(slug)[0]
    result = ballots.cast_ballot(slug, token, [first])
    assert len(result.receipt) == 14 and not result.replaced
    assert ballot_count(slug) == 1
    assert chosen_projects(slug) == [first]
    with pytest.raises(AlreadyVoted) as excinfo:
        ballots.cast_ballot(slug, token, [choice_slugs(slug)[1]])
    assert excinfo.value.receipt == result.receipt
    assert ballot_count(slug) == 1


def test_api_answers_follow_the_contract(app: Flask, client: FlaskClient) -> None:
    with app.app_context():
        polls_slug = _open_poll_with_projects(app)
        [token] = issuing.mint_tokens(polls_slug, 1, actor="test").tokens
        first = choice_slugs(polls_slug)[0]
    url = f"/api/polls/{polls_slug}/ballots"
    created = client.post(url, json={"token": token, "choices": [first]})
    assert created.status_code == 201 and set(created.json or {}) == {"receipt"}
    again = client.post(url, json={"token": token, "choices": [first]})
    assert again.status_code == 409
    assert again.json == {
        "error": "already_voted",
        "message": again.json["message"],
        "receipt": created.json["receipt"],
    }
    assert client.post(url, data="nope").status_code == 400
    assert client.post(url, json={"choices": [first]}).json["error"] == "invalid_token"
    assert client.post(url, json={"token": token}).json["error"] == "invalid_request"
    missing = client.post("/api/polls/nope/ballots", json={"token": token, "choices": [first]})
    assert missing.status_code == 404


def _open_poll_with_projects(app: Flask) -> str:
    from tests.support import import_samples

    import_samples()
    polls.create_poll(polls.PollSpec(slug="api-poll", title="API"), actor="test")
    polls.open_poll("api-poll", actor="test")
    return "api-poll"


@pytest.mark.parametrize(
    "choices, message",
    [
        ("flood-watch", "must be a list"),
        ([1], "must be a list"),
        ([], "at least one"),
        (["nope"], "is not a project in this poll"),
        (["x"] * 2, "only once"),
        ([f"p{i}" for i in range(500)], "at most 1 project"),
    ],
)
def test_bad_choices_are_refused(
    ctx: Flask, make_poll: MakePoll, mint: Mint, choices: object, message: str
) -> None:
    slug = make_poll()
    [token] = mint(slug)
    with pytest.raises(InvalidRequest, match=message):
        ballots.cast_ballot(slug, token, choices)
    assert ballot_count(slug) == 0


def test_approval_takes_several_choices(ctx: Flask, make_poll: MakePoll, mint: Mint) -> None:
    slug = make_poll(method="approval", max_choices=3)
    [token] = mint(slug)
    picked = sorted(choice_slugs(slug)[:3])
    ballots.cast_ballot(slug, token, picked)
    assert chosen_projects(slug) == picked
    [other] = mint(slug)
    with pytest.raises(InvalidRequest, match="at most 3 projects"):
        ballots.cast_ballot(slug, other, choice_slugs(slug)[:4])


def test_withdrawn_project_cannot_be_chosen(ctx: Flask, make_poll: MakePoll, mint: Mint) -> None:
    slug = make_poll()
    [token] = mint(slug)
    first = choice_slugs(slug)[0]
    project_id = db.session.execute(select(Project.id).where(Project.slug == first)).scalar_one()
    db.session.execute(
        update(PollChoice).where(PollChoice.project_id == project_id).values(withdrawn=True)
    )
    db.session.commit()
    with pytest.raises(InvalidRequest, match="not a project in this poll"):
        ballots.cast_ballot(slug, token, [first])


def test_own_team_project_is_refused(ctx: Flask, make_poll: MakePoll, mint: Mint) -> None:
    slug = make_poll()
    [plain] = mint(slug)
    signer = issuing.voter_signer()
    decoded = read_voter_token(signer, plain)
    own, other = choice_slugs(slug)[:2]
    own_id = db.session.execute(select(Project.id).where(Project.slug == own)).scalar_one()
    token = sign_voter_token(
        signer,
        VoterToken(
            poll_id=decoded.poll_id, token_id=decoded.token_id, excluded=frozenset({own_id})
        ),
    )
    with pytest.raises(InvalidRequest, match="your own team"):
        ballots.cast_ballot(slug, token, [own])
    assert ballots.cast_ballot(slug, token, [other]).receipt


def test_tokens_that_do_not_count(ctx: Flask, make_poll: MakePoll, mint: Mint) -> None:
    slug = make_poll()
    other_slug = make_poll()
    first = choice_slugs(slug)[0]
    [foreign] = mint(other_slug)
    with pytest.raises(InvalidToken, match="another poll"):
        ballots.cast_ballot(slug, foreign, [first])
    poll = polls.get_poll(slug)
    never_issued = sign_voter_token(
        issuing.voter_signer(), VoterToken(poll_id=poll.id, token_id="x" * 22)
    )
    with pytest.raises(InvalidToken, match="never issued"):
        ballots.cast_ballot(slug, never_issued, [first])
    [revoked] = mint(slug)
    issuing.revoke(slug, actor="test", tokens=[revoked])
    with pytest.raises(InvalidToken, match="cancelled"):
        ballots.cast_ballot(slug, revoked, [first])
    with pytest.raises(InvalidToken):
        ballots.cast_ballot(slug, revoked[:-2] + "xx", [first])
    with pytest.raises(InvalidToken):
        ballots.cast_ballot(slug, None, [first])
    with pytest.raises(NotFound):
        ballots.cast_ballot("no-such-poll", foreign, [first])
    assert ballot_count(slug) == 0


def test_only_an_open_poll_takes_ballots(ctx: Flask, make_poll: MakePoll, mint: Mint) -> None:
    draft = make_poll(open_=False)
    [token] = mint(draft)
    with pytest.raises(PollNotOpen, match="not opened yet"):
        ballots.cast_ballot(draft, token, [choice_slugs(draft)[0]])

    closed = make_poll()
    [token] = mint(closed)
    polls.close_poll(closed, actor="test")
    with pytest.raises(PollNotOpen, match="closed"):
        ballots.cast_ballot(closed, token, [choice_slugs(closed)[0]])

    # The schedule closes a poll even before anyone records the close.
    scheduled = make_poll()
    [token] = mint(scheduled)
    db.session.execute(
        update(Poll).where(Poll.slug == scheduled).values(closes_at=utcnow() - timedelta(seconds=1))
    )
    db.session.commit()
    with pytest.raises(PollNotOpen, match="closed"):
        ballots.cast_ballot(scheduled, token, [choice_slugs(scheduled)[0]])
    for slug in (draft, closed, scheduled):
        assert ballot_count(slug) == 0


def test_revote_replaces_the_ballot(ctx: Flask, make_poll: MakePoll, mint: Mint) -> None:
    slug = make_poll(allow_revote=True)
    [token] = mint(slug)
    first, second = choice_slugs(slug)[:2]
    one = ballots.cast_ballot(slug, token, [first])
    two = ballots.cast_ballot(slug, token, [second])
    assert two.replaced and two.receipt != one.receipt
    assert ballot_count(slug) == 1
    assert chosen_projects(slug) == [second]


def test_a_ballot_waits_for_a_close_in_progress_and_is_refused(
    app: Flask, ctx: Flask, make_poll: MakePoll, mint: Mint
) -> None:
    """Rule 2: the ballot queues behind a close in progress, then sees the poll closed.

    PostgreSQL: its key-share lock waits for the close's FOR UPDATE. SQLite: its
    BEGIN IMMEDIATE waits for the closer's write lock (FOR UPDATE is not SQL there).
    """
    import threading

    slug = make_poll()
    [token] = mint(slug)
    first = choice_slugs(slug)[0]
    outcome: list[object] = []

    def cast() -> None:
        with app.app_context():
            try:
                outcome.append(ballots.cast_ballot(slug, token, [first]))
            except PollNotOpen as exc:
                outcome.append(exc)
            finally:
                db.session.remove()

    with db.engine.connect() as closer:
        closer.execute(select(Poll.id).where(Poll.slug == slug).with_for_update())
        closer.execute(update(Poll).where(Poll.slug == slug).values(status="closed"))
        voter = threading.Thread(target=cast)
        voter.start()
        voter.join(timeout=0.5)
        assert voter.is_alive(), "the ballot did not wait for the close's lock"
        closer.commit()
    voter.join(timeout=10)
    assert len(outcome) == 1 and isinstance(outcome[0], PollNotOpen)
    assert ballot_count(slug) == 0


def test_rate_limited_ballot_says_when_to_retry(make_app: Callable[..., Flask]) -> None:
    app = make_app(
        RATELIMIT_ENABLED=True,
        RATELIMIT_STORAGE_URI="memory://",
        RATELIMIT_BALLOT_PER_TOKEN="1/minute",
    )
    with app.app_context():
        slug = _open_poll_with_projects(app)
        [token] = issuing.mint_tokens(slug, 1, actor="test").tokens
        first = choice_slugs(slug)[0]
    client = app.test_client()
    url = f"/api/polls/{slug}/ballots"
    ok = client.post(url, json={"token": token, "choices": [first]})
    assert ok.status_code == 201
    # A first ballot consults no counter, so it has no X-RateLimit-* headers (issue 16).
    assert "X-RateLimit-Remaining" not in ok.headers
    limited = client.post(url, json={"token": token, "choices": [first]})
    assert limited.status_code == 429
    assert limited.headers["X-RateLimit-Limit"] == "0"  # 1/minute: the ballot was the one
    assert limited.json is not None and limited.json["error"] == "rate_limited"
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
