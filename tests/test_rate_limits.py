"""Rate limits through a real Redis, and what happens when Redis fails."""

from __future__ import annotations

import logging
import os
import secrets
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import redis
from flask import Flask
from sqlalchemy import func, select

from tests.live_support import RedisProcess, free_port
from tests.support import TEST_SECRET, import_samples, in_app
from voting.models import Ballot
from voting.services import issuing, polls


@pytest.fixture
def limited_app(make_app: Callable[..., Flask], redis_url: str) -> Callable[..., Flask]:
    """An app with limits on, counting in the test Redis database, emptied first.

    flask-limiter's Limiter is one object per process and keeps the first app's key
    prefix, so counters are isolated by emptying the (dedicated) test database instead.
    """
    redis.Redis.from_url(redis_url).flushdb()

    def factory(**overrides: object) -> Flask:
        prefix = "test-rl-" + secrets.token_hex(4)
        return make_app(
            RATELIMIT_ENABLED=True, REDIS_URL=redis_url, RATELIMIT_KEY_PREFIX=prefix, **overrides
        )

    return factory


def open_poll_with_tokens(app: Flask, count: int, slug: str = "rl") -> list[str]:
    with app.app_context():
        import_samples()
        polls.create_poll(polls.PollSpec(slug=slug, title="Limits"), actor="test")
        polls.open_poll(slug, actor="test")
        return issuing.mint_tokens(slug, count, actor="test").tokens


def test_per_token_limit_gives_429_with_retry_after(limited_app: Callable[..., Flask]) -> None:
    app = limited_app()
    [token] = open_poll_with_tokens(app, 1)
    client = app.test_client()
    statuses = []
    for _ in range(6):
        response = client.post(
            "/api/polls/rl/ballots", json={"token": token, "choices": ["flood-watch"]}
        )
        statuses.append(response.status_code)
    assert statuses == [201, 409, 409, 409, 409, 429]
    body = response.get_json()
    assert body["error"] == "rate_limited" and "wait" in body["message"]
    assert 1 <= int(response.headers["Retry-After"]) <= 60
    assert response.headers["X-RateLimit-Limit"]
    # Another token from the same address is not held back by this one's limit.
    [other] = issuing_more(app, 1)
    assert (
        client.post(
            "/api/polls/rl/ballots", json={"token": other, "choices": ["flood-watch"]}
        ).status_code
        == 201
    )


def issuing_more(app: Flask, count: int) -> list[str]:
    with app.app_context():
        return issuing.mint_tokens("rl", count, actor="test").tokens


def test_rate_limited_page_is_friendly(limited_app: Callable[..., Flask]) -> None:
    app = limited_app(RATELIMIT_LINK_PER_IP="2/minute")
    client = app.test_client()
    for _ in range(2):
        assert client.get("/v/whatever").status_code == 403
    response = client.get("/v/whatever")
    assert response.status_code == 429
    html = response.get_data(as_text=True)
    assert "Please wait a moment" in html and "Try again in" in html
    assert int(response.headers["Retry-After"]) >= 1


def test_conference_nat_300_tokens_from_one_address(limited_app: Callable[..., Flask]) -> None:
    app = limited_app()  # the default limits
    tokens = open_poll_with_tokens(app, 300)
    client = app.test_client()
    statuses = [
        client.post(
            "/api/polls/rl/ballots",
            json={"token": t, "choices": ["bias-lens"]},
            environ_base={"REMOTE_ADDR": "203.0.113.7"},
        ).status_code
        for t in tokens
    ]
    assert statuses.count(201) == 300
    assert in_app(app, select(func.count(Ballot.id))) == 300


def test_spoofed_forwarded_for_changes_nothing_without_proxy_hops(
    limited_app: Callable[..., Flask],
) -> None:
    app = limited_app(RATELIMIT_BALLOT_PER_IP="3/minute")
    client = app.test_client()
    statuses = [
        client.post(
            "/api/polls/none/ballots",
            json={"token": "x", "choices": []},
            headers={"X-Forwarded-For": f"198.51.100.{i}"},
        ).status_code
        for i in range(4)
    ]
    assert statuses == [403, 403, 403, 429]


def test_proxy_hops_one_keys_on_the_real_client(limited_app: Callable[..., Flask]) -> None:
    app = limited_app(RATELIMIT_BALLOT_PER_IP="3/minute", PROXY_HOPS=1)
    client = app.test_client()

    def post(forwarded: str) -> int:
        return client.post(
            "/api/polls/none/ballots",
            json={"token": "x", "choices": []},
            headers={"X-Forwarded-For": forwarded},
        ).status_code

    # The proxy appends the real address; a client-supplied prefix is ignored.
    assert [post(f"evil-{i}, 192.0.2.1") for i in range(3)] == [403, 403, 403]
    assert post("192.0.2.1") == 429
    assert post("192.0.2.2") == 403


