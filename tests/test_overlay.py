"""The stream overlay: its key, its options, no external assets, and the reveal in Chromium."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import select

from tests.live_support import SSEClient, TCPProxy, post_ballot
from tests.support import add_css, in_app, remove_added_css, serving, wait_for_js
from voting.models import AuditEvent, utcnow
from voting.services import ballots, overlay, polls

ROOT = Path(__file__).resolve().parent.parent
# The overlay is transparent; screenshots put it over a stand-in for the video it sits on.
# (A flat colour: the README's PNGs stay small when VOTING_SCREENSHOTS_DIR refreshes them.)
BACKDROP = "html { background: #3b4763 !important; }"
WEIGHTS = {
    "flood-watch": 14,
    "crop-doctor": 11,
    "notebook-narrator": 9,
    "bias-lens": 8,
    "transit-pulse": 7,
    "tiny-tutor": 6,
    "air-aware": 5,
    "doc-sprint": 4,
    "coral-count": 3,
    "energy-mirror": 2,
    "sign-bridge": 2,
    "paper-trail": 1,
}


@pytest.fixture
def app(make_app: Callable[..., Flask]) -> Flask:
    return make_app(LIVE_HEARTBEAT_SECONDS=2, LIVE_MIN_INTERVAL=0.1)


def overlay_path(app: Flask, slug: str) -> str:
    with app.app_context():
        url = overlay.overlay_url(polls.get_poll(slug))
    return url.removeprefix(app.config["BASE_URL"])


def cast_weighted(app: Flask, slug: str, tokens: list[str]) -> None:
    choices = [p for p, n in WEIGHTS.items() for _ in range(n)]
    with app.app_context():
        for token, choice in zip(tokens, choices, strict=False):
            ballots.cast_ballot(slug, token, [choice])


# -- the page, without a browser -------------------------------------------------------------


def test_overlay_key_options_and_headers(
    app: Flask, client: FlaskClient, make_poll: Callable[..., str]
) -> None:
    slug = make_poll(eligibility="open")
    path = overlay_path(app, slug)
    assert client.get(f"/overlay/{slug}").status_code == 403
    assert client.get(f"/overlay/{slug}?key=forged").status_code == 403

    page = client.get(path)
    assert page.status_code == 200
    assert page.headers["Cache-Control"] == "no-store"
    assert page.headers["Referrer-Policy"] == "no-referrer"
    html = page.get_data(as_text=True)
    assert '<html lang="en" class="theme-dark layout-bars">' in html
    assert 'data-top="10"' in html
    # The QR code and its caption point at the public address, not at whatever host OBS used.
    assert f"vote.test/p/{slug}" in html and "<svg" in html
    key = path.split("key=", 1)[1]
    assert f'data-stream="/api/polls/{slug}/events?key={key}"' in html

    html = client.get(path + "&theme=light&layout=podium&top=5").get_data(as_text=True)
    assert 'class="theme-light layout-podium"' in html and 'data-top="5"' in html
    html = client.get(path + "&theme=neon&layout=pie&top=999").get_data(as_text=True)
    assert 'class="theme-dark layout-bars"' in html and 'data-top="20"' in html
    html = client.get(path + "&top=-3").get_data(as_text=True)
    assert 'data-top="10"' in html


def test_overlay_has_no_external_assets(
    app: Flask, client: FlaskClient, make_poll: Callable[..., str]
) -> None:
    slug = make_poll()
    html = client.get(overlay_path(app, slug)).get_data(as_text=True)
    references = re.findall(r'(?:src|href)="([^"]*)"', html)
    assert references and all(r.startswith("/static/") for r in references), references
    assert "@import" not in html and "url(" not in html
    for name in ("overlay.css", "overlay.js", "live.js"):
        text = (ROOT / "static" / name).read_text()
        assert not re.search(r"https?://|@import|url\(|//[a-z0-9.-]+\.[a-z]{2,}/", text), name
        served = client.get(f"/static/{name}")
        assert served.status_code == 200
        served.close()


def test_overlay_url_command_prints_and_rotates(
    app: Flask, client: FlaskClient, runner: FlaskCliRunner, make_poll: Callable[..., str]
) -> None:
    slug = make_poll()
    printed = runner.invoke(args=["overlay-url", slug])
    assert printed.exit_code == 0, printed.output
    url = printed.stdout.strip().splitlines()[0]
    assert url.startswith(f"http://vote.test/overlay/{slug}?key=")
    path = url.removeprefix("http://vote.test")
    assert client.get(path).status_code == 200

    rotated = runner.invoke(args=["overlay-url", slug, "--rotate"])
    assert rotated.exit_code == 0, rotated.output
    new_url = rotated.stdout.strip().splitlines()[0]
    assert new_url != url
    assert client.get(path).status_code == 403
    assert client.get(new_url.removeprefix("http://vote.test")).status_code == 200
    assert in_app(app, select(AuditEvent.action).where(AuditEvent.action == "overlay.rotate")) == (
        "overlay.rotate"
    )

    missing = runner.invoke(args=["overlay-url", "no-such-poll"])
    assert missing.exit_code != 0 and "no poll called" in missing.output


# -- in Chromium at 1920x1080 -----------------------------------------------------------------


@pytest.fixture
def stage(browser: Any) -> Iterator[Any]:
    """A browser context the size of an OBS browser source."""
    context = browser.new_context(viewport={"width": 1920, "height": 1080}, device_scale_factor=1)
    yield context
    context.close()


def settle(page: Any) -> None:
    """Wait until every animation and transition has finished."""
    wait_for_js(
        page, "document.getAnimations().every(a => a.playState !== 'running')", timeout=10_000
    )


def screenshot(page: Any, folder: Path, name: str) -> None:
    """Save the settled overlay over the backdrop as folder/name (the `screenshots` fixture)."""
    settle(page)
    add_css(page, BACKDROP)
    page.screenshot(path=str(folder / name))
    remove_added_css(page)


def text(page: Any, selector: str) -> str:
    """The element's text as written (not as CSS transforms it)."""
    return " ".join(str(page.locator(selector).first.text_content()).split())


