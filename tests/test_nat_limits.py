"""Fair to a shared NAT (issue 16): every broken link gets its 403, a hall's ballots get no 429.

All traffic comes from one address, as a conference hall behind one NAT does. The counts and
statuses are asserted, never timings; each test finishes well within the limits' minute.
"""

from __future__ import annotations

import secrets
import threading
from collections import Counter
from collections.abc import Callable

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from itsdangerous import URLSafeSerializer
from sqlalchemy import func, select

from tests.support import TEST_SECRET, import_samples, in_app
from voting.domain.tokens import VoterToken, sign_voter_token
from voting.models import AuditEvent, Ballot, BallotChoice, SupersededReceipt
from voting.services import issuing, polls

HALL = "203.0.113.7"


@pytest.fixture
def limited_app(make_app: Callable[..., Flask], redis_url: str) -> Callable[..., Flask]:
    """Limits on, counting in the (emptied) test Redis database, at the shipped defaults."""
    redis.Redis.from_url(redis_url).flushdb()

    def factory(**overrides: object) -> Flask:
        prefix = "test-nat-" + secrets.token_hex(4)
        return make_app(
            RATELIMIT_ENABLED=True, REDIS_URL=redis_url, RATELIMIT_KEY_PREFIX=prefix, **overrides
        )

    return factory


def open_polls(app: Flask) -> None:
    with app.app_context():
        import_samples()
        for slug in ("hall", "other"):
            polls.create_poll(polls.PollSpec(slug=slug, title=slug), actor="test")
            polls.open_poll(slug, actor="test")


def mint(app: Flask, slug: str, count: int) -> list[str]:
    with app.app_context():
        tokens: list[str] = []
        while len(tokens) < count:
            n = min(issuing.MAX_MINT, count - len(tokens))
            tokens += issuing.mint_tokens(slug, n, actor="test").tokens
        return tokens


def post(client: FlaskClient, token: object, choice: str = "flood-watch") -> tuple[int, dict]:
    response = client.post(
        "/api/polls/hall/ballots",
        json={"token": token, "choices": [choice]},
        environ_base={"REMOTE_ADDR": HALL},
    )
    return response.status_code, response.get_json() or {}


def written(app: Flask) -> tuple[int, int, int]:
    return (
        in_app(app, select(func.count(Ballot.id))),
        in_app(app, select(func.count(BallotChoice.id))),
        in_app(app, select(func.count()).select_from(SupersededReceipt)),
    )


def broken_links(app: Flask, n: int) -> dict[str, list[str]]:
    """n links of each kind that must be refused as invalid_token."""
    with app.app_context():
        poll_id = polls.get_poll("hall").id
        signer = issuing.voter_signer()
    revoked = mint(app, "hall", n)
    with app.app_context():
        issuing.revoke("hall", actor="test", tokens=revoked)
    good = mint(app, "hall", n)
    wrong_salt = URLSafeSerializer(TEST_SECRET, salt="voting.overlay-key.v1")
    return {
        "forged": [f"WzEsImZha2Ui{i}.{secrets.token_urlsafe(20)}" for i in range(n)],
        # A real, unused token with one character of its signature changed (not the last:
        # base64's last character carries spare bits, so some changes there decode the same).
        "tampered": [t[:-5] + ("A" if t[-5] != "A" else "B") + t[-4:] for t in good],
        "wrong-salt": [
            str(wrong_salt.dumps([poll_id, secrets.token_urlsafe(16)])) for _ in range(n)
        ],
        "other-poll": mint(app, "other", n),
        "revoked": revoked,
        "never-issued": [
            sign_voter_token(
                signer, VoterToken(poll_id=poll_id, token_id=secrets.token_urlsafe(16))
            )
            for _ in range(n)
        ],
    }


