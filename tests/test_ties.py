"""Ties shown: the pure marks, the results document, the pages, the overlay, and no gold at 0."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.admin_support import Console, visible_text
from tests.live_support import post_ballot
from tests.support import add_css, wait_for_js
from voting.domain import tally
from voting.services import ballots, overlay, polls

THREE = ("flood-watch", "coral-count", "crop-doctor")
TITLES = {"flood-watch": "FloodWatch", "coral-count": "Coral Count", "crop-doctor": "Crop Doctor"}
GOLD = "rgb(251, 191, 36)"  # --accent in the dark theme


@pytest.fixture
def app(make_app: Callable[..., Flask]) -> Flask:
    return make_app(LIVE_HEARTBEAT_SECONDS=2, LIVE_MIN_INTERVAL=0.1)


def three_way_poll(make_poll: Callable[..., str], **spec: Any) -> str:
    return make_poll(projects=THREE, **spec)


def cast(app: Flask, slug: str, tokens: list[str], votes: dict[str, int]) -> None:
    choices = [p for p, n in votes.items() for _ in range(n)]
    assert len(tokens) >= len(choices)
    with app.app_context():
        for token, choice in zip(tokens, choices, strict=False):
            ballots.cast_ballot(slug, token, [choice])


def close_and_reveal(app: Flask, slug: str, *, step: bool = False) -> None:
    with app.app_context():
        polls.close_poll(slug, actor="test")
        polls.reveal(slug, actor="test", step=step)


def rows_by_project(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {row["project"]: row for row in doc.get("results", [])}


def partners(doc: dict[str, Any], project: str) -> list[str]:
    """Who a row of the document is tied with, as a client reads it: the other rows with as
    many votes (the document flags `tied` and lists no names)."""
    rows = rows_by_project(doc)
    return [q for q, row in rows.items() if q != project and row["votes"] == rows[project]["votes"]]


PLACE_KEYS = {"project", "title", "team", "votes", "rank", "tied"}


# -- the pure tally ---------------------------------------------------------------------------


def test_ties_name_the_other_places_with_the_same_votes() -> None:
    placings = tally.rank({"a": 3, "b": 3, "c": 1}, "seed")
    ties = tally.ties(placings)
    first, second = (p.project for p in placings[:2])
    assert ties == {first: [second], second: [first], "c": []}


def test_a_three_way_tie_names_both_others_best_placed_first() -> None:
    placings = tally.rank({"a": 2, "b": 2, "c": 2, "d": 5}, "another seed")
    ties = tally.ties(placings)
    assert ties["d"] == []
    tied = [p.project for p in placings if p.project != "d"]
    for project in tied:
        assert ties[project] == [q for q in tied if q != project]


@pytest.mark.parametrize(
    ("counts", "among"),
    [
        ({"a": 3, "b": 3, "c": 1}, None),
        ({"a": 2, "b": 2, "c": 2, "d": 5}, None),
        ({"a": 0, "b": 0, "c": 0}, None),
        ({"a": 5, "b": 2, "c": 2}, {"c"}),
        ({"a": 5, "b": 2, "c": 2}, {"b", "c"}),
        ({"a": 5, "b": 2, "c": 2, "d": 2}, {"a", "d"}),
    ],
)
def test_tied_marks_exactly_the_shown_places_that_ties_gives_partners(
    counts: dict[str, int], among: set[str] | None
) -> None:
    placings = tally.rank(counts, "seed")
    shown = among if among is not None else set(counts)
    partners_of = tally.ties(placings, among=among)
    expected = {p for p, others in partners_of.items() if others and p in shown}
    assert tally.tied(placings, among=among) == expected


def test_at_zero_votes_everyone_is_tied_with_everyone() -> None:
    placings = tally.rank(tally.count([], ["a", "b", "c", "d"]), "s")
    ties = tally.ties(placings)
    assert all(sorted(ties[p] + [p]) == ["a", "b", "c", "d"] for p in ties)


def test_ties_name_only_the_places_shown() -> None:
    # b and c tie for 2nd/3rd; only the last place (c or b) is revealed.
    placings = tally.rank({"a": 5, "b": 2, "c": 2}, "s")
    last = placings[-1].project
    ties = tally.ties(placings, among={last})
    assert ties[last] == [], "a tie with a hidden place would tell its count"
    both = tally.ties(placings, among={"b", "c"})
    assert both["b"] == ["c"] and both["c"] == ["b"] and both["a"] == []


# -- the results document and the API --------------------------------------------------------


def test_the_api_marks_tied_places_and_names_the_tie_break(
    app: Flask, client: FlaskClient, make_poll: Callable[..., str], mint: Callable[..., list[str]]
) -> None:
    slug = three_way_poll(make_poll, results_mode="live")
    cast(app, slug, mint(slug, 5), {"flood-watch": 2, "coral-count": 2, "crop-doctor": 1})
    doc = client.get(f"/api/polls/{slug}/results").get_json()
    rows = rows_by_project(doc)
    assert rows["flood-watch"]["tied"] and partners(doc, "flood-watch") == ["coral-count"]
    assert rows["coral-count"]["tied"] and partners(doc, "coral-count") == ["flood-watch"]
    assert rows["crop-doctor"]["tied"] is False and partners(doc, "crop-doctor") == []
    assert all(set(row) == PLACE_KEYS for row in doc["results"]), "no list of names per row"
    assert doc["tie_break"] == tally.TIE_BREAK_RULE
    assert "sha256(seed + ':' + project slug), smallest first" in doc["tie_break"]
    assert doc["tie_break_help"] == f"{app.config['BASE_URL']}/p/{slug}/results#tie-break"
    assert doc["tie_seed_hash"] and "tie_seed" not in doc, "the seed waits for the reveal"


def test_no_tie_no_tie_break(
    app: Flask, client: FlaskClient, make_poll: Callable[..., str], mint: Callable[..., list[str]]
) -> None:
    slug = three_way_poll(make_poll, results_mode="live")
    cast(app, slug, mint(slug, 3), {"flood-watch": 2, "coral-count": 1})
    doc = client.get(f"/api/polls/{slug}/results").get_json()
    assert [row["tied"] for row in doc["results"]] == [False, False, False]
    assert "tie_break" not in doc and "tie_break_help" not in doc


@pytest.mark.parametrize("mode", ["hidden", "sealed"])
def test_the_staged_reveal_never_marks_a_tie_with_a_hidden_place(
    app: Flask,
    client: FlaskClient,
    make_poll: Callable[..., str],
    mint: Callable[..., list[str]],
    mode: str,
) -> None:
    slug = three_way_poll(make_poll, results_mode=mode)
    cast(app, slug, mint(slug, 4), {"flood-watch": 2, "coral-count": 1, "crop-doctor": 1})
    with app.app_context():
        polls.close_poll(slug, actor="test")  # sealed: organizers too see counts from the close
        ranking = polls.results_view(polls.get_poll(slug), organizer=True)["results"]
        polls.reveal(slug, actor="test", step=True)
    second, last = ranking[1]["project"], ranking[2]["project"]
    assert {second, last} == {"coral-count", "crop-doctor"}

    api = client.get(f"/api/polls/{slug}/results")
    page = client.get(f"/p/{slug}/results").get_data(as_text=True)
    with app.app_context():
        overlay_url = overlay.overlay_url(polls.get_poll(slug))
        organizer = polls.results_view(polls.get_poll(slug), organizer=True)
    overlay_page = client.get(overlay_url.removeprefix(app.config["BASE_URL"]))
    doc = api.get_json()
    assert doc["status"] == "revealing" and [r["project"] for r in doc["results"]] == [last]
    assert doc["results"][0]["tied"] is False and set(doc["results"][0]) == PLACE_KEYS
    assert "tie_break" not in doc
    # Nothing public names the hidden second place or hints at its count.
    for body in (api.get_data(as_text=True), page, overlay_page.get_data(as_text=True)):
        assert second not in body and TITLES[second] not in body
        assert 'class="place-tie"' not in body and "(tie)" not in body
        assert '"tied": true' not in body and '"tied":true' not in body
    assert 'id="tie-break" hidden' in page
    # The organizers see the tie at once.
    assert rows_by_project(organizer)[last]["tied"] and partners(organizer, last) == [second]

    with app.app_context():
        polls.reveal(slug, actor="test", step=True)
    doc = client.get(f"/api/polls/{slug}/results").get_json()
    rows = rows_by_project(doc)
    assert set(rows) == {second, last}
    assert rows[second]["tied"] and rows[last]["tied"]
    assert partners(doc, second) == [last] and partners(doc, last) == [second]
    assert doc["tie_break"] == tally.TIE_BREAK_RULE
    assert "tie_seed" not in doc, "the seed comes with the final step"


def test_a_live_poll_reveal_marks_no_tie_with_a_place_still_to_come(
    app: Flask, client: FlaskClient, make_poll: Callable[..., str], mint: Callable[..., list[str]]
) -> None:
    # Live counts are public anyway, but the reveal is a show: no spoiler in the tie marks.
    slug = three_way_poll(make_poll, results_mode="live")
    cast(app, slug, mint(slug, 4), {"flood-watch": 2, "coral-count": 1, "crop-doctor": 1})
    close_and_reveal(app, slug, step=True)
    doc = client.get(f"/api/polls/{slug}/results").get_json()
    last = doc["results"][-1]
    assert len(doc["results"]) == 3 and last["tied"] is False and "tie_break" not in doc
    # The live document holds the places still to come too: none of them is marked either,
    # so a client reading partners from `votes` finds none among the hidden rows.
    assert [row["tied"] for row in doc["results"]] == [False, False, False]
    page = client.get(f"/p/{slug}/results").get_data(as_text=True)
    assert 'class="place-tie"' not in page


def test_the_console_names_every_tie(
    app: Flask, client: FlaskClient, make_poll: Callable[..., str], mint: Callable[..., list[str]]
) -> None:
    slug = three_way_poll(make_poll, results_mode="hidden")
    cast(app, slug, mint(slug, 4), {"flood-watch": 1, "coral-count": 1, "crop-doctor": 2})
    console = Console.login(app, client)
    text = visible_text(console.page(f"/admin/polls/{slug}/live"))
    assert "FloodWatch River Rats tied with Coral Count" in text
    assert "Coral Count Reef Rescue tied with FloodWatch" in text
    assert "Ties: " + tally.TIE_BREAK_RULE in text
    close_and_reveal(app, slug)
    assert "Winner: Crop Doctor" in visible_text(console.page(f"/admin/polls/{slug}/live"))
    assert "tie decided" not in console.page(f"/admin/polls/{slug}/live")


# -- the results page without JavaScript ------------------------------------------------------


def test_the_results_page_marks_ties_in_english_and_spanish(
    app: Flask, client: FlaskClient, make_poll: Callable[..., str], mint: Callable[..., list[str]]
) -> None:
    slug = three_way_poll(make_poll, results_mode="live")
    cast(app, slug, mint(slug, 5), {"flood-watch": 2, "coral-count": 2, "crop-doctor": 1})
    close_and_reveal(app, slug)
    page = client.get(f"/p/{slug}/results").get_data(as_text=True)
    assert "Tied with Coral Count; order decided by the declared draw." in page
    assert "Tied with FloodWatch; order decided by the declared draw." in page
    assert page.count('<a href="#tie-break">How to recompute it</a>') == 2
    assert '<section class="tie-break" id="tie-break">' in page
    with app.app_context():
        poll = polls.get_poll(slug)
        seed, seed_hash = poll.tie_seed, poll.tie_seed_hash
    assert seed in page and seed_hash in page

    spanish = client.get(f"/p/{slug}/results?lang=es").get_data(as_text=True)
    assert "Empatado con Coral Count; el orden lo decidió el sorteo declarado." in spanish
    assert "Cómo recalcularlo" in spanish and "Cómo se deshacen los empates" in spanish


def test_many_ties_are_counted_not_listed(
    client: FlaskClient, make_poll: Callable[..., str]
) -> None:
    slug = make_poll(results_mode="live")
    page = client.get(f"/p/{slug}/results").get_data(as_text=True)
    doc = client.get(f"/api/polls/{slug}/results").get_json()
    others = len(doc["results"]) - 1
    assert others > 3 and all(row["tied"] for row in doc["results"])
    # Everyone tied with everyone is one flag per row: the document grows with the places,
    # not with their square (a 100-way tie once listed 9,900 slugs).
    assert all(set(row) == PLACE_KEYS for row in doc["results"])
    assert f"Tied with {others} other projects; order decided by the declared draw." in page


def test_no_winner_frame_at_zero_votes_on_the_results_page(
    app: Flask, client: FlaskClient, make_poll: Callable[..., str], mint: Callable[..., list[str]]
) -> None:
    empty = three_way_poll(make_poll, results_mode="live")
    close_and_reveal(app, empty)
    assert "place winner" not in client.get(f"/p/{empty}/results").get_data(as_text=True)
    voted = three_way_poll(make_poll, results_mode="live")
    cast(app, voted, mint(voted, 1), {"crop-doctor": 1})
    close_and_reveal(app, voted)
    page = client.get(f"/p/{voted}/results").get_data(as_text=True)
    assert 'class="place winner" value="1" data-project="crop-doctor"' in page


# -- in Chromium ------------------------------------------------------------------------------


@pytest.fixture
def stage(browser: Any) -> Iterator[Any]:
    """A browser context the size of an OBS browser source."""
    context = browser.new_context(viewport={"width": 1920, "height": 1080}, device_scale_factor=1)
    yield context
    context.close()


def overlay_path(app: Flask, slug: str) -> str:
    with app.app_context():
        url = overlay.overlay_url(polls.get_poll(slug))
    return url.removeprefix(app.config["BASE_URL"])


def tie_note(page: Any, project: str) -> str | None:
    note = page.locator(f"li[data-project='{project}'] .place-tie")
    return " ".join(str(note.text_content()).split()) if note.count() else None


def test_the_results_page_follows_ties_over_the_stream(
    app: Flask,
    live_server: str,
    phone: Any,
    make_poll: Callable[..., str],
    mint: Callable[..., list[str]],
) -> None:
    slug = three_way_poll(make_poll, results_mode="live")
    tokens = mint(slug, 2)
    page = phone.new_page()
    try:
        page.goto(f"{live_server}/p/{slug}/results")
        page.wait_for_selector("body[data-connection='live']")
        # At 0 votes all three are tied.
        assert tie_note(page, "crop-doctor") is not None
        assert post_ballot(live_server, slug, tokens[0], ["flood-watch"]) == 201
        wait_for_js(
            page, "() => !document.querySelector(\"li[data-project='flood-watch'] .place-tie\")"
        )
        assert post_ballot(live_server, slug, tokens[1], ["coral-count"]) == 201
        wait_for_js(
            page, "() => !document.querySelector(\"li[data-project='crop-doctor'] .place-tie\")"
        )
        assert tie_note(page, "coral-count") == (
            "Tied with FloodWatch; order decided by the declared draw. How to recompute it"
        )
        assert tie_note(page, "flood-watch") == (
            "Tied with Coral Count; order decided by the declared draw. How to recompute it"
        )
        assert page.locator("#tie-break").is_visible()
        assert page.locator("li.tied").count() == 2
        href = page.locator("li[data-project='coral-count'] .place-tie a").get_attribute("href")
        assert href == "#tie-break"
    finally:
        page.close()


def winner_card(app: Flask, live_server: str, stage: Any, slug: str) -> Any:
    page = stage.new_page()
    page.goto(live_server + overlay_path(app, slug))
    page.wait_for_selector("#winner[data-kind='winner']")
    wait_for_js(
        page, "() => document.getAnimations().every(a => a.playState !== 'running')", timeout=10_000
    )
    return page


def test_the_overlay_winner_card_says_when_the_draw_decided(
    app: Flask,
    live_server: str,
    stage: Any,
    make_poll: Callable[..., str],
    mint: Callable[..., list[str]],
    screenshots: Path,
) -> None:
    tied = three_way_poll(make_poll, title="NumHack Community Favorite")
    cast(app, tied, mint(tied, 3), {"flood-watch": 1, "coral-count": 1, "crop-doctor": 0})
    close_and_reveal(app, tied)
    page = winner_card(app, live_server, stage, tied)
    try:
        assert page.locator("#winner-tie").is_visible()
        assert page.locator("#winner-tie").text_content() == "tie decided by the declared draw"
        assert page.locator(".row.tied").count() == 2
        assert page.locator(".row[data-rank='1'] .tie-mark").text_content() == "tie"
        assert page.locator(".row[data-rank='3'] .tie-mark").text_content() == ""
        add_css(page, "html { background: #3b4763 !important; }")
        page.screenshot(path=str(screenshots / "overlay-winner-tie.png"))
    finally:
        page.close()

    clear = three_way_poll(make_poll)
    cast(app, clear, mint(clear, 3), {"flood-watch": 2, "coral-count": 1})
    close_and_reveal(app, clear)
    page = winner_card(app, live_server, stage, clear)
    try:
        assert page.locator("#winner-title").text_content() == "FloodWatch"
        assert not page.locator("#winner-tie").is_visible()
        assert page.locator("#winner-tie").text_content() == ""
        assert page.locator(".row.tied").count() == 0
    finally:
        page.close()


def test_no_gold_number_one_at_zero_votes_on_the_overlay(
    app: Flask,
    live_server: str,
    stage: Any,
    make_poll: Callable[..., str],
    mint: Callable[..., list[str]],
) -> None:
    slug = three_way_poll(make_poll, results_mode="live")
    token = mint(slug, 1)[0]
    page = stage.new_page()
    rank_colour = "n => getComputedStyle(document.querySelector(n)).backgroundColor"
    try:
        page.goto(live_server + overlay_path(app, slug))
        page.wait_for_selector("body[data-connection='live'] .row[data-rank='1'].revealed")
        first = page.evaluate(rank_colour, ".row[data-rank='1'] .rank")
        assert first != GOLD
        assert first == page.evaluate(rank_colour, ".row[data-rank='2'] .rank")
        assert page.locator(".row.leader").count() == 0
        assert post_ballot(live_server, slug, token, ["coral-count"]) == 201
        page.wait_for_selector(".row[data-rank='1'].leader[data-project='coral-count']")
        assert page.evaluate(rank_colour, ".row[data-rank='1'] .rank") == GOLD
    finally:
        page.close()