@pytest.mark.slow
def test_the_reveal_step_by_step_in_chromium(
    app: Flask,
    live_server: str,
    stage: Any,
    make_poll: Callable[..., str],
    mint: Callable[..., list[str]],
    screenshots: Path,
    tmp_path: Path,
) -> None:
    slug = make_poll(
        results_mode="live",
        eligibility="open",  # the QR code leads to a voting pass (invite polls show none)
        title="NumHack Community Favorite",
        closes_at=utcnow() + timedelta(minutes=25),
    )
    tokens = mint(slug, sum(WEIGHTS.values()) + 1)
    cast_weighted(app, slug, tokens[:-1])
    with app.app_context():
        ranking = polls.results_view(polls.get_poll(slug), organizer=True)["results"]
    by_rank = {row["rank"]: row for row in ranking}

    stream = SSEClient(f"{live_server}/api/polls/{slug}/events")
    page = stage.new_page()
    try:
        page.goto(live_server + overlay_path(app, slug))
        page.wait_for_selector("body[data-connection='live']")
        page.evaluate("window.notReloaded = true")

        # Open: transparent, 1920x1080, QR code, countdown, turnout and (live mode) counts.
        for element in ("document.documentElement", "document.body"):
            assert (
                page.evaluate(f"getComputedStyle({element}).backgroundColor") == "rgba(0, 0, 0, 0)"
            )
        box = page.locator(".stage").bounding_box()
        assert (box["width"], box["height"]) == (1920, 1080)
        qr = page.locator(".qr svg").bounding_box()
        assert qr["width"] >= 300 and qr["x"] + qr["width"] <= 1920
        assert page.locator(".scan").is_visible() and "Scan to vote" in text(page, ".scan")
        clock = text(page, "#clock")
        assert re.fullmatch(r"2[45]:\d\d", clock), clock
        assert text(page, "#turnout") == "72"
        assert text(page, ".row[data-rank='1'] .name") == by_rank[1]["title"]
        assert post_ballot(live_server, slug, tokens[-1], ["flood-watch"]) == 201
        wait_for_js(page, "document.getElementById('turnout')?.textContent === '73'")
        wait_for_js(
            page, "document.querySelector('.row[data-rank=\"1\"] .count')?.textContent === '15'"
        )
        screenshot(page, tmp_path, "overlay-open.png")  # the README's: test_overlay_lengths.py

        with app.app_context():
            polls.close_poll(slug, actor="test")
        stream.wait_for(lambda e: e.data.get("status") == "closed")
        wait_for_js(page, "document.querySelector('.stage')?.dataset.status === 'closed'")
        assert "Voting has closed" in text(page, "#message")
        assert not page.locator(".vote").is_visible()

        # The reveal, one place at a time from last to first.
        places = len(ranking)
        for step in range(1, places + 1):
            with app.app_context():
                polls.reveal(slug, actor="test", step=True)
            rank = places - step + 1
            seen = stream.wait_for(
                lambda e, s=step: e.event == "tally" and e.data.get("reveal_step", 0) >= s
            )
            assert seen.data["reveal_step"] == step
            shown = [r for r in seen.data["results"] if r["rank"] > places - step]
            assert [r["rank"] for r in shown][-1] == places and len(shown) == step
            title = by_rank[rank]["title"]
            if rank <= 10:
                wait_for_js(
                    page,
                    "([r, t]) => { const row = document.querySelector(`.row[data-rank='${r}']`);"
                    " return row && row.classList.contains('revealed') &&"
                    " row.querySelector('.name')?.textContent === t; }",
                    arg=[rank, title],
                )
                hidden = page.locator(".row:not(.revealed)").count()
                assert hidden == rank - 1, (step, hidden)
            else:
                wait_for_js(
                    page,
                    "t => document.getElementById('ticker')?.textContent.includes(t)",
                    arg=title,
                )
            if step < places:
                wait_for_js(
                    page,
                    "t => document.getElementById('winner-title')?.textContent === t",
                    arg=title,
                )
                assert f"of {places}" in text(page, "#board-title")
            if step == 7:
                screenshot(page, screenshots, "overlay-revealing.png")

        # The winner card: project and team, last; the tie-break seed is published.
        page.wait_for_selector("#winner[data-kind='winner']")
        assert text(page, "#winner-title") == by_rank[1]["title"]
        assert text(page, "#winner-team") == f"by {by_rank[1]['team']}"
        assert "Community Favorite" in text(page, ".winner-label")
        final = stream.tallies()[-1].data
        assert final["status"] == "revealed" and final["tie_seed"]
        assert final["tie_seed"] in text(page, "#seed")
        assert page.evaluate("window.notReloaded") is True
        screenshot(page, tmp_path, "overlay-winner.png")  # the README's: test_overlay_lengths.py
    finally:
        page.close()
        stream.close()
    steps = sorted({e.data["reveal_step"] for e in stream.tallies() if "reveal_step" in e.data})
    assert steps == list(range(1, places + 1)), "every stage went out on the stream"


