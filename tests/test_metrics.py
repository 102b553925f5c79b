"""GET /metrics (Prometheus, behind a bearer token), request ids, the JSON request log."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable

import pytest
from flask import Flask
from prometheus_client.parser import text_string_to_metric_families

from tests.live_support import SSEClient
from tests.support import make_poll_on, mint_on, serving
from voting.web.observability import REQUEST_ID_HEADER

METRICS_TOKEN = "metrics-token-" + "m" * 32
AUTH = {"Authorization": f"Bearer {METRICS_TOKEN}"}


def scrape(app: Flask) -> tuple[str, dict[tuple[str, tuple[tuple[str, str], ...]], float]]:
    """The /metrics text and its samples by (name, sorted labels)."""
    response = app.test_client().get("/metrics", headers=AUTH)
    assert response.status_code == 200
    assert response.content_type.startswith("text/plain")
    text = response.get_data(as_text=True)
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    return text, samples


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def total(samples: dict, name: str, **labels: str) -> float:
    """The sum of every sample of `name` whose labels include `labels`."""
    return sum(
        v
        for (n, ls), v in samples.items()
        if n == name and all((k, want) in ls for k, want in labels.items())
    )


def test_metrics_need_the_bearer_token(make_app: Callable[..., Flask]) -> None:
    client = make_app(METRICS_TOKEN=METRICS_TOKEN).test_client()
    for headers in (
        {},
        {"Authorization": "Bearer wrong-token-xxxxxxxxxxxxxxxx"},
        {"Authorization": METRICS_TOKEN},
    ):
        response = client.get("/metrics", headers=headers)
        assert response.status_code == 401, headers
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert "voting_" not in response.get_data(as_text=True)
    assert client.get("/metrics", headers=AUTH).status_code == 200
    # Without a configured token there is no endpoint at all.
    assert make_app().test_client().get("/metrics", headers=AUTH).status_code == 404


def test_a_short_vote_moves_the_counters_by_the_right_amounts(
    make_app: Callable[..., Flask],
) -> None:
    app = make_app(METRICS_TOKEN=METRICS_TOKEN)

    slug = make_poll_on(app, results_mode="hidden")
    tokens = mint_on(app, slug, 12)
    _, before = scrape(app)
    client = app.test_client()
    receipts = []
    for token in tokens[:10]:
        response = client.post(
            f"/api/polls/{slug}/ballots", json={"token": token, "choices": ["flood-watch"]}
        )
        assert response.status_code == 201
        receipts.append(response.get_json()["receipt"])
    for token in tokens[:2]:  # voted already
        assert (
            client.post(
                f"/api/polls/{slug}/ballots", json={"token": token, "choices": ["flood-watch"]}
            ).status_code
            == 409
        )
    assert client.post(f"/api/polls/{slug}/ballots", data="not json").status_code == 400
    assert client.get("/p/no-such-poll").status_code == 404
    text, after = scrape(app)

    def moved(name: str, **labels: str) -> float:
        return total(after, name, **labels) - total(before, name, **labels)

    figures = {
        "accepted": moved("voting_ballots_total", outcome="accepted"),
        "already_voted": moved("voting_ballots_total", outcome="refused", reason="already_voted"),
        "invalid_request": moved(
            "voting_ballots_total", outcome="refused", reason="invalid_request"
        ),
        "201s": moved(
            "voting_http_requests_total",
            route="/api/polls/<slug>/ballots",
            method="POST",
            status="201",
        ),
        "404s": moved("voting_http_requests_total", status="404"),
        "latency_count": moved(
            "voting_http_request_duration_seconds_count", route="/api/polls/<slug>/ballots"
        ),
    }
    print(f"\nmetrics moved after 10 ballots, 2 repeats, 1 bad body, 1 404: {figures}")
    assert figures == {
        "accepted": 10,
        "already_voted": 2,
        "invalid_request": 1,
        "201s": 10,
        "404s": 1,
        "latency_count": 13,
    }
    assert moved("voting_db_pool_wait_seconds_count") >= 10  # every ballot took a connection
    # Never a token, a receipt, or a count of what anyone voted for (hidden mode).
    for secret in [*tokens, *receipts]:
        assert secret not in text
    assert "flood-watch" not in text and slug not in text
    assert value(after, "voting_redis_up") == 0  # no Redis configured


def test_rate_limited_ballots_are_counted(make_app: Callable[..., Flask]) -> None:
    app = make_app(
        METRICS_TOKEN=METRICS_TOKEN,
        RATELIMIT_ENABLED=True,
        RATELIMIT_BALLOT_PER_TOKEN="2/minute",
        RATELIMIT_STORAGE_URI="memory://",
    )

    slug = make_poll_on(app)
    (token,) = mint_on(app, slug, 1)
    _, before = scrape(app)
    client = app.test_client()
    statuses = [
        client.post(
            f"/api/polls/{slug}/ballots", json={"token": token, "choices": ["flood-watch"]}
        ).status_code
        for _ in range(4)
    ]
    assert statuses == [201, 409, 429, 429]
    _, after = scrape(app)
    limited = total(after, "voting_rate_limited_total") - total(before, "voting_rate_limited_total")
    refused = value(
        after, "voting_ballots_total", outcome="refused", reason="rate_limited"
    ) - value(before, "voting_ballots_total", outcome="refused", reason="rate_limited")
    assert (limited, refused) == (2, 2)


def test_open_streams_and_delivered_events(make_app: Callable[..., Flask]) -> None:
    app = make_app(METRICS_TOKEN=METRICS_TOKEN, LIVE_MIN_INTERVAL=0.05)

    slug = make_poll_on(app, results_mode="live")
    (token,) = mint_on(app, slug, 1)
    _, before = scrape(app)
    with (
        serving(app) as base,
        SSEClient(f"{base}/api/polls/{slug}/events") as one,
        SSEClient(f"{base}/api/polls/{slug}/events") as two,
    ):
        one.next(), two.next()
        _, during = scrape(app)
        assert (
            app.test_client()
            .post(f"/api/polls/{slug}/ballots", json={"token": token, "choices": ["flood-watch"]})
            .status_code
            == 201
        )
        one.wait_for(lambda e: e.data.get("turnout") == 1)
        two.wait_for(lambda e: e.data.get("turnout") == 1)
    assert (
        value(during, "voting_live_streams_open") - value(before, "voting_live_streams_open") == 2
    )
    _, after = scrape(app)
    delivered = value(after, "voting_live_events_delivered_total", event="tally") - value(
        before, "voting_live_events_delivered_total", event="tally"
    )
    assert delivered >= 4  # the first snapshot and the ballot, on each stream
    published = total(after, "voting_live_snapshots_published_total") - total(
        before, "voting_live_snapshots_published_total"
    )
    assert published >= 1


def test_a_request_id_is_echoed_and_shown_on_error_pages(make_app: Callable[..., Flask]) -> None:
    client = make_app().test_client()
    made = client.get("/healthz").headers[REQUEST_ID_HEADER]
    assert re.fullmatch(r"[0-9a-f]{32}", made)
    assert client.get("/healthz").headers[REQUEST_ID_HEADER] != made
    sent = "nginx-0123456789abcdef"
    page = client.get("/p/no-such-poll", headers={REQUEST_ID_HEADER: sent})
    assert page.status_code == 404 and page.headers[REQUEST_ID_HEADER] == sent
    assert sent in page.get_data(as_text=True)
    # A header that is not an id (too short, odd characters) is replaced, never echoed.
    odd = client.get("/healthz", headers={REQUEST_ID_HEADER: "<script>"})
    assert odd.headers[REQUEST_ID_HEADER] != "<script>"


def test_json_request_log_has_one_line_per_request_without_tokens(
    make_app: Callable[..., Flask], caplog: pytest.LogCaptureFixture
) -> None:
    app = make_app(LOG_JSON=True, INSTANCE_NAME="web-1")

    slug = make_poll_on(app)
    (token,) = mint_on(app, slug, 1)
    logger = logging.getLogger("voting.requests")
    logger.addHandler(caplog.handler)
    try:
        client = app.test_client()
        link = client.get(f"/v/{token}", headers={REQUEST_ID_HEADER: "req-visit-000001"})
        cast = client.post(
            f"/api/polls/{slug}/ballots", json={"token": token, "choices": ["flood-watch"]}
        )
    finally:
        logger.removeHandler(caplog.handler)
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "voting.requests"]
    # The redacting filter rewrites anything after /v/, the rule's <token> placeholder too.
    assert [(line["route"], line["status"]) for line in lines] == [
        ("/v/[redacted]", link.status_code),
        ("/api/polls/<slug>/ballots", 201),
    ]
    assert lines[0]["request_id"] == "req-visit-000001"
    assert lines[1]["request_id"] == cast.headers[REQUEST_ID_HEADER]
    assert all(line["instance"] == "web-1" and line["duration_ms"] >= 0 for line in lines)
    assert token not in caplog.text and "[redacted]" in lines[0]["path"]


def test_the_console_shows_the_figures_an_organizer_watches(
    make_app: Callable[..., Flask],
) -> None:
    from tests.admin_support import Console, visible_text

    app = make_app(METRICS_TOKEN=METRICS_TOKEN)
    slug = make_poll_on(app, results_mode="live")
    client = app.test_client()
    for token in mint_on(app, slug, 3):
        assert (
            client.post(
                f"/api/polls/{slug}/ballots", json={"token": token, "choices": ["flood-watch"]}
            ).status_code
            == 201
        )
    console = Console.login(app, app.test_client())
    text = visible_text(console.page("/admin/"))
    assert "This instance" in text
    assert "Redis not configured" in text
    assert re.search(r"Ballots in the last minute \d+ Server errors since start \d+", text)
    assert re.search(r"Open viewers \(event streams\) \d+", text)
