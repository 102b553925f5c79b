"""The live tally and the event stream, in one process (the embedded default: no Redis)."""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from tests.live_support import (
    SSEClient,
    free_port,
    get_text,
    post_ballot,
    wait_until,
)
from tests.support import in_app, serving
from voting import live
from voting.extensions import db
from voting.models import Ballot, utcnow
from voting.services import organizers, overlay, polls

FAST = {"LIVE_HEARTBEAT_SECONDS": 0.5, "LIVE_MIN_INTERVAL": 0.1, "LIVE_STREAM_MIN_INTERVAL": 0.1}


@pytest.fixture
def app(make_app: Callable[..., Flask]) -> Flask:
    """The app with quick heartbeats (the other fixtures build on this one)."""
    return make_app(**FAST)


def read_chunks(response: Any) -> Iterator[str]:
    for chunk in response.response:
        yield chunk.decode() if isinstance(chunk, bytes) else chunk


def next_within(chunks: Iterator[str], timeout: float) -> str:
    """The next chunk of a streamed test-client response, failing if none comes in `timeout` s."""
    box: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: box.put(next(chunks)), daemon=True).start()
    try:
        return box.get(timeout=timeout)
    except queue.Empty:
        raise AssertionError(f"no event within {timeout} s (or the stream ended)") from None


def parse(chunk: str) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for line in chunk.strip().splitlines():
        name, _, value = line.partition(": ")
        fields[name] = value
    if "data" in fields:
        fields["data"] = json.loads(fields["data"])
    return fields


def organizer_cookie(app: Flask, client: FlaskClient) -> str:
    """Log an organizer in on this test client; returns the Cookie header for other clients."""
    with app.app_context():
        organizer = organizers.create_organizer("org", "correct horse battery", actor="test")
        organizer_id = organizer.id
    with client.session_transaction() as session:
        session["_user_id"] = str(organizer_id)
        session["_fresh"] = True
    cookie = client.get_cookie("session")
    assert cookie is not None
    return f"session={cookie.value}"


# -- the protocol ---------------------------------------------------------------------------


def test_sse_event_format_and_last_event_id_parsing() -> None:
    text = live.sse_event("tally", {"a": "b\nc"}, event_id=7, retry_ms=3000)
    assert text == 'retry: 3000\nid: 7\nevent: tally\ndata: {"a":"b\\nc"}\n\n'
    assert live.sse_event("heartbeat", {}).startswith("event: heartbeat\ndata: {}")
    assert live.parse_event_id("1795900525427") == 1795900525427
    for bad in (None, "", "abc", "-1", "1e5", "9" * 40):
        assert live.parse_event_id(bad) is None


def test_first_event_at_once_with_headers_retry_and_heartbeats(
    app: Flask, client: FlaskClient, make_poll: Callable[..., str]
) -> None:
    slug = make_poll(results_mode="live")
    started = time.monotonic()
    response = client.get(f"/api/polls/{slug}/events", buffered=False)
    assert response.status_code == 200
    assert response.mimetype == "text/event-stream"
    assert response.headers["X-Accel-Buffering"] == "no"
    assert "no-cache" in response.headers["Cache-Control"]
    assert "Content-Length" not in response.headers
    chunks = read_chunks(response)
    first = parse(next(chunks))
    assert time.monotonic() - started < 5
    assert first["event"] == "tally"
    assert 3000 <= int(first["retry"]) <= 5000
    assert int(first["id"]) == first["data"]["version"]
    assert first["data"]["status"] == "open" and first["data"]["turnout"] == 0
    assert len(first["data"]["results"]) == 12  # live mode: counts for everyone
    # Nothing changes on the poll, so what comes next is a heartbeat (every 0.5 s here), and
    # it must come at all: a stream that went quiet would leave the reader waiting forever.
    beat = parse(next_within(chunks, 10))
    assert beat["event"] == "heartbeat" and beat["data"]["now"] > 0
    response.close()
    assert wait_until(lambda: live.hub(app).subscriber_count() == 0)


def test_heartbeat_setting_cannot_exceed_15_seconds(make_app: Callable[..., Flask]) -> None:
    from voting.config import DEFAULTS, ConfigError

    with pytest.raises(ConfigError, match="HEARTBEAT"):
        make_app(LIVE_HEARTBEAT_SECONDS=30)
    assert DEFAULTS["LIVE_HEARTBEAT_SECONDS"] <= 15