@pytest.mark.slow
def test_podium_layout_light_theme(
    app: Flask,
    live_server: str,
    stage: Any,
    make_poll: Callable[..., str],
    mint: Callable[..., list[str]],
    tmp_path: Path,
) -> None:
    slug = make_poll(results_mode="sealed", title="NumHack Community Favorite")
    cast_weighted(app, slug, mint(slug, sum(WEIGHTS.values())))
    with app.app_context():
        polls.close_poll(slug, actor="test")
        ranking = polls.results_view(polls.get_poll(slug), organizer=True)["results"]
    page = stage.new_page()
    try:
        page.goto(live_server + overlay_path(app, slug) + "&layout=podium&theme=light&top=8")
        page.wait_for_selector("body[data-connection='live']")
        assert (
            page.evaluate("getComputedStyle(document.body).backgroundColor") == "rgba(0, 0, 0, 0)"
        )
        for _ in range(9):
            with app.app_context():
                polls.reveal(slug, actor="test", step=True)
        # Places 12..4 are out; the podium's pillars stand empty.
        wait_for_js(
            page,
            "t => document.querySelector('.row[data-rank=\"4\"] .name')?.textContent === t",
            arg=ranking[3]["title"],
        )
        assert page.locator(".pillar-column.revealed").count() == 0
        assert ranking[8]["title"] in text(page, "#ticker")  # 9th is beyond top=8
        for step in (10, 11, 12):
            with app.app_context():
                polls.reveal(slug, actor="test", step=True)
            rank = 13 - step
            wait_for_js(
                page,
                "([r, t]) => { const c = document.querySelector(`.pillar-column[data-rank='${r}']`);"
                " return !!c && c.classList.contains('revealed') &&"
                " c.querySelector('.card-name')?.textContent === t; }",
                arg=[rank, ranking[rank - 1]["title"]],
            )
        wait_for_js(page, "document.querySelector('.stage')?.dataset.status === 'revealed'")
        assert ranking[0]["team"] in text(page, ".pillar-column[data-rank='1'] .card-team")
        screenshot(
            page, tmp_path, "overlay-podium-light.png"
        )  # the README's: test_overlay_lengths.py
    finally:
        page.close()


