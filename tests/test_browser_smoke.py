"""The browser harness itself: Debian's Chromium, a phone viewport, the live test server."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Flask
from sqlalchemy import func, select

from tests.support import in_app
from voting.models import Ballot


def test_phone_votes_through_the_plain_forms(
    app: Flask,
    live_server: str,
    phone: Any,
    make_poll: Callable[..., str],
    mint: Callable[..., list[str]],
) -> None:
    slug = make_poll(title="Smoke Poll")
    [token] = mint(slug, 1)
    page = phone.new_page()
    page.goto(f"{live_server}/v/{token}")
    assert page.url == f"{live_server}/p/{slug}"
    assert page.viewport_size == {"width": 390, "height": 844}
    page.get_by_label("FloodWatch").check()
    page.get_by_role("button", name="Continue").click()
    page.get_by_role("button", name="Cast my vote").click()
    receipt = page.locator(".receipt code").inner_text()
    assert in_app(app, select(func.count(Ballot.id))) == 1
    assert in_app(app, select(Ballot.receipt)) == receipt
