"""The public results page at real lengths: bars inside their cards, Spanish, no inline
styles, hashed assets, and the projector's large-type mode, checked in Chromium."""

from __future__ import annotations

import io
import itertools
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from PIL import Image
from playwright.sync_api import expect

from tests.lengths import LONG_TITLE, long_poll, outside, overlaps, seed_votes, thousands
from voting.services import polls


@pytest.fixture
def app(make_app: Callable[..., Flask]) -> Flask:
    return make_app(LIVE_HEARTBEAT_SECONDS=2, LIVE_MIN_INTERVAL=0.1)


@pytest.fixture
def revealed(app: Flask) -> tuple[str, dict[str, int]]:
    """100 projects, 4-digit counts, the 70-character title, fully revealed."""
    slug = long_poll(app, results_mode="hidden")
    with app.app_context():
        slugs = [c["project"] for c in polls.poll_document(polls.get_poll(slug))["choices"]]
    counts = thousands(sorted(slugs))
    seed_votes(app, slug, counts)
    with app.app_context():
        polls.close_poll(slug, actor="test")
        polls.reveal(slug, actor="test")
    return slug, counts


def filled_share(png: bytes) -> float:
    """The share of a bar's width painted in a saturated colour (the fill, not the grey track)."""
    image = Image.open(io.BytesIO(png)).convert("RGB")
    width, height = image.size
    row = height // 2
    coloured = 0
    for x in range(width):
        r, g, b = image.getpixel((x, row))  # type: ignore[misc]
        if max(r, g, b) - min(r, g, b) > 60:
            coloured += 1
    return coloured / width


@pytest.fixture(params=["phone-js", "phone-nojs", "laptop-js", "laptop-nojs"])
def viewer(request: pytest.FixtureRequest, browser: Any) -> Iterator[Any]:
    device, js = request.param.split("-")
    size = {"width": 390, "height": 844} if device == "phone" else {"width": 1280, "height": 800}
    context = browser.new_context(
        viewport=size, device_scale_factor=1, java_script_enabled=js == "js"
    )
    context.case = request.param  # type: ignore[attr-defined]
    yield context
    context.close()


@pytest.mark.timeout(180)
def test_bars_fill_inside_their_cards(
    app: Flask,
    live_server: str,
    viewer: Any,
    revealed: tuple[str, dict[str, int]],
    screenshots: Path,
) -> None:
    slug, counts = revealed
    top = max(counts.values())
    page = viewer.new_page()
    try:
        page.goto(f"{live_server}/p/{slug}/results")
        page.wait_for_selector(".place")
        assert page.locator(".place").count() == 100
        page.evaluate("document.getAnimations().forEach(a => a.finish())")
        # Every row's parts stay inside its card, and no two rows (or a row and a name) meet.
        assert (
            outside(page, ".place", ".place-rank", ".place-name", ".votes", ":is(.bar, .place-bar)")
            == []
        )
        assert overlaps(page, ".place-name", ".place > :is(.bar, .place-bar)") == []
        tops = page.evaluate(
            "Array.from(document.querySelectorAll('.place')).map(n => n.getBoundingClientRect())"
            ".map(r => [r.top, r.bottom])"
        )
        assert all(a[1] <= b[0] for a, b in itertools.pairwise(tops)), "rows overlap"
        bar = page.locator(".place > :is(.bar, .place-bar)").first
        assert page.evaluate("n => getComputedStyle(n).position", bar.element_handle()) == "static"
        assert (bar.bounding_box() or {})["height"] <= 16  # a bar, not a slab
        # The coloured fill is as long as the count says: the winner's full, the 10th's less.
        for rank in (1, 10):
            row = page.locator(f".place[value='{rank}']")
            votes = int(row.locator(".votes").inner_text().replace(",", ""))
            share = filled_share(row.locator(".place-bar").screenshot())
            assert abs(share - votes / top) < 0.06, (rank, votes, share)
        assert LONG_TITLE in page.locator("h1").inner_text()
        if viewer.case in ("phone-js", "laptop-nojs"):
            page.screenshot(path=str(screenshots / f"results-{viewer.case.split('-')[0]}.png"))
    finally:
        page.close()


