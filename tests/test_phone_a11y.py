"""Must show 3: axe-core finds nothing on each attendee page, in English and in Spanish;
plus 44 px touch targets, dark mode, reduced motion and the keyboard."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from tests.phone_kit import check_axe, phone_context, rate_limited_page, small_targets, tour
from tests.support import in_app
from voting.models import Ballot

AXE_PAGES = {
    "ballot",
    "detail",
    "confirm",
    "receipt",
    "closed",
    "invalid-link",
    # beyond the list: every other state page too
    "home",
    "ballot-filtered",
    "ballot-chosen",
    "already-voted",
    "no-token",
    "not-open",
}


@pytest.mark.parametrize("locale", ["en-US", "es-ES"])
def test_axe_finds_no_violations_on_any_page(
    app: Flask,
    live_server: str,
    browser: Any,
    make_app: Callable[..., Flask],
    make_poll: Callable[..., str],
    mint: Callable[..., list[str]],
    locale: str,
) -> None:
    checked: list[str] = []
    lang = locale[:2]

    def visit(page: Any, name: str) -> None:
        assert page.locator("html").get_attribute("lang") == lang, name
        check_axe(page)
        assert small_targets(page) == [], name
        checked.append(name)

    # The language comes from the browser's Accept-Language, as a visitor's phone sends it.
    with phone_context(browser, locale=locale) as context:
        tour(live_server, app, make_poll, mint, context, visit)
    with phone_context(browser, locale=locale) as context:
        page = rate_limited_page(make_app, context)
        visit(page, "rate-limited")
    assert set(checked) == AXE_PAGES | {"rate-limited"}


def test_axe_in_dark_mode_too(
    live_server: str,
    browser: Any,
    make_poll: Callable[..., str],
    mint: Callable[..., list[str]],
) -> None:
    slug = make_poll()
    [token] = mint(slug, 1)
    with phone_context(browser, color_scheme="dark") as context:
        page = context.new_page()
        page.goto(f"{live_server}/v/{token}")
        background = page.evaluate("getComputedStyle(document.body).backgroundColor")
        assert background == "rgb(17, 17, 22)"
        check_axe(page)
        page.goto(f"{live_server}/p/{slug}/project/flood-watch")
        check_axe(page)


def test_reduced_motion_turns_transitions_off(
    live_server: str, browser: Any, make_poll: Callable[..., str]
) -> None:
    slug = make_poll()
    script = "getComputedStyle(document.querySelector('ul.cards > li')).transitionDuration"
    with phone_context(browser) as context:
        page = context.new_page()
        page.goto(f"{live_server}/p/{slug}")
        assert page.evaluate(script) != "0s"
    with phone_context(browser, reduced_motion="reduce") as context:
        page = context.new_page()
        page.goto(f"{live_server}/p/{slug}")
        assert page.evaluate(script) == "0s"


def test_the_keyboard_alone_can_vote(
    app: Flask,
    live_server: str,
    browser: Any,
    make_poll: Callable[..., str],
    mint: Callable[..., list[str]],
) -> None:
    slug = make_poll()
    [token] = mint(slug, 1)
    with phone_context(browser, is_mobile=False, has_touch=False) as context:
        page = context.new_page()
        page.goto(f"{live_server}/v/{token}")
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.textContent") == "Skip to content"
        # Tab through the page until the first choice has focus; Space picks it.
        for _ in range(40):
            page.keyboard.press("Tab")
            if page.evaluate("document.activeElement.name") == "choice":
                break
        picked = page.evaluate("document.activeElement.value")
        page.keyboard.press("Space")
        assert page.evaluate("document.activeElement.checked") is True
        for _ in range(80):
            page.keyboard.press("Tab")
            if page.evaluate("document.activeElement.type") == "submit":
                break
        page.keyboard.press("Enter")
        page.wait_for_url(f"**/p/{slug}/confirm")
        page.get_by_role("button", name="Cast my vote").focus()
        page.keyboard.press("Enter")
        page.wait_for_url(f"**/p/{slug}/receipt")
    assert picked
    assert in_app(app, select(func.count(Ballot.id))) == 1