@contextmanager
def serve(env: dict[str, str], count: int) -> Iterator[list[str]]:
    """`count` app processes (gunicorn, one worker each) on free ports, started together."""
    gunicorn = Path(sys.executable).parent / "gunicorn"
    procs, bases = [], []
    try:
        for _ in range(count):
            port = free_port()
            procs.append(
                subprocess.Popen(
                    [
                        *(str(gunicorn), "-w", "1", "-b", f"127.0.0.1:{port}"),
                        *("--log-level", "warning", "voting:create_app()"),
                    ],
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
            bases.append(f"http://127.0.0.1:{port}")
        for base in bases:
            for _ in range(300):
                try:
                    with urllib.request.urlopen(base + "/healthz", timeout=1):
                        break
                except OSError:
                    time.sleep(0.1)
            else:
                raise AssertionError("app process did not start")
        yield bases
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=10)


def post_json(url: str, body: bytes) -> int:
    request = urllib.request.Request(
        url, data=body, headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def test_two_processes_share_the_counters(
    limited_app: Callable[..., Flask], base_config: dict[str, object], redis_url: str
) -> None:
    app = limited_app()
    [token] = open_poll_with_tokens(app, 1)
    env = {
        **os.environ,
        "SECRET_KEY": TEST_SECRET,
        "DATABASE_URL": str(base_config["SQLALCHEMY_DATABASE_URI"]),
        "REDIS_URL": redis_url,
        "VOTING_RATELIMIT_KEY_PREFIX": app.config["RATELIMIT_KEY_PREFIX"],
        "VOTING_HASH_KEY": "test-hash-key",
        # Per hour, not the default per minute: six posts that straddled a minute's end
        # met a fresh window and the sixth got 409 (seen once in CI).
        "VOTING_RATELIMIT_BALLOT_PER_TOKEN": "5/hour",
    }
    body = f'{{"token": "{token}", "choices": ["flood-watch"]}}'.encode()
    with serve(env, 2) as (a, b):
        statuses = [post_json(f"{url}/api/polls/rl/ballots", body) for url in (a, b, a, b, a, b)]
    # Five requests per token in all: the sixth is refused whichever process gets it.
    assert statuses == [201, 409, 409, 409, 409, 429]


def test_redis_dies_mid_run_and_comes_back(
    make_app: Callable[..., Flask],
    own_redis: RedisProcess,
    caplog: pytest.LogCaptureFixture,
) -> None:
    port = own_redis.port
    app = make_app(RATELIMIT_ENABLED=True, REDIS_URL=f"redis://127.0.0.1:{port}/0")
    tokens = open_poll_with_tokens(app, 61)
    client = app.test_client()
    statuses: list[int] = []
    repeats: list[int] = []

    def vote(batch: list[str]) -> None:
        for token in batch:
            response = client.post(
                "/api/polls/rl/ballots", json={"token": token, "choices": ["coral-count"]}
            )
            statuses.append(response.status_code)
        # A first ballot consults no counter (the database is enough); a repeat does, so it
        # is what meets the outage.
        response = client.post(
            "/api/polls/rl/ballots", json={"token": batch[0], "choices": ["coral-count"]}
        )
        repeats.append(response.status_code)

    caplog.set_level(logging.INFO, logger="flask-limiter")
    vote(tokens[:20])
    own_redis.kill()
    vote(tokens[20:40])
    assert client.get("/readyz").status_code == 503
    own_redis.start()
    vote(tokens[40:60])
    assert statuses == [201] * 60
    assert repeats == [409] * 3
    assert in_app(app, select(func.count(Ballot.id))) == 60
    warnings = [r for r in caplog.records if "falling back" in r.getMessage()]
    assert len(warnings) == 1, "the outage is logged once, not per request"

    # The limiter finds Redis again by itself (it re-checks with backoff), then counts there.
    fresh = redis.Redis(port=port)
    deadline = time.time() + 45
    last = tokens[60]
    while time.time() < deadline and not fresh.keys("LIMITS:*"):
        client.post("/api/polls/rl/ballots", json={"token": last, "choices": ["coral-count"]})
        time.sleep(0.5)
    assert fresh.keys("LIMITS:*"), "limits did not return to Redis"
    assert any("recovered" in r.getMessage() for r in caplog.records)
    [probe] = issuing_more(app, 1)
    codes = [
        client.post(
            "/api/polls/rl/ballots", json={"token": probe, "choices": ["coral-count"]}
        ).status_code
        for _ in range(6)
    ]
    assert codes == [201, 409, 409, 409, 409, 429]
    assert in_app(app, select(func.count(Ballot.id))) == 62