# -- without a browser ----------------------------------------------------------------------


def test_the_page_has_no_inline_style_and_hashed_assets(
    client: FlaskClient, app: Flask, revealed: tuple[str, dict[str, int]]
) -> None:
    """A Content-Security-Policy without 'unsafe-inline' can apply: nothing styles inline."""
    slug, _ = revealed
    html = client.get(f"/p/{slug}/results").get_data(as_text=True)
    assert " style=" not in html and "<style" not in html
    assets = re.findall(r'(?:src|href)="(/static/[^"]+)"', html)
    assert {a.split("?")[0] for a in assets} >= {
        "/static/live.css",
        "/static/live.js",
        "/static/results.js",
    }
    assert all(re.search(r"\?v=[0-9a-f]{10}$", a) for a in assets), assets


def test_meters_carry_the_counts_without_javascript(
    client: FlaskClient, revealed: tuple[str, dict[str, int]]
) -> None:
    slug, counts = revealed
    html = client.get(f"/p/{slug}/results").get_data(as_text=True)
    top = max(counts.values())
    meters = re.findall(r'<meter class="place-bar" min="0" max="(\d+)" value="(\d+)"', html)
    assert len(meters) == 100
    assert meters[0] == (str(top), str(top))
    assert "1,480" in html  # counts are written the local way


# -- the projector ------------------------------------------------------------------------------


@pytest.mark.timeout(120)
def test_the_projector_mode_reads_from_the_back_and_follows_the_reveal(
    app: Flask, live_server: str, browser: Any, screenshots: Path
) -> None:
    slug = long_poll(app, results_mode="sealed")
    with app.app_context():
        slugs = sorted(c["project"] for c in polls.poll_document(polls.get_poll(slug))["choices"])
    seed_votes(app, slug, thousands(slugs))
    with app.app_context():
        polls.close_poll(slug, actor="test")
    context = browser.new_context(viewport={"width": 1920, "height": 1080})
    page = context.new_page()
    try:
        page.goto(f"{live_server}/p/{slug}/results?screen=projector")
        page.wait_for_selector("body[data-connection='live']")
        assert page.locator("html.projector").count() == 1
        # Large type: the headline is set for a hall, not a phone.
        size = page.evaluate("parseFloat(getComputedStyle(document.querySelector('h1')).fontSize)")
        assert size >= 48
        assert page.locator("header.top").is_hidden()  # no site chrome on the screen
        for step in range(1, 11):
            with app.app_context():
                polls.reveal(slug, actor="test", step=True)
            expect(page.locator(".place")).to_have_count(step)
            expect(page.locator(".place:visible")).to_have_count(min(step, 10))
        with app.app_context():
            polls.reveal(slug, actor="test")
        expect(page.locator(".place.winner[value='1']")).to_have_count(1)
        page.evaluate("document.getAnimations().forEach(a => a.finish())")
        page.screenshot(path=str(screenshots / "results-projector.png"))
        # The screen shows the top ten at most, all on one screen, each row's parts inside it.
        assert page.locator(".place:visible").count() == 10
        name_size = page.evaluate(
            "parseFloat(getComputedStyle(document.querySelector('.place-name strong')).fontSize)"
        )
        assert name_size >= 36
        assert (
            outside(page, ".place", ".place-rank", ".place-name", ".votes", ":is(.bar, .place-bar)")
            == []
        )
        assert outside(page, "body", ".place:not([hidden])") == []
        assert (
            page.evaluate(
                "Math.max(...Array.from(document.querySelectorAll('.place'))"
                ".filter(n => n.getClientRects().length)"
                ".map(n => n.getBoundingClientRect().bottom))"
            )
            <= 1080
        )
    finally:
        context.close()
