"""The attendee pages without a browser: states, the voter link, shuffle, filters, detail,
confirm and cast, limits and headers. (test_phone_flow.py drives the same in Chromium.)"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from tests.support import csrf_from, in_app
from voting.domain.tokens import VoterToken, read_voter_token, sign_voter_token
from voting.models import Ballot, Project, utcnow
from voting.services import issuing, polls
from voting.web.public.gallery import fold, short_summary, shuffled, video_embed


def card_slugs(html: str, *, shown_only: bool = False) -> list[str]:
    cards = re.findall(r'<li( hidden)?><h2><a href="/p/[^/]+/project/([^"]+)"', html)
    return [slug for hidden, slug in cards if not (shown_only and hidden)]


def land(client: FlaskClient, token: str) -> None:
    assert client.get(f"/v/{token}").status_code == 303


def vote(client: FlaskClient, slug: str, *choices: str) -> str:
    """Through the forms: ballot, confirm, cast. Returns the receipt page."""
    page = client.get(f"/p/{slug}").get_data(as_text=True)
    confirm = client.post(
        f"/p/{slug}/confirm", data={"csrf_token": csrf_from(page), "choice": list(choices)}
    )
    assert confirm.status_code == 200, confirm.get_data(as_text=True)
    cast = client.post(
        f"/p/{slug}/cast",
        data={"csrf_token": csrf_from(confirm.get_data(as_text=True)), "choice": list(choices)},
    )
    assert cast.status_code == 303, cast.get_data(as_text=True)
    return client.get(cast.headers["Location"]).get_data(as_text=True)


# -- the voter link ---------------------------------------------------------------------------


def test_invalid_revoked_and_unknown_links_each_say_what_to_do(
    app: Flask, client: FlaskClient, make_poll: Callable[..., str], mint: Callable[..., list[str]]
) -> None:
    slug = make_poll()
    [revoked, _kept] = mint(slug, 2)
    with app.app_context():
        issuing.revoke(slug, actor="test", tokens=[revoked])
        poll_id = polls.get_poll(slug).id
        never_issued = sign_voter_token(
            issuing.voter_signer(), VoterToken(poll_id=poll_id, token_id="x" * 22)
        )
    cases = {
        "garbage-that-is-not-a-token": "may be incomplete or mistyped",
        revoked: "The organizers cancelled this link",
        never_issued: "is not one that the organizers handed out",
    }
    for token, reason in cases.items():
        response = client.get(f"/v/{token}")
        page = response.get_data(as_text=True)
        assert response.status_code == 403
        assert "This voting link does not work" in page and reason in page
        assert "What to do" in page and "help desk" in page
        assert response.headers["Cache-Control"] == "no-store"
        assert "Set-Cookie" not in response.headers


def test_a_link_revoked_after_landing_shows_the_invalid_page_and_drops_the_cookie(
    app: Flask, client: FlaskClient, make_poll: Callable[..., str], mint: Callable[..., list[str]]
) -> None:
    slug = make_poll()
    [token] = mint(slug, 1)
    land(client, token)
    with app.app_context():
        issuing.revoke(slug, actor="test", tokens=[token])
    response = client.get(f"/p/{slug}")
    assert "The organizers cancelled this link" in response.get_data(as_text=True)
    assert "vt_" in response.headers["Set-Cookie"] and "Max-Age=0" in response.headers["Set-Cookie"]
    assert 'name="choice"' not in client.get(f"/p/{slug}").get_data(as_text=True)


# -- states -----------------------------------------------------------------------------------


def test_not_yet_open_counts_down_to_opens_at(
    client: FlaskClient, make_poll: Callable[..., str]
) -> None:
    slug = make_poll(open_=False, opens_at=utcnow() + timedelta(hours=2))
    page = client.get(f"/p/{slug}").get_data(as_text=True)
    assert "Voting has not opened yet" in page and "Opens in" in page
    secs = int(re.search(r'data-secs="(\d+)"', page).group(1))  # type: ignore[union-attr]
    assert 7000 < secs <= 7200
    assert "2 hours" in page  # the server's own text, for pages without JavaScript
    assert len(card_slugs(page)) == 12 and 'name="choice"' not in page


def test_not_open_without_a_schedule(client: FlaskClient, make_poll: Callable[..., str]) -> None:
    slug = make_poll(open_=False)
    page = client.get(f"/p/{slug}").get_data(as_text=True)
    assert "Voting has not opened yet" in page and "will open it soon" in page
    assert "data-secs" not in page


def test_closed_poll_page_with_and_without_a_receipt(
    app: Flask, client: FlaskClient, make_poll: Callable[..., str], mint: Callable[..., list[str]]
) -> None:
    slug = make_poll()
    [token] = mint(slug, 1)
    land(client, token)
    receipt_page = vote(client, slug, "flood-watch")
    code = in_app(app, select(Ballot.receipt))
    assert code in receipt_page
    with app.app_context():
        polls.close_poll(slug, actor="test")
    page = client.get(f"/p/{slug}").get_data(as_text=True)
    assert "Voting has closed" in page and code in page
    assert f'href="/p/{slug}/results"' in page
    stranger = app.test_client().get(f"/p/{slug}").get_data(as_text=True)
    assert "Voting has closed" in stranger and "Your receipt" not in stranger


def test_no_token_page_says_how_to_get_one_and_lets_people_browse(
    client: FlaskClient, make_poll: Callable[..., str]
) -> None:
    slug = make_poll()
    page = client.get(f"/p/{slug}").get_data(as_text=True)
    assert "You need your voting link to vote" in page and "scan the QR code" in page
    assert len(card_slugs(page)) == 12
    assert 'name="choice"' not in page
    # Invite polls: the card's printed code is typed at the claim page; no loop via the stream.
    assert f'href="/p/{slug}/claim"' in page and "on the stream" not in page
    roster = make_poll(eligibility="roster")
    assert f'href="/p/{roster}/claim"' in client.get(f"/p/{roster}").get_data(as_text=True)


def test_casting_without_a_token_shows_the_no_token_page(
    client: FlaskClient, make_poll: Callable[..., str]
) -> None:
    slug = make_poll()
    page = client.get("/admin/login").get_data(as_text=True)  # any form, for a CSRF token
    response = client.post(f"/p/{slug}/cast", data={"csrf_token": csrf_from(page), "choice": "x"})
    assert response.status_code == 403
    assert "This browser has no voting link" in response.get_data(as_text=True)


def test_the_receipt_page_needs_a_ballot(
    client: FlaskClient, make_poll: Callable[..., str], mint: Callable[..., list[str]]
) -> None:
    slug = make_poll()
    [token] = mint(slug, 1)
    assert client.get(f"/p/{slug}/receipt").headers["Location"] == f"/p/{slug}"
    land(client, token)
    assert client.get(f"/p/{slug}/receipt").status_code == 303
    page = vote(client, slug, "bias-lens")
    assert "Thank you, your vote is in" in page and "What is it for?" in page
    assert "Copy the code" in page


def test_a_poll_closing_between_confirm_and_cast_says_so(
    app: Flask, client: FlaskClient, make_poll: Callable[..., str], mint: Callable[..., list[str]]
) -> None:
    slug = make_poll()
    [token] = mint(slug, 1)
    land(client, token)
    page = client.get(f"/p/{slug}").get_data(as_text=True)
    confirm = client.post(
        f"/p/{slug}/confirm", data={"csrf_token": csrf_from(page), "choice": "bias-lens"}
    )
    with app.app_context():
        polls.close_poll(slug, actor="test")
    cast = client.post(
        f"/p/{slug}/cast",
        data={"csrf_token": csrf_from(confirm.get_data(as_text=True)), "choice": "bias-lens"},
    )
    assert cast.status_code == 303
    assert "Voting has closed" in client.get(cast.headers["Location"]).get_data(as_text=True)
    assert in_app(app, select(func.count(Ballot.id))) == 0


def test_revote_polls_let_a_voter_change_their_vote(
    app: Flask, client: FlaskClient, make_poll: Callable[..., str], mint: Callable[..., list[str]]
) -> None:
    slug = make_poll(allow_revote=True)
    [token] = mint(slug, 1)
    land(client, token)
    vote(client, slug, "bias-lens")
    first = in_app(app, select(Ballot.receipt))
    page = client.get(f"/p/{slug}").get_data(as_text=True)
    assert "You can change your vote until voting closes" in page and first in page
    vote(client, slug, "flood-watch")
    assert in_app(app, select(func.count(Ballot.id))) == 1
    assert in_app(app, select(Ballot.receipt)) != first


# -- choosing ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("choices", "message"),
    [
        ([], "Pick at least one project first."),
        (["flood-watch", "bias-lens", "crop-doctor"], "You can pick at most 2 projects."),
        (["not-a-project"], "That choice is not on this ballot."),
        (["flood-watch", "flood-watch"], "That choice is not on this ballot."),
    ],
)
def test_confirm_refuses_bad_choices_and_keeps_the_good_ones(
    client: FlaskClient,
    make_poll: Callable[..., str],
    mint: Callable[..., list[str]],
    choices: list[str],
    message: str,
) -> None:
    slug = make_poll(method="approval", max_choices=2)
    [token] = mint(slug, 1)
    land(client, token)
    page = client.get(f"/p/{slug}").get_data(as_text=True)
    assert "Pick up to 2 projects" in page and "You can pick up to 2 projects." in page
    response = client.post(
        f"/p/{slug}/confirm", data={"csrf_token": csrf_from(page), "choice": choices}
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    assert f'<p class="alert" role="alert">{message}' in html
    for choice in set(choices) & {"flood-watch", "bias-lens", "crop-doctor"}:
        assert f'value="{choice}" checked' in html


def test_a_plurality_ballot_asks_for_one_project(
    client: FlaskClient, make_poll: Callable[..., str], mint: Callable[..., list[str]]
) -> None:
    slug = make_poll()
    [token] = mint(slug, 1)
    land(client, token)
    page = client.get(f"/p/{slug}").get_data(as_text=True)
    assert "Pick one project" in page and 'type="radio"' in page and 'type="checkbox"' not in page
    response = client.post(f"/p/{slug}/confirm", data={"csrf_token": csrf_from(page)})
    assert response.status_code == 400 and "Pick a project first." in response.get_data(
        as_text=True
    )


def test_own_team_projects_cannot_be_chosen(
    app: Flask, client: FlaskClient, make_poll: Callable[..., str], mint: Callable[..., list[str]]
) -> None:
    slug = make_poll()
    [plain] = mint(slug, 1)
    with app.app_context():
        own = in_app(app, select(Project.id).where(Project.slug == "flood-watch"))
        decoded = read_voter_token(issuing.voter_signer(), plain)
        token = sign_voter_token(
            issuing.voter_signer(),
            VoterToken(
                poll_id=decoded.poll_id, token_id=decoded.token_id, excluded=frozenset({own})
            ),
        )
    land(client, token)
    page = client.get(f"/p/{slug}").get_data(as_text=True)
    assert "Your team's project" in page
    assert 'value="flood-watch"' not in page and 'value="bias-lens"' in page
    detail = client.get(f"/p/{slug}/project/flood-watch").get_data(as_text=True)
    assert "your own team's project" in detail and "Choose FloodWatch" not in detail
    forced = client.post(
        f"/p/{slug}/confirm", data={"csrf_token": csrf_from(page), "choice": "flood-watch"}
    )
    assert forced.status_code == 400
    assert "it is your own team&#39;s project" in forced.get_data(as_text=True)


# -- the gallery ------------------------------------------------------------------------------


def test_order_is_shuffled_per_voter_and_stable_for_each(
    app: Flask, make_poll: Callable[..., str], mint: Callable[..., list[str]]
) -> None:
    slug = make_poll()
    tokens = mint(slug, 4)
    orders = []
    for token in tokens:
        client = app.test_client()
        land(client, token)
        first = card_slugs(client.get(f"/p/{slug}").get_data(as_text=True))
        assert card_slugs(client.get(f"/p/{slug}").get_data(as_text=True)) == first
        assert card_slugs(client.get(f"/p/{slug}?q=a").get_data(as_text=True)) == first
        orders.append(tuple(first))
    assert len(set(orders)) > 1
    assert all(sorted(o) == sorted(orders[0]) for o in orders)


def test_browsers_without_a_token_get_a_stable_order_of_their_own(
    app: Flask, make_poll: Callable[..., str]
) -> None:
    slug = make_poll()
    orders = []
    for _ in range(4):
        client = app.test_client()
        response = client.get(f"/p/{slug}")
        cookie = response.headers["Set-Cookie"]
        assert cookie.startswith("vo_") and "HttpOnly" in cookie and f"Path=/p/{slug}" in cookie
        first = card_slugs(response.get_data(as_text=True))
        again = client.get(f"/p/{slug}")
        assert "Set-Cookie" not in again.headers
        assert card_slugs(again.get_data(as_text=True)) == first
        orders.append(tuple(first))
    assert len(set(orders)) > 1


def test_shuffle_is_a_pure_function_of_the_seed() -> None:
    items = [Project(slug=f"p{i}", title=str(i), category="Build") for i in range(30)]
    assert [p.slug for p in shuffled(items, "a")] == [p.slug for p in shuffled(items[::-1], "a")]
    assert [p.slug for p in shuffled(items, "a")] != [p.slug for p in shuffled(items, "b")]


def test_filters_and_search_work_as_plain_get_forms(
    client: FlaskClient, make_poll: Callable[..., str]
) -> None:
    slug = make_poll()

    def shown(query: str) -> set[str]:
        return set(
            card_slugs(client.get(f"/p/{slug}?{query}").get_data(as_text=True), shown_only=True)
        )

    assert shown("category=Train") == {"crop-doctor", "tiny-tutor", "coral-count", "sign-bridge"}
    assert shown("theme=Open+Source+%26+AI+Accessibility") == {
        "notebook-narrator",
        "tiny-tutor",
        "sign-bridge",
        "paper-trail",
    }
    assert shown("category=Train&theme=Global+Impact") == {"crop-doctor", "coral-count"}
    assert shown("q=FLOOD") == {"flood-watch"}
    assert shown("q=river+rats") == {"flood-watch"}  # the team
    assert shown("q=satellite+flood") == {"flood-watch"}  # every word, in any field
    assert shown("q=satellite+tutor") == set()
    assert shown("category=Nonsense") == shown("")  # an unknown value is ignored
    assert len(shown("")) == 12
    empty = client.get(f"/p/{slug}?q=zzzz").get_data(as_text=True)
    assert "No project matches" in empty and f'href="/p/{slug}">Clear' in empty
    selected = client.get(f"/p/{slug}?category=Train").get_data(as_text=True)
    assert "<option selected>Train</option>" in selected and "Showing 4 of 12 projects" in selected


def test_search_folds_case_and_accents() -> None:
    assert fold("Tomás ÁLVAREZ") == "tomas alvarez"
    assert fold("Nguyễn Thị Lan") == "nguyen thi lan"


def test_card_summaries_stay_on_one_short_line() -> None:
    assert short_summary("short") == "short"
    long = "word " * 60
    cut = short_summary(long)
    assert len(cut) <= 110 and cut.endswith("…") and not cut.endswith(" …")


# -- the detail view --------------------------------------------------------------------------


def test_project_detail_shows_everything_and_embeds_nothing_yet(
    client: FlaskClient, make_poll: Callable[..., str]
) -> None:
    slug = make_poll()
    page = client.get(f"/p/{slug}/project/notebook-narrator").get_data(as_text=True)
    assert "<h1>Notebook Narrator</h1>" in page
    assert "A JupyterLab extension that writes alt text" in page
    assert "<li>Sam Okafor</li>" in page
    assert 'href="https://github.com/example-jugglers/notebook-narrator"' in page
    assert 'href="https://vimeo.com/123456789"' in page
    assert 'data-embed="https://player.vimeo.com/video/123456789?autoplay=1&amp;dnt=1"' in page
    assert "<iframe" not in page
    assert client.get(f"/p/{slug}/project/no-such-project").status_code == 404
    assert client.get("/p/no-such-poll/project/flood-watch").status_code == 404


def test_detail_of_a_project_outside_the_poll_is_not_found(
    client: FlaskClient, make_poll: Callable[..., str]
) -> None:
    slug = make_poll(categories=["Build"])
    assert client.get(f"/p/{slug}/project/flood-watch").status_code == 200
    assert client.get(f"/p/{slug}/project/crop-doctor").status_code == 404


def test_the_back_link_keeps_the_gallery_filters(
    client: FlaskClient, make_poll: Callable[..., str]
) -> None:
    slug = make_poll()
    page = client.get(
        f"/p/{slug}/project/tiny-tutor",
        headers={"Referer": f"http://localhost/p/{slug}?category=Train&q=tutor&x=1"},
    ).get_data(as_text=True)
    back = re.search(r'href="([^"]+)" data-back', page).group(1)  # type: ignore[union-attr]
    assert back.startswith(f"/p/{slug}?") and "x=1" not in back
    assert set(back.split("?")[1].split("&amp;")) == {"q=tutor", "category=Train"}
    elsewhere = client.get(
        f"/p/{slug}/project/tiny-tutor", headers={"Referer": "https://evil.example/p/x?q=1"}
    ).get_data(as_text=True)
    assert f'href="/p/{slug}" data-back' in elsewhere


@pytest.mark.parametrize(
    ("url", "embed"),
    [
        (
            "https://www.youtube.com/watch?v=aaaaaaaaaaa",
            "https://www.youtube-nocookie.com/embed/aaaaaaaaaaa?autoplay=1",
        ),
        ("https://youtube.com/watch?feature=share&v=A-b_c1234567", None),
        (
            "https://youtube.com/watch?feature=share&v=A-b_c123456",
            "https://www.youtube-nocookie.com/embed/A-b_c123456?autoplay=1",
        ),
        (
            "https://youtu.be/bbbbbbbbbbb?t=10",
            "https://www.youtube-nocookie.com/embed/bbbbbbbbbbb?autoplay=1",
        ),
        (
            "https://www.youtube.com/shorts/ccccccccccc",
            "https://www.youtube-nocookie.com/embed/ccccccccccc?autoplay=1",
        ),
        (
            "https://vimeo.com/123456789",
            "https://player.vimeo.com/video/123456789?autoplay=1&dnt=1",
        ),
        ("http://www.youtube.com/watch?v=aaaaaaaaaaa", None),
        ("https://evil.example/watch?v=aaaaaaaaaaa", None),
        ("https://www.youtube.com.evil.example/watch?v=aaaaaaaaaaa", None),
        ("https://drive.google.com/file/d/xyz/view", None),
        ("", None),
        (None, None),
    ],
)
def test_only_known_video_hosts_become_embeds(url: str | None, embed: str | None) -> None:
    assert video_embed(url) == embed


# -- headers, limits, home ----------------------------------------------------------------------


def test_pages_forbid_third_party_loads(client: FlaskClient, make_poll: Callable[..., str]) -> None:
    slug = make_poll()
    response = client.get(f"/p/{slug}/project/flood-watch")
    csp = response.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "script-src 'self'" in csp
    assert "frame-src https://www.youtube-nocookie.com https://player.vimeo.com" in csp
    html = response.get_data(as_text=True)
    # Whatever the page loads by itself (src=, stylesheets) comes from this site.
    loaded = re.findall(r'(?:src|srcset)="([^"]+)"|<link[^>]+href="([^"]+)"', html)
    assert loaded and all(u.startswith(("/", "data:")) for pair in loaded for u in pair if u)


def test_form_ballots_are_rate_limited_per_token(
    make_app: Callable[..., Flask], make_poll: Callable[..., str]
) -> None:
    limited = make_app(RATELIMIT_ENABLED=True, RATELIMIT_BALLOT_PER_TOKEN="2/minute")
    with limited.app_context():
        from tests.support import import_samples

        import_samples()
        polls.create_poll(polls.PollSpec(slug="rl", title="Limits"), actor="test")
        polls.open_poll("rl", actor="test")
        [token] = issuing.mint_tokens("rl", 1, actor="test").tokens
    client = limited.test_client()
    land(client, token)
    page = client.get("/p/rl").get_data(as_text=True)
    statuses = [
        client.post(
            "/p/rl/cast", data={"csrf_token": csrf_from(page), "choice": "flood-watch"}
        ).status_code
        for _ in range(3)
    ]
    assert statuses == [303, 303, 429]
    response = client.post(
        "/p/rl/cast", data={"csrf_token": csrf_from(page), "choice": "flood-watch"}
    )
    html = response.get_data(as_text=True)
    assert "Please wait a moment" in html and 'href="/p/rl"' in html
    assert int(response.headers["Retry-After"]) >= 1


def test_home_shows_open_upcoming_and_earlier_polls(
    app: Flask, client: FlaskClient, make_poll: Callable[..., str]
) -> None:
    make_poll("now", title="Open Poll Title", closes_at=utcnow() + timedelta(hours=1))
    make_poll("later", title="Later Poll", open_=False, opens_at=utcnow() + timedelta(days=1))
    make_poll("before", title="Earlier Poll")
    with app.app_context():
        polls.close_poll("before", actor="test")
    page = client.get("/").get_data(as_text=True)
    assert 'href="/p/now"' in page and "Closes " in page
    assert 'href="/p/later"' in page and "Opening soon" in page
    assert 'href="/p/before/results"' in page and "Earlier polls" in page
    assert "How to vote" in page
