"""The public receipt board: publication, rows, search without JS, superseded receipts, pages, CSV/JSON."""

from __future__ import annotations

import csv
import html
import io
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.support import csrf_from, project_slugs
from voting.config import ConfigError
from voting.domain.receipts import normalise_receipt
from voting.logs import redact
from voting.services import ballots, exports, polls

MakePoll = Callable[..., str]
Mint = Callable[..., list[str]]
ROW_RE = re.compile(r'<tr data-receipt="([^"]+)" data-choices="([^"]*)" data-status="([^"]+)">')


# -- helpers ---------------------------------------------------------------------------------


def cast_all(app: Flask, slug: str, tokens: list[str], choices: list[list[str]]) -> list[str]:
    """Cast one ballot per token (through the service); returns the receipts."""
    with app.app_context():
        return [
            ballots.cast_ballot(slug, t, c).receipt for t, c in zip(tokens, choices, strict=True)
        ]


def finish(app: Flask, slug: str, *, stage: str = "revealed") -> None:
    """Close the poll, then reveal it fully ("revealed"), one step ("revealing") or not at all."""
    with app.app_context():
        polls.close_poll(slug, actor="test")
        if stage == "revealed":
            polls.reveal(slug, actor="test")
        elif stage == "revealing":
            polls.reveal(slug, actor="test", step=True)


def rows_of(page: str) -> list[tuple[str, tuple[str, ...], str]]:
    """The board's rows on a page: (receipt, choices, status)."""
    return [
        (r, tuple(c.split(";")) if c else (), s) for r, c, s in ROW_RE.findall(html.unescape(page))
    ]


def next_link(page: str) -> str | None:
    match = re.search(r'<a rel="next" href="([^"]+)"', page)
    return html.unescape(match.group(1)) if match else None


def csv_rows(client: FlaskClient, slug: str) -> list[dict[str, str]]:
    response = client.get(f"/p/{slug}/receipts.csv")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    text = response.get_data(as_text=True)
    assert text.splitlines()[0] == "receipt,choices,status"
    return list(csv.DictReader(io.StringIO(text)))


def json_pages(client: FlaskClient, slug: str) -> list[dict[str, Any]]:
    """Every page of the JSON board, following `next`."""
    docs, url = [], f"/api/polls/{slug}/receipts"
    while url:
        response = client.get(url)
        assert response.status_code == 200, response.get_data(as_text=True)
        docs.append(response.get_json())
        nxt = docs[-1]["next"]
        url = urlsplit(nxt)._replace(scheme="", netloc="").geturl() if nxt else None
    return docs


def vote_through_forms(client: FlaskClient, token: str, slug: str, choice: str) -> str:
    """Voter link, ballot, confirm, cast, as a phone without JS does; returns the receipt."""
    assert client.get(f"/v/{token}").status_code == 303
    page = client.get(f"/p/{slug}").get_data(as_text=True)
    confirm = client.post(
        f"/p/{slug}/confirm", data={"csrf_token": csrf_from(page), "choice": choice}
    )
    cast = client.post(
        f"/p/{slug}/cast",
        data={"csrf_token": csrf_from(confirm.get_data(as_text=True)), "choice": choice},
    )
    assert cast.status_code == 303 and cast.headers["Location"].endswith(f"/p/{slug}/receipt")
    receipt_page = client.get(f"/p/{slug}/receipt").get_data(as_text=True)
    match = re.search(r'<code id="code">([^<]+)</code>', receipt_page)
    assert match
    return match.group(1)


def submit_search(client: FlaskClient, board: str, typed: str) -> tuple[int, str]:
    """Fill in and submit the board's search form, as the browser would (method GET)."""
    form = re.search(
        r'<form[^>]*method="get" action="([^"]+)" role="search">(.*?)</form>', board, re.S
    )
    assert form, "no search form on the board"
    field = re.search(r'<input id="q" name="([^"]+)"', form.group(2))
    assert field
    response = client.get(html.unescape(form.group(1)), query_string={field.group(1): typed})
    return response.status_code, response.get_data(as_text=True)


