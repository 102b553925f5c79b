"""Rehearsals: a copy of a poll run through the whole day, then reset, never touching the real one."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Flask
from flask.testing import FlaskCliRunner
from sqlalchemy import text

from voting.extensions import db
from voting.services import audit, overlay, polls

TABLES = {
    "polls": "SELECT * FROM polls WHERE slug = :slug",
    "poll_choices": "SELECT c.* FROM poll_choices c JOIN polls p ON p.id = c.poll_id WHERE p.slug = :slug ORDER BY c.id",
    "tokens": "SELECT t.* FROM tokens t JOIN polls p ON p.id = t.poll_id WHERE p.slug = :slug ORDER BY t.id",
    "ballots": "SELECT b.* FROM ballots b JOIN polls p ON p.id = b.poll_id WHERE p.slug = :slug ORDER BY b.id",
    "ballot_choices": "SELECT c.* FROM ballot_choices c JOIN polls p ON p.id = c.poll_id WHERE p.slug = :slug ORDER BY c.id",
    "audit_events": "SELECT * FROM audit_events WHERE poll_slug = :slug ORDER BY id",
}


def real_poll_state(app: Flask, slug: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row that belongs to the poll, table by table."""
    with app.app_context():
        return {
            table: [tuple(row) for row in db.session.execute(text(sql), {"slug": slug})]
            for table, sql in TABLES.items()
        }


def cli(runner: FlaskCliRunner, *args: str) -> str:
    result = runner.invoke(args=list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_a_rehearsal_runs_the_day_and_resets_without_touching_the_real_poll(
    app: Flask,
    runner: FlaskCliRunner,
    make_poll: Callable[..., str],
    mint: Callable[..., list[str]],
) -> None:
    real = make_poll("finals", results_mode="hidden", title="Community Favorite")
    client = app.test_client()
    for token in mint(real, 3):  # the real poll has ballots of its own already
        assert (
            client.post(
                f"/api/polls/{real}/ballots", json={"token": token, "choices": ["flood-watch"]}
            ).status_code
            == 201
        )
    before = real_poll_state(app, real)

    out = cli(runner, "polls", "rehearse", real)
    rehearsal = "finals-rehearsal"
    assert rehearsal in out
    cli(runner, "polls", "open", rehearsal)
    tokens = mint(rehearsal, 20)
    with app.app_context():
        choices = [c["project"] for c in polls.poll_document(polls.get_poll(rehearsal))["choices"]]
        real_choices = [c["project"] for c in polls.poll_document(polls.get_poll(real))["choices"]]
        overlay_link = overlay.overlay_url(polls.get_poll(rehearsal))
    assert sorted(choices) == sorted(real_choices)  # the same projects
    for n, token in enumerate(tokens):
        response = client.post(
            f"/api/polls/{rehearsal}/ballots",
            json={"token": token, "choices": [choices[n % 3]]},
        )
        assert response.status_code == 201
    # A rehearsal token is no good on the real poll, and the other way round.
    assert (
        client.post(
            f"/api/polls/{real}/ballots", json={"token": tokens[0], "choices": ["flood-watch"]}
        ).status_code
        == 403
    )

    # The mark, on the ballot, the results page and the overlay; never on the real poll.
    pages = {
        "ballot": f"/p/{rehearsal}",
        "results": f"/p/{rehearsal}/results",
        "overlay": overlay_link.split("vote.test", 1)[1],
    }
    for name, path in pages.items():
        page = client.get(path)
        assert page.status_code == 200, name
        assert 'class="rehearsal-mark"' in page.get_data(as_text=True), name
    assert "rehearsal-mark" not in client.get(f"/p/{real}").get_data(as_text=True)
    assert rehearsal not in client.get("/").get_data(as_text=True)  # not on the start page

    cli(runner, "polls", "close", rehearsal)
    revealed = cli(runner, "polls", "reveal", rehearsal)
    assert "revealed" in revealed
    results = client.get(f"/api/polls/{rehearsal}/results").get_json()
    assert results["turnout"] == 20 and sum(r["votes"] for r in results["results"]) == 20

    assert "fresh draft" in cli(runner, "polls", "rehearse", real, "--reset")
    with app.app_context():
        poll = polls.get_poll(rehearsal)
        assert (poll.status, polls.turnout(poll), poll.reveal_step) == ("draft", 0, 0)
        n_tokens = db.session.execute(
            text("SELECT count(*) FROM tokens WHERE poll_id = :p"), {"p": poll.id}
        ).scalar_one()
        assert n_tokens == 0
    # Reset means reset: the old rehearsal tokens are gone.
    assert client.post(
        f"/api/polls/{rehearsal}/ballots", json={"token": tokens[1], "choices": [choices[0]]}
    ).status_code in (403, 409)

    after = real_poll_state(app, real)
    assert after == before  # rows, tokens, ballots and audit entries of the real poll
    with app.app_context():
        entries = audit.all_entries()
    assert audit.verify_chain(entries) == []
    actions = [(e["action"], e["poll"]) for e in entries if e["poll"] == rehearsal]
    assert actions[0] == ("rehearsal.create", rehearsal)
    assert ("rehearsal.reset", rehearsal) in actions
    print(
        f"\nrehearsal: 20 ballots, closed, revealed, reset; real poll rows compared: "
        f"{ {k: len(v) for k, v in before.items()} } unchanged"
    )

    # A real poll can never be reset or deleted this way.
    refused = runner.invoke(args=["polls", "rehearse", "finals-rehearsal-x", "--reset"])
    assert refused.exit_code != 0
    cli(runner, "polls", "rehearse", real, "--delete")
    assert client.get(f"/p/{rehearsal}").status_code == 404
    assert real_poll_state(app, real) == before


def test_a_real_poll_is_never_reset(
    app: Flask, runner: FlaskCliRunner, make_poll: Callable[..., str]
) -> None:
    make_poll("real-rehearsal", title="A real poll whose slug ends like a rehearsal")
    result = runner.invoke(args=["polls", "rehearse", "real-rehearsal", "--reset"])
    assert result.exit_code == 1 and "real poll" in result.output
    result = runner.invoke(args=["polls", "rehearse", "real-rehearsal", "--delete"])
    assert result.exit_code == 1 and "real poll" in result.output
    with app.app_context():
        assert polls.get_poll("real-rehearsal").status == "open"
