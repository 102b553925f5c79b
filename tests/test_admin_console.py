"""The organizer console through plain forms (no JavaScript): polls, tokens, uploads, exports."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from tests.admin_support import Console, audit_actions, snapshot, visible_text
from tests.support import in_app
from voting.domain.tokens import read_voter_token
from voting.extensions import db
from voting.models import Poll, PollChoice, Project, Token
from voting.services import ballots, exports, issuing, overlay, polls, roster
from voting.web.admin.chart import ballot_chart


def poll_form(**extra: str | list[str]) -> dict[str, str | list[str]]:
    return {
        "title": "Community Favorite",
        "description": "Pick one.",
        "method": "plurality",
        "eligibility": "invite",
        "results_mode": "hidden",
        "tz": "UTC",
        "scope": "all",
        **extra,
    }


def vote(app: Flask, slug: str, token: str, choice: str) -> None:
    with app.app_context():
        ballots.cast_ballot(slug, token, [choice])


@pytest.fixture
def console(app: Flask, client: FlaskClient) -> Console:
    return Console.login(app, client)


# -- polls ---------------------------------------------------------------------------------


def test_create_a_poll_with_a_schedule_in_the_organizers_time_zone(
    app: Flask, console: Console, make_poll: Callable[..., str]
) -> None:
    make_poll("seed", open_=False)  # imports the sample projects
    response = console.post(
        "/admin/polls/new",
        poll_form(
            slug="cf",
            tz="Europe/Berlin",
            opens_at="2099-06-01T19:00",
            closes_at="2099-06-01T20:30",
            scope="categories",
            category=["Build", "Train"],
        ),
    )
    assert response.status_code == 303 and response.headers["Location"] == "/admin/polls/cf"
    with app.app_context():
        poll = polls.get_poll("cf")
        assert poll.opens_at == datetime(2099, 6, 1, 17, 0, tzinfo=UTC)
        assert poll.closes_at == datetime(2099, 6, 1, 18, 30, tzinfo=UTC)
        assert {c.project.category for c in poll.choices} == {"Build", "Train"}
    text = visible_text(console.page("/admin/polls/cf"))
    # The organizer's zone (remembered from the form) and UTC, side by side.
    assert "Mon 01 Jun 2099, 20:30 CEST (2099-06-01 18:30 UTC)" in text
    assert "Mon 01 Jun 2099, 19:00 CEST (2099-06-01 17:00 UTC)" in text


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"slug": "Bad Slug"}, "lowercase letters, digits and single hyphens"),
        ({"slug": "cf", "title": " "}, "needs a title"),
        ({"slug": "cf", "opens_at": "2001-01-01T10:00"}, "opening time has already passed"),
        (
            {"slug": "cf", "opens_at": "2099-01-02T10:00", "closes_at": "2099-01-01T10:00"},
            "must close after it opens",
        ),
        ({"slug": "cf", "scope": "categories"}, "Tick at least one category"),
        ({"slug": "cf", "scope": "projects"}, "Tick at least one project"),
        ({"slug": "cf", "tz": "Mars/Olympus"}, "not a time zone"),
        ({"slug": "cf", "method": "approval", "max_choices": "two"}, "whole number"),
        ({"slug": "cf", "opens_at": "tomorrow"}, "not a date and time"),
        ({"slug": "new"}, "taken by the console"),
    ],
)
def test_a_poll_form_with_a_mistake_says_what_and_creates_nothing(
    app: Flask,
    console: Console,
    make_poll: Callable[..., str],
    fields: dict[str, str],
    message: str,
) -> None:
    make_poll("seed", open_=False)
    before = snapshot(app)
    response = console.post("/admin/polls/new", poll_form(**fields))
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert message in html
    assert 'role="alert"' in html
    assert snapshot(app) == before


def test_edit_a_draft_then_the_poll_is_fixed_once_open(
    app: Flask, console: Console, make_poll: Callable[..., str]
) -> None:
    slug = make_poll("cf", open_=False)
    form = console.page(f"/admin/polls/{slug}/edit")
    assert 'value="Test poll"' in form
    response = console.post(
        f"/admin/polls/{slug}/edit",
        poll_form(
            title="Renamed",
            method="approval",
            max_choices="2",
            results_mode="sealed",
            allow_revote="1",
            scope="projects",
            project=["flood-watch", "crop-doctor", "bias-lens"],
        ),
    )
    assert response.status_code == 303
    with app.app_context():
        poll = polls.get_poll(slug)
        assert (poll.title, poll.method, poll.max_choices, poll.results_mode) == (
            "Renamed",
            "approval",
            2,
            "sealed",
        )
        assert poll.allow_revote
        assert sorted(c.project.slug for c in poll.choices) == [
            "bias-lens",
            "crop-doctor",
            "flood-watch",
        ]
    assert console.post(f"/admin/polls/{slug}/open").status_code == 303
    refused = console.get(f"/admin/polls/{slug}/edit")
    assert refused.status_code == 303
    before = snapshot(app)
    assert console.post(f"/admin/polls/{slug}/edit", poll_form(title="Too late")).status_code == 303
    assert snapshot(app) == before
    assert "only a draft poll can be edited" in console.page(f"/admin/polls/{slug}")


# -- the lifecycle bar ---------------------------------------------------------------------


def test_each_lifecycle_step_is_confirmed_on_a_page_that_names_its_consequence(
    app: Flask, console: Console, make_poll: Callable[..., str], mint: Callable[..., list[str]]
) -> None:
    slug = make_poll("cf", open_=False, projects=["bias-lens", "crop-doctor", "flood-watch"])
    page = console.page(f"/admin/polls/{slug}")
    assert f'href="/admin/polls/{slug}/open">Open voting…</a>' in page

    confirm = visible_text(console.page(f"/admin/polls/{slug}/open"))
    assert "Voting starts now" in confirm and "cannot go back to draft" in confirm
    assert "Yes, open voting now" in confirm
    with app.app_context():
        assert polls.get_poll(slug).status == "draft"  # showing the page did nothing
    assert console.post(f"/admin/polls/{slug}/open").status_code == 303

    tokens = mint(slug, 2)
    vote(app, slug, tokens[0], "bias-lens")
    vote(app, slug, tokens[1], "bias-lens")
    confirm = visible_text(console.page(f"/admin/polls/{slug}/close"))
    assert "no ballot is accepted after this, and the tally of 2 ballots is final" in confirm
    assert "cannot be opened again" in confirm
    assert console.post(f"/admin/polls/{slug}/close").status_code == 303

    expected = [("3rd", False), ("2nd", False), ("1st", True)]
    for n, (ordinal, winner) in enumerate(expected, start=1):
        text = visible_text(console.page(f"/admin/polls/{slug}/reveal/step"))
        assert f"The {ordinal} place of 3 is shown to everyone" in text
        assert ("This reveals the winner." in text) is winner
        assert ("publishes the tie-break seed" in text) is (n == 1)
        assert console.post(f"/admin/polls/{slug}/reveal/step").status_code == 303
        public = app.test_client().get(f"/api/polls/{slug}/results").get_json()
        assert len(public["results"]) == n
    page = visible_text(console.page(f"/admin/polls/{slug}"))
    assert "Winner: Bias Lens" in page
    # Nothing left to confirm: the bar's address says so instead of offering a button.
    assert console.get(f"/admin/polls/{slug}/reveal/step").status_code == 303


def test_auto_play_asks_for_the_interval_and_refuses_nonsense(
    app: Flask, console: Console, make_poll: Callable[..., str]
) -> None:
    slug = make_poll("cf")
    assert console.post(f"/admin/polls/{slug}/close").status_code == 303
    confirm = console.page(f"/admin/polls/{slug}/reveal/auto")
    assert 'name="seconds"' in confirm and "at the interval you choose" in confirm
    before = snapshot(app)
    bad = console.post(f"/admin/polls/{slug}/reveal/auto", {"seconds": "0"})
    assert bad.status_code == 400 and "between 1 and 600 seconds" in bad.get_data(as_text=True)
    assert snapshot(app) == before
    assert console.post(f"/admin/polls/{slug}/reveal/auto", {"seconds": "7"}).status_code == 303
    with app.app_context():
        poll = polls.get_poll(slug)
        assert (poll.status, poll.reveal_auto_seconds, poll.reveal_step) == ("revealing", 7, 1)


def test_a_refused_lifecycle_step_explains_itself(
    app: Flask, console: Console, make_poll: Callable[..., str]
) -> None:
    slug = make_poll("cf", open_=False)
    response = console.post(f"/admin/polls/{slug}/close")
    assert response.status_code == 409
    assert "never opened" in response.get_data(as_text=True)
    assert console.post(f"/admin/polls/{slug}/reveal/step").status_code == 409


# -- the live view -------------------------------------------------------------------------


def test_ballot_chart_fills_empty_minutes_and_keeps_a_readable_width() -> None:
    end = datetime(2026, 12, 1, 18, 30, 20, tzinfo=UTC)
    series = [
        (datetime(2026, 12, 1, 18, 28, tzinfo=UTC), 4),
        (datetime(2026, 12, 1, 18, 30, tzinfo=UTC), 2),
    ]
    chart = ballot_chart(series, start=end - timedelta(minutes=3), end=end, zone=ZoneInfo("UTC"))
    assert chart.minutes == 15  # a poll opened 3 minutes ago still gets a 15-minute axis
    assert [b.votes for b in chart.bars][-3:] == [4, 0, 2]
    assert chart.total == 6 and chart.peak == 4
    tallest = max(chart.bars, key=lambda b: b.height)
    assert tallest.votes == 4 and tallest.y == 12  # the peak reaches the top grid line
    assert "busiest minute was 18:28 with 4" in chart.description
    long_ago = ballot_chart([], start=end - timedelta(hours=5), end=end, zone=ZoneInfo("UTC"))
    assert long_ago.minutes == 60 and all(b.height == 0 for b in long_ago.bars)
    local = ballot_chart(series, start=None, end=end, zone=ZoneInfo("Asia/Tokyo"))
    assert local.last_label == "03:30"


def test_live_fragment_shows_turnout_chart_tally_and_tokens(
    app: Flask, console: Console, make_poll: Callable[..., str], mint: Callable[..., list[str]]
) -> None:
    slug = make_poll("cf", results_mode="hidden")
    tokens = mint(slug, 5)
    for token, choice in zip(
        tokens[:3], ["flood-watch", "flood-watch", "crop-doctor"], strict=True
    ):
        vote(app, slug, token, choice)
    with app.app_context():
        issuing.revoke(slug, actor="test", tokens=[tokens[4]])
    html = console.page(f"/admin/polls/{slug}/live")
    assert "<html" not in html  # a fragment for the page's script to swap in
    assert 'data-turnout="3"' in html
    assert "3 ballots in the 15 minutes" in html  # the chart's description
    assert len(re.findall(r'<rect class="bar"', html)) == 15
    assert re.search(r'<rect class="bar"[^>]*height="(?!0")[\d.]+"><title>[\d:]+: 3</title>', html)
    text = visible_text(html)
    assert "Links issued 5" in text and "Used 3" in text and "Revoked 1" in text
    # Hidden mode: organizers may see the counts, folded away from a screen on stream.
    assert "Show the tally (the public does not see it)" in text
    assert re.search(r"FloodWatch.*River Rats\s+2", text)


def test_sealed_counts_never_reach_the_organizer_page_before_the_close(
    app: Flask, console: Console, make_poll: Callable[..., str], mint: Callable[..., list[str]]
) -> None:
    slug = make_poll("cf", results_mode="sealed")
    [token] = mint(slug, 1)
    vote(app, slug, token, "flood-watch")
    page = console.page(f"/admin/polls/{slug}")
    assert "Sealed: nobody, organizers included" in page
    assert '<th scope="col" class="num">Votes</th>' not in page
    before = audit_actions(app)
    refused = console.post(f"/admin/polls/{slug}/results.csv")
    assert refused.status_code == 409 and "sealed" in refused.get_data(as_text=True)
    assert audit_actions(app) == before
    console.post(f"/admin/polls/{slug}/close")
    assert re.search(
        r"FloodWatch.*River Rats\s+1", visible_text(console.page(f"/admin/polls/{slug}"))
    )


def test_live_results_are_shown_openly(
    app: Flask, console: Console, make_poll: Callable[..., str], mint: Callable[..., list[str]]
) -> None:
    slug = make_poll("cf", results_mode="live")
    [token] = mint(slug, 1)
    vote(app, slug, token, "crop-doctor")
    html = console.page(f"/admin/polls/{slug}/live")
    assert "<details" not in html
    assert re.search(r"Crop Doctor.*Green Thumbs\s+1", visible_text(html))


# -- tokens --------------------------------------------------------------------------------


def test_mint_then_download_the_csv_and_open_the_qr_sheet(
    app: Flask, console: Console, make_poll: Callable[..., str]
) -> None:
    slug = make_poll("cf")
    response = console.post(f"/admin/polls/{slug}/tokens", {"count": "4", "batch": "hall-a"})
    assert response.headers["Location"] == f"/admin/polls/{slug}/batches/hall-a"
    batch_page = visible_text(console.page(response.headers["Location"]))
    assert "4 voting links issued" in batch_page and "Download the CSV" in batch_page

    download = console.post(f"/admin/polls/{slug}/batches/hall-a/csv")
    assert download.headers["Content-Disposition"] == 'attachment; filename="cf-hall-a.csv"'
    assert download.headers["Cache-Control"] == "no-store"
    rows = list(csv.DictReader(io.StringIO(download.get_data(as_text=True))))
    assert len(rows) == 4 and all(r["url"] == f"http://vote.test/v/{r['token']}" for r in rows)
    with app.app_context():
        signer = issuing.voter_signer()
        ids = {read_voter_token(signer, r["token"]).token_id for r in rows}
        stored = set(db.session.execute(select(Token.id).where(Token.batch == "hall-a")).scalars())
    assert ids == stored
    vote(app, slug, rows[0]["token"], "flood-watch")  # the downloaded links vote

    sheet = console.post(f"/admin/polls/{slug}/batches/hall-a/sheet").get_data(as_text=True)
    assert sheet.count('class="card"') == 4 and "<svg" in sheet

    # The same batch downloads the same links again; a revoked one is left out.
    with app.app_context():
        issuing.revoke(slug, actor="test", tokens=[rows[1]["token"]])
    again = console.post(f"/admin/polls/{slug}/batches/hall-a/csv").get_data(as_text=True)
    tokens_again = {r["token"] for r in csv.DictReader(io.StringIO(again))}
    assert tokens_again == {r["token"] for r in rows} - {rows[1]["token"]}


def test_minting_refuses_a_bad_count_or_label_and_writes_nothing(
    app: Flask, console: Console, make_poll: Callable[..., str], mint: Callable[..., list[str]]
) -> None:
    slug = make_poll("cf")
    console.post(f"/admin/polls/{slug}/tokens", {"count": "1", "batch": "taken"})
    before = snapshot(app)
    for form, message in [
        ({"count": "zero"}, "whole number"),
        ({"count": "0"}, "Mint between 1 and"),
        ({"count": "2", "batch": "has space"}, "batch label"),
        ({"count": "2", "batch": "taken"}, "already exists"),
    ]:
        response = console.post(f"/admin/polls/{slug}/tokens", form)
        assert response.status_code == 400, form
        assert message in response.get_data(as_text=True), form
    assert snapshot(app) == before


def test_roster_and_device_tokens_are_never_offered_as_files(
    app: Flask, console: Console, make_poll: Callable[..., str]
) -> None:
    slug = make_poll("cf", eligibility="roster")
    with app.app_context():
        roster.import_roster(slug, b"code\nAAA-111\n", actor="test")
        roster.claim(slug, "AAA-111")
    page = console.page(f"/admin/polls/{slug}")
    assert f"/admin/polls/{slug}/batches/roster" not in page
    response = console.post(f"/admin/polls/{slug}/batches/roster/csv")
    assert response.status_code == 404


def test_revoke_pasted_links_and_reissue_a_lost_card(
    app: Flask, console: Console, make_poll: Callable[..., str], mint: Callable[..., list[str]]
) -> None:
    slug = make_poll("cf")
    tokens = mint(slug, 3)
    pasted = f"http://vote.test/v/{tokens[0]}\n\n{tokens[1]}\n"
    response = console.post(f"/admin/polls/{slug}/tokens/revoke", {"tokens": pasted})
    assert response.status_code == 303
    assert "Revoked 2 link(s)" in console.page(f"/admin/polls/{slug}")
    api = app.test_client()
    refused = api.post(
        f"/api/polls/{slug}/ballots", json={"token": tokens[0], "choices": ["flood-watch"]}
    )
    assert refused.status_code == 403

    reissued = console.post(f"/admin/polls/{slug}/tokens/reissue", {"lost": tokens[2]})
    assert reissued.status_code == 200
    html = reissued.get_data(as_text=True)
    new_url = re.search(r'id="new-link" type="text" readonly value="([^"]+)"', html).group(1)
    assert reissued.headers["Cache-Control"] == "no-store" and "<svg" in html
    new_token = new_url.rsplit("/", 1)[1]
    old = api.post(
        f"/api/polls/{slug}/ballots", json={"token": tokens[2], "choices": ["flood-watch"]}
    )
    assert old.status_code == 403
    new = api.post(
        f"/api/polls/{slug}/ballots", json={"token": new_token, "choices": ["flood-watch"]}
    )
    assert new.status_code == 201


def test_revoking_a_batch_is_confirmed_first(
    app: Flask, console: Console, make_poll: Callable[..., str]
) -> None:
    slug = make_poll("cf")
    console.post(f"/admin/polls/{slug}/tokens", {"count": "3", "batch": "hall-b"})
    text = visible_text(console.page(f"/admin/polls/{slug}/batches/hall-b/revoke"))
    assert "The 3 links and QR cards of this batch that still work stop working" in text
    assert in_app(app, select(func.count()).where(Token.revoked_at.is_not(None))) == 0
    assert console.post(f"/admin/polls/{slug}/batches/hall-b/revoke").status_code == 303
    assert in_app(app, select(func.count()).where(Token.revoked_at.is_not(None))) == 3
    assert "Every link of this batch is revoked" in console.page(
        f"/admin/polls/{slug}/batches/hall-b"
    )


# -- projects ------------------------------------------------------------------------------


def test_project_upload_previews_rejected_rows_before_writing_anything(
    app: Flask, console: Console
) -> None:
    data = (
        b"slug,title,team,category,theme,repo_url\n"
        b"good-one,Good One,Team A,Build,Global Impact,https://github.com/a/b\n"
        b"bad-cat,Bad Category,Team B,Cooking,,\n"
        b",,Team C,Build,,\n"
        b"bad-url,Bad Url,Team D,Train,,ftp://example.org\n"
    )
    preview = console.post(
        "/admin/projects/import",
        {"file": (io.BytesIO(data), "mixed.csv")},
        content_type="multipart/form-data",
    )
    assert preview.status_code == 200
    html = preview.get_data(as_text=True)
    text = visible_text(html)
    assert "Nothing has been written yet" in text
    assert "unknown category 'Cooking'; valid values are: Build, Train, Analyse" in text
    assert "the title is missing" in text and "ftp://example.org" in text
    assert re.search(r'data-count="created">1<', html) and re.search(
        r'data-count="rejected">3<', html
    )
    assert "Import 1 project and skip 3 rejected rows" in text
    assert in_app(app, select(func.count(Project.id))) == 0

    carried = re.search(r'name="data" value="([^"]+)"', html).group(1)
    done = console.post(
        "/admin/projects/import", {"data": carried, "filename": "mixed.csv", "commit": "1"}
    )
    assert done.status_code == 303
    assert "1 created, 0 updated, 0 unchanged, 3 rejected" in console.page("/admin/projects")
    assert in_app(app, select(Project.slug)) == "good-one"


@pytest.mark.parametrize(
    ("data", "filename", "message"),
    [
        (b"{not json", "p.json", "not valid JSON"),
        (b"name,team\nX,Y\n", "p.csv", "no 'title' column"),
        (b"", "p.csv", "holds no projects"),
    ],
)
def test_an_unreadable_project_file_is_refused_with_its_reason(
    app: Flask, console: Console, data: bytes, filename: str, message: str
) -> None:
    response = console.post(
        "/admin/projects/import",
        {"file": (io.BytesIO(data), filename)},
        content_type="multipart/form-data",
    )
    assert response.status_code == 400
    assert message in visible_text(response.get_data(as_text=True))


def test_a_damaged_carried_upload_is_refused(console: Console) -> None:
    response = console.post("/admin/projects/import", {"data": "@@@", "commit": "1"})
    assert response.status_code == 400
    assert "damaged" in response.get_data(as_text=True)


def test_edit_a_project_with_the_import_rules(
    app: Flask, console: Console, make_poll: Callable[..., str]
) -> None:
    make_poll("cf", open_=False)
    form = console.page("/admin/projects/flood-watch/edit")
    assert 'value="FloodWatch"' in form
    base = {
        "title": "FloodWatch",
        "team": "River Rats",
        "category": "Build",
        "theme": "Global Impact",
    }
    bad = console.post(
        "/admin/projects/flood-watch/edit", {**base, "repo_url": "javascript:alert(1)"}
    )
    assert bad.status_code == 400 and "is not a web address" in bad.get_data(as_text=True)
    bad = console.post("/admin/projects/flood-watch/edit", {**base, "category": "Cooking"})
    assert bad.status_code == 400 and "Unknown category" in bad.get_data(as_text=True)
    good = console.post(
        "/admin/projects/flood-watch/edit",
        {**base, "title": "FloodWatch Pro", "summary": "Now with SMS", "repo_url": ""},
    )
    assert good.status_code == 303
    assert "Saved flood-watch: title, summary, repo url." in console.page("/admin/projects")
    with app.app_context():
        project = db.session.execute(
            select(Project).where(Project.slug == "flood-watch")
        ).scalar_one()
        assert (project.title, project.summary, project.repo_url) == (
            "FloodWatch Pro",
            "Now with SMS",
            None,
        )


def test_withdraw_a_project_from_an_open_poll(
    app: Flask, console: Console, make_poll: Callable[..., str], mint: Callable[..., list[str]]
) -> None:
    slug = make_poll("cf", results_mode="live")
    tokens = mint(slug, 2)
    vote(app, slug, tokens[0], "flood-watch")
    text = visible_text(console.page(f"/admin/polls/{slug}/projects/flood-watch/withdraw"))
    assert "FloodWatch disappears from the ballot" in text and "no longer counted" in text
    assert console.post(f"/admin/polls/{slug}/projects/flood-watch/withdraw").status_code == 303
    doc = app.test_client().get(f"/api/polls/{slug}").get_json()
    assert "flood-watch" not in [c["project"] for c in doc["choices"]]
    results = app.test_client().get(f"/api/polls/{slug}/results").get_json()
    assert "flood-watch" not in [r["project"] for r in results["results"]]
    assert in_app(app, select(func.count()).where(PollChoice.withdrawn.is_(True))) == 1
    console.post(f"/admin/polls/{slug}/close")
    late = console.post(f"/admin/polls/{slug}/projects/crop-doctor/withdraw")
    assert late.status_code == 409 and "tally is final" in late.get_data(as_text=True)


# -- rosters (issue 8's organizer view) ------------------------------------------------------


def test_roster_upload_previews_then_imports_and_the_console_counts_claims(
    app: Flask, console: Console, make_poll: Callable[..., str]
) -> None:
    slug = make_poll("cf", eligibility="roster")
    data = b"code,project\nAAA-111,flood-watch\nBBB-222,\n,\nCCC-333,no-such-project\n"
    preview = console.post(
        f"/admin/polls/{slug}/roster",
        {"file": (io.BytesIO(data), "attendees.csv")},
        content_type="multipart/form-data",
    )
    html = preview.get_data(as_text=True)
    text = visible_text(html)
    assert "Nothing has been written yet" in text
    assert "unknown project 'no-such-project'" in text
    assert re.search(r'data-count="added">2<', html) and re.search(
        r'data-count="with_own_project">1<', html
    )
    assert "AAA-111" not in text  # the preview shows counts and reasons, not the codes
    assert "Import 2 attendees and skip 1 rejected row" in text
    assert f'href="/admin/polls/{slug}#tokens">Choose another file' in html
    carried = re.search(r'name="data" value="([^"]+)"', html).group(1)
    done = console.post(
        f"/admin/polls/{slug}/roster", {"data": carried, "filename": "attendees.csv", "commit": "1"}
    )
    assert done.status_code == 303
    with app.app_context():
        roster.claim(slug, "aaa 111")
    page = visible_text(console.page(f"/admin/polls/{slug}"))
    assert "2 attendees on the roster, 1 claimed" in page
    assert "On the roster 2 Claimed 1 Tokens issued 1 Used 0" in page
    assert "http://vote.test/p/cf/claim" in console.page(f"/admin/polls/{slug}")


def test_dashboard_counts_tokens_per_eligibility_mode(
    app: Flask, console: Console, make_poll: Callable[..., str], mint: Callable[..., list[str]]
) -> None:
    invite = make_poll("inv")
    tokens = mint(invite, 4)
    vote(app, invite, tokens[0], "flood-watch")
    rostered = make_poll("ros", eligibility="roster")
    open_poll = make_poll("opn", eligibility="open")
    with app.app_context():
        roster.import_roster(rostered, b"code\nA1\nB2\nC3\n", actor="test")
        token = roster.claim(rostered, "A1")
        roster.claim(rostered, "B2")
        for _ in range(3):
            issuing.issue_device_token(polls.get_poll(open_poll))
    vote(app, rostered, token, "crop-doctor")
    text = visible_text(console.page("/admin/"))
    assert "Invite (minted links and QR cards) 1 4 — 1 0" in text
    assert "Roster (attendees claim) 1 2 2 1 0" in text
    assert "Open (one pass per browser) 1 3 — 0 0" in text


# -- overlay, exports, audit -----------------------------------------------------------------


def test_overlay_url_is_shown_with_a_copy_button_and_rotation_revokes_it(
    app: Flask, console: Console, make_poll: Callable[..., str]
) -> None:
    slug = make_poll("cf")
    with app.app_context():
        old = overlay.overlay_url(polls.get_poll(slug))
    page = console.page(f"/admin/polls/{slug}")
    assert f'id="overlay-url" type="text" readonly value="{old}"' in page
    assert 'data-copy="overlay-url"' in page
    assert "stops working at once" in console.page(f"/admin/polls/{slug}/overlay/rotate")
    console.post(f"/admin/polls/{slug}/overlay/rotate")
    public = app.test_client()
    assert public.get(old.replace("http://vote.test", "")).status_code == 403
    with app.app_context():
        new = overlay.overlay_url(polls.get_poll(slug))
    assert new != old and new in console.page(f"/admin/polls/{slug}")
    assert public.get(new.replace("http://vote.test", "")).status_code == 200


@pytest.mark.parametrize(
    ("cell", "safe"),
    [
        ('=HYPERLINK("http://evil","x")', '\'=HYPERLINK("http://evil","x")'),
        ("+1+1", "'+1+1"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("  =1", "'  =1"),
        ("\uff1d1+1", "'\uff1d1+1"),
        ("|calc", "'|calc"),
        ("Plain Title", "Plain Title"),
        ("a=b", "a=b"),
        (7, 7),
        (None, ""),
    ],
)
def test_spreadsheet_safe_cells(cell: object, safe: object) -> None:
    assert exports.spreadsheet_safe(cell) == safe


def test_results_csv_is_safe_against_formula_injection(
    app: Flask, console: Console, mint: Callable[..., list[str]]
) -> None:
    evil = [
        {"slug": "sum", "title": "=1+2", "team": "@cmd", "category": "Build"},
        {
            "slug": "link",
            "title": '=HYPERLINK("http://evil.example","win")',
            "team": "+team",
            "category": "Build",
        },
        {"slug": "calm", "title": "Calm Project", "team": "-minus", "category": "Train"},
    ]
    console.post(
        "/admin/projects/import",
        {"data": _b64(json.dumps(evil).encode()), "filename": "evil.json", "commit": "1"},
    )
    with app.app_context():
        polls.create_poll(polls.PollSpec(slug="cf", title="CF", results_mode="live"), actor="t")
        polls.open_poll("cf", actor="t")
    tokens = mint("cf", 3)
    for token, choice in zip(tokens, ["sum", "sum", "link"], strict=True):
        vote(app, "cf", token, choice)
    response = console.post("/admin/polls/cf/results.csv")
    assert response.headers["Content-Disposition"] == 'attachment; filename="cf-results.csv"'
    body = response.get_data(as_text=True)
    assert body.startswith("\ufeffrank,project,title,team,votes\r\n")
    rows = list(csv.reader(io.StringIO(body.lstrip("\ufeff"))))
    assert rows[1] == ["1", "sum", "'=1+2", "'@cmd", "2"]
    assert rows[2] == ["2", "link", '\'=HYPERLINK("http://evil.example","win")', "'+team", "1"]
    assert rows[3] == ["3", "calm", "Calm Project", "'-minus", "0"]
    risky = tuple("=+-@\t\r")
    assert not any(cell.startswith(risky) for row in rows for cell in row)


def _b64(data: bytes) -> str:
    import base64

    return base64.urlsafe_b64encode(data).decode()


def test_full_json_export_downloads_and_verifies(
    app: Flask,
    console: Console,
    make_poll: Callable[..., str],
    mint: Callable[..., list[str]],
    tmp_path,
) -> None:  # type: ignore[no-untyped-def]
    slug = make_poll("cf")
    for token in mint(slug, 2):
        vote(app, slug, token, "flood-watch")
    console.post(f"/admin/polls/{slug}/close")
    console.post(f"/admin/polls/{slug}/reveal/all")
    response = console.post(f"/admin/polls/{slug}/export.json")
    assert response.headers["Content-Disposition"] == 'attachment; filename="cf-export.json"'
    doc = response.get_json()
    assert doc["format"] == "voting-export/1" and len(doc["ballots"]) == 2
    assert doc["audit"][-1]["action"] == "poll.export"
    path = tmp_path / "export.json"
    path.write_bytes(response.get_data())
    result = app.test_cli_runner().invoke(args=["verify", str(path)])
    assert result.exit_code == 0, result.output

    # The console runs the same check on an uploaded export, and catches a doctored one.
    before = snapshot(app)
    checked = console.post(
        "/admin/audit/verify-export",
        {"file": (io.BytesIO(response.get_data()), "export.json")},
        content_type="multipart/form-data",
    )
    assert checked.status_code == 200
    assert "OK (cf): 2 ballots recount to the stated tally" in visible_text(
        checked.get_data(as_text=True)
    )
    doc["tally"]["results"][0]["votes"] = 3
    doctored = console.post(
        "/admin/audit/verify-export",
        {"file": (io.BytesIO(json.dumps(doc).encode()), "export.json")},
        content_type="multipart/form-data",
    )
    assert doctored.status_code == 422
    assert "does not match the ballots" in doctored.get_data(as_text=True)
    garbage = console.post(
        "/admin/audit/verify-export",
        {"file": (io.BytesIO(b"not json"), "x.json")},
        content_type="multipart/form-data",
    )
    assert garbage.status_code == 400
    assert snapshot(app) == before


def test_audit_page_lists_entries_and_filters_by_poll(
    app: Flask, console: Console, make_poll: Callable[..., str]
) -> None:
    slug = make_poll("cf")
    make_poll("other", open_=False)
    console.post(f"/admin/polls/{slug}/close")
    text = visible_text(console.page("/admin/audit"))
    assert "The chain holds" in text
    assert "login.success" in text and "poll.close" in text and "poll.create" in text
    filtered = visible_text(console.page(f"/admin/audit?poll={slug}"))
    assert "poll.close" in filtered and "other" not in filtered.split("Show every entry")[1]


def test_unknown_things_are_a_console_page_not_a_crash(
    console: Console, make_poll: Callable[..., str]
) -> None:
    slug = make_poll("cf")
    for path in [
        "/admin/polls/nope",
        f"/admin/polls/{slug}/batches/nope",
        "/admin/projects/nope/edit",
    ]:
        response = console.get(path)
        assert response.status_code == 404
        assert "That was not done" in response.get_data(as_text=True)
    assert (
        console.get("/admin/polls/nope", headers={"Accept": "application/json"}).get_json()["error"]
        == "not_found"
    )


def test_effective_status_is_used_for_a_scheduled_close(
    app: Flask, console: Console, make_poll: Callable[..., str]
) -> None:
    slug = make_poll("cf")
    with app.app_context():
        poll = db.session.execute(select(Poll).where(Poll.slug == slug)).scalar_one()
        poll.closes_at = datetime.now(UTC) - timedelta(seconds=1)
        db.session.commit()
    page = console.page(f"/admin/polls/{slug}")
    assert "Start the reveal…" in page and "Close voting…" not in page


def test_a_large_roster_survives_the_preview_round_trip(
    app: Flask, console: Console, make_poll: Callable[..., str]
) -> None:
    """The preview carries the file back in a form field larger than Werkzeug's 500 kB cap
    on multipart text fields (the commit form is url-encoded, so only the 8 MB body limit
    applies). The upload itself stays below the test client's temp-file threshold."""
    slug = make_poll("cf", eligibility="roster")
    lines = [f"attendee-{i:05d}-{'x' * 12}@conference.example.org" for i in range(9_000)]
    data = ("email\n" + "\n".join(lines) + "\n").encode()
    assert 400_000 < len(data) < 480_000
    preview = console.post(
        f"/admin/polls/{slug}/roster",
        {"file": (io.BytesIO(data), "big.csv")},
        content_type="multipart/form-data",
    )
    html = preview.get_data(as_text=True)
    assert re.search(r'data-count="added">9000<', html)
    carried = re.search(r'name="data" value="([^"]+)"', html).group(1)
    assert len(carried) > 500_000
    done = console.post(
        f"/admin/polls/{slug}/roster", {"data": carried, "filename": "big.csv", "commit": "1"}
    )
    assert done.status_code == 303
    with app.app_context():
        assert issuing.issuance_stats(polls.get_poll(slug)).roster_entries == 9_000