# -- the board after reveal ------------------------------------------------------------------


def test_after_reveal_the_board_lists_every_counted_ballot(
    app: Flask, client: FlaskClient, make_poll: MakePoll, mint: Mint
) -> None:
    slug = make_poll(method="approval", max_choices=2)
    picks = [["flood-watch"], ["bias-lens", "crop-doctor"], ["crop-doctor"], ["flood-watch"]]
    receipts = cast_all(app, slug, mint(slug, len(picks)), picks)
    finish(app, slug)

    response = client.get(f"/p/{slug}/receipts")
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and "Receipt board" in page
    expected = sorted(
        (r, tuple(sorted(c)), "counted") for r, c in zip(receipts, picks, strict=True)
    )
    assert rows_of(page) == expected  # every ballot, sorted by receipt
    assert "4 receipts on the board." in page and "Bias Lens, Crop Doctor" in page
    assert f'href="/p/{slug}/receipts.csv"' in page and "will be published" not in page
    # The results page links to it now.
    assert f'href="/p/{slug}/receipts"' in client.get(f"/p/{slug}/results").get_data(as_text=True)


def test_a_voter_finds_their_receipt_with_the_form_and_no_javascript(
    app: Flask, make_poll: MakePoll, mint: Mint
) -> None:
    slug = make_poll()
    mine, other = mint(slug, 2)
    voter, stranger = app.test_client(), app.test_client()
    receipt = vote_through_forms(voter, mine, slug, "bias-lens")
    vote_through_forms(stranger, other, slug, "flood-watch")
    # No link to a board that is not out yet.
    assert "receipt board" not in voter.get(f"/p/{slug}/receipt").get_data(as_text=True)
    finish(app, slug)

    closed = voter.get(f"/p/{slug}/receipt").get_data(as_text=True)
    assert f'href="/p/{slug}/receipts?q={receipt}"' in closed
    board = voter.get(f"/p/{slug}/receipts").get_data(as_text=True)
    # Typed as a person would: lower case, spaces for dashes, an O for a zero.
    typed = receipt.lower().replace("-", " ").replace("0", "o")
    status, found = submit_search(voter, board, typed)
    assert status == 200
    assert f'data-receipt="{receipt}" data-status="counted"' in found
    assert f"Found: {receipt}" in found and "Voted for: Bias Lens" in found
    assert "this ballot is in the tally" in found
    # A code that is not on the board is said to be missing, not found elsewhere.
    missing = "ZZZZ-ZZZZ-ZZZZ" if receipt != "ZZZZ-ZZZZ-ZZZZ" else "YYYY-YYYY-YYYY"
    status, page = submit_search(voter, board, missing)
    assert status == 200 and f"{missing} is not on this board" in page and "Found:" not in page


@pytest.mark.parametrize("typed", ["hello", "1234", "7KQ2-M9XD-4TBR-XXXX", "UUUU-UUUU-UUUU"])
def test_a_search_that_is_no_receipt_gets_a_sentence(
    app: Flask, client: FlaskClient, make_poll: MakePoll, typed: str
) -> None:
    slug = make_poll()
    finish(app, slug)
    response = client.get(f"/p/{slug}/receipts", query_string={"q": typed})
    assert response.status_code == 400
    assert "That is not a receipt code" in response.get_data(as_text=True)
    api = client.get(f"/api/polls/{slug}/receipts", query_string={"q": typed})
    assert api.status_code == 400 and api.get_json()["error"] == "invalid_request"
    assert "12 letters and digits" in api.get_json()["message"]


