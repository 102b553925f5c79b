"""Must show 1, 2 and 4 (requests): the attendee's whole flow in a real Chromium at phone size,
with JavaScript on and again with it off, and nothing fetched from another host."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from tests.phone_kit import Requests, phone_context
from tests.support import in_app
from voting.models import Ballot, BallotChoice, Project

TRAIN = {"Crop Doctor", "Tiny Tutor", "Coral Count", "SignBridge"}


def visible_titles(page: Any) -> set[str]:
    return set(page.locator("ul.cards > li:visible h2").all_inner_texts())


@pytest.mark.parametrize("js", [True, False], ids=["js-on", "js-off"])
def test_the_whole_flow_votes_with_and_without_javascript(
    app: Flask,
    live_server: str,
    browser: Any,
    make_poll: Callable[..., str],
    mint: Callable[..., list[str]],
    js: bool,
) -> None:
    slug = make_poll(title="NumHack Community Favorite")
    [token] = mint(slug, 1)
    with phone_context(browser, java_script_enabled=js) as context:
        requests = Requests(context)
        page = context.new_page()

        # The voter link: the token moves into a cookie and leaves the address bar.
        page.goto(f"{live_server}/v/{token}")
        assert page.url == f"{live_server}/p/{slug}"
        assert token not in page.content()
        [cookie] = [c for c in context.cookies() if c["name"].startswith("vt_")]
        assert cookie["value"] == token
        assert cookie["httpOnly"] and cookie["sameSite"] == "Lax" and cookie["path"] == f"/p/{slug}"
        # Nor is it in the history: one step back is the empty tab, not the voter link.
        page.go_back()
        assert page.url == "about:blank"
        page.go_forward()
        assert page.url == f"{live_server}/p/{slug}"

        # Browse: every project is a card with title, team, chips and a summary.
        assert page.locator("ul.cards > li").count() == 12
        assert len(visible_titles(page)) == 12
        flood = page.locator("ul.cards > li", has_text="FloodWatch")
        assert "River Rats" in flood.inner_text()
        assert flood.locator("p:nth-of-type(2) span").all_inner_texts() == [
            "Build",
            "Global Impact",
        ]
        assert "Early flood warnings" in flood.inner_text()

        # Filter by category: instantly with JS (no page load), by a GET form without.
        if js:
            page.evaluate("window.samePage = true")
        page.get_by_label("Category").select_option("Train")
        if not js:
            page.get_by_role("button", name="Show").click()
            page.wait_for_url("**category=Train**")
        assert visible_titles(page) == TRAIN
        assert "Showing 4 of 12 projects" in page.locator("#count").inner_text()

        # Search, on top of the filter.
        page.get_by_label("Search").fill("tutor")
        if not js:
            page.get_by_role("button", name="Show").click()
            page.wait_for_url("**q=tutor**")
        else:
            assert page.evaluate("window.samePage") is True
            page.wait_for_url("**q=tutor**")  # the address keeps the filters for reloads
        assert visible_titles(page) == {"Tiny Tutor"}

        # The detail view.
        page.get_by_role("link", name="Tiny Tutor").click()
        page.wait_for_url(f"**/p/{slug}/project/tiny-tutor")
        assert page.get_by_role("heading", level=1).inner_text() == "Tiny Tutor"
        body = page.locator("main").inner_text()
        assert "Distilled a maths tutoring model" in body
        for person in ("Chiara Rossi", "Aarav Shah", "Emma Johansson", "Yusuf Kaya"):
            assert person in body
        repo = page.get_by_role("link", name="Open the repository on github.com")
        assert repo.get_attribute("href") == "https://github.com/example-edu-hackers/tiny-tutor"
        demo = page.get_by_role("link", name="Watch the demo on youtube.com")
        assert demo.get_attribute("href") == "https://www.youtube.com/watch?v=eeeeeeeeeee"
        play = page.get_by_role("button", name="Play the demo here")
        assert play.is_visible() == js  # the tap-to-load embed needs JS; the link does not
        assert page.locator("iframe").count() == 0

        # Back to the gallery, filters kept; choose, confirm, receipt.
        page.get_by_role("link", name="All projects").click()
        page.wait_for_url(f"**/p/{slug}?**")
        assert visible_titles(page) == {"Tiny Tutor"}
        page.get_by_label("Tiny Tutor").check()
        page.get_by_role("button", name="Continue").click()
        page.wait_for_url(f"**/p/{slug}/confirm")
        assert page.get_by_role("heading", level=1).inner_text() == "Confirm your vote"
        assert "Tiny Tutor" in page.locator(".chosen").inner_text()
        assert in_app(app, select(func.count(Ballot.id))) == 0
        page.get_by_role("button", name="Cast my vote").click()
        page.wait_for_url(f"**/p/{slug}/receipt")
        assert "Thank you, your vote is in" in page.locator("h1").inner_text()
        receipt = page.locator("#code").inner_text()
        assert page.get_by_role("button", name="Copy the code").is_visible() == js

        # Coming back shows the receipt instead of a ballot.
        page.goto(f"{live_server}/p/{slug}")
        assert "You have already voted" in page.locator("h1").inner_text()
        assert page.locator("#code").inner_text() == receipt
        assert page.locator("input[name=choice]").count() == 0

    assert in_app(app, select(func.count(Ballot.id))) == 1
    assert in_app(app, select(Ballot.receipt)) == receipt
    chosen = select(Project.slug).join(BallotChoice, BallotChoice.project_id == Project.id)
    assert in_app(app, chosen) == "tiny-tutor"
    assert requests.urls, "the recorder saw nothing"
    assert requests.foreign(live_server) == []


def test_link_previews_spend_nothing_then_the_vote_counts(
    app: Flask,
    live_server: str,
    browser: Any,
    make_poll: Callable[..., str],
    mint: Callable[..., list[str]],
) -> None:
    slug = make_poll()
    [token] = mint(slug, 1)
    link = f"{live_server}/v/{token}"
    # Ten link previews and scanners, each a fresh browser without cookies.
    for _ in range(10):
        with phone_context(browser) as preview:
            page = preview.new_page()
            page.goto(link)
            assert page.url == f"{live_server}/p/{slug}"
    with phone_context(browser) as context:
        page = context.new_page()
        # Then the voter, who opens it more than once too.
        for _ in range(3):
            page.goto(link)
            assert page.url == f"{live_server}/p/{slug}"
        assert in_app(app, select(func.count(Ballot.id))) == 0
        page.get_by_label("FloodWatch").check()
        page.get_by_role("button", name="Continue").click()
        page.get_by_role("button", name="Cast my vote").click()
        page.wait_for_url(f"**/p/{slug}/receipt")
        receipt = page.locator("#code").inner_text()
        # A later preview of the same link changes nothing and sees the receipt.
        page.goto(link)
        assert page.locator("#code").inner_text() == receipt
    assert in_app(app, select(func.count(Ballot.id))) == 1
    assert in_app(app, select(Ballot.receipt)) == receipt


def test_choosing_from_the_detail_view(
    app: Flask,
    live_server: str,
    phone: Any,
    make_poll: Callable[..., str],
    mint: Callable[..., list[str]],
) -> None:
    slug = make_poll()
    [token] = mint(slug, 1)
    page = phone.new_page()
    page.goto(f"{live_server}/v/{token}")
    page.get_by_role("link", name="Coral Count").click()
    page.get_by_role("button", name="Choose Coral Count").click()
    assert "Coral Count" in page.locator(".chosen").inner_text()
    page.get_by_role("button", name="Cast my vote").click()
    page.wait_for_url(f"**/p/{slug}/receipt")
    chosen = select(Project.slug).join(BallotChoice, BallotChoice.project_id == Project.id)
    assert in_app(app, chosen) == "coral-count"


def test_the_demo_embed_loads_only_after_a_tap(
    live_server: str, phone: Any, make_poll: Callable[..., str]
) -> None:
    slug = make_poll()
    requests = Requests(phone)
    # Nothing may actually leave this machine: requests to other hosts are answered here.
    phone.route(
        lambda url: not url.startswith(live_server),
        lambda route: route.fulfill(status=204, body=""),
    )
    page = phone.new_page()
    page.goto(f"{live_server}/p/{slug}/project/flood-watch")
    assert page.locator("iframe").count() == 0
    assert requests.foreign(live_server) == []
    with page.expect_request(lambda r: r.url.startswith("https://www.youtube-nocookie.com/")):
        page.get_by_role("button", name="Play the demo here").click()
    frame = page.locator(".frame iframe")
    assert (
        frame.get_attribute("src")
        == "https://www.youtube-nocookie.com/embed/aaaaaaaaaaa?autoplay=1"
    )
    assert frame.get_attribute("title") == "Demo video: FloodWatch"
    assert {u.split("/embed/")[0] for u in requests.foreign(live_server)} == {
        "https://www.youtube-nocookie.com"
    }


def test_approval_ballot_counts_the_picks_left(
    app: Flask,
    live_server: str,
    phone: Any,
    make_poll: Callable[..., str],
    mint: Callable[..., list[str]],
) -> None:
    slug = make_poll(method="approval", max_choices=2)
    [token] = mint(slug, 1)
    page = phone.new_page()
    page.goto(f"{live_server}/v/{token}")
    left = page.locator("#left")
    assert left.inner_text() == "2 picks left"
    page.get_by_label("FloodWatch").check()
    assert left.inner_text() == "1 pick left"
    page.get_by_label("Bias Lens").check()
    assert left.inner_text() == "0 picks left"
    assert page.get_by_label("Crop Doctor").is_disabled()
    page.get_by_label("Bias Lens").uncheck()
    assert page.get_by_label("Crop Doctor").is_enabled()
    page.get_by_label("Crop Doctor").check()
    page.get_by_role("button", name="Continue").click()
    # The click returns once the confirm page starts loading: wait for all of it.
    page.wait_for_url(f"**/p/{slug}/confirm")
    assert set(page.locator(".chosen strong").all_inner_texts()) == {"FloodWatch", "Crop Doctor"}
    page.get_by_role("button", name="Cast my vote").click()
    page.wait_for_url(f"**/p/{slug}/receipt")
    chosen = select(func.count()).select_from(BallotChoice)
    assert in_app(app, chosen) == 2