@pytest.mark.slow
def test_overlay_reconnects_after_a_network_drop(
    app: Flask,
    stage: Any,
    make_poll: Callable[..., str],
    mint: Callable[..., list[str]],
) -> None:
    slug = make_poll(results_mode="hidden")
    tokens = mint(slug, 2)
    with serving(app) as base:
        port = int(base.rsplit(":", 1)[1])
        proxy = TCPProxy(port)
        proxy.start()
        page = stage.new_page()
        try:
            page.goto(f"http://127.0.0.1:{proxy.port}" + overlay_path(app, slug))
            page.wait_for_selector("body[data-connection='live']")
            assert text(page, "#turnout") == "0"

            proxy.drop()  # the network goes away: every connection is cut
            page.wait_for_selector("body[data-connection='reconnecting']", timeout=15_000)
            assert post_ballot(base, slug, tokens[0], ["sign-bridge"]) == 201
            # The news goes out while the overlay is cut off (a stream that bypasses the
            # proxy sees it), so the overlay can only learn it by reconnecting.
            with SSEClient(f"{base}/api/polls/{slug}/events") as direct:
                direct.wait_for(lambda e: e.data.get("turnout") == 1)
            proxy.start()  # and comes back on the same address
            wait_for_js(
                page, "document.getElementById('turnout')?.textContent === '1'", timeout=40_000
            )
            page.wait_for_selector("body[data-connection='live']")
            assert post_ballot(base, slug, tokens[1], ["sign-bridge"]) == 201
            wait_for_js(page, "document.getElementById('turnout')?.textContent === '2'")
            # Hidden mode: the overlay shows turnout, never a board.
            assert not page.locator("#board").is_visible()
        finally:
            page.close()
            proxy.drop()


def test_overlay_countdown_reaches_zero_and_the_close_follows(
    app: Flask,
    live_server: str,
    stage: Any,
    make_poll: Callable[..., str],
) -> None:
    slug = make_poll(results_mode="hidden", closes_at=utcnow() + timedelta(seconds=3))
    page = stage.new_page()
    try:
        page.goto(live_server + overlay_path(app, slug))
        page.wait_for_selector("body[data-connection='live']")
        assert re.fullmatch(r"00:0[0-3]", text(page, "#clock"))
        # Nobody acts: the scheduled close reaches the overlay through the stream by itself.
        wait_for_js(
            page, "document.querySelector('.stage')?.dataset.status === 'closed'", timeout=15_000
        )
    finally:
        page.close()
