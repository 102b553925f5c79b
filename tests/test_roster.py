"""Getting tokens to attendees: roster claims, open polls, conflicts of interest, re-issue."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import event, func, select

from tests.support import SHARED_DATA, import_samples, in_app, serving
from voting.extensions import db
from voting.models import Ballot, RosterEntry, Token
from voting.services import polls, projects, roster


def csrf(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match
    return match.group(1)


def claim(client: FlaskClient, slug: str, code: str) -> Any:
    page = client.get(f"/p/{slug}/claim").get_data(as_text=True)
    return client.post(f"/p/{slug}/claim", data={"csrf_token": csrf(page), "code": code})


def vote_api(client: FlaskClient, slug: str, token: str, choice: str) -> tuple[int, dict[str, Any]]:
    response = client.post(f"/api/polls/{slug}/ballots", json={"token": token, "choices": [choice]})
    return response.status_code, response.get_json()


def cookie_token(client: FlaskClient, poll_id: int) -> str:
    cookie = client.get_cookie(f"vt_{poll_id}", path=None) or next(
        c
        for c in client._cookies.values()
        if c.key == f"vt_{poll_id}"  # type: ignore[attr-defined]
    )
    return str(cookie.value)


@pytest.fixture
def roster_poll(app: Flask, make_poll: Callable[..., str]) -> Iterator[tuple[str, int]]:
    with app.app_context():
        import_samples()
        projects.import_projects((SHARED_DATA / "devpost-export-sample.csv").read_bytes(), "d.csv")
    slug = make_poll("attendees", eligibility="roster")
    with app.app_context():
        poll_id = polls.get_poll(slug).id
    yield slug, poll_id


def test_roster_of_5000_codes_imports_in_seconds_and_claims_once(
    app: Flask,
    client: FlaskClient,
    runner: FlaskCliRunner,
    roster_poll: tuple[str, int],
    tmp_path: Path,
) -> None:
    slug, poll_id = roster_poll
    codes = [f"NH-{i:05d}" for i in range(5000)]
    file = tmp_path / "roster.csv"
    file.write_text("code\n" + "\n".join(codes) + "\n", encoding="utf-8")
    started = time.perf_counter()
    result = runner.invoke(args=["roster", "import", slug, str(file)])
    elapsed = time.perf_counter() - started
    assert result.exit_code == 0, result.output
    assert "5000 added" in result.output
    assert elapsed < 30, elapsed  # "seconds"; docs/benchmarks.md has the measured figure
    assert in_app(app, select(func.count(RosterEntry.id))) == 5000
    stored = in_app(app, select(RosterEntry.code_hash).limit(1))
    assert "NH-" not in stored and len(stored) == 64

    # Re-import changes nothing.
    again = runner.invoke(args=["roster", "import", slug, str(file)])
    assert "0 added" in again.output and "5000 unchanged" in again.output

    first = claim(client, slug, "nh-00042")  # case and dashes do not matter
    assert first.status_code == 303 and first.headers["Location"] == f"/p/{slug}"
    token = cookie_token(client, poll_id)
    other_device = app.test_client()
    assert claim(other_device, slug, "NH 00042").status_code == 303
    assert cookie_token(other_device, poll_id) == token  # the same token: still one vote
    assert vote_api(client, slug, token, "flood-watch")[0] == 201
    status, body = vote_api(other_device, slug, cookie_token(other_device, poll_id), "crop-doctor")
    assert (status, body["error"]) == (409, "already_voted")
    assert in_app(app, select(func.count(Ballot.id))) == 1
    assert in_app(app, select(func.count(RosterEntry.id)).where(RosterEntry.claimed.is_(True))) == 1

    unknown = claim(app.test_client(), slug, "NH-99999")
    assert unknown.status_code == 403
    assert "could not find that ticket code" in unknown.get_data(as_text=True)


@contextmanager
def statements(app: Flask) -> Iterator[list[str]]:
    seen: list[str] = []
    with app.app_context():
        engine = db.engine

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def test_known_and_unknown_codes_take_the_same_path(
    app: Flask, roster_poll: tuple[str, int]
) -> None:
    slug, _ = roster_poll
    with app.app_context():
        roster.import_roster(slug, b"code\nKNOWN-1\n", actor="t")
    paths = {}
    for code in ("KNOWN-1", "UNKNOWN-1"):
        with statements(app) as seen, app.app_context(), suppress(roster.InvalidToken):
            roster.claim(slug, code)
        lookups = [s for s in seen if "FROM roster_entries" in s]
        paths[code] = lookups
    assert len(paths["KNOWN-1"]) == len(paths["UNKNOWN-1"]) == 1
    assert paths["KNOWN-1"] == paths["UNKNOWN-1"]


def test_no_table_links_a_roster_entry_to_a_token_or_ballot() -> None:
    from voting.models import BallotChoice

    roster_table = RosterEntry.__table__
    linked = {fk.column.table.name for fk in roster_table.foreign_keys}
    assert linked == {"polls", "projects"}
    for model in (Token, Ballot, BallotChoice):
        assert "roster_entries" not in {fk.column.table.name for fk in model.__table__.foreign_keys}
        assert not any("roster" in c.name for c in model.__table__.columns)
    assert {c.name for c in roster_table.columns} == {
        "id",
        "poll_id",
        "code_hash",
        "project_id",
        "claimed",
    }


def test_conflict_of_interest_via_roster_emails_and_project_column(
    app: Flask, client: FlaskClient, roster_poll: tuple[str, int]
) -> None:
    slug, poll_id = roster_poll
    with app.app_context():
        report = roster.import_roster(
            slug,
            b"email,project\nines@example.org,\nsam@example.org,notebook-narrator\nana@example.org,\n",
            actor="t",
        )
    assert report.added == 3 and report.conflicts == 2
    # Ines is on Rain Ready's Devpost team: matched through the hashed team emails.
    assert claim(client, slug, "Ines@Example.org").status_code == 303
    token = cookie_token(client, poll_id)
    status, body = vote_api(client, slug, token, "rain-ready")
    assert (status, body["error"]) == (400, "invalid_request")
    assert "your own team's project" in body["message"]
    page = client.get(f"/p/{slug}").get_data(as_text=True)
    assert "your team" in page.lower()
    # Through the page's form, too: nothing is written.
    form = client.post(f"/p/{slug}/cast", data={"csrf_token": csrf(page), "choice": "rain-ready"})
    assert form.status_code == 400 and "your own team" in form.get_data(as_text=True)
    assert in_app(app, select(func.count(Ballot.id))) == 0
    assert vote_api(client, slug, token, "lecture-lens")[0] == 201

    sam = app.test_client()
    claim(sam, slug, "sam@example.org")
    assert vote_api(sam, slug, cookie_token(sam, poll_id), "notebook-narrator")[0] == 400
    ana = app.test_client()
    claim(ana, slug, "ana@example.org")
    assert vote_api(ana, slug, cookie_token(ana, poll_id), "notebook-narrator")[0] == 201


def test_roster_import_rejects_unknown_projects_and_non_roster_polls(
    app: Flask, make_poll: Callable[..., str], roster_poll: tuple[str, int]
) -> None:
    slug, _ = roster_poll
    invite = make_poll("invite-only")
    with app.app_context():
        report = roster.import_roster(
            slug, b"code,project\nA1,no-such-project\nA2,\n,\n", actor="t"
        )
        assert report.added == 1 and report.rejected == [(2, "unknown project 'no-such-project'")]
        with pytest.raises(roster.InvalidRequest, match="not a roster poll"):
            roster.import_roster(invite, b"code\nA1\n", actor="t")


def test_reissue_refuses_the_old_card_and_the_new_one_works_once(
    app: Flask,
    client: FlaskClient,
    make_poll: Callable[..., str],
    mint: Callable[..., list[str]],
    runner: FlaskCliRunner,
    tmp_path: Path,
) -> None:
    slug = make_poll()
    [lost] = mint(slug, 1)
    out = tmp_path / "new.csv"
    result = runner.invoke(
        args=["tokens", "reissue", slug, f"http://vote.test/v/{lost}", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    new = out.read_text(encoding="utf-8").splitlines()[1].split(",")[0]
    status, body = vote_api(client, slug, lost, "flood-watch")
    assert (status, body["error"]) == (403, "invalid_token")
    assert vote_api(client, slug, new, "flood-watch")[0] == 201
    assert vote_api(client, slug, new, "flood-watch")[0] == 409
    stats = runner.invoke(args=["tokens", "stats", slug]).output
    assert "issued 2" in stats and "revoked 1" in stats and "used 1" in stats


def test_open_poll_in_a_real_browser(make_app: Callable[..., Flask], browser: Any) -> None:
    from playwright.sync_api import expect

    app = make_app(RATELIMIT_ENABLED=True, RATELIMIT_DEVICE_TOKENS_PER_IP="2/hour")
    with app.app_context():
        import_samples()
        polls.create_poll(
            polls.PollSpec(slug="stream", title="Stream", eligibility="open"), actor="t"
        )
        polls.open_poll("stream", actor="t")
    slug = "stream"
    contexts = [browser.new_context(viewport={"width": 390, "height": 844}) for _ in range(3)]
    with serving(app) as live_server:
        first = contexts[0].new_page()
        first.goto(f"{live_server}/p/{slug}/join")
        first.get_by_role("button", name="Get my voting pass").click()
        first.wait_for_url(f"{live_server}/p/{slug}")
        csrf_value = first.locator('input[name="csrf_token"]').first.get_attribute("value") or ""
        # By its accessible name: the label also holds "Chosen", shown once it is checked.
        first.get_by_role("radio", name="Choose FloodWatch").check()
        first.get_by_role("button", name="Continue").click()
        first.get_by_role("button", name="Cast my vote").click()
        first.wait_for_url(f"{live_server}/p/{slug}/receipt")
        assert "your vote is in" in first.content()
        # The same device cannot vote twice: not by reloading, not by posting again.
        first.reload()
        first.goto(f"{live_server}/p/{slug}")
        assert "You have already voted" in first.content()
        assert first.locator('input[name="choice"]').count() == 0
        again = first.request.post(
            f"{live_server}/p/{slug}/cast",
            form={"choice": "crop-doctor", "csrf_token": csrf_value},
        )
        assert again.url.endswith(f"/p/{slug}")  # sent back to its receipt, nothing cast
        first.goto(f"{live_server}/p/{slug}/join")
        assert first.url == f"{live_server}/p/{slug}"  # it keeps its pass, gets no second one

        second = contexts[1].new_page()
        second.goto(f"{live_server}/p/{slug}/join")
        second.get_by_role("button", name="Get my voting pass").click()
        second.wait_for_url(f"{live_server}/p/{slug}")
        third = contexts[2].new_page()
        third.goto(f"{live_server}/p/{slug}/join")
        third.get_by_role("button", name="Get my voting pass").click()
        expect(third.locator("h1")).to_have_text("Please wait a moment")
    for context in contexts:
        context.close()
    assert in_app(app, select(func.count(Ballot.id))) == 1
    assert in_app(app, select(func.count(Token.id)).where(Token.kind == "device")) == 2


def test_the_overlay_qr_leads_open_polls_to_their_pass(
    app: Flask, make_poll: Callable[..., str]
) -> None:
    from voting.services import overlay
    from voting.web.qrsheet import qr_svg

    slug = make_poll("streamed", eligibility="open")
    with app.app_context():
        url = overlay.overlay_url(polls.get_poll(slug))
    html = app.test_client().get(url.replace("http://vote.test", "")).get_data(as_text=True)
    assert f"vote.test/p/{slug}/join" in html
    # The code drawn is exactly the code of the join link.
    assert qr_svg(f"http://vote.test/p/{slug}/join") in html