def test_unknown_poll_and_bad_overlay_key(
    client: FlaskClient, make_poll: Callable[..., str]
) -> None:
    missing = client.get("/api/polls/nope/events")
    assert missing.status_code == 404 and missing.get_json()["error"] == "not_found"
    slug = make_poll()
    forged = client.get(f"/api/polls/{slug}/events?key=forged")
    assert forged.status_code == 403 and forged.get_json()["error"] == "invalid_token"


def test_ballot_cast_appears_on_the_stream_in_process(
    app: Flask, live_server: str, make_poll: Callable[..., str], mint: Callable[..., list[str]]
) -> None:
    slug = make_poll(results_mode="live")
    tokens = mint(slug, 2)
    with SSEClient(f"{live_server}/api/polls/{slug}/events") as stream:
        first = stream.next()
        assert first.data["turnout"] == 0
        assert post_ballot(live_server, slug, tokens[0], ["flood-watch"]) == 201
        cast_at = time.monotonic()
        event = stream.wait_for(lambda e: e.event == "tally" and e.data["turnout"] == 1)
        assert event.at - cast_at < 2.0
        assert int(event.id or 0) > int(first.id or 0)
        votes = {r["project"]: r["votes"] for r in event.data["results"]}
        assert votes["flood-watch"] == 1 and sum(votes.values()) == 1


