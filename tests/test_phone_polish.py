"""What an attendee's phone saw on the day: the words after the reveal, the receipt's
choices, "Chosen", the picks left in sight, a way back from an empty search, whole themes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from playwright.sync_api import expect

from tests.support import csrf_from
from voting.services import polls

LONGEST_THEME = "Open Source & AI Accessibility"


def test_after_the_reveal_nobody_is_told_the_winner_is_still_to_come(
    app: Flask, client: FlaskClient, make_poll: Callable[..., str]
) -> None:
    slug = make_poll(results_mode="hidden")
    with app.app_context():
        polls.close_poll(slug, actor="t")
    assert "will announce the winner" in client.get(f"/p/{slug}").get_data(as_text=True)
    with app.app_context():
        polls.reveal(slug, actor="t")
    page = client.get(f"/p/{slug}").get_data(as_text=True)
    assert "will announce the winner" not in page
    assert "The winner has been announced" in page and f"/p/{slug}/results" in page


def test_the_receipt_says_what_it_voted_for(
    client: FlaskClient, make_poll: Callable[..., str], mint: Callable[..., list[str]]
) -> None:
    slug = make_poll(method="approval", max_choices=2)
    [token] = mint(slug)
    client.get(f"/v/{token}")
    page = client.get(f"/p/{slug}").get_data(as_text=True)
    choices = {"csrf_token": csrf_from(page), "choice": ["flood-watch", "crop-doctor"]}
    confirm = client.post(f"/p/{slug}/confirm", data=choices).get_data(as_text=True)
    cast = client.post(f"/p/{slug}/cast", data={**choices, "csrf_token": csrf_from(confirm)})
    receipt = client.get(cast.headers["Location"]).get_data(as_text=True)
    section = receipt.split('id="voted-for"', 1)[1].split("</section>", 1)[0]
    assert "Your votes went to" in section
    assert "Crop Doctor" in section and "FloodWatch" in section
    # And again when the link is opened later ("you have already voted").
    again = client.get(f"/p/{slug}").get_data(as_text=True)
    assert "You have already voted" in again and "FloodWatch" in again


def test_choosing_reads_chosen_and_the_picks_left_stay_in_sight(
    app: Flask,
    live_server: str,
    phone: Any,
    make_poll: Callable[..., str],
    mint: Callable[..., list[str]],
) -> None:
    slug = make_poll(method="approval", max_choices=3)
    [token] = mint(slug)
    page = phone.new_page()
    try:
        page.goto(f"{live_server}/v/{token}")
        first = page.locator(".cards label").first
        # What shows on the button (its other words are for screen readers: the title).
        shows = "l => Array.from(l.children).filter(n => n.getClientRects().length && !n.classList.contains('vh')).map(n => n.textContent).join('')"
        assert first.evaluate(shows) == "Choose"
        first.click()
        assert first.evaluate(shows) == "Chosen"
        left = page.locator("#left")
        expect(left).to_have_text("2 picks left")
        # Scrolled to the last card, the counter is still on screen, beside Continue.
        page.locator(".cards li").last.scroll_into_view_if_needed()
        box = left.bounding_box()
        assert box and box["y"] >= 0 and box["y"] + box["height"] <= 844
        button = page.locator(".bar button").bounding_box()
        assert button and button["y"] >= box["y"] + box["height"] - 1
    finally:
        page.close()


def test_an_empty_search_offers_clear_and_no_continue(
    app: Flask,
    live_server: str,
    phone: Any,
    make_poll: Callable[..., str],
    mint: Callable[..., list[str]],
) -> None:
    slug = make_poll()
    [token] = mint(slug)
    page = phone.new_page()
    try:
        page.goto(f"{live_server}/v/{token}")
        page.wait_for_selector("html.js")
        page.fill("#q", "zzzz no such project")
        expect(page.locator("#count")).to_contain_text("No project matches")
        expect(page.locator("#clear")).to_be_visible()
        expect(page.locator(".bar")).to_be_hidden()
        page.click("#clear")
        expect(page.locator(".cards li:visible")).to_have_count(12)
        expect(page.locator(".bar")).to_be_visible()
        expect(page.locator("#clear")).to_be_hidden()
        assert page.input_value("#q") == ""
    finally:
        page.close()


def test_the_theme_select_shows_whole_themes_on_a_phone(
    app: Flask, live_server: str, phone: Any, make_poll: Callable[..., str]
) -> None:
    slug = make_poll()
    page = phone.new_page()
    try:
        page.goto(f"{live_server}/p/{slug}")
        room = page.evaluate(
            """() => {
              const select = document.getElementById('theme');
              const probe = document.createElement('span');
              probe.style.font = getComputedStyle(select).font;
              probe.style.position = 'absolute';
              document.body.appendChild(probe);
              let widest = 0;
              for (const o of select.options) { probe.textContent = o.textContent;
                widest = Math.max(widest, probe.getBoundingClientRect().width); }
              probe.remove();
              // Padding and the arrow take about 40px of the box.
              return select.clientWidth - 40 - widest;
            }"""
        )
        assert room >= 0, f"the widest theme is cut by {-room:.0f}px"
    finally:
        page.close()