# -- before publication ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "stage", "note"),
    [
        ("hidden", "open", "when the results are revealed"),
        ("hidden", "closed", "when the results are revealed"),
        ("hidden", "revealing", "when the results are revealed"),
        ("sealed", "open", "when the results are revealed"),
        ("sealed", "revealing", "when the results are revealed"),
        ("live", "open", "when voting closes"),
        ("live", "draft", "when voting closes"),
    ],
)
def test_before_publication_the_board_says_when_and_lists_nothing(
    app: Flask,
    client: FlaskClient,
    make_poll: MakePoll,
    mint: Mint,
    mode: str,
    stage: str,
    note: str,
) -> None:
    slug = make_poll(results_mode=mode)
    [receipt] = cast_all(app, slug, mint(slug, 1), [["flood-watch"]])
    if stage == "draft":
        # A poll that has not opened yet (a fresh one, with nothing in it).
        slug = make_poll(results_mode=mode, open_=False)
        receipt = ""
    elif stage != "open":
        finish(app, slug, stage=stage)

    page = client.get(f"/p/{slug}/receipts").get_data(as_text=True)
    assert f"The board will be published {note}" in page and "Nothing is listed until then" in page
    assert rows_of(page) == [] and 'id="board"' not in page and "receipts.csv" not in page
    if receipt:
        assert receipt not in page
        found = client.get(f"/p/{slug}/receipts", query_string={"q": receipt})
        text = found.get_data(as_text=True)
        assert found.status_code == 200 and "Nothing can be found before" in text
        assert "flood-watch" not in text and "FloodWatch" not in text
    assert csv_rows(client, slug) == []
    doc = client.get(f"/api/polls/{slug}/receipts").get_json()
    assert doc["published"] is False and doc["ballots"] == [] and doc["total"] == 0
    assert doc["publishes"] == ("close" if mode == "live" else "reveal") and doc["next"] is None
    if receipt:
        searched = client.get(f"/api/polls/{slug}/receipts", query_string={"q": receipt})
        assert searched.get_json()["ballots"] == [] and searched.get_json()["total"] == 0
    assert 'href="/p/' + slug + '/receipts"' not in client.get(f"/p/{slug}/results").get_data(
        as_text=True
    )


def test_a_live_poll_publishes_its_board_at_close(
    app: Flask, client: FlaskClient, make_poll: MakePoll, mint: Mint
) -> None:
    slug = make_poll(results_mode="live")
    [receipt] = cast_all(app, slug, mint(slug, 1), [["crop-doctor"]])
    finish(app, slug, stage="closed")
    doc = client.get(f"/api/polls/{slug}/receipts").get_json()
    assert doc["published"] is True and doc["total"] == 1
    assert doc["ballots"] == [{"receipt": receipt, "choices": ["crop-doctor"], "status": "counted"}]


# -- revotes ---------------------------------------------------------------------------------


def test_a_changed_vote_leaves_the_earlier_receipt_marked_superseded(
    app: Flask, client: FlaskClient, make_poll: MakePoll, mint: Mint
) -> None:
    slug = make_poll(allow_revote=True)
    mine, other = mint(slug, 2)
    [first] = cast_all(app, slug, [mine], [["bias-lens"]])
    [later] = cast_all(app, slug, [mine], [["flood-watch"]])
    [theirs] = cast_all(app, slug, [other], [["flood-watch"]])
    assert first != later
    finish(app, slug)

    for typed, status, title in (
        (first, "superseded", "Bias Lens"),
        (later, "counted", "FloodWatch"),
    ):
        page = client.get(f"/p/{slug}/receipts", query_string={"q": typed}).get_data(as_text=True)
        assert f'data-receipt="{typed}" data-status="{status}"' in page
        assert f"Voted for: {title}" in page
    superseded = client.get(f"/p/{slug}/receipts", query_string={"q": first}).get_data(as_text=True)
    assert "Superseded" in superseded and "is not counted" in superseded
    board = client.get(f"/p/{slug}/receipts").get_data(as_text=True)
    assert rows_of(board) == sorted(
        [
            (first, ("bias-lens",), "superseded"),
            (later, ("flood-watch",), "counted"),
            (theirs, ("flood-watch",), "counted"),
        ]
    )
    assert "a receipt replaced by a later vote is marked superseded" in board
    # The tally counts the later ballot only; the export lists the earlier receipt apart.
    with app.app_context():
        doc = exports.export_poll(slug, actor="test")
    assert doc["tally"]["turnout"] == 2
    assert doc["superseded"] == [{"receipt": first, "choices": ["bias-lens"]}]
    assert sorted(b["receipt"] for b in doc["ballots"]) == sorted([later, theirs])


