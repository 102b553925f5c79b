"""The public results page: follows the stream with JavaScript, refreshes itself without."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.live_support import post_ballot
from voting.services import ballots, polls

THREE = ["flood-watch", "crop-doctor", "bias-lens"]


@pytest.fixture
def app(make_app: Callable[..., Flask]) -> Flask:
    return make_app(LIVE_HEARTBEAT_SECONDS=2, LIVE_MIN_INTERVAL=0.1)


def vote(app: Flask, slug: str, tokens: list[str], choices: list[str]) -> None:
    with app.app_context():
        for token, choice in zip(tokens, choices, strict=True):
            ballots.cast_ballot(slug, token, [choice])


def test_results_page_in_each_state(
    app: Flask, client: FlaskClient, make_poll: Callable[..., str], mint: Callable[..., list[str]]
) -> None:
    slug = make_poll(results_mode="hidden", projects=THREE, title="Pages")
    vote(app, slug, mint(slug, 3), ["flood-watch", "flood-watch", "crop-doctor"])

    page = client.get(f"/p/{slug}/results").get_data(as_text=True)
    assert "Voting is open: 3 ballots so far." in page
    assert "The results will be shown when the organizers reveal them." in page
    assert '<noscript><meta http-equiv="refresh" content="15"></noscript>' in page
    assert f'data-stream="/api/polls/{slug}/events?view=public"' in page
    assert 'class="votes"' not in page and "FloodWatch" not in page

    with app.app_context():
        polls.close_poll(slug, actor="t")
        polls.reveal(slug, actor="t", step=True)
    page = client.get(f"/p/{slug}/results").get_data(as_text=True)
    assert "Revealing the results: 1 of 3 places so far" in page
    assert "Places 1 to 2 are still to come." in page
    assert "Bias Lens" in page and "FloodWatch" not in page and "Crop Doctor" not in page
    assert '<meta http-equiv="refresh" content="5">' in page

    with app.app_context():
        polls.reveal(slug, actor="t", step=True)
    page = client.get(f"/p/{slug}/results").get_data(as_text=True)
    assert "First place is still to come." in page and "FloodWatch" not in page

    with app.app_context():
        polls.reveal(slug, actor="t")
        seed = polls.get_poll(slug).tie_seed
    page = client.get(f"/p/{slug}/results").get_data(as_text=True)
    assert "Final results from 3 ballots." in page
    assert re.search(r'<li class="place winner" value="1" data-project="flood-watch">', page)
    assert seed in page
    assert "http-equiv" not in page  # final: nothing left to refresh for


def test_results_page_follows_the_stream_with_javascript(
    app: Flask,
    live_server: str,
    phone: Any,
    make_poll: Callable[..., str],
    mint: Callable[..., list[str]],
) -> None:
    from playwright.sync_api import expect

    slug = make_poll(results_mode="live", projects=THREE, title="Live page")
    tokens = mint(slug, 3)
    page = phone.new_page()
    page.goto(f"{live_server}/p/{slug}/results")
    page.wait_for_selector("body[data-connection='live']")
    page.evaluate("window.notReloaded = true")
    assert page.locator(".place").count() == 3  # live mode: every count, zeros included
    for token, choice in zip(tokens, ["crop-doctor", "crop-doctor", "bias-lens"], strict=True):
        assert post_ballot(live_server, slug, token, [choice]) == 201
    # Locator expectations, not wait_for_function: the page's CSP forbids eval.
    expect(page.locator('.place[data-project="crop-doctor"] .votes')).to_have_text("2")
    # Events are coalesced: the last ballot may arrive in the next one.
    expect(page.locator("#live-status")).to_contain_text("3 ballots")
    first = page.locator(".standings .place").first.get_attribute("data-project")
    assert first == "crop-doctor"

    with app.app_context():
        polls.close_poll(slug, actor="t")
        polls.reveal(slug, actor="t", step=True)
    expect(page.locator("#live-note")).to_contain_text("Places 1 to 2")
    assert page.locator(".place").count() == 1
    with app.app_context():
        polls.reveal(slug, actor="t")
    page.wait_for_selector(".place.winner[data-project='crop-doctor']")
    assert page.locator(".place").count() == 3
    assert "Tie-break seed" in page.locator("#live-seed").inner_text()
    assert page.evaluate("window.notReloaded") is True
    page.close()


@pytest.mark.slow
def test_results_page_refreshes_itself_without_javascript(
    app: Flask,
    live_server: str,
    browser: Any,
    make_poll: Callable[..., str],
    mint: Callable[..., list[str]],
) -> None:
    slug = make_poll(results_mode="sealed", projects=THREE, title="No script")
    vote(app, slug, mint(slug, 3), ["bias-lens", "bias-lens", "flood-watch"])
    with app.app_context():
        polls.close_poll(slug, actor="t")
        polls.reveal(slug, actor="t", auto_seconds=2)  # a page refresh every 2 s
    context = browser.new_context(java_script_enabled=False, viewport={"width": 390, "height": 844})
    try:
        page = context.new_page()
        page.goto(f"{live_server}/p/{slug}/results")
        assert page.locator(".place").count() in (1, 2)
        # Nothing clicks and nothing runs: the refresh alone brings each step, then stops.
        page.wait_for_selector(".place.winner[data-project='bias-lens']", timeout=20_000)
        assert page.locator(".place").count() == 3
        assert "Final results from 3 ballots." in page.locator("#live-status").inner_text()
    finally:
        context.close()


@pytest.mark.slow
def test_tabs_share_one_stream_and_the_ballot_page_still_loads(
    app: Flask,
    live_server: str,
    phone: Any,
    make_poll: Callable[..., str],
    mint: Callable[..., list[str]],
) -> None:
    """Eight tabs of the results page hold one stream between them (issue 11), not eight:
    the browser's six connections per host stay free for the ballot page."""
    from playwright.sync_api import expect

    from tests.live_support import wait_until
    from voting import live

    slug = make_poll(results_mode="live", projects=THREE, title="Tabs")
    tokens = mint(slug, 2)
    tabs = []
    for _ in range(8):
        tab = phone.new_page()
        tab.goto(f"{live_server}/p/{slug}/results")
        tabs.append(tab)
    hub = live.hub(app)
    assert wait_until(lambda: hub.subscriber_count(slug) == 1, 10)
    ballot = phone.new_page()
    response = ballot.goto(f"{live_server}/p/{slug}", timeout=10_000)
    assert response is not None and response.status == 200
    assert post_ballot(live_server, slug, tokens[0], ["bias-lens"]) == 201
    for tab in tabs:
        expect(tab.locator('.place[data-project="bias-lens"] .votes')).to_have_text("1")
    # The tab holding the stream closes: another takes it over, from the last event.
    leaders = [t for t in tabs if t.evaluate("document.body.dataset.connection") == "live"]
    assert leaders, [t.evaluate("document.body.dataset.connection") for t in tabs]
    leaders[0].close()
    rest = [t for t in tabs if t is not leaders[0]]
    assert post_ballot(live_server, slug, tokens[1], ["bias-lens"]) == 201
    for tab in rest:
        expect(tab.locator('.place[data-project="bias-lens"] .votes')).to_have_text("2")
    assert wait_until(lambda: hub.subscriber_count(slug) == 1, 10)
    for tab in [*rest, ballot]:
        tab.close()
