"""Issue 15's attack run, Must show 4 and item 10: Retry-After, Allow, redirects, limiter log lines."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient

from tests.admin_support import Console
from tests.gunicorn_kit import gunicorn, raw_request, server_env, status_of
from tests.live_support import RedisProcess, wait_until
from tests.route_kit import FOREIGN, Samples, routes
from tests.support import project_slugs
from voting.extensions import db
from voting.web.errors import BUSY_RETRY_AFTER


@pytest.fixture
def limited(make_app: Callable[..., Flask], redis_url: str) -> Callable[..., Flask]:
    """An app with the rate limits on, counting in the test Redis database (emptied first)."""
    redis.Redis.from_url(redis_url).flushdb()

    def factory(**overrides: Any) -> Flask:
        prefix = "test-harden-" + secrets.token_hex(4)
        return make_app(
            RATELIMIT_ENABLED=True,
            REDIS_URL=redis_url,
            RATELIMIT_KEY_PREFIX=prefix,
            RATELIMIT_STORAGE_OPTIONS={"socket_connect_timeout": 5, "socket_timeout": 5},
            **overrides,
        )

    return factory


def _every_answer(client: FlaskClient, app: Flask, samples: Samples) -> list[Any]:
    answers = []
    for route in routes(app, samples):
        for method in ["GET" if "GET" in route.methods else "POST", *FOREIGN]:
            response = client.open(route.url, method=method, buffered=False)
            response.close()
            answers.append((method, route.url, response))
    return answers


# -- Retry-After only on 429 and 503, with the documented value on 503 busy ----------------


def test_retry_after_only_on_429_and_503(
    limited: Callable[..., Flask], make_poll: Callable[..., str]
) -> None:
    app = limited(RATELIMIT_BALLOT_PER_TOKEN="2/minute")
    slug = make_poll()
    samples = Samples.make(app, slug)
    client = app.test_client()
    Console.login(app, client)
    answers = _every_answer(client, app, samples)
    assert any(r.headers.get("X-RateLimit-Limit") for _, _, r in answers)  # limits were on
    for method, url, response in answers:
        if response.status_code not in (429, 503):
            assert "Retry-After" not in response.headers, (method, url, response.status_code)
    # A 429 carries one: the seconds until the window resets.
    body = {"token": samples.token, "choices": [samples.project]}
    codes = [client.post(f"/api/polls/{slug}/ballots", json=body) for _ in range(3)]
    assert [r.status_code for r in codes] == [201, 409, 429]
    assert "Retry-After" not in codes[0].headers and "Retry-After" not in codes[1].headers
    assert 1 <= int(codes[2].headers["Retry-After"]) <= 60
    assert codes[2].get_json()["retry_after"] == int(codes[2].headers["Retry-After"])


def test_503_busy_says_retry_after_3_with_the_limiter_on(
    limited: Callable[..., Flask], make_poll: Callable[..., str], mint: Callable[..., list[str]]
) -> None:
    slug = make_poll()
    [token] = mint(slug)
    tight = limited(
        SQLALCHEMY_ENGINE_OPTIONS={"pool_size": 1, "max_overflow": 0, "pool_timeout": 0.2}
    )
    choice = project_slugs(tight, slug)[0]
    client = tight.test_client()
    with tight.app_context():
        held = db.engine.connect()  # the pool's only connection
        try:
            api = client.post(
                f"/api/polls/{slug}/ballots", json={"token": token, "choices": [choice]}
            )
            # A limited page that reads the database (the ballot page is exempt and held).
            page = client.get(f"/p/{slug}/project/{choice}", headers={"Accept": "text/html"})
        finally:
            held.close()
    assert page.headers["X-RateLimit-Limit"]  # the limiter added its headers (and Retry-After)
    for response in (api, page):
        assert response.status_code == 503
        assert response.headers["Retry-After"] == str(BUSY_RETRY_AFTER) == "3"
    assert api.get_json()["error"] == "busy"


# -- Allow on every 405 (also over a real gunicorn, where TRACE was tried) ------------------


def test_every_405_has_allow(app: Flask, make_poll: Callable[..., str]) -> None:
    samples = Samples.make(app, make_poll())
    client = app.test_client()
    seen = 0
    for method, url, response in _every_answer(client, app, samples):
        if response.status_code == 405:
            seen += 1
            assert response.headers.get("Allow"), (method, url)
            if url.startswith("/api/"):
                assert response.get_json()["error"] == "method_not_allowed", (method, url)
    assert seen >= len(list(routes(app, samples))) * len(FOREIGN)


# -- No absolute redirect to a host outside the trusted list -------------------------------

REDIRECTING = ["/static//style.css", "/p//{slug}", "/v//{token}", "/admin", "/admin/"]


def test_no_redirect_names_a_host_it_was_not_given(
    app: Flask, make_poll: Callable[..., str]
) -> None:
    samples = Samples.make(app, make_poll())
    client = app.test_client()
    evil = {"Host": "evil.example"}
    for path in REDIRECTING:
        response = client.get(path.format(token=samples.token, slug=samples.slug), headers=evil)
        assert 300 <= response.status_code < 400, path
        location = response.headers["Location"]
        assert location.startswith("/") and not location.startswith("//"), (path, location)
        assert "evil.example" not in location
    # Every route, whatever it answers: no Location names the Host header's host.
    for route in routes(app, samples):
        response = client.open(
            route.url,
            method="GET" if "GET" in route.methods else "POST",
            headers=evil,
            buffered=False,
        )
        response.close()
        assert "evil.example" not in response.headers.get("Location", ""), route.url
    # A redirect to BASE_URL's host (trusted) is left as it is.
    trusted = client.get("/static//style.css", headers={"Host": "vote.test"})
    assert trusted.headers["Location"] in ("/static/style.css", "http://vote.test/static/style.css")


def test_trusted_hosts_refuse_any_other_host(make_app: Callable[..., Flask]) -> None:
    app = make_app(TRUSTED_HOSTS="vote.test, .vote.test")  # as VOTING_TRUSTED_HOSTS reads
    client = app.test_client()
    assert client.get("/healthz", headers={"Host": "vote.test"}).status_code == 200
    assert client.get("/healthz", headers={"Host": "a.vote.test"}).status_code == 200
    refused = client.get("/static//style.css", headers={"Host": "evil.example"})
    assert refused.status_code == 400
    assert "does not answer for that host" in refused.get_json()["message"]
    assert "Location" not in refused.headers


def test_over_gunicorn_static_slashes_and_trace(
    app: Flask, make_poll: Callable[..., str], base_config: dict[str, Any], tmp_path: Path
) -> None:
    slug = make_poll()
    with gunicorn(server_env(str(base_config["SQLALCHEMY_DATABASE_URI"])), tmp_path) as served:
        redirect = raw_request(served, "GET /static//style.css HTTP/1.1\r\nHost: evil.example")
        trace = raw_request(served, f"TRACE /api/polls/{slug} HTTP/1.1\r\nHost: vote.test")
    assert status_of(redirect) == 308
    assert b"\r\nLocation: /static/style.css\r\n" in redirect
    assert status_of(trace) == 405
    assert b"\r\nAllow: " in trace


# -- Item 10: one log line on each change of the limiter's storage state ------------------


def test_the_limiter_logs_each_change_of_state_in_gunicorns_error_log(
    make_poll: Callable[..., str],
    mint: Callable[..., list[str]],
    own_redis: RedisProcess,
    base_config: dict[str, Any],
    tmp_path: Path,
) -> None:
    slug = make_poll()
    tokens = mint(slug, 100)
    env = server_env(str(base_config["SQLALCHEMY_DATABASE_URI"]), REDIS_URL=own_redis.url)
    with gunicorn(env, tmp_path, loglevel="info") as served:

        def vote(token: str) -> int:
            body = f'{{"token": "{token}", "choices": ["flood-watch"]}}'.encode()
            head = (
                f"POST /api/polls/{slug}/ballots HTTP/1.1\r\nHost: vote.test\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}"
            )
            return status_of(raw_request(served, head, body))

        def read() -> int:  # a read meets the default limit, so the limiter asks Redis
            return status_of(raw_request(served, f"GET /api/polls/{slug} HTTP/1.1\r\nHost: x"))

        def lines(text: str) -> list[str]:
            return [line for line in served.error_log.read_text().splitlines() if text in line]

        statuses = [vote(t) for t in tokens[:5]]
        reads = [read() for _ in range(5)]
        own_redis.kill()
        statuses += [vote(t) for t in tokens[5:15]]
        reads += [read() for _ in range(10)]
        assert wait_until(lambda: len(lines("falling back to in-memory storage")) == 1, 10)
        own_redis.start()
        # flask-limiter re-checks Redis with backoff (1 s, 2 s, ... 32 s) as requests arrive.
        remaining = iter(tokens[15:])

        def recovered() -> bool:
            statuses.append(vote(next(remaining)))
            reads.append(read())
            return bool(lines("storage recovered"))

        assert wait_until(recovered, timeout=45, interval=0.5)
        served.stop()
    assert set(reads) == {200}  # reads are answered whatever Redis does
    assert statuses.count(201) == len(statuses)  # ballots count whatever Redis does
    assert len(lines("falling back to in-memory storage")) == 1  # once, not per request
    assert len(lines("Rate limit storage recovered")) == 1
    assert not lines("Swallowing error")  # no traceback per request while Redis was away