def test_a_burst_of_ballots_is_coalesced(
    app: Flask, live_server: str, make_poll: Callable[..., str], mint: Callable[..., list[str]]
) -> None:
    slug = make_poll(results_mode="live")
    tokens = mint(slug, 60)
    with SSEClient(f"{live_server}/api/polls/{slug}/events") as stream:
        stream.next()
        started = time.monotonic()
        statuses: list[int] = []

        def vote(batch: list[str]) -> None:
            statuses.extend(post_ballot(live_server, slug, t, ["bias-lens"]) for t in batch)

        threads = [threading.Thread(target=vote, args=(tokens[i::6],)) for i in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert statuses.count(201) == 60
        last = stream.wait_for(lambda e: e.event == "tally" and e.data["turnout"] == 60, 10)
        elapsed = last.at - started
    updates = [e for e in stream.tallies()[1:]]
    print(f"\n60 ballots in {elapsed:.2f} s -> {len(updates)} tally events")
    # One event per 0.1 s at most (LIVE_STREAM_MIN_INTERVAL here), never one per ballot.
    assert len(updates) < 60
    assert len(updates) <= elapsed / 0.1 + 2
    versions = [int(e.id or 0) for e in stream.tallies()]
    assert versions == sorted(set(versions)), "versions only go up"


def test_reconnect_with_last_event_id_gets_the_current_snapshot(
    app: Flask, live_server: str, make_poll: Callable[..., str], mint: Callable[..., list[str]]
) -> None:
    slug = make_poll(results_mode="hidden")
    tokens = mint(slug, 3)
    with SSEClient(f"{live_server}/api/polls/{slug}/events") as stream:
        old = stream.next()
    for token in tokens:
        assert post_ballot(live_server, slug, token, ["tiny-tutor"]) == 201
    with SSEClient(
        f"{live_server}/api/polls/{slug}/events", headers={"Last-Event-ID": str(old.id)}
    ) as again:
        current = again.next()
    assert current.data["turnout"] == 3 and int(current.id or 0) > int(old.id or 0)
    assert "results" not in current.data
    # The query-string form (a script-made reconnect), and an id from "the future": still the
    # current snapshot, recomputed from the database rather than trusted from memory.
    with SSEClient(
        f"{live_server}/api/polls/{slug}/events?lastEventId={int(current.id or 0) + 10**6}"
    ) as ahead:
        assert ahead.next().data["turnout"] == 3


def test_stream_ends_after_its_lifetime(
    make_app: Callable[..., Flask],
) -> None:
    app = make_app(**FAST, LIVE_STREAM_SECONDS=1)
    client = app.test_client()
    slug = _poll_on(app)
    response = client.get(f"/api/polls/{slug}/events", buffered=False)
    started = time.monotonic()
    chunks = list(read_chunks(response))  # ends by itself
    assert time.monotonic() - started < 5
    assert parse(chunks[0])["event"] == "tally"
    assert wait_until(lambda: live.hub(app).subscriber_count() == 0)


def _poll_on(app: Flask, slug: str = "lifetime", **spec: Any) -> str:
    from tests.support import import_samples

    with app.app_context():
        import_samples()
        polls.create_poll(polls.PollSpec(slug=slug, title="T", **spec), actor="test")
        polls.open_poll(slug, actor="test")
    return slug


# -- who gets what --------------------------------------------------------------------------


def test_each_subscriber_gets_its_own_view(
    app: Flask,
    client: FlaskClient,
    live_server: str,
    make_poll: Callable[..., str],
    mint: Callable[..., list[str]],
) -> None:
    slug = make_poll(results_mode="hidden")
    [token] = mint(slug, 1)
    with app.app_context():
        poll = polls.get_poll(slug)
        key = overlay.overlay_key(poll)
    cookie = organizer_cookie(app, client)
    assert post_ballot(live_server, slug, token, ["air-aware"]) == 201
    url = f"{live_server}/api/polls/{slug}/events"

    def first(path: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
        with SSEClient(path, headers=headers) as stream:
            event = stream.wait_for(lambda e: e.event == "tally" and e.data["turnout"] == 1)
            return dict(event.data)

    public = first(url)
    keyed = first(f"{url}?key={key}")
    organizer = first(url, {"Cookie": cookie})
    projected = first(f"{url}?view=public", {"Cookie": cookie})
    for doc in (public, keyed, projected):
        assert "results" not in doc and doc["turnout"] == 1
    assert {r["project"]: r["votes"] for r in organizer["results"]}["air-aware"] == 1


def test_rotating_the_overlay_key_stops_open_overlays(
    app: Flask, live_server: str, make_poll: Callable[..., str]
) -> None:
    slug = make_poll()
    with app.app_context():
        key = overlay.overlay_key(polls.get_poll(slug))
    with SSEClient(f"{live_server}/api/polls/{slug}/events?key={key}") as stream:
        stream.next()
        with app.app_context():
            overlay.rotate_overlay_key(polls.get_poll(slug), actor="test")
        revoked = stream.wait_for(lambda e: e.event == "revoked")
        assert "replaced" in revoked.data["message"]
        assert stream.ended.wait(5)
    again = SSEClient(f"{live_server}/api/polls/{slug}/events?key={key}")
    assert again.status == 403 and json.loads(again.body)["error"] == "invalid_token"


# -- the database is released; the stream is rate-limited ------------------------------------


def test_streams_hold_no_database_connection(
    make_app: Callable[..., Flask],
) -> None:
    app = make_app(
        **FAST,
        SQLALCHEMY_ENGINE_OPTIONS={"pool_size": 2, "max_overflow": 0, "pool_timeout": 3},
    )
    slug = _poll_on(app, "pool")
    with serving(app) as base:
        streams = [SSEClient(f"{base}/api/polls/{slug}/events") for _ in range(6)]
        try:
            for stream in streams:
                assert stream.next().data["status"] == "open"
            # Six open streams on a pool of two: other requests still get a connection.
            started = time.monotonic()
            for _ in range(3):
                status, _body = get_text(f"{base}/api/polls/{slug}/results")
                assert status == 200
            assert time.monotonic() - started < 3
            with app.app_context():
                assert wait_until(lambda: db.engine.pool.checkedout() == 0, 3)  # type: ignore[attr-defined]
        finally:
            for stream in streams:
                stream.close()


def test_streams_are_rate_limited_per_address(
    make_app: Callable[..., Flask],
) -> None:
    app = make_app(
        **FAST,
        RATELIMIT_ENABLED=True,
        RATELIMIT_STORAGE_URI="memory://",
        RATELIMIT_STREAM_PER_IP="2/minute",
    )
    slug = _poll_on(app, "limited")
    client = app.test_client()
    here = {"REMOTE_ADDR": f"198.51.100.{free_port() % 250}"}
    for _ in range(2):
        response = client.get(f"/api/polls/{slug}/events", buffered=False, environ_base=here)
        assert response.status_code == 200
        next(read_chunks(response))
        response.close()
    refused = client.get(f"/api/polls/{slug}/events", environ_base=here)
    assert refused.status_code == 429
    assert refused.get_json()["error"] == "rate_limited"
    assert int(refused.headers["Retry-After"]) >= 1
    other = client.get(
        f"/api/polls/{slug}/events", buffered=False, environ_base={"REMOTE_ADDR": "192.0.2.9"}
    )
    assert other.status_code == 200
    other.close()


# -- the clock: a scheduled close and an auto-played reveal reach the stream by themselves ---


def test_schedule_and_auto_reveal_reach_the_stream(
    app: Flask, live_server: str, make_poll: Callable[..., str], mint: Callable[..., list[str]]
) -> None:
    three = ["flood-watch", "crop-doctor", "bias-lens"]
    slug = make_poll(
        results_mode="sealed",
        projects=three,
        closes_at=utcnow() + timedelta(seconds=3),
    )
    tokens = mint(slug, 3)
    for token, choice in zip(tokens, ["flood-watch", "flood-watch", "crop-doctor"], strict=True):
        assert post_ballot(live_server, slug, token, [choice]) == 201
    with SSEClient(f"{live_server}/api/polls/{slug}/events") as stream:
        stream.wait_for(lambda e: e.event == "tally" and e.data["turnout"] == 3)
        closed = stream.wait_for(lambda e: e.data["status"] == "closed", 15)
        assert "results" not in closed.data  # sealed: the public sees nothing at close
        with app.app_context():
            polls.reveal(slug, actor="test", auto_seconds=1)
        steps = []
        while not steps or steps[-1]["status"] != "revealed":
            event = stream.wait_for(lambda e: e.event == "tally", 10)
            steps.append(event.data)
    shown = [[r["project"] for r in doc.get("results", [])] for doc in steps]
    assert shown[0] == ["bias-lens"]
    assert shown[-1] == ["flood-watch", "crop-doctor", "bias-lens"]
    assert [len(s) for s in shown] == sorted(len(s) for s in shown)
    assert steps[-1]["tie_seed"] and "tie_seed" not in steps[0]


# -- Redis unreachable from the start: ballots are untouched --------------------------------


def test_ballots_do_not_wait_for_an_unreachable_redis(
    make_app: Callable[..., Flask],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="voting.live")
    app = make_app(**FAST, REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")
    slug = _poll_on(app, "no-redis", results_mode="live")
    from voting.services import issuing

    with app.app_context():
        tokens = issuing.mint_tokens(slug, 8, actor="test").tokens
    with serving(app) as base, SSEClient(f"{base}/api/polls/{slug}/events") as stream:
        assert stream.next().data["turnout"] == 0
        for token in tokens:
            started = time.monotonic()
            assert post_ballot(base, slug, token, ["doc-sprint"]) == 201
            assert time.monotonic() - started < 2
        # This instance's own streams keep updating in process.
        stream.wait_for(lambda e: e.event == "tally" and e.data["turnout"] == 8, 10)
    assert in_app(app, select(func.count(Ballot.id))) == 8
    outages = [r for r in caplog.records if "Redis is unreachable" in r.getMessage()]
    assert len(outages) == 1, "logged once, not per ballot"


def test_streams_open_and_run_on_a_one_connection_pool(
    app: Flask,
    make_app: Callable[..., Flask],
    make_poll: Callable[..., str],
    mint: Callable[..., list[str]],
) -> None:
    """Opening a stream gives its connection back before the snapshot takes one, and a
    running stream holds none: a crowd opening streams cannot drain the pool."""
    slug = make_poll(results_mode="live")
    [token] = mint(slug, 1)
    tight = make_app(
        **FAST, SQLALCHEMY_ENGINE_OPTIONS={"pool_size": 1, "max_overflow": 0, "pool_timeout": 2}
    )
    client = tight.test_client()
    streams = []
    try:
        for _ in range(3):
            started = time.monotonic()
            response = client.get(f"/api/polls/{slug}/events", buffered=False)
            assert response.status_code == 200, response.get_data(as_text=True)
            first = parse(next(read_chunks(response)))
            assert first["event"] == "tally" and first["data"]["turnout"] == 0
            assert time.monotonic() - started < 2  # never waited out the pool
            streams.append(response)
        choice = first["data"]["results"][0]["project"]
        cast = client.post(f"/api/polls/{slug}/ballots", json={"token": token, "choices": [choice]})
        assert cast.status_code == 201
    finally:
        for response in streams:
            response.close()
    with tight.app_context():
        assert polls.turnout(polls.get_poll(slug)) == 1
