from __future__ import annotations

from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient
from itsdangerous import URLSafeSerializer
from sqlalchemy import func, select

from tests.support import TEST_SECRET, in_app, project_slugs
from voting.domain.tokens import (
    VOTER_TOKEN_SALT,
    TokenSigner,
    VoterToken,
    read_voter_token,
    sign_voter_token,
)
from voting.extensions import db
from voting.models import Ballot, BallotChoice
from voting.services import issuing, polls


def ballots_in_db(app: Flask) -> int:
    return int(in_app(app, select(func.count(Ballot.id))))


def post(client: FlaskClient, slug: str, token: object, choices: object) -> tuple[int, dict]:  # type: ignore[type-arg]
    response = client.post(f"/api/polls/{slug}/ballots", json={"token": token, "choices": choices})
    return response.status_code, response.get_json()


def test_cast_returns_receipt_and_stores_one_ballot(
    app: Flask, client: FlaskClient, make_poll: Callable[..., str], mint: Callable[..., list[str]]
) -> None:
    slug = make_poll()
    [token] = mint(slug, 1)
    choice = project_slugs(app, slug)[0]
    status, body = post(client, slug, token, [choice])
    assert status == 201
    assert len(body["receipt"]) == 14
    ballot = in_app(app, select(Ballot))
    assert ballot.receipt == body["receipt"]
    assert ballot.cast_minute.second == 0 and ballot.cast_minute.microsecond == 0
    status, again = post(client, slug, token, [choice])
    assert status == 409 and again["error"] == "already_voted"
    assert again["receipt"] == body["receipt"]
    assert ballots_in_db(app) == 1


def test_ballot_row_holds_no_person_address_or_fine_time(app: Flask) -> None:
    columns = {c.name for c in Ballot.__table__.columns}
    assert columns == {"id", "poll_id", "token_id", "receipt", "cast_minute"}


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (None, 400, "invalid_request"),
        ("not json", 400, "invalid_request"),
        ([], 400, "invalid_request"),
        ({"choices": ["x"]}, 403, "invalid_token"),
        ({"token": None, "choices": ["x"]}, 403, "invalid_token"),
    ],
)
def test_malformed_bodies(
    app: Flask, client: FlaskClient, make_poll: Callable[..., str], body, status, code
) -> None:  # type: ignore[no-untyped-def]
    slug = make_poll()
    if body == "not json":
        response = client.post(
            f"/api/polls/{slug}/ballots", data="{not json", content_type="application/json"
        )
    else:
        response = client.post(f"/api/polls/{slug}/ballots", json=body)
    assert response.status_code == status
    assert response.get_json()["error"] == code
    assert response.get_json()["message"]
    assert ballots_in_db(app) == 0


def test_choice_validation(
    app: Flask, client: FlaskClient, make_poll: Callable[..., str], mint: Callable[..., list[str]]
) -> None:
    slug = make_poll(method="approval", max_choices=2)
    [token] = mint(slug, 1)
    a, b, c = project_slugs(app, slug)[:3]
    for choices, fragment in [
        ([], "at least one"),
        ([a, a], "only once"),
        ([a, b, c], "at most 2"),
        (["nope"], "not a project"),
        ("a", "must be a list"),
        ([1], "must be a list"),
    ]:
        status, body = post(client, slug, token, choices)
        assert status == 400, choices
        assert body["error"] == "invalid_request" and fragment in body["message"]
    assert ballots_in_db(app) == 0
    status, _ = post(client, slug, token, [a, b])
    assert status == 201
    assert in_app(app, select(func.count(BallotChoice.id))) == 2


