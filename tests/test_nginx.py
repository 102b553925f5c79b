"""The production stack: gunicorn instances (gunicorn.conf.py) behind Debian's nginx (deploy/nginx.conf).

Issue 11's crowd: viewers split over two instances get every ballot cast on either, and
move to the survivor when one dies; hidden counts stay hidden through nginx's
micro-cache; a hall behind one address is never refused. Issue 15's slow clients are
nginx's to hold, never the app's.
"""

from __future__ import annotations

import os
import secrets
import socket
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, suppress
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from tests.crowd_support import Crowd, established
from tests.live_support import free_port, get_text, post_ballot
from tests.stack_support import Process, gunicorn, login_cookie, nginx, nginx_binary, stop_all
from tests.support import TEST_SECRET, in_app, need_service
from voting.models import Ballot, Poll
from voting.services import organizers, overlay, polls

ORGANIZER = ("nginx-ana", "a long organizer password")
# The tests that start whole stacks (gunicorn instances, nginx, crowds of viewers) run one
# after another on one xdist worker, never two at once: each measures delivery or recovery
# times that another stack's load on the same two cores would distort.
pytestmark = pytest.mark.xdist_group("stacks")
AS_IN_PRODUCTION = "PostgreSQL + Redis, as in production"
# nginx does the same whatever database is behind the app: once, in the production pass.
NGINX_ONLY = AS_IN_PRODUCTION + " (what nginx does is the same on SQLite)"


@pytest.fixture(autouse=True)
def _nginx_installed() -> None:
    if nginx_binary() is None:
        need_service("nginx (apt-get install -y nginx)")


