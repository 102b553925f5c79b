"""Faults survived, with real processes: PostgreSQL stopping mid-vote, a gunicorn worker
killed mid-request and an instance restarted under open streams, Redis full or read-only,
and the disk filling up under the embedded SQLite default.

Each test starts its own throwaway servers on free ports and stops only those, and prints
its figures (201 answers, stored ballots, 5xx answers, recovery time) on a
`[fault figures]` line.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask
from prometheus_client.parser import text_string_to_metric_families
from redis import exceptions as redis_errors
from sqlalchemy import create_engine, text

from tests.fault_support import (
    PostgresCluster,
    Voters,
    figures,
    fill,
    gunicorn,
    gunicorns,
    instance_env,
    request,
    small_tmpfs,
)
from tests.live_support import RedisProcess, SSEClient, free_port, wait_until
from tests.support import TEST_SECRET, make_poll_on, mint_on, serving
from voting import create_app, live
from voting.extensions import db

METRICS_TOKEN = "fault-metrics-" + "t" * 32
# The tests that start whole stacks (gunicorn instances, nginx, crowds of viewers) run one
# after another on one xdist worker, never two at once: each measures delivery or recovery
# times that another stack's load on the same two cores would distort.
pytestmark = pytest.mark.xdist_group("stacks")


def prepared(database_url: str, tokens: int, **poll: Any) -> tuple[str, list[str]]:
    """Migrate an empty database, and make an open poll with `tokens` voter links in it."""
    from voting.database import upgrade_schema

    app = create_app(
        {"TESTING": True, "SECRET_KEY": TEST_SECRET, "SQLALCHEMY_DATABASE_URI": database_url,
         "HASH_KEY": "test-hash-key", "BASE_URL": "http://vote.test"}
    )  # fmt: skip
    try:
        with app.app_context():
            upgrade_schema()
        slug = make_poll_on(app, "fault", **poll)
        return slug, mint_on(app, slug, tokens)
    finally:
        live.shutdown(app)
        with app.app_context():
            db.engine.dispose()


def stored(database_url: str) -> dict[str, int]:
    """Ballots stored, and ballots without their choices (a half-written ballot)."""
    engine = create_engine(database_url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        with engine.connect() as conn:
            ballots = conn.execute(text("SELECT count(*) FROM ballots")).scalar_one()
            bare = conn.execute(
                text(
                    "SELECT count(*) FROM ballots b WHERE NOT EXISTS"
                    " (SELECT 1 FROM ballot_choices c WHERE c.ballot_id = b.id)"
                )
            ).scalar_one()
    finally:
        engine.dispose()
    return {"ballots": int(ballots), "half_written": int(bare)}


@pytest.fixture
def cluster_factory() -> Iterator[Callable[[], PostgresCluster]]:
    """A throwaway PostgreSQL cluster, started on demand (initdb takes a few seconds)."""
    made: list[PostgresCluster] = []

    def start() -> PostgresCluster:
        server = PostgresCluster()
        made.append(server)
        server.start()
        return server

    yield start
    for server in made:
        server.remove()


# -- PostgreSQL stops mid-vote --------------------------------------------------------------


@pytest.mark.only_on(
    "postgresql",
    "runs in the PostgreSQL pass of CI: it starts its own cluster whatever the suite's database",
)
@pytest.mark.slow
@pytest.mark.timeout(150)
def test_postgresql_stops_mid_vote_and_voting_resumes_without_a_restart(
    cluster_factory: Callable[[], PostgresCluster],
) -> None:
    cluster = cluster_factory()
    url = cluster.create_database("voting_fault")
    slug, tokens = prepared(url, 60)
    with gunicorn(instance_env(url, VOTING_METRICS_TOKEN=METRICS_TOKEN)) as web:
        workers = web.worker_pids()
        voters = Voters(web.base, slug, tokens, "flood-watch").start()
        assert wait_until(lambda: voters.count(201) >= 15, 30, 0.01)
        cluster.stop()
        stopped = time.monotonic()
        # While it is down: a page a person understands, for the API and for the browser.
        assert wait_until(lambda: voters.count(503) >= 10, 30, 0.01)
        api = request(f"{web.base}/api/polls/{slug}")
        page = request(f"{web.base}/p/{slug}", headers={"Accept": "text/html"})
        down_for = time.monotonic() - stopped
        cluster.start()
        restarted = time.monotonic()
        voters.join()
        assert web.worker_pids() == workers, "gunicorn was not restarted"
        first_201 = voters.first_after(restarted, 201)
        # Both workers' counts, added up (prometheus_client's multiprocess mode).
        scraped = request(
            f"{web.base}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}
        )
    assert api.status == 503 and api.headers["Retry-After"] == "5"
    assert api.json()["error"] == "database_unavailable"
    assert page.status == 503 and "Nothing was recorded" in page.body
    assert page.headers["X-Request-ID"] in page.body  # the reference to quote
    statuses = voters.statuses()
    after = stored(url)
    figures(
        "PostgreSQL stopped mid-vote",
        answers_201=statuses[201],
        stored_ballots=after["ballots"],
        answers_5xx=sum(n for s, n in statuses.items() if s >= 500),
        answers_500=statuses[500],
        no_answer=statuses[0],
        down_seconds=round(down_for, 2),
        recovery_seconds=round(first_201 - restarted, 3) if first_201 else None,
    )
    assert set(statuses) <= {201, 503}, statuses  # never a 500, never a dropped connection
    assert statuses[201] == len(tokens) == after["ballots"]
    assert after["half_written"] == 0
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(scraped.body)
        for s in family.samples
    }
    accepted = sum(
        v
        for (n, ls), v in samples.items()
        if n == "voting_ballots_total" and ("outcome", "accepted") in ls
    )
    unavailable = samples[
        ("voting_unavailable_answers_total", (("reason", "database_unavailable"),))
    ]
    assert accepted == len(tokens)
    assert unavailable == statuses[503] + 2  # the ballots' 503s, the API read and the page


# -- A gunicorn worker killed mid-request; an instance restarted under open streams ---------


@pytest.mark.slow
@pytest.mark.timeout(150)
def test_a_killed_worker_loses_no_ballot_and_streams_catch_up_after_a_restart(
    make_poll: Callable[..., str],
    mint: Callable[..., list[str]],
    base_config: dict[str, Any],
    own_redis: RedisProcess,
) -> None:
    slug = make_poll(results_mode="live")
    tokens = mint(slug, 70)
    url = str(base_config["SQLALCHEMY_DATABASE_URI"])
    env = instance_env(url, REDIS_URL=own_redis.url, VOTING_LIVE_HEARTBEAT_SECONDS="1")
    with gunicorns(env, {**env, "WEB_CONCURRENCY": "1"}) as (a, b):
        # 1. SIGKILL one of A's workers while ballots are in flight on it.
        voters = Voters(a.base, slug, tokens[:50], "flood-watch", threads=8).start()
        assert wait_until(lambda: voters.count(201) >= 10, 30, 0.005)
        victim = a.worker_pids()[0]
        os.kill(victim, signal.SIGKILL)
        killed = time.monotonic()
        voters.join()
        assert wait_until(lambda: len(a.worker_pids()) == 2 and victim not in a.worker_pids(), 30)
        statuses = voters.statuses()
        lost = {t for t, seen in voters.outcome.items() if 0 in seen}
        # A ballot whose answer was lost with the worker is either stored (the retry is told
        # 409 already_voted, with its receipt) or not (the retry stores it: 201).
        repeated = sum(1 for t in lost if voters.outcome[t][-1] == 409)
        first_201 = voters.first_after(killed, 201)

        # 2. Streams open on B; B restarts; A takes ballots meanwhile; streams come back.
        with SSEClient(f"{b.base}/api/polls/{slug}/events") as one:
            # B may start from the shared snapshot as A last published it: A's workers publish
            # at most LIVE_MIN_INTERVAL after a commit, and a ballot committed by the killed
            # worker waits for the next publish or recount (10 s with Redis). The stream must
            # catch up to every stored ballot, not hold them all in its first event. (Once, on
            # SQLite under a loaded CI machine, the first event took over 10 s: 20 s.)
            seen = one.next(20)
            if seen.data["turnout"] != 50:
                seen = one.wait_for(lambda e: e.data.get("turnout") == 50, 15)
            assert (
                request(
                    f"{a.base}/api/polls/{slug}/ballots",
                    body={"token": tokens[50], "choices": ["bias-lens"]},
                ).status
                == 201
            )
            seen = one.wait_for(lambda e: e.data.get("turnout") == 51, 10)
            b.stop()  # SIGTERM: the open stream is cut
            assert one.ended.wait(15)
        for token in tokens[51:60]:
            assert (
                request(
                    f"{a.base}/api/polls/{slug}/ballots",
                    body={"token": token, "choices": ["bias-lens"]},
                ).status
                == 201
            )
        b.start()
        back = time.monotonic()
        with SSEClient(
            f"{b.base}/api/polls/{slug}/events", headers={"Last-Event-ID": str(seen.id)}
        ) as again:
            caught_up = again.next()
            reconnected = time.monotonic()
    after = stored(url)
    figures(
        "gunicorn worker SIGKILLed mid-request, instance restarted under a stream",
        answers_201=statuses[201] + 10,
        answers_409_after_a_lost_answer=repeated,
        stored_ballots=after["ballots"],
        answers_5xx=sum(n for s, n in statuses.items() if s >= 500),
        connections_cut=statuses[0],
        recovery_seconds_first_201_after_kill=round(first_201 - killed, 3) if first_201 else None,
        stream_back_seconds_after_restart=round(reconnected - back, 3),
    )
    assert all(s < 500 for s in statuses), statuses
    assert after["ballots"] == 60 and after["half_written"] == 0
    # Every ballot answered 201 is stored; the only others are those whose answer was lost.
    assert statuses[201] + repeated == 50
    assert caught_up.data["turnout"] == 60 and int(caught_up.id or 0) > int(seen.id or 0)


# -- Redis full (maxmemory, noeviction) or read-only (a replica) ----------------------------


@pytest.mark.slow
@pytest.mark.parametrize("fault", ["full", "read-only"])
def test_ballots_count_when_redis_is_full_or_read_only(
    fault: str,
    make_app: Callable[..., Flask],
    own_redis: RedisProcess,
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = make_app(
        REDIS_URL=own_redis.url,
        RATELIMIT_ENABLED=True,
        RATELIMIT_STORAGE_URI=own_redis.url,
        LIVE_MIN_INTERVAL=0.05,
        LIVE_HEARTBEAT_SECONDS=1,
    )
    slug = make_poll_on(app, results_mode="live")
    tokens = iter(mint_on(app, slug, 30))
    redis = own_redis.client()

    repeats: list[int] = []

    def cast(base: str, n: int) -> list[int]:
        """n first ballots, each sent twice: a first ballot consults no rate-limit counter
        (the database allows one per token), its repeat is counted per token, in Redis."""
        statuses = []
        for _ in range(n):
            body = {"token": next(tokens), "choices": ["coral-count"]}
            statuses.append(request(f"{base}/api/polls/{slug}/ballots", body=body).status)
            repeats.append(request(f"{base}/api/polls/{slug}/ballots", body=body).status)
        return statuses

    caplog.set_level(logging.INFO)
    with serving(app) as base, SSEClient(f"{base}/api/polls/{slug}/events") as stream:
        assert stream.next().data["turnout"] == 0
        before = cast(base, 5)
        assert any("voting-rl" in key for key in redis.keys("*"))  # limits in Redis
        stream.wait_for(lambda e: e.data.get("turnout") == 5)
        if fault == "full":
            redis.config_set("maxmemory-policy", "noeviction")
            redis.config_set("maxmemory", 1)  # every write is now refused: OOM
            refusal: type[Exception] = redis_errors.OutOfMemoryError
        else:
            redis.execute_command("REPLICAOF", "127.0.0.1", str(free_port()))  # no master there
            refusal = redis_errors.ReadOnlyError
        with pytest.raises(refusal):
            redis.set("probe", "1")
        broke = time.monotonic()
        during = cast(base, 10)
        # The stream keeps following (in process), though the snapshot cannot be stored.
        stream.wait_for(lambda e: e.data.get("turnout") == 15, 15)
        followed = time.monotonic() - broke
        if fault == "full":
            redis.config_set("maxmemory", 0)
        else:
            redis.execute_command("REPLICAOF", "NO", "ONE")
        healed = time.monotonic()
        after = cast(base, 5)
        stream.wait_for(lambda e: e.data.get("turnout") == 20, 15)
        # flask-limiter re-checks the storage with a backoff and returns to it by itself.
        probes: list[int] = []
        assert wait_until(lambda: _limiter_back(base, slug, tokens, redis, probes), 40, 0.2)
        recovered = time.monotonic() - healed
    answers = before + during + after + probes
    with app.app_context():
        counted = db.session.execute(text("SELECT count(*) FROM ballots")).scalar_one()
    log = caplog.text.lower()
    figures(
        f"Redis {fault}",
        answers_201=answers.count(201),
        stored_ballots=counted,
        answers_5xx=sum(1 for s in answers if s >= 500),
        stream_followed_seconds=round(followed, 3),
        limits_back_on_redis_seconds=round(recovered, 2),
    )
    assert answers == [201] * len(answers) and counted == len(answers)
    assert repeats == [409] * len(repeats)  # each repeat refused with its receipt, never a 5xx
    assert "rate limit storage" in log and "falling back" in log  # failed open, and said so


def _limiter_back(
    base: str, slug: str, tokens: Iterator[str], redis: Any, statuses: list[int]
) -> bool:
    """Cast one more ballot; True once its rate-limit counter landed in Redis again."""
    redis.flushdb()
    body = {"token": next(tokens), "choices": ["coral-count"]}
    statuses.append(request(f"{base}/api/polls/{slug}/ballots", body=body).status)
    request(f"{base}/api/polls/{slug}/ballots", body=body)  # its repeat meets the per-token limit
    return any("voting-rl" in key for key in redis.keys("*"))


# -- The disk fills up under the embedded SQLite default ------------------------------------


@pytest.mark.only_on(
    "sqlite",
    "runs in the SQLite pass of CI: it makes its own SQLite file whatever the suite's database",
)
@pytest.mark.slow
@pytest.mark.timeout(120)
def test_a_full_disk_gives_a_clear_error_and_nothing_half_written(is_postgres: bool) -> None:
    # A real full disk: a 4 MiB tmpfs holding the SQLite file (its WAL too), then filled up.
    with small_tmpfs("4m") as disk:
        url = f"sqlite:///{disk}/voting.db"
        slug, tokens = prepared(url, 40)
        env = instance_env(url, WEB_CONCURRENCY="1")
        with gunicorn(env) as web:

            def cast(token: str) -> Any:
                return request(
                    f"{web.base}/api/polls/{slug}/ballots",
                    body={"token": token, "choices": ["flood-watch"]},
                )

            answers = [cast(t) for t in tokens[:10]]
            filler = fill(disk)
            refused = [cast(t) for t in tokens[10:20]]
            page = request(f"{web.base}/p/{slug}", headers={"Accept": "text/html"})
            during = stored(url)
            filler.unlink()  # the organizer frees space
            freed = time.monotonic()
            later = [cast(t) for t in tokens[10:30]]
            recovered = time.monotonic() - freed
            log = web.output()
        after = stored(url)
        engine = create_engine(url)
        with engine.connect() as conn:
            integrity = conn.execute(text("PRAGMA integrity_check")).scalar_one()
        engine.dispose()
    statuses = [a.status for a in answers + refused + later]
    figures(
        "SQLite disk full",
        answers_201=statuses.count(201),
        stored_ballots=after["ballots"],
        answers_5xx=sum(1 for s in statuses if s >= 500),
        stored_while_full=during["ballots"],
        recovery_seconds=round(recovered, 3),
    )
    assert [a.status for a in answers] == [201] * 10
    assert {a.status for a in refused} == {503}, [a.status for a in refused]
    assert refused[0].json()["error"] == "storage_full" and refused[0].headers["Retry-After"]
    assert "no room left" in refused[0].json()["message"]
    assert during == {"ballots": 10, "half_written": 0}  # nothing half-written while full
    assert [a.status for a in later] == [201] * 20  # the refused voters vote again
    assert after == {"ballots": 30, "half_written": 0} and integrity == "ok"
    assert page.status in (200, 503)  # reading may still work; it never fails with a 500
    assert "storage_full" in log and "Traceback" not in log