# -- pages, CSV and JSON ---------------------------------------------------------------------


def test_pages_csv_and_json_list_the_same_board(
    make_app: Callable[..., Flask], make_poll: MakePoll
) -> None:
    app = make_app(RECEIPTS_PAGE_SIZE=20)
    from tests.support import make_poll_on, mint_on

    slug = make_poll_on(app, allow_revote=True)
    choices = project_slugs(app, slug)
    tokens = mint_on(app, slug, 240)
    receipts = cast_all(app, slug, tokens, [[choices[i % len(choices)]] for i in range(240)])
    # Ten voters change their vote: 250 receipts on the board, 240 of them counted.
    cast_all(app, slug, tokens[:10], [[choices[-1]]] * 10)
    finish(app, slug)
    client = app.test_client()

    seen: list[tuple[str, tuple[str, ...], str]] = []
    url: str | None = f"/p/{slug}/receipts"
    pages = 0
    while url:
        page = client.get(url).get_data(as_text=True)
        rows = rows_of(page)
        assert 0 < len(rows) <= 20
        pages += 1
        assert f"Page {pages} of 13" in page
        seen.extend(rows)
        url = next_link(page)
    assert pages == 13 and len(seen) == 250 == len({r for r, _, _ in seen})
    assert [r for r, _, _ in seen] == sorted(r for r, _, _ in seen)
    assert sum(s == "superseded" for _, _, s in seen) == 10
    assert set(receipts[10:]) <= {r for r, _, s in seen if s == "counted"}

    assert [
        (r["receipt"], tuple(r["choices"].split(";")), r["status"]) for r in csv_rows(client, slug)
    ] == seen
    docs = json_pages(client, slug)
    assert len(docs) == 13 and all(d["total"] == 250 and d["published"] for d in docs)
    assert [d["page"] for d in docs] == list(range(1, 14)) and docs[-1]["next"] is None
    assert docs[0]["next"].startswith("http://vote.test/api/polls/")
    listed = [(b["receipt"], tuple(b["choices"]), b["status"]) for d in docs for b in d["ballots"]]
    assert listed == seen


@pytest.mark.parametrize(
    ("value", "status"),
    [
        ("0", 400),
        ("-1", 400),
        ("abc", 400),
        ("1.5", 400),
        ("²", 400),
        ("٣", 400),
        ("9" * 30, 400),
        ("2", 404),
    ],
)
def test_a_bad_page_number_gets_a_clear_answer(
    app: Flask, client: FlaskClient, make_poll: MakePoll, mint: Mint, value: str, status: int
) -> None:
    slug = make_poll()
    cast_all(app, slug, mint(slug, 1), [["flood-watch"]])
    finish(app, slug)
    page = client.get(f"/p/{slug}/receipts", query_string={"page": value})
    text = page.get_data(as_text=True)
    assert page.status_code == status
    expected = "must be a whole number" if status == 400 else "There is no page 2 on this board."
    assert expected in text and 'id="search-result"' in text  # still the board, with its form
    api = client.get(f"/api/polls/{slug}/receipts", query_string={"page": value})
    assert api.status_code == status
    body = api.get_json()
    assert body["error"] == ("invalid_request" if status == 400 else "not_found")
    assert body["message"].endswith(".") and (status == 400 or "1 page" in body["message"])


def test_an_unknown_poll_is_404_everywhere(client: FlaskClient) -> None:
    for url in ("/p/nope/receipts", "/p/nope/receipts.csv", "/api/polls/nope/receipts"):
        assert client.get(url).status_code == 404, url
    assert client.get("/api/polls/nope/receipts").get_json()["error"] == "not_found"


