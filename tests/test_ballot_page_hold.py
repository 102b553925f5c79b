"""The ballot page holds what it reads alike for everyone (voting.services.held) and renders
its skeleton once (voting.web.public.skeleton), without ever showing a stale or foreign page.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from typing import Any

import redis
from flask import Flask
from sqlalchemy import create_engine, func, select, text

from tests.live_support import wait_until
from tests.support import csrf_from, in_app, make_poll_on, mint_on
from voting.models import Ballot
from voting.services import ballots, issuing, polls, projects


def _titles(page: str) -> list[str]:
    return re.findall(r'<h2><a href="[^"]+/project/[^"]+">([^<]+)</a></h2>', page)


def _other_process(database_url: str, sql: str, **params: Any) -> None:
    """A write this process's sessions never see: what another worker or the CLI does."""
    url = database_url.replace("postgresql://", "postgresql+psycopg://")
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text(sql), params)
    finally:
        engine.dispose()


def test_a_change_made_here_shows_at_once_even_when_holding_long(
    make_app: Callable[..., Flask], make_poll: Callable[..., str]
) -> None:
    app = make_app(PAGE_HOLD_SECONDS=600)
    slug = make_poll()
    client = app.test_client()
    assert "FloodWatch" in _titles(client.get(f"/p/{slug}").get_data(as_text=True))
    with app.app_context():
        projects.update_project("flood-watch", {"title": "FloodWatch Renamed"}, actor="ana")
    page = client.get(f"/p/{slug}").get_data(as_text=True)
    assert "FloodWatch Renamed" in _titles(page) and "FloodWatch" not in _titles(page)
    with app.app_context():
        polls.close_poll(slug, actor="ana")
    closed = client.get(f"/p/{slug}").get_data(as_text=True)
    assert 'name="choice"' not in closed and "FloodWatch Renamed" not in _titles(closed)


def test_a_change_made_by_another_process_shows_within_the_hold(
    make_app: Callable[..., Flask], make_poll: Callable[..., str], base_config: dict[str, Any]
) -> None:
    app = make_app(PAGE_HOLD_SECONDS=0.5)
    slug = make_poll()
    client = app.test_client()
    assert "FloodWatch" in _titles(client.get(f"/p/{slug}").get_data(as_text=True))
    _other_process(
        str(base_config["SQLALCHEMY_DATABASE_URI"]),
        "UPDATE projects SET title = :title WHERE slug = 'flood-watch'",
        title="FloodWatch From Elsewhere",
    )
    # Held: the same page again at once (this process was not told)...
    assert "FloodWatch" in _titles(client.get(f"/p/{slug}").get_data(as_text=True))
    # ...and the new title once the hold has passed, with no restart.
    assert wait_until(
        lambda: (
            "FloodWatch From Elsewhere" in _titles(client.get(f"/p/{slug}").get_data(as_text=True))
        ),
        5,
        0.05,
    )
    assert in_app(app, text("SELECT title FROM projects WHERE slug = 'flood-watch'")) == (
        "FloodWatch From Elsewhere"
    )


def test_each_visitor_gets_their_own_token_order_and_picks_on_the_shared_skeleton(
    app: Flask, make_poll: Callable[..., str], mint: Callable[..., list[str]]
) -> None:
    slug = make_poll(method="approval", max_choices=3)
    tokens = mint(slug, 2)
    pages, csrf = [], []
    for token in tokens:
        client = app.test_client()
        assert client.get(f"/v/{token}").status_code == 303
        page = client.get(f"/p/{slug}?choice=flood-watch").get_data(as_text=True)
        pages.append(page)
        csrf.append(csrf_from(page))
        assert page.count('name="csrf_token"') == 1
        assert 'value="flood-watch" checked' in page
        assert "voting-cards-" not in page and "voting-csrf-" not in page
    assert csrf[0] != csrf[1]  # each browser's own session token, never a cached one
    assert sorted(_titles(pages[0])) == sorted(_titles(pages[1]))
    unpicked = app.test_client().get(f"/p/{slug}").get_data(as_text=True)
    assert " checked" not in unpicked and 'name="csrf_token"' not in unpicked  # no token: no form


def test_the_ballot_page_is_not_limited_per_address_but_other_pages_are(
    make_app: Callable[..., Flask], make_poll: Callable[..., str], redis_url: str
) -> None:
    redis.Redis.from_url(redis_url).flushdb()
    app = make_app(
        RATELIMIT_ENABLED=True,
        REDIS_URL=redis_url,
        RATELIMIT_KEY_PREFIX="test-hold-" + secrets.token_hex(4),
        RATELIMIT_DEFAULT="3/minute",
        RATELIMIT_STORAGE_OPTIONS={"socket_connect_timeout": 5, "socket_timeout": 5},
    )
    slug = make_poll()
    client = app.test_client()
    # A hall behind one NAT opening the ballot page: every view answered.
    assert [client.get(f"/p/{slug}").status_code for _ in range(10)] == [200] * 10
    # The default limit still holds for the other pages.
    statuses = [client.get(f"/p/{slug}/project/flood-watch").status_code for _ in range(5)]
    assert statuses[:3] == [200] * 3 and statuses[3:] == [429, 429]


def test_a_held_page_reads_each_voters_link_afresh_in_every_state(
    make_app: Callable[..., Flask], make_poll: Callable[..., str], mint: Callable[..., list[str]]
) -> None:
    """With the poll held, a voter cookie's token is the one thing read per view: on
    PostgreSQL in one autocommitted statement (services.voters). Each state shows at once,
    even a ballot or a revocation written while the page is held."""
    app = make_app(PAGE_HOLD_SECONDS=600)
    slug = make_poll()
    first, second, third = mint(slug, 3)
    browsers = {}
    for token in (first, second, third):
        browsers[token] = app.test_client()
        assert browsers[token].get(f"/v/{token}").status_code == 303

    def view(token: str) -> str:
        app.test_client().get(f"/p/{slug}")  # the poll is held before each view
        response = browsers[token].get(f"/p/{slug}")
        assert response.status_code == 200
        return response.get_data(as_text=True)

    assert 'name="choice"' in view(first) and 'name="csrf_token"' in view(first)
    with app.app_context():
        receipt = ballots.cast_ballot(slug, first, ["flood-watch"]).receipt
    shown = view(first)  # a ballot changes nothing held: only the token's own row tells
    assert receipt in shown and 'name="choice"' not in shown
    assert 'name="choice"' in view(second)
    with app.app_context():
        assert issuing.revoke(slug, actor="ana", tokens=[second]) == 1
    revoked = view(second)
    assert "cancelled" in revoked and 'name="choice"' not in revoked
    with app.app_context():
        other = make_poll_on(app)
        [foreign] = mint_on(app, other, 1)
    browsers[foreign] = app.test_client()
    browsers[foreign].set_cookie(f"vt_{_poll_id(app, slug)}", foreign, path=f"/p/{slug}")
    assert 'name="choice"' not in view(foreign)
    assert 'name="choice"' in view(third)  # and the others are as they were
    assert in_app(app, select(func.count(Ballot.id))) == 1


def _poll_id(app: Flask, slug: str) -> int:
    with app.app_context():
        return polls.get_poll(slug).id