def test_refused_tokens_write_nothing(
    app: Flask, client: FlaskClient, make_poll: Callable[..., str], mint: Callable[..., list[str]]
) -> None:
    slug = make_poll()
    other = make_poll()
    choice = project_slugs(app, slug)[0]
    [good, revoked] = mint(slug, 2)
    [foreign] = mint(other, 1)
    with app.app_context():
        issuing.revoke(slug, actor="test", tokens=[revoked])
        poll_id = polls.get_poll(slug).id
    real = read_voter_token(TokenSigner(TEST_SECRET, salt=VOTER_TOKEN_SALT), good)
    never_issued = sign_voter_token(
        TokenSigner(TEST_SECRET, salt=VOTER_TOKEN_SALT),
        VoterToken(poll_id=poll_id, token_id="never-issued-id-000"),
    )
    forged = sign_voter_token(TokenSigner("attacker" * 5, salt=VOTER_TOKEN_SALT), real)
    wrong_salt = URLSafeSerializer(TEST_SECRET, salt="voting.overlay-key.v1").dumps(
        [poll_id, real.token_id]
    )
    tampered = good[:-3] + ("xyz" if not good.endswith("xyz") else "abc")
    cases = {
        "forged": forged,
        "tampered": tampered,
        "wrong-salt": wrong_salt,
        "other-poll": foreign,
        "revoked": revoked,
        "never-issued": never_issued,
    }
    for name, token in cases.items():
        status, body = post(client, slug, token, [choice])
        assert (status, body["error"]) == (403, "invalid_token"), name
        assert body["message"], name
    assert ballots_in_db(app) == 0


def test_resigned_duplicate_counts_as_the_same_token(
    app: Flask, client: FlaskClient, make_poll: Callable[..., str], mint: Callable[..., list[str]]
) -> None:
    slug = make_poll()
    [token] = mint(slug, 1)
    choice = project_slugs(app, slug)[0]
    assert post(client, slug, token, [choice])[0] == 201
    decoded = read_voter_token(TokenSigner(TEST_SECRET, salt=VOTER_TOKEN_SALT), token)
    resigned = sign_voter_token(TokenSigner(TEST_SECRET, salt=VOTER_TOKEN_SALT), decoded)
    payload, sig = token.split(".")
    respelled = f"{payload}.{sig}"  # identical spelling still maps to the same id
    for variant in {resigned, respelled}:
        status, body = post(client, slug, variant, [choice])
        assert (status, body["error"]) == (409, "already_voted")
    assert ballots_in_db(app) == 1


def test_key_rotation(make_app: Callable[..., Flask]) -> None:
    old_key, new_key = "old-secret-" + "o" * 30, "new-secret-" + "n" * 30
    app = make_app(SECRET_KEY=old_key)
    with app.app_context():
        from tests.support import import_samples

        import_samples()
        polls.create_poll(polls.PollSpec(slug="rot", title="Rotation"), actor="test")
        polls.open_poll("rot", actor="test")
        first, second = issuing.mint_tokens("rot", 2, actor="test").tokens
    choice = project_slugs(app, "rot")[0]
    rotated = make_app(SECRET_KEY=new_key, SECRET_KEY_FALLBACKS=[old_key])
    assert post(rotated.test_client(), "rot", first, [choice])[0] == 201
    removed = make_app(SECRET_KEY=new_key, SECRET_KEY_FALLBACKS=[])
    status, body = post(removed.test_client(), "rot", second, [choice])
    assert (status, body["error"]) == (403, "invalid_token")


def test_closed_and_draft_polls_refuse(
    app: Flask, client: FlaskClient, make_poll: Callable[..., str], mint: Callable[..., list[str]]
) -> None:
    draft = make_poll(open_=False)
    [token] = mint(draft, 1)
    choice = project_slugs(app, draft)[0]
    status, body = post(client, draft, token, [choice])
    assert (status, body["error"]) == (409, "poll_not_open")
    assert "not opened yet" in body["message"]
    with app.app_context():
        polls.open_poll(draft, actor="test")
        polls.close_poll(draft, actor="test")
    status, body = post(client, draft, token, [choice])
    assert (status, body["error"]) == (409, "poll_not_open")
    assert "closed" in body["message"]
    assert ballots_in_db(app) == 0


def test_unknown_poll_is_404_json(client: FlaskClient) -> None:
    response = client.post("/api/polls/nope/ballots", json={"token": "x", "choices": []})
    assert response.status_code in (403, 404)
    assert client.get("/api/polls/nope").status_code == 404
    assert client.get("/api/polls/nope").get_json()["error"] == "not_found"