def test_200_broken_links_of_each_kind_all_get_403_and_write_nothing(
    limited_app: Callable[..., Flask],
) -> None:
    app = limited_app()
    open_polls(app)
    kinds = broken_links(app, 200)
    audit_before = in_app(app, select(func.count(AuditEvent.id)))
    client = app.test_client()
    answers: dict[str, Counter[tuple[int, str]]] = {}
    for kind, links in kinds.items():
        answers[kind] = Counter()
        for link in links:
            status, body = post(client, link)
            answers[kind][(status, body.get("error", ""))] += 1
    # 1,200 refusals from one address in well under a minute: each kind is told plainly.
    assert answers == {kind: Counter({(403, "invalid_token"): 200}) for kind in kinds}
    assert written(app) == (0, 0, 0)
    assert in_app(app, select(func.count(AuditEvent.id))) == audit_before


def test_past_the_cpu_cap_refusals_get_429_but_a_valid_ballot_still_counts(
    limited_app: Callable[..., Flask],
) -> None:
    app = limited_app(RATELIMIT_BALLOT_PER_IP="30/minute")
    open_polls(app)
    kinds = broken_links(app, 10)
    [voter] = mint(app, "hall", 1)
    client = app.test_client()
    refused = [
        post(client, link)[0] for kind in ("forged", "revoked", "tampered") for link in kinds[kind]
    ]
    assert refused == [403] * 30
    # Past the cap both a bad signature and a signed but unusable token get 429.
    for link in (kinds["forged"][0], kinds["other-poll"][0], kinds["never-issued"][0]):
        response = client.post(
            "/api/polls/hall/ballots",
            json={"token": link, "choices": ["flood-watch"]},
            environ_base={"REMOTE_ADDR": HALL},
        )
        assert response.status_code == 429
        assert response.get_json()["error"] == "rate_limited"
        assert 1 <= int(response.headers["Retry-After"]) <= 60
    # A neighbour behind the same NAT with a good link is not held back by the broken ones.
    status, body = post(client, voter)
    assert status == 201 and body["receipt"]
    # Another address is not affected at all.
    other = client.post(
        "/api/polls/hall/ballots",
        json={"token": kinds["forged"][1], "choices": ["flood-watch"]},
        environ_base={"REMOTE_ADDR": "198.51.100.9"},
    )
    assert other.status_code == 403
    assert written(app)[:2] == (1, 1)


@pytest.mark.timeout(120)
def test_a_hall_of_5000_voters_behind_one_address_gets_no_429(
    limited_app: Callable[..., Flask],
) -> None:
    app = limited_app()  # the shipped defaults
    open_polls(app)
    tokens = mint(app, "hall", 5000)
    choices = ["flood-watch", "bias-lens", "coral-count"]
    statuses: Counter[int] = Counter()
    lock = threading.Lock()

    def vote(stripe: int) -> None:
        # A few voters at a time, as a hall votes: their commits overlap, so 5,000 take
        # seconds, well within the limits' minute.
        client = app.test_client()
        mine = Counter(post(client, t, choices[i % 3])[0] for i, t in enumerate(tokens[stripe::8]))
        with lock:
            statuses.update(mine)

    threads = [threading.Thread(target=vote, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=100)
    assert statuses == Counter({201: 5000})
    assert written(app)[:2] == (5000, 5000)
    # However long that took, nothing was counted against the hall: no window could fill.
    prefix = app.config["RATELIMIT_KEY_PREFIX"]
    assert redis.Redis.from_url(app.config["REDIS_URL"]).keys(f"*{prefix}*{HALL}*") == []


def test_one_token_hammered_gets_429_after_its_limit_and_one_ballot(
    limited_app: Callable[..., Flask],
) -> None:
    app = limited_app()
    open_polls(app)
    [token] = mint(app, "hall", 1)
    client = app.test_client()
    answers = [post(client, token) for _ in range(20)]
    statuses = [status for status, _ in answers]
    # 5/minute per token: the ballot and four repeats (told "already voted", with the receipt).
    assert statuses == [201] + [409] * 4 + [429] * 15
    assert all(body["receipt"] == answers[0][1]["receipt"] for _, body in answers[1:5])
    limited = client.post(
        "/api/polls/hall/ballots",
        json={"token": token, "choices": ["bias-lens"]},
        environ_base={"REMOTE_ADDR": HALL},
    )
    assert limited.status_code == 429 and 1 <= int(limited.headers["Retry-After"]) <= 60
    assert written(app)[:2] == (1, 1)