def test_the_board_in_spanish(
    app: Flask, client: FlaskClient, make_poll: MakePoll, mint: Mint
) -> None:
    slug = make_poll(allow_revote=True)
    [token] = mint(slug, 1)
    [first] = cast_all(app, slug, [token], [["bias-lens"]])
    cast_all(app, slug, [token], [["flood-watch"]])
    es = {"Accept-Language": "es"}
    before = client.get(f"/p/{slug}/receipts", headers=es).get_data(as_text=True)
    assert "Nada aparece hasta entonces" in before and "Nothing is listed" not in before
    finish(app, slug)
    page = client.get(f"/p/{slug}/receipts", headers=es, query_string={"q": first}).get_data(
        as_text=True
    )
    assert '<html lang="es"' in page
    assert "Tablero de recibos" in page and "Reemplazado" in page and "Contado" in page
    assert "Descargar" in page and "Receipt board" not in page and "Superseded" not in page


# -- pieces ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("7KQ2-M9XD-4TBR", "7KQ2-M9XD-4TBR"),
        ("7kq2m9xd4tbr", "7KQ2-M9XD-4TBR"),
        (" 7kq2 m9xd 4tbr ", "7KQ2-M9XD-4TBR"),
        ("7KQ2\u2014M9XD\u20134TBR", "7KQ2-M9XD-4TBR"),  # em and en dashes
        ("OOOO-IIII-LLLL", "0000-1111-1111"),
        ("7KQ2-M9XD-4TB", None),
        ("7KQ2-M9XD-4TBU", None),
        ("", None),
    ],
)
def test_receipts_are_read_the_way_people_type_them(typed: str, expected: str | None) -> None:
    assert normalise_receipt(typed) == expected


def test_a_searched_receipt_never_reaches_the_logs() -> None:
    line = '1.2.3.4 "GET /p/x/receipts?q=7KQ2-M9XD-4TBR&page=2 HTTP/1.1" 200'
    assert "7KQ2" not in redact(line) and "page=2" in redact(line)


def test_the_page_size_must_be_a_whole_number(make_app: Callable[..., Flask]) -> None:
    with pytest.raises(ConfigError, match="RECEIPTS_PAGE_SIZE"):
        make_app(RECEIPTS_PAGE_SIZE=0)


def test_chromium_without_javascript_finds_a_receipt(
    app: Flask, make_poll: MakePoll, mint: Mint, live_server: str, browser: Any
) -> None:
    slug = make_poll()
    [receipt, _other] = cast_all(app, slug, mint(slug, 2), [["crop-doctor"], ["bias-lens"]])
    finish(app, slug)
    context = browser.new_context(java_script_enabled=False)
    try:
        page = context.new_page()
        page.goto(f"{live_server}/p/{slug}/receipts")
        page.fill("#q", receipt.lower().replace("-", ""))
        with page.expect_navigation():
            page.click("form[role=search] button[type=submit]")
        found = page.locator(".found")
        assert found.get_attribute("data-receipt") == receipt
        assert found.get_attribute("data-status") == "counted"
        assert "Crop Doctor" in found.inner_text()
        assert "q=" in page.url
    finally:
        context.close()


def test_the_board_shows_the_poll_fingerprint(
    app: Flask, client: FlaskClient, make_poll: Callable[..., str]
) -> None:
    slug = make_poll(results_mode="live")
    with app.app_context():
        fingerprint = polls.poll_document(polls.get_poll(slug))["fingerprint"]
    assert fingerprint
    page = client.get(f"/p/{slug}/receipts").get_data(as_text=True)
    assert 'id="board-fingerprint"' in page and fingerprint in page
    draft = make_poll(open_=False)
    assert 'id="board-fingerprint"' not in client.get(f"/p/{draft}/receipts").get_data(as_text=True)