def test_revote_replaces_the_earlier_ballot(
    app: Flask, client: FlaskClient, make_poll: Callable[..., str], mint: Callable[..., list[str]]
) -> None:
    slug = make_poll(allow_revote=True)
    [token] = mint(slug, 1)
    a, b = project_slugs(app, slug)[:2]
    status, first = post(client, slug, token, [a])
    status2, second = post(client, slug, token, [b])
    assert (status, status2) == (201, 201)
    assert first["receipt"] != second["receipt"]
    assert ballots_in_db(app) == 1
    with app.app_context():
        _, counts = polls.counted(polls.get_poll(slug))
    assert counts[a] == 0 and counts[b] == 1


def test_poll_document_and_results_modes(
    app: Flask, client: FlaskClient, make_poll: Callable[..., str], mint: Callable[..., list[str]]
) -> None:
    slugs = {mode: make_poll(results_mode=mode) for mode in ("live", "hidden", "sealed")}
    for mode, slug in slugs.items():
        doc = client.get(f"/api/polls/{slug}").get_json()
        assert doc["results"] == mode and doc["status"] == "open" and len(doc["choices"]) == 12
        assert set(doc["choices"][0]) == {"project", "title", "team", "category", "theme"}
        [token] = mint(slug, 1)
        assert post(client, slug, token, [doc["choices"][0]["project"]])[0] == 201
        results = client.get(f"/api/polls/{slug}/results").get_json()
        assert results["turnout"] == 1 and results["status"] == "open"
        assert ("results" in results) == (mode == "live"), mode
    for mode, slug in slugs.items():
        with app.app_context():
            polls.close_poll(slug, actor="test")
        results = client.get(f"/api/polls/{slug}/results").get_json()
        assert ("results" in results) == (mode == "live"), mode
        with app.app_context():
            organizer_view = polls.results_view(polls.get_poll(slug), organizer=True)
        assert "results" in organizer_view
        with app.app_context():
            polls.reveal(slug, actor="test")
        results = client.get(f"/api/polls/{slug}/results").get_json()
        assert results["status"] == "revealed", (mode, results)
        assert results["results"][0]["votes"] == 1 and results["results"][0]["rank"] == 1
        assert "tie_seed" in results


def test_openapi_document_lists_the_contract(client: FlaskClient) -> None:
    doc = client.get("/api/openapi.json").get_json()
    assert doc["openapi"].startswith("3.")
    assert {"/api/polls/{slug}", "/api/polls/{slug}/ballots", "/api/polls/{slug}/results"} <= set(
        doc["paths"]
    )
    responses = doc["paths"]["/api/polls/{slug}/ballots"]["post"]["responses"]
    assert {"201", "400", "403", "409", "429"} <= set(responses)


def test_health_and_readiness(client: FlaskClient) -> None:
    assert client.get("/healthz").get_json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.get_json()["checks"]["database"] == "ok"


def test_a_full_connection_pool_answers_503_busy_and_writes_nothing(
    app: Flask,
    make_app: Callable[..., Flask],
    make_poll: Callable[..., str],
    mint: Callable[..., list[str]],
) -> None:
    slug = make_poll()
    [token] = mint(slug, 1)
    choice = project_slugs(app, slug)[0]
    tight = make_app(
        SQLALCHEMY_ENGINE_OPTIONS={"pool_size": 1, "max_overflow": 0, "pool_timeout": 0.3}
    )
    client = tight.test_client()
    with tight.app_context():
        held = db.engine.connect()  # the pool's only connection
        try:
            response = client.post(
                f"/api/polls/{slug}/ballots", json={"token": token, "choices": [choice]}
            )
            page = client.get(f"/p/{slug}/results", headers={"Accept": "text/html"})
        finally:
            held.close()
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "3"
    assert response.get_json()["error"] == "busy"
    assert "try again" in response.get_json()["message"]
    assert page.status_code == 503 and "very busy" in page.get_data(as_text=True)
    assert ballots_in_db(app) == 0
    # Once a connection is free the same ballot counts, once.
    status, body = post(client, slug, token, [choice])
    assert status == 201 and body["receipt"]
    assert ballots_in_db(app) == 1