def stack_env(base_config: dict[str, Any], redis_url: str) -> dict[str, str]:
    """What an instance gets in production, pointed at the test database and Redis."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY") and not k.startswith("VOTING_")
    }
    prefix = "nginx-" + secrets.token_hex(4)
    return {
        **env,
        "SECRET_KEY": TEST_SECRET,
        "DATABASE_URL": str(base_config["SQLALCHEMY_DATABASE_URI"]),
        "REDIS_URL": redis_url,
        "VOTING_HASH_KEY": "test-hash-key",
        "VOTING_BASE_URL": "http://vote.test",
        "VOTING_PROXY_HOPS": "1",
        "VOTING_LIVE_KEY_PREFIX": prefix,
        "VOTING_RATELIMIT_KEY_PREFIX": prefix + "-rl",
        "GUNICORN_ACCESSLOG": "",
        "GUNICORN_LOGLEVEL": "warning",
        # Two workers per instance: the shipped class and settings, started a little faster.
        "WEB_CONCURRENCY": "2",
        # Stopping waits this long for open connections (nginx keeps some alive).
        "GUNICORN_GRACEFUL_TIMEOUT": "1",
    }


class Stack:
    def __init__(self, instances: list[tuple[Process, int]], proxy: Process, port: int):
        self.instances = instances
        self.proxy = proxy
        self.port = port

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def instance_base(self, i: int) -> str:
        return f"http://127.0.0.1:{self.instances[i][1]}"


def start_stack(
    exits: ExitStack, env: dict[str, str], workdir: Path, count: int, **extra: str
) -> Stack:
    started: list[Process] = []
    exits.callback(stop_all, started)  # stopped together too: their graceful waits overlap
    instances = []
    for i in range(count):  # started together, then waited for: a loaded machine is slow
        port = free_port()
        server = gunicorn({**env, **extra}, port, workdir, f"gunicorn-{i + 1}", wait=False)
        started.append(server)
        instances.append((server, port))
    for server, port in instances:
        server.wait_healthy(port)
    port = free_port()
    proxy = nginx(port, [p for _, p in instances], workdir)
    started.append(proxy)
    return Stack(instances, proxy, port)


@pytest.fixture
def organizer(app: Flask) -> tuple[str, str]:
    with app.app_context():
        organizers.create_organizer(*ORGANIZER, actor="test")
    return ORGANIZER


def _stored(app: Flask, slug: str) -> int:
    query = (
        select(func.count())
        .select_from(Ballot)
        .join(Poll, Poll.id == Ballot.poll_id)
        .where(Poll.slug == slug)
    )
    return int(in_app(app, query))


def _live_poll(
    app: Flask, make_poll: Callable[..., str], mint: Callable[..., list[str]], tokens: int
) -> tuple[str, list[str], str]:
    """A live-results poll, `tokens` voter tokens for it, and a project to vote for."""
    slug = make_poll(results_mode="live")
    minted = mint(slug, tokens)
    with app.app_context():
        choice = next(c.project.slug for c in polls.get_poll(slug).choices)
    return slug, minted, choice


# -- Must show 2: 500 viewers over two instances; one instance dies -------------------------


@pytest.mark.only_on("postgresql", AS_IN_PRODUCTION)
@pytest.mark.slow
@pytest.mark.timeout(240)
def test_viewers_on_two_instances_get_every_ballot_and_survive_one_dying(
    app: Flask,
    base_config: dict[str, Any],
    redis_url: str,
    make_poll: Callable[..., str],
    mint: Callable[..., list[str]],
    tmp_path: Path,
) -> None:
    slug, tokens, choice = _live_poll(app, make_poll, mint, 13)
    with ExitStack() as exits:
        stack = start_stack(exits, stack_env(base_config, redis_url), tmp_path, 2)
        crowd = exits.enter_context(Crowd(stack.port))
        opened = time.monotonic()
        crowd.add(f"/api/polls/{slug}/events?view=public", 500)
        assert crowd.everyone_sees(0, timeout=60), "not every viewer got its first event"
        print(f"500 viewers had their first event after {time.monotonic() - opened:.1f} s")
        on = [established(p) for _, p in stack.instances]
        assert min(on) >= 200, f"viewers per instance: {on}"  # nginx's least_conn splits them

        answers, delays = [], []
        for n, token in enumerate(tokens[:10], start=1):
            # Alternate: straight to instance A, straight to B, then through nginx.
            base = (stack.instance_base(0), stack.instance_base(1), stack.base)[n % 3]
            sent = time.monotonic()
            answers.append(post_ballot(base, slug, token, [choice]))
            assert crowd.everyone_sees(n, timeout=10), f"ballot {n} did not reach every viewer"
            delays.append(max(w.first_seen(n) or 0 for w in crowd.watchers) - sent)
        print(f"ballot to its last viewer (500 viewers): max {max(delays) * 1000:.0f} ms, "
              f"median {statistics.median(delays) * 1000:.0f} ms")  # fmt: skip
        assert answers == [201] * 10
        assert all(d <= 1.0 for d in delays), f"slowest delivery {max(delays):.2f} s"
        health = [get_text(stack.base + "/healthz")[0] for _ in range(5)]
        assert health == [200] * 5

        # A crash: instance A's viewers lose their streams and reconnect through nginx to B.
        killed, _ = stack.instances[0]
        killed.kill()
        died = time.monotonic()
        assert crowd.wait_until(
            lambda ws: all(w.open for w in ws) and sum(w.connects > 1 for w in ws) >= on[0] - 5,
            timeout=60,
        ), "viewers of the dead instance did not come back"
        print(f"{on[0]} viewers moved to the other instance in {time.monotonic() - died:.1f} s")
        assert established(stack.instances[1][1]) >= 500
        for n, token in enumerate(tokens[10:13], start=11):
            base = (stack.instance_base(1), stack.base)[n % 2]
            answers.append(post_ballot(base, slug, token, [choice]))
            assert crowd.everyone_sees(n, timeout=15), f"ballot {n} missed moved viewers"
        assert answers == [201] * 13
        assert _stored(app, slug) == answers.count(201)
        assert all(w.statuses.count(200) == w.connects for w in crowd.watchers)


# -- A stream instance of its own (README, "Sizing"): the crowd off the ballots' CPU --------


@pytest.mark.only_on("postgresql", AS_IN_PRODUCTION)
@pytest.mark.slow
@pytest.mark.timeout(180)
def test_a_stream_instance_of_its_own_holds_every_viewer_and_the_other_every_ballot(
    app: Flask,
    base_config: dict[str, Any],
    redis_url: str,
    make_poll: Callable[..., str],
    mint: Callable[..., list[str]],
    tmp_path: Path,
) -> None:
    slug, tokens, choice = _live_poll(app, make_poll, mint, 3)
    env = {**stack_env(base_config, redis_url), "WEB_CONCURRENCY": "1"}
    with ExitStack() as exits:
        web_port, streams_port = free_port(), free_port()
        web = gunicorn(env, web_port, tmp_path, "gunicorn-web", wait=False)
        streams = gunicorn(env, streams_port, tmp_path, "gunicorn-streams", wait=False, nice=10)
        started = [web, streams]
        exits.callback(stop_all, started)
        web.wait_healthy(web_port)
        streams.wait_healthy(streams_port)
        port = free_port()
        proxy = nginx(port, [web_port], tmp_path, stream_ports=[streams_port])
        started.append(proxy)
        base = f"http://127.0.0.1:{port}"

        crowd = exits.enter_context(Crowd(port))
        crowd.add(f"/api/polls/{slug}/events?view=public", 50)
        assert crowd.everyone_sees(0, timeout=30)
        # Every stream is on the stream instance, none on the other.
        assert established(streams_port) >= 50 and established(web_port) < 10
        # Ballots go to the other instance and reach every viewer through Redis.
        for n, token in enumerate(tokens[:2], start=1):
            assert post_ballot(base, slug, token, [choice]) == 201
            assert crowd.everyone_sees(n, timeout=5), f"ballot {n} did not reach every viewer"
        assert _stored(app, slug) == 2

        # The other instance gone: ballots and pages fail, the streams stay and new ones open.
        web.stop()
        assert get_text(base + "/healthz")[0] == 502
        assert post_ballot(base, slug, tokens[2], [choice]) == 502
        assert all(w.connects == 1 and w.open for w in crowd.watchers)
        crowd.add(f"/api/polls/{slug}/events?view=public", 5)
        assert crowd.wait_until(lambda ws: len(ws) == 55 and all(w.open for w in ws), 20)
        assert crowd.everyone_sees(2, timeout=10)
    assert _stored(app, slug) == 2


# -- one stack (two instances) for the tests below ------------------------------------------


@pytest.fixture
def stack(
    app: Flask, base_config: dict[str, Any], redis_url: str, tmp_path: Path
) -> Iterator[Stack]:
    with ExitStack() as exits:
        yield start_stack(exits, stack_env(base_config, redis_url), tmp_path, 2)


# -- Must show 3: hidden counts, through the stream and through nginx's micro-cache ---------


def _get(
    port: int, path: str, cookie: str = "", *, gzipped: bool = False
) -> tuple[int, dict[str, str], str]:
    """One GET; `gzipped` asks for gzip as a browser does, and unpacks what comes back."""
    import gzip
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
    headers = {"Cookie": cookie} if cookie else {}
    if gzipped:
        headers["Accept-Encoding"] = "gzip"
    try:
        conn.request("GET", path, headers=headers)
        resp = conn.getresponse()
        found = {k.lower(): v for k, v in resp.getheaders()}
        raw = resp.read()
        if found.get("content-encoding") == "gzip":
            raw = gzip.decompress(raw)
        return resp.status, found, raw.decode()
    finally:
        conn.close()


@pytest.mark.only_on("postgresql", NGINX_ONLY)
@pytest.mark.slow
@pytest.mark.timeout(180)
def test_hidden_counts_never_reach_the_public_through_nginx(
    app: Flask,
    stack: Stack,
    organizer: tuple[str, str],
    make_poll: Callable[..., str],
    mint: Callable[..., list[str]],
) -> None:
    slug = make_poll(results_mode="hidden")
    tokens = mint(slug, 2)
    with app.app_context():
        poll = polls.get_poll(slug)
        choice = next(c.project.slug for c in poll.choices)
        key = overlay.overlay_key(poll)
    cookie = login_cookie(stack.port, *organizer)
    results = f"/api/polls/{slug}/results"
    with Crowd(stack.port) as crowd:
        crowd.add(f"/api/polls/{slug}/events", 20)
        crowd.add(f"/api/polls/{slug}/events?view=public", 20)
        crowd.add(f"/api/polls/{slug}/events?key={key}", 5)
        crowd.add(f"/api/polls/{slug}/events", 5, cookie=cookie)
        public, consoles = crowd.watchers[:45], crowd.watchers[45:]
        assert crowd.everyone_sees(0, timeout=30)
        for n, token in enumerate(tokens, start=1):
            assert post_ballot(stack.base, slug, token, [choice]) == 201
            assert crowd.everyone_sees(n, timeout=10)

        # The organizer asks first: the answer has counts, is marked private, and is not
        # kept for the public that asks right after.
        status, headers, body = _get(stack.port, results, cookie)
        assert status == 200 and '"results"' in body
        assert "no-store" in headers["cache-control"] and "private" in headers["cache-control"]
        # The public answer is micro-cached: asked again at once, nginx has it (a HIT), and
        # it never holds the counts.
        cached: list[str | None] = []
        deadline = time.monotonic() + 10
        while "HIT" not in cached and time.monotonic() < deadline:
            status, headers, body = _get(stack.port, results)
            assert status == 200 and '"results"' not in body and '"turnout":2' in body
            assert "x-accel-expires" not in headers  # nginx's own, never the client's
            cached.append(headers.get("x-cache"))
        assert "HIT" in cached, cached
        page: list[str | None] = []  # the results page likewise
        while "HIT" not in page and time.monotonic() < deadline + 10:
            status, headers, _ = _get(stack.port, f"/p/{slug}/results")
            assert status == 200
            page.append(headers.get("x-cache"))
        assert "HIT" in page, page
        # A browser asks for gzip: its own cached variant of the page (the app gzips it once
        # per version), and a client that did not ask is never handed the gzipped one.
        packed: list[str | None] = []
        while "HIT" not in packed and time.monotonic() < deadline + 20:
            status, headers, body = _get(stack.port, f"/p/{slug}/results", gzipped=True)
            assert status == 200 and headers.get("content-encoding") == "gzip", headers
            assert "2 ballots" in body
            packed.append(headers.get("x-cache"))
        assert "HIT" in packed, packed
        status, headers, body = _get(stack.port, f"/p/{slug}/results")
        assert "content-encoding" not in headers and "2 ballots" in body
        # And the other way round: the public answer, cached now, is never the organizer's.
        status, headers, body = _get(stack.port, results, cookie)
        assert '"results"' in body and headers.get("x-cache") == "BYPASS"
        assert not any(w.saw_counts for w in public)
        assert all(w.saw_counts for w in consoles)

        # Closing keeps them hidden; the reveal steps show places one at a time.
        with app.app_context():
            polls.close_poll(slug, actor="test")
        status, _, body = _get(stack.port, results)
        assert '"results"' not in body
        with app.app_context():
            polls.reveal(slug, actor="test", step=True)
        assert crowd.wait_until(lambda ws: all(w.saw_counts for w in public), timeout=15)
    status, _, body = _get(stack.port, results)
    # The micro-cache holds an answer for one second at most.
    deadline = time.monotonic() + 5
    while '"results"' not in body and time.monotonic() < deadline:
        time.sleep(0.2)
        status, _, body = _get(stack.port, results)
    assert '"results"' in body


# -- Must show 4: a hall behind one address -------------------------------------------------


@pytest.mark.only_on(
    "postgresql", "PostgreSQL + Redis (rate limits shared through Redis), as in production"
)
@pytest.mark.slow
@pytest.mark.timeout(240)
def test_three_thousand_viewers_from_one_address_are_all_served(
    app: Flask, stack: Stack, make_poll: Callable[..., str]
) -> None:
    slug = make_poll(results_mode="live")
    with Crowd(stack.port) as crowd:
        # Within a minute (in 20 s), from 127.0.0.1, with the shipped limits: page, then stream.
        crowd.add(
            f"/api/polls/{slug}/events?view=public",
            3000,
            page=f"/p/{slug}/results",
            per_second=150,
        )
        served = crowd.wait_until(
            lambda ws: all(w.turnout >= 0 or 429 in w.statuses for w in ws), timeout=150
        )
        pages = [w.page_status for w in crowd.watchers]
        streams = [w.statuses[0] if w.statuses else None for w in crowd.watchers]
        silent = [w for w in crowd.watchers if w.turnout < 0]
        assert served, f"{len(silent)} viewers had no event, e.g. " + ", ".join(
            f"(page {w.page_status} {w.phase}, statuses {w.statuses}, open {w.open})"
            for w in silent[:5]
        )
        assert pages.count(200) == 3000, {s: pages.count(s) for s in set(pages)}
        assert streams.count(200) == 3000, {s: streams.count(s) for s in set(streams)}


# -- issue 15, Must show 5: slow clients are nginx's to hold ---------------------------------


@pytest.mark.only_on("postgresql", NGINX_ONLY)
@pytest.mark.slow
@pytest.mark.timeout(180)
def test_slow_clients_do_not_hold_the_instance(
    app: Flask, stack: Stack, make_poll: Callable[..., str], mint: Callable[..., list[str]]
) -> None:
    slug, tokens, choice = _live_poll(app, make_poll, mint, 20)
    slow: list[socket.socket] = []
    try:
        for _ in range(300):
            s = socket.create_connection(("127.0.0.1", stack.port), timeout=5)
            s.sendall(f"GET /p/{slug}/results HTTP/1.1\r\nHost: 127.0.0.1\r\n".encode())
            slow.append(s)
        answers: list[tuple[str, int, float]] = []
        line = 0
        start = next_line = time.monotonic() + 5
        for i, token in enumerate(tokens):
            # Twenty rounds over ten seconds, so the slow clients trickle all along.
            pause = start - 5 + i * 0.5 - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            if time.monotonic() >= next_line:  # one more header line from each, every 5 s
                line += 1
                for s in slow:
                    with suppress(OSError):
                        s.sendall(f"X-Slow-{line}: {line}\r\n".encode())
                next_line += 5
            sent = time.monotonic()
            status = get_text(stack.base + "/healthz")[0]
            answers.append(("healthz", status, time.monotonic() - sent))
            sent = time.monotonic()
            status = post_ballot(stack.base, slug, token, [choice])
            answers.append(("ballot", status, time.monotonic() - sent))
        print(
            "with 300 slow clients: slowest /healthz "
            f"{max(t for k, _, t in answers if k == 'healthz') * 1000:.0f} ms, slowest ballot "
            f"{max(t for k, _, t in answers if k == 'ballot') * 1000:.0f} ms"
        )
        assert [s for k, s, _ in answers if k == "healthz"] == [200] * 20
        assert [s for k, s, _ in answers if k == "ballot"] == [201] * 20
        assert all(t <= 1.0 for _, _, t in answers), max(t for _, _, t in answers)
        # The slow clients reached nginx, never gunicorn: the instances saw no such request.
        assert sum(established(p) for _, p in stack.instances) < 300
    finally:
        for s in slow:
            s.close()
    assert _stored(app, slug) == 20
