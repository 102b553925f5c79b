"""The public results come from the live snapshot cache, with an ETag; a repeat gets 304."""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.admin_support import Console
from voting.services import ballots, polls

THREE = ["flood-watch", "crop-doctor", "bias-lens"]


@pytest.fixture(params=["memory", "redis"])
def app(request: pytest.FixtureRequest, make_app: Callable[..., Flask], redis_url: str) -> Flask:
    """The embedded default (in-process hub) and production's Redis-backed cache."""
    extra = {"REDIS_URL": redis_url} if request.param == "redis" else {}
    return make_app(LIVE_MIN_INTERVAL=0.05, LIVE_KEY_PREFIX=f"t-results-{id(request)}", **extra)


@pytest.mark.parametrize("path", ["/api/polls/{slug}/results", "/p/{slug}/results"])
def test_a_repeat_gets_304_until_a_ballot_changes_the_results(
    app: Flask,
    client: FlaskClient,
    make_poll: Callable[..., str],
    mint: Callable[..., list[str]],
    path: str,
) -> None:
    slug = make_poll(results_mode="live", projects=THREE)
    tokens = mint(slug, 2)
    url = path.format(slug=slug)

    first = client.get(url)
    assert first.status_code == 200 and first.headers["ETag"].startswith('W/"')
    assert "no-cache" in first.headers["Cache-Control"]
    etag = first.headers["ETag"]
    again = client.get(url, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.data == b""
    assert again.headers["ETag"] == etag
    # As a cache sends it: among other tags, or without the weak prefix (weak comparison).
    for sent in (f'"older", {etag}', etag.removeprefix("W/"), "*"):
        assert client.get(url, headers={"If-None-Match": sent}).status_code == 304, sent

    with app.app_context():
        ballots.cast_ballot(slug, tokens[0], ["bias-lens"])
    # A change made in this process voids the snapshot the process holds, at once.
    changed = client.get(url, headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["ETag"] != etag
    if path.startswith("/api"):
        assert changed.get_json()["turnout"] == 1
    else:
        assert "1 ballot" in changed.get_data(as_text=True)
    assert client.get(url, headers={"If-None-Match": changed.headers["ETag"]}).status_code == 304


def test_the_page_etag_follows_the_language(
    client: FlaskClient, make_poll: Callable[..., str]
) -> None:
    slug = make_poll(results_mode="live", projects=THREE)
    english = client.get(f"/p/{slug}/results")
    spanish = client.get(
        f"/p/{slug}/results",
        headers={"Accept-Language": "es", "If-None-Match": english.headers["ETag"]},
    )
    assert spanish.status_code == 200 and spanish.headers["ETag"] != english.headers["ETag"]


def test_hidden_counts_stay_out_of_the_cached_document(
    app: Flask, client: FlaskClient, make_poll: Callable[..., str], mint: Callable[..., list[str]]
) -> None:
    slug = make_poll(results_mode="hidden", projects=THREE)
    with app.app_context():
        ballots.cast_ballot(slug, mint(slug, 1)[0], ["crop-doctor"])
    doc = client.get(f"/api/polls/{slug}/results").get_json()
    assert doc["turnout"] == 1 and "results" not in doc
    with app.app_context():
        polls.close_poll(slug, actor="t")
        polls.reveal(slug, actor="t")
    doc = client.get(f"/api/polls/{slug}/results").get_json()
    assert doc["results"][0]["project"] == "crop-doctor"


def test_only_a_signed_in_organizer_gets_the_counts_of_a_hidden_poll(
    app: Flask, make_poll: Callable[..., str], mint: Callable[..., list[str]]
) -> None:
    """The JSON skips loading the session when a request has no session cookie: a voter's
    cookie or a made-up one still gets the public document, the organizer the counts."""
    slug = make_poll(results_mode="hidden", projects=THREE)
    [token] = mint(slug, 1)
    with app.app_context():
        ballots.cast_ballot(slug, token, ["crop-doctor"])
    path = f"/api/polls/{slug}/results"
    organizer = Console.login(app, app.test_client())
    answer = organizer.get(path)
    assert answer.get_json()["results"][0]["votes"] == 1
    assert answer.headers["Cache-Control"] == "private, no-store"
    voter = app.test_client()
    assert voter.get(f"/v/{token}").status_code == 303
    stranger = app.test_client()
    stranger.set_cookie("session", "made-up")
    for client in (voter, stranger, app.test_client()):
        answer = client.get(path)
        assert answer.status_code == 200 and "results" not in answer.get_json()
        assert "private" not in answer.headers["Cache-Control"]
        assert "Cookie" in answer.headers["Vary"]


@pytest.mark.parametrize("path", ["/api/polls/{slug}/results", "/p/{slug}/results"])
def test_a_browser_gets_the_same_answer_gzipped_once_per_version(
    app: Flask,
    client: FlaskClient,
    make_poll: Callable[..., str],
    mint: Callable[..., list[str]],
    path: str,
) -> None:
    slug = make_poll(results_mode="live", projects=THREE)
    [token] = mint(slug, 1)
    url = path.format(slug=slug)
    plain = client.get(url)
    assert "Content-Encoding" not in plain.headers  # a client that did not ask gets it as is
    assert "Accept-Encoding" in plain.headers["Vary"]
    asked = {"Accept-Encoding": "gzip, deflate, br"}
    packed = client.get(url, headers=asked)
    assert packed.status_code == 200 and packed.headers["Content-Encoding"] == "gzip"
    assert "Accept-Encoding" in packed.headers["Vary"] and "Cookie" in packed.headers["Vary"]
    assert gzip.decompress(packed.data) == plain.data
    assert len(packed.data) < len(plain.data)
    assert packed.headers["ETag"] == plain.headers["ETag"]
    repeat = client.get(url, headers={**asked, "If-None-Match": packed.headers["ETag"]})
    assert repeat.status_code == 304 and repeat.data == b""
    # The next version is compressed anew, never the old body under a new ETag.
    with app.app_context():
        ballots.cast_ballot(slug, token, ["bias-lens"])
    newer = client.get(url, headers=asked)
    assert newer.headers["ETag"] != packed.headers["ETag"]
    body = gzip.decompress(newer.data)
    assert gzip.decompress(client.get(url, headers=asked).data) == body
    if path.startswith("/api"):
        assert json.loads(body)["turnout"] == 1
    else:
        assert "1 ballot" in body.decode()
