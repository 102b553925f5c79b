"""What a new organizer saw in the console: the message after each lifecycle action, times
said once in a UTC browser, the slug made from the title, and audit details in words."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from playwright.sync_api import expect

from tests.admin_support import PASSWORD, Console, make_organizer, visible_text
from voting.models import utcnow


def log_in(page: Any, base: str) -> None:
    page.goto(f"{base}/admin/login")
    page.get_by_label("Username").fill("ana")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(r"/admin/$"))


@pytest.fixture
def console(app: Flask) -> Console:
    return Console.login(app, app.test_client())


def test_after_a_lifecycle_action_the_message_is_in_sight(
    app: Flask, live_server: str, browser: Any, make_poll: Callable[..., str]
) -> None:
    slug = make_poll(title="Closing vote")
    make_organizer(app)
    context = browser.new_context(viewport={"width": 1280, "height": 720})
    page = context.new_page()
    try:
        log_in(page, live_server)
        page.goto(f"{live_server}/admin/polls/{slug}")
        page.get_by_role("link", name="Close voting…").click()
        page.get_by_role("button", name="Yes, close voting now").click()
        flash = page.locator(".flash-ok").first
        expect(flash).to_be_visible()
        assert "#lifecycle" not in page.url
        box = flash.bounding_box()
        assert box and box["y"] >= 0 and box["y"] + box["height"] <= 720, "message scrolled away"
    finally:
        context.close()


@pytest.mark.parametrize(("zone", "twice"), [("UTC", False), ("Europe/Madrid", True)])
def test_times_are_said_once_in_a_utc_browser(
    app: Flask,
    live_server: str,
    browser: Any,
    make_poll: Callable[..., str],
    zone: str,
    twice: bool,
) -> None:
    slug = make_poll(open_=False, opens_at=utcnow() + timedelta(days=2))
    make_organizer(app)
    context = browser.new_context(timezone_id=zone, locale="en-US")
    page = context.new_page()
    try:
        log_in(page, live_server)
        page.goto(f"{live_server}/admin/polls/{slug}")
        moment = page.locator("time[data-local]").first
        expect(moment).to_contain_text("UTC" if zone == "UTC" else "GMT+1")
        utc = moment.locator("xpath=following-sibling::span[@class='utc'][1]")
        assert utc.is_visible() is twice
    finally:
        context.close()


def test_a_new_poll_takes_its_slug_from_the_title(
    app: Flask, console: Console, live_server: str, browser: Any
) -> None:
    from tests.support import import_samples

    with app.app_context():
        import_samples()
    page = console.page("/admin/polls/new")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token
    created = console.post(
        "/admin/polls/new",
        {"slug": "", "title": "Best Demo Award: Día 2", "method": "plurality", "scope": "all"},
    )
    assert created.status_code == 303, visible_text(created.get_data(as_text=True))[:400]
    assert created.headers["Location"].endswith("/admin/polls/best-demo-award-dia-2")
    # With JavaScript the slug field follows the title as it is typed, until one is typed.
    context = browser.new_context()
    tab = context.new_page()
    try:
        log_in(tab, live_server)
        tab.goto(f"{live_server}/admin/polls/new")
        tab.get_by_label("Title", exact=True).fill("NumHack Community Favorite (demo)")
        expect(tab.locator("#slug")).to_have_value("numhack-community-favorite-demo")
        tab.locator("#slug").fill("cf")
        tab.get_by_label("Title", exact=True).fill("Something else")
        expect(tab.locator("#slug")).to_have_value("cf")
    finally:
        context.close()


def test_audit_details_read_as_words(
    app: Flask, console: Console, make_poll: Callable[..., str]
) -> None:
    make_poll(title="Words", projects=["air-aware", "bias-lens"])
    text = visible_text(console.page("/admin/audit"))
    assert "allow revote: no" in text
    assert "projects: air-aware, bias-lens" in text
    for raw in ("False", "True", "['", "None"):
        assert raw not in text, raw
