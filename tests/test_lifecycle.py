"""Opening, closing, the schedule and the staged reveal."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from datetime import datetime, timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from tests.support import in_app, project_slugs
from voting.domain import schedule, tally
from voting.domain.errors import InvalidRequest, PollStateError
from voting.extensions import db
from voting.models import AuditEvent, BallotChoice, Poll, Project, utcnow
from voting.services import audit, polls


def reschedule(app: Flask, slug: str, **times: datetime) -> None:
    """Move a poll's opens_at / closes_at behind the services' back, as the clock would."""
    with app.app_context():
        poll = polls.get_poll(slug)
        for name, moment in times.items():
            setattr(poll, name, moment)
        db.session.commit()


def plain_count(poll: Poll) -> dict[str, int]:
    """Votes per active project, counted in Python from the stored ballots (no GROUP BY)."""
    rows = db.session.execute(
        select(BallotChoice.ballot_id, Project.slug)
        .join(Project, Project.id == BallotChoice.project_id)
        .where(BallotChoice.poll_id == poll.id)
    )
    by_ballot: dict[int, list[str]] = defaultdict(list)
    for ballot_id, slug in rows:
        by_ballot[ballot_id].append(slug)
    active = [c.project.slug for c in poll.choices if not c.withdrawn]
    return tally.count(by_ballot.values(), active)


def vote(client: FlaskClient, slug: str, token: str, choice: str) -> int:
    body = {"token": token, "choices": [choice]}
    return client.post(f"/api/polls/{slug}/ballots", json=body).status_code


def test_open_close_are_idempotent_and_audited_once(
    app: Flask, make_poll: Callable[..., str]
) -> None:
    slug = make_poll(open_=False)
    with app.app_context():
        first = polls.open_poll(slug, actor="ana")
        opened_at = first.opened_at
        assert polls.open_poll(slug, actor="ana").opened_at == opened_at
        polls.close_poll(slug, actor="ana")
        closed_at = polls.get_poll(slug).closed_at
        polls.close_poll(slug, actor="ana")
        assert polls.get_poll(slug).closed_at == closed_at
        with pytest.raises(PollStateError, match="cannot open again"):
            polls.open_poll(slug, actor="ana")
        actions = [
            e.action
            for e in db.session.execute(select(AuditEvent).order_by(AuditEvent.id)).scalars()
        ]
    assert actions.count("poll.open") == 1 and actions.count("poll.close") == 1


def test_closing_a_draft_is_refused(app: Flask, make_poll: Callable[..., str]) -> None:
    slug = make_poll(open_=False)
    with app.app_context(), pytest.raises(PollStateError, match="never opened"):
        polls.close_poll(slug, actor="ana")


def test_schedule_applies_without_a_background_job(
    app: Flask, make_poll: Callable[..., str], mint: Callable[..., list[str]]
) -> None:
    now = utcnow()
    slug = make_poll(
        open_=False, opens_at=now + timedelta(hours=1), closes_at=now + timedelta(hours=2)
    )
    [token] = mint(slug, 1)
    choice = project_slugs(app, slug)[0]
    client = app.test_client()
    assert vote(client, slug, token, choice) == 409
    with app.app_context():
        poll = polls.get_poll(slug)
        assert polls.effective_status(poll) == "draft"
        assert polls.effective_status(poll, now + timedelta(minutes=61)) == "open"
        assert polls.effective_status(poll, now + timedelta(minutes=121)) == "closed"
    # Move the window so that it is open now.
    reschedule(app, slug, opens_at=now - timedelta(minutes=5))
    assert client.get(f"/api/polls/{slug}").get_json()["status"] == "open"
    assert vote(client, slug, token, choice) == 201
    reschedule(app, slug, closes_at=utcnow() - timedelta(seconds=1))
    results = client.get(f"/api/polls/{slug}/results").get_json()
    assert results["status"] == "closed" and results["turnout"] == 1
    stored = in_app(app, select(Poll).where(Poll.slug == slug))
    # The first reader recorded the scheduled close, at the scheduled moment.
    assert stored.status == "closed"
    assert abs((stored.closed_at - stored.closes_at).total_seconds()) < 1
    client.get(f"/api/polls/{slug}/results")
    # The audit log says the schedule opened and closed the poll, once each.
    with app.app_context():
        entries = audit.all_entries()
        assert audit.verify_chain(entries) == []
    scheduled = [(e["actor"], e["action"]) for e in entries if e["poll"] == slug]
    assert scheduled[-2:] == [("schedule", "poll.open"), ("schedule", "poll.close")]
    assert scheduled.count(("schedule", "poll.close")) == 1
    assert '"turnout":1' in entries[-1]["detail"]


def test_a_poll_that_opened_and_closed_by_schedule_audits_both(
    app: Flask, make_poll: Callable[..., str]
) -> None:
    now = utcnow()
    slug = make_poll(
        open_=False, opens_at=now + timedelta(hours=1), closes_at=now + timedelta(hours=2)
    )
    reschedule(app, slug, opens_at=now - timedelta(hours=2), closes_at=now - timedelta(hours=1))
    with app.app_context():
        polls.reveal(slug, actor="ana")
        stored = polls.get_poll(slug)
        assert (stored.opened_at, stored.closed_at) == (stored.opens_at, stored.closes_at)
        actions = [(e["actor"], e["action"]) for e in audit.all_entries() if e["poll"] == slug]
    assert actions[-3:] == [
        ("schedule", "poll.open"),
        ("schedule", "poll.close"),
        ("ana", "poll.reveal"),
    ]


def test_schedule_needs_a_time_zone_and_order(app: Flask) -> None:
    now = utcnow()
    with app.app_context():
        from tests.support import import_samples

        import_samples()
        with pytest.raises(InvalidRequest, match="close after it opens"):
            polls.create_poll(
                polls.PollSpec(slug="s", title="S", opens_at=now, closes_at=now), actor="t"
            )
        with pytest.raises(InvalidRequest, match="time zone"):
            polls.create_poll(
                polls.PollSpec(slug="s", title="S", opens_at=now.replace(tzinfo=None)), actor="t"
            )


def test_staged_reveal_last_place_first(
    app: Flask, make_poll: Callable[..., str], mint: Callable[..., list[str]]
) -> None:
    slug = make_poll(results_mode="hidden")
    choices = project_slugs(app, slug)
    tokens = mint(slug, 6)
    client = app.test_client()
    votes = [choices[0]] * 3 + [choices[1]] * 2 + [choices[2]]
    for token, choice in zip(tokens, votes, strict=True):
        assert (
            client.post(
                f"/api/polls/{slug}/ballots", json={"token": token, "choices": [choice]}
            ).status_code
            == 201
        )
    with app.app_context():
        with pytest.raises(PollStateError, match="Close the poll"):
            polls.reveal(slug, actor="t", step=True)
        polls.close_poll(slug, actor="t")
    assert "results" not in client.get(f"/api/polls/{slug}/results").get_json()
    seen = []
    for step in range(1, len(choices) + 1):
        with app.app_context():
            polls.reveal(slug, actor="t", step=True)
        doc = client.get(f"/api/polls/{slug}/results").get_json()
        assert doc["reveal_step"] == step
        assert len(doc["results"]) == step
        seen.append(doc["results"][0]["project"])
        assert ("tie_seed" in doc) == (step == len(choices))
    assert doc["status"] == "revealed"
    # Revealed last to first: the winner is the last new place shown.
    assert seen[-1] == choices[0] and seen[-2] == choices[1] and seen[-3] == choices[2]
    assert [r["votes"] for r in doc["results"][:3]] == [3, 2, 1]


def test_auto_reveal_progresses_with_the_clock(app: Flask, make_poll: Callable[..., str]) -> None:
    slug = make_poll()
    with app.app_context():
        polls.close_poll(slug, actor="t")
        poll = polls.reveal(slug, actor="t", auto_seconds=5)
        assert poll.status == "revealing" and poll.reveal_step == 1
        later = poll.reveal_started_at + timedelta(seconds=11)
        assert schedule.auto_step(poll, later) == 3
        assert (
            polls.effective_status(poll, poll.reveal_started_at + timedelta(seconds=60))
            == "revealed"
        )


def test_sealed_hides_counts_from_organizers_until_close(
    app: Flask, make_poll: Callable[..., str]
) -> None:
    slug = make_poll(results_mode="sealed")
    with app.app_context():
        assert "results" not in polls.results_view(polls.get_poll(slug), organizer=True)
        polls.close_poll(slug, actor="t")
        assert "results" in polls.results_view(polls.get_poll(slug), organizer=True)
        assert "results" not in polls.results_view(polls.get_poll(slug), organizer=False)


def test_turnout_and_counts_come_from_one_statement(
    app: Flask, make_poll: Callable[..., str], mint: Callable[..., list[str]]
) -> None:
    slug = make_poll(method="approval", max_choices=2, results_mode="live")
    choices = project_slugs(app, slug)
    client = app.test_client()
    for token in mint(slug, 2):
        body = {"token": token, "choices": choices[:2]}
        assert client.post(f"/api/polls/{slug}/ballots", json=body).status_code == 201
    with app.app_context():
        poll = polls.get_poll(slug)
        ballots_cast, votes = polls.counted(poll)
        assert (ballots_cast, votes) == (polls.turnout(poll), plain_count(poll))
    assert ballots_cast == 2 and votes[choices[0]] == votes[choices[1]] == 2
    assert sum(votes.values()) == 4  # approval: turnout is ballots, not choices
    with app.app_context():
        empty = make_poll(results_mode="live")
        assert polls.counted(polls.get_poll(empty))[0] == 0


def test_actions_on_a_poll_the_schedule_opened_record_the_opening_first(
    app: Flask, make_poll: Callable[..., str]
) -> None:
    now = utcnow()
    slug = make_poll(
        open_=False, opens_at=now + timedelta(hours=1), closes_at=now + timedelta(hours=2)
    )
    withdrawn = project_slugs(app, slug)[0]
    reschedule(app, slug, opens_at=now - timedelta(minutes=5))
    with app.app_context():
        polls.withdraw_project(slug, withdrawn, actor="ana")
        polls.close_poll(slug, actor="ana")
        stored = polls.get_poll(slug)
        assert stored.status == "closed" and stored.opened_at == stored.opens_at
        entries = audit.all_entries()
        assert audit.verify_chain(entries) == []
    actions = [(e["actor"], e["action"]) for e in entries if e["poll"] == slug]
    assert actions[-3:] == [
        ("schedule", "poll.open"),
        ("ana", "poll.withdraw"),
        ("ana", "poll.close"),
    ]
