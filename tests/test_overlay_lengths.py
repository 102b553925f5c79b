"""The overlay with the day's real data: a 70-character title, an hours-long countdown,
4-digit counts, 100 projects with top=10, an award's name, and invite or roster polls.

Every box stays inside its container and the title, standings, QR code and countdown boxes
never overlap, in Chromium at 1920x1080 (the OBS browser source).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from playwright.sync_api import expect

from tests.lengths import (
    LONG_TITLE,
    in_viewport,
    long_poll,
    outside,
    overlaps,
    seed_votes,
    thousands,
)
from tests.support import csrf_from
from voting.models import utcnow
from voting.services import overlay, polls

BACKDROP = "html { background: #3b4763 !important; }"
BOXES = (".brand", ".board", ".vote", ".stats", ".winner", ".fingerprint", ".seed")


@pytest.fixture
def app(make_app: Callable[..., Flask]) -> Flask:
    return make_app(LIVE_HEARTBEAT_SECONDS=2, LIVE_MIN_INTERVAL=0.1)


@pytest.fixture
def stage(browser: Any) -> Iterator[Any]:
    context = browser.new_context(
        viewport={"width": 1920, "height": 1080},
        device_scale_factor=1,
        bypass_csp=True,  # the test adds a backdrop style tag; the overlay's CSP forbids inline ones
    )
    yield context
    context.close()


def overlay_path(app: Flask, slug: str) -> str:
    with app.app_context():
        url = overlay.overlay_url(polls.get_poll(slug))
    return url.removeprefix(app.config["BASE_URL"])


def settle(page: Any) -> None:
    page.evaluate("document.getAnimations().forEach(a => a.finish())")


def shoot(page: Any, folder: Path, name: str) -> None:
    backdrop = page.add_style_tag(content=BACKDROP)
    page.screenshot(path=str(folder / name))
    backdrop.evaluate("node => node.remove()")


def laid_out(page: Any) -> list[str]:
    """Everything that is wrong with the picture now; [] when nothing is."""
    problems = in_viewport(page, *BOXES)
    problems += overlaps(page, *BOXES)
    problems += outside(page, ".brand", ".badge", ".title")
    problems += outside(page, ".board", ".board-title", ".row", ".ticker", ".pillar-column")
    problems += outside(page, ".row", ".rank", ".name", ".team", ".count", ".track")
    problems += outside(page, ".stats", ".label", ".big")
    problems += outside(page, ".vote", ".qr svg", ".scan", ".how", ".url")
    problems += outside(page, ".winner", ".winner-label", ".winner-title", ".winner-votes")
    problems += outside(page, ".card", ".card-award", ".card-name", ".card-team", ".card-votes")
    return problems


def counted(app: Flask, slug: str) -> dict[str, int]:
    with app.app_context():
        slugs = sorted(c["project"] for c in polls.poll_document(polls.get_poll(slug))["choices"])
    counts = thousands(slugs)
    seed_votes(app, slug, counts)
    return counts


@pytest.mark.timeout(150)
def test_open_and_revealed_at_real_lengths(
    app: Flask, live_server: str, stage: Any, screenshots: Path
) -> None:
    slug = long_poll(
        app,
        results_mode="live",
        eligibility="open",
        award="Best Demo Award",
        closes_at=utcnow() + timedelta(hours=1, minutes=58, seconds=9),
    )
    counted(app, slug)
    page = stage.new_page()
    try:
        page.goto(live_server + overlay_path(app, slug) + "&top=10")
        page.wait_for_selector("body[data-connection='live']")
        expect(page.locator(".row")).to_have_count(10)
        settle(page)
        assert re.fullmatch(r"1:5\d:\d\d", page.locator("#clock").inner_text())
        assert page.locator("#turnout").inner_text() == "5,769"
        assert page.locator(".title").inner_text() == LONG_TITLE
        shoot(page, screenshots, "overlay-open.png")
        assert laid_out(page) == []
        # The title is whole: not clipped, on at most two lines.
        title = page.locator(".title").bounding_box()
        size = page.evaluate(
            "parseFloat(getComputedStyle(document.querySelector('.title')).fontSize)"
        )
        assert title["height"] <= 2 * size * 1.08 + 2

        with app.app_context():
            polls.close_poll(slug, actor="test")
            polls.reveal(slug, actor="test")
        page.wait_for_selector("#winner[data-kind='winner']")
        settle(page)
        # The winner card names the award, not "Community Favorite".
        assert page.locator(".winner-label").inner_text().lower() == "best demo award"
        assert page.locator("#winner-votes").inner_text() == "1,480 votes"
        shoot(page, screenshots, "overlay-winner.png")
        assert laid_out(page) == []
    finally:
        page.close()


@pytest.mark.timeout(150)
def test_podium_light_at_real_lengths(
    app: Flask, live_server: str, stage: Any, screenshots: Path
) -> None:
    slug = long_poll(app, results_mode="sealed")
    counted(app, slug)
    with app.app_context():
        polls.close_poll(slug, actor="test")
        polls.reveal(slug, actor="test")
    page = stage.new_page()
    try:
        page.goto(live_server + overlay_path(app, slug) + "&layout=podium&theme=light&top=8")
        page.wait_for_selector("body[data-connection='live']")
        expect(page.locator(".pillar-column.revealed")).to_have_count(3)
        settle(page)
        shoot(page, screenshots, "overlay-podium-light.png")
        assert laid_out(page) == []
        # The award (the title, as none was given) heads the winner's card.
        assert page.locator(".card-award").inner_text().lower() == LONG_TITLE.lower()
        # The seed sits clear of the board, not against its edge.
        board = page.locator(".board").bounding_box()
        seed = page.locator(".seed").bounding_box()
        assert seed["y"] >= board["y"] + board["height"] + 8
    finally:
        page.close()


def accent_boxes(page: Any) -> list[str]:
    """Visible elements painted in the theme's gold (background or border)."""
    found: list[str] = page.evaluate(
        """() => {
          const probe = document.createElement('i');
          probe.style.color = 'var(--accent)';
          document.body.appendChild(probe);
          const gold = getComputedStyle(probe).color;
          probe.remove();
          return Array.from(document.querySelectorAll('.stage *'))
            .filter(n => n.getClientRects().length && getComputedStyle(n).visibility !== 'hidden')
            .filter(n => { const s = getComputedStyle(n);
              return s.backgroundColor === gold || s.borderTopColor === gold && s.borderTopWidth !== '0px'; })
            .map(n => n.className + ' ' + (n.textContent || '').trim().slice(0, 20));
        }"""
    )
    return found


@pytest.mark.parametrize("layout", ["bars", "podium"])
def test_nobody_is_gold_at_zero_votes(
    app: Flask, live_server: str, stage: Any, make_poll: Callable[..., str], layout: str
) -> None:
    slug = make_poll(results_mode="live")
    page = stage.new_page()
    try:
        page.goto(live_server + overlay_path(app, slug) + f"&layout={layout}")
        page.wait_for_selector("body[data-connection='live']")
        expect(page.locator(".row").first).to_be_visible()  # the live standings, all at 0
        settle(page)
        assert accent_boxes(page) == []
        with app.app_context():
            polls.close_poll(slug, actor="test")
            polls.reveal(slug, actor="test")
        page.wait_for_selector(".stage[data-status='revealed']")
        settle(page)
        assert accent_boxes(page) == []
    finally:
        page.close()


# -- where the overlay's vote panel leads ------------------------------------------------------


@pytest.mark.parametrize("eligibility", ["invite", "roster", "open"])
def test_the_vote_panel_never_leads_back_to_itself(
    app: Flask, client: FlaskClient, make_poll: Callable[..., str], eligibility: str
) -> None:
    """Whatever the panel shows leads to a form that gives a vote, never to "scan the QR code"."""
    slug = make_poll(eligibility=eligibility)
    html = client.get(overlay_path(app, slug)).get_data(as_text=True)
    panel = html.split('<section class="vote panel', 1)[1].split("</section>", 1)[0]
    if eligibility == "invite":
        assert "<svg" not in panel  # no QR code to a page that only says "use your card"
        assert "voting card" in panel
    else:
        assert "<svg" in panel
    target = panel.split('<p class="url">', 1)[1].split("</p>", 1)[0].strip()
    path = target.removeprefix("vote.test")
    assert path.startswith(f"/p/{slug}/") and path != f"/p/{slug}"
    page = client.get(path, follow_redirects=True).get_data(as_text=True)
    assert 'method="post"' in page and csrf_from(page)
    assert "on the stream" not in page


def test_no_page_asks_for_a_missing_file(
    app: Flask, live_server: str, stage: Any, make_poll: Callable[..., str]
) -> None:
    """favicon.ico was a 404 (and a console error) on the console and the overlay."""
    slug = make_poll(results_mode="live")
    # Attendee pages name an empty icon (no request at all on a phone); these a real one.
    for path in (overlay_path(app, slug), "/admin/login"):
        page = stage.new_page()
        missing: list[str] = []
        errors: list[str] = []
        page.on("response", lambda r, m=missing: m.append(r.url) if r.status >= 400 else None)
        page.on("console", lambda c, e=errors: e.append(c.text) if c.type == "error" else None)
        try:
            page.goto(live_server + path, wait_until="load")
            # The icon is fetched after load; wait until the browser has asked for it.
            page.wait_for_function(
                "performance.getEntriesByType('resource').some(e => e.name.includes('favicon'))"
            )
            assert missing == [] and errors == [], path
        finally:
            page.close()
    page = stage.new_page()
    try:
        page.goto(f"{live_server}/p/{slug}")
        assert page.locator("link[rel=icon]").get_attribute("href") == "data:,"
    finally:
        page.close()
