"""The organizer console in a real Chromium (Debian's, driven by Playwright).

Must show 1: the conference-day run from a browser alone. Must show 4: axe-core finds no
violations on the console's main pages. The run saves its screenshots (admin-*.png) in the
`screenshots` fixture's folder: set VOTING_SCREENSHOTS_DIR=docs/screenshots to refresh the README's.
"""

from __future__ import annotations

import csv
import json
import re
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from tests.admin_support import PASSWORD, audit_actions, make_organizer
from tests.support import SHARED_DATA, import_samples, serving
from voting.services import ballots, issuing, polls, roster

DESKTOP = {"width": 1280, "height": 860}

pytestmark = pytest.mark.slow


def shot(
    page: Any, folder: Path, name: str, *, at: str | None = None, height: int | None = None
) -> None:
    """Save a screenshot as folder/admin-<name>.png (folder: the `screenshots` fixture).

    The page is scrolled to the top, or to the element `at`; `height` makes the window
    taller for this one picture.
    """
    if height:
        page.set_viewport_size({"width": DESKTOP["width"], "height": height})
    if at:
        page.locator(at).evaluate("element => element.scrollIntoView()")
    else:
        page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(folder / f"admin-{name}.png"))
    if height:
        page.set_viewport_size(DESKTOP)


def api(base: str, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        base + path, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, json.loads(exc.read())


def ordinal(n: int) -> str:
    return {1: "1st", 2: "2nd", 3: "3rd"}.get(n, f"{n}th")


@pytest.fixture
def desktop(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport=DESKTOP, accept_downloads=True)
    yield context
    context.close()


def log_in(page: Any, base: str) -> None:
    page.goto(f"{base}/admin/login")
    page.get_by_label("Username").fill("ana")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(r"/admin/$"))


def test_conference_day_from_the_browser_alone(
    make_app: Callable[..., Flask], desktop: Any, screenshots: Path
) -> None:
    from playwright.sync_api import expect

    app = make_app(ADMIN_LIVE_REFRESH_SECONDS=1)
    result = app.test_cli_runner().invoke(
        args=["admin", "create", "ana", "--password-stdin"], input=PASSWORD + "\n"
    )
    assert result.exit_code == 0, result.output
    slug = "community-favorite"

    with serving(app) as base:
        page = desktop.new_page()

        # Log in: a visitor is sent to the login page first.
        page.goto(f"{base}/admin/")
        expect(page).to_have_url(re.compile(r"/admin/login\?next=/admin/"))
        page.get_by_label("Username").fill("ana")
        page.get_by_label("Password").fill(PASSWORD)
        shot(page, screenshots, "login")
        page.get_by_role("button", name="Log in").click()
        expect(page.get_by_role("heading", name="Polls", exact=True)).to_be_visible()

        # Import both sample files through the upload, each with its preview first.
        for name, created in [("projects-sample.csv", 12), ("devpost-export-sample.csv", 3)]:
            page.get_by_role("navigation", name="Console").get_by_role(
                "link", name="Projects"
            ).click()
            page.get_by_label(re.compile("^CSV or JSON file")).set_input_files(
                str(SHARED_DATA / name)
            )
            page.get_by_role("button", name="Preview the import").click()
            expect(page.get_by_role("heading", name=f"Preview of {name}")).to_be_visible()
            expect(page.get_by_text("Nothing has been written yet")).to_be_visible()
            expect(page.locator('[data-count="created"]')).to_have_text(str(created))
            expect(page.locator('[data-count="rejected"]')).to_have_text("0")
            page.get_by_role("button", name=f"Import {created} projects").click()
            expect(page.locator(".flash-ok")).to_contain_text(f"{created} created")
        expect(page.get_by_role("heading", name="15 projects")).to_be_visible()

        # Create the poll: the Build category, counts hidden from the public until the reveal.
        page.get_by_role("navigation", name="Console").get_by_role("link", name="Polls").click()
        page.get_by_role("link", name="New poll").click()
        page.get_by_label(re.compile("^Slug")).fill(slug)
        page.get_by_label("Title", exact=True).fill("NumHack Community Favorite")
        page.get_by_label(re.compile("Hidden: the public")).check()
        page.get_by_label(re.compile("The projects of these categories")).check()
        page.get_by_label("Build", exact=True).check()
        shot(page, screenshots, "new-poll")
        page.get_by_role("button", name="Create the draft poll").click()
        expect(page.locator(".page-head .status")).to_have_text("Draft")
        expect(page.locator("#projects tbody tr")).to_have_count(5)

        # Mint voting links, download their CSV and open their QR sheet.
        page.get_by_label("How many links").fill("6")
        page.get_by_label(re.compile("^Batch label")).fill("hall-a")
        page.get_by_role("button", name="Mint links").click()
        expect(page.get_by_role("heading", name="Batch hall-a")).to_be_visible()
        shot(page, screenshots, "batch")
        with page.expect_download() as download:
            page.get_by_role("button", name=re.compile("^Download the CSV")).click()
        with open(download.value.path(), encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        assert len(rows) == 6 and all(r["url"].endswith(r["token"]) for r in rows)
        with page.expect_popup() as popup:
            page.get_by_role("button", name="Open the printable QR sheet").click()
        sheet = popup.value
        expect(sheet.locator(".card svg")).to_have_count(6)
        sheet.close()
        page.get_by_role("link", name="Back to the poll").click()

        # Open it, through the confirm page.
        page.get_by_role("link", name="Open voting…").click()
        expect(page.get_by_text(re.compile("^Voting starts now"))).to_be_visible()
        page.get_by_role("button", name="Yes, open voting now").click()
        expect(page.locator(".page-head .status")).to_have_text("Open")

        # Watch the turnout rise as voters vote (through the API, with the CSV's links),
        # without reloading the page.
        counter = page.locator("[data-turnout-count]")
        expect(counter).to_have_text("0")
        page.evaluate("window.__sameDocument = true")
        for n, choice in enumerate(["flood-watch", "flood-watch", "lecture-lens"], start=1):
            status, body = api(
                base,
                "POST",
                f"/api/polls/{slug}/ballots",
                {"token": rows[n]["token"], "choices": [choice]},
            )
            assert status == 201, body
            expect(counter).to_have_text(str(n), timeout=15_000)
        assert page.evaluate("window.__sameDocument") is True
        expect(page.locator("#chart-desc")).to_contain_text("3 ballots in the")
        page.get_by_text("Show the tally (the public does not see it)").click()
        expect(page.locator("#tally-details tbody tr").first).to_contain_text("FloodWatch")
        shot(page, screenshots, "live", at="#lifecycle", height=1320)
        public = api(base, "GET", f"/api/polls/{slug}/results")[1]
        assert public["turnout"] == 3 and "results" not in public  # hidden from the public

        # Close it.
        page.get_by_role("link", name="Close voting…").click()
        expect(page.get_by_text(re.compile("the tally of 3 ballots is final"))).to_be_visible()
        shot(page, screenshots, "confirm-close")
        page.get_by_role("button", name="Yes, close voting now").click()
        expect(page.locator(".page-head .status")).to_have_text("Closed")
        late = api(
            base,
            "POST",
            f"/api/polls/{slug}/ballots",
            {"token": rows[5]["token"], "choices": ["air-aware"]},
        )
        assert late[0] == 409 and late[1]["error"] == "poll_not_open"

        # Reveal step by step, last place first, to the winner.
        step_link = re.compile(r"^(Start the reveal|Reveal the next place|Reveal the winner)…$")
        for shown in range(1, 6):
            page.get_by_role("link", name=step_link).click()
            place = 6 - shown
            expect(page.locator(".consequences")).to_contain_text(
                f"The {ordinal(place)} place of 5"
            )
            if place == 1:
                expect(page.locator(".consequences")).to_contain_text("This reveals the winner.")
            page.get_by_role("button", name=re.compile("^Yes, reveal")).click()
            expect(page.locator(".flash-ok")).to_be_visible()
            public = api(base, "GET", f"/api/polls/{slug}/results")[1]
            assert len(public["results"]) == shown
        expect(page.locator(".page-head .status")).to_have_text("Revealed")
        expect(page.locator(".winner")).to_have_text("Winner: FloodWatch")
        shot(page, screenshots, "reveal", at="#lifecycle", height=1320)
        assert public["status"] == "revealed"
        assert (
            public["results"][0]["project"] == "flood-watch" and public["results"][0]["votes"] == 2
        )

        page.get_by_role("navigation", name="Console").get_by_role("link", name="Audit log").click()
        expect(page.get_by_text(re.compile("^The chain holds"))).to_be_visible()
        shot(page, screenshots, "audit")
        page.get_by_role("navigation", name="Console").get_by_role("link", name="Polls").click()
        shot(page, screenshots, "dashboard")

    actions = audit_actions(app)
    assert actions == [
        "organizer.create",
        "login.success",
        "projects.import",
        "projects.import",
        "poll.create",
        "tokens.mint",
        "tokens.export",
        "tokens.export",
        "poll.open",
        "poll.close",
        *["poll.reveal"] * 5,
    ]


def _open_poll_with_votes(app: Flask, slug: str = "cf", votes: int = 0, **spec: Any) -> list[str]:
    with app.app_context():
        import_samples()
        polls.create_poll(polls.PollSpec(slug=slug, title="Community Favorite", **spec), actor="t")
        polls.open_poll(slug, actor="t")
        tokens = issuing.mint_tokens(slug, max(votes, 1) + 1, actor="t", batch="hall-a").tokens
        for token in tokens[:votes]:
            ballots.cast_ballot(slug, token, ["flood-watch"])
    return tokens


def test_live_view_refreshes_on_the_event_streams_tally_events(
    make_app: Callable[..., Flask], desktop: Any
) -> None:
    """With the timer effectively off, only a `tally` event from the stream updates the view."""
    from playwright.sync_api import expect

    app = make_app(ADMIN_LIVE_REFRESH_SECONDS=3600)
    make_organizer(app)
    tokens = _open_poll_with_votes(app)
    stream = {"tally": False, "requests": 0}

    def events(route: Any) -> None:
        stream["requests"] += 1
        body = "retry: 200\n\n"
        if stream["tally"]:
            body += 'event: tally\nid: 2\ndata: {"turnout": 1, "version": 2}\n\n'
        route.fulfill(status=200, headers={"Content-Type": "text/event-stream"}, body=body)

    with serving(app) as base:
        page = desktop.new_page()
        page.route("**/api/polls/cf/events", events)
        log_in(page, base)
        page.goto(f"{base}/admin/polls/cf")
        counter = page.locator("[data-turnout-count]")
        expect(counter).to_have_text("0")
        assert (
            api(
                base,
                "POST",
                "/api/polls/cf/ballots",
                {"token": tokens[0], "choices": ["crop-doctor"]},
            )[0]
            == 201
        )
        # The page reconnects after each stream response; two more connections mean it has
        # read at least one whole response since the ballot, and none carried a tally event.
        for _ in range(2):
            page.wait_for_event("request", lambda r: "/api/polls/cf/events" in r.url)
        expect(counter).to_have_text("0")  # no event yet, and the timer is an hour away
        assert stream["requests"] >= 2  # the page keeps its stream connected
        stream["tally"] = True
        expect(counter).to_have_text("1", timeout=10_000)


def test_the_lifecycle_works_without_javascript(
    make_app: Callable[..., Flask], browser: Any
) -> None:
    from playwright.sync_api import expect

    app = make_app()
    make_organizer(app)
    _open_poll_with_votes(app, votes=2)
    context = browser.new_context(
        viewport=DESKTOP, java_script_enabled=False, accept_downloads=True
    )
    try:
        with serving(app) as base:
            page = context.new_page()
            log_in(page, base)
            page.goto(f"{base}/admin/polls/cf")
            expect(page.locator("[data-turnout-count]")).to_have_text("2")
            page.get_by_role("link", name="Close voting…").click()
            page.get_by_role("button", name="Yes, close voting now").click()
            expect(page.locator(".page-head .status")).to_have_text("Closed")
            page.get_by_role("link", name="Reveal everything…").click()
            page.get_by_role("button", name="Yes, reveal all places and the winner").click()
            expect(page.locator(".winner")).to_have_text("Winner: FloodWatch")
            with page.expect_download() as download:
                page.get_by_role("button", name="Download the results (CSV)").click()
            text = Path(download.value.path()).read_text(encoding="utf-8-sig")
            assert text.splitlines()[1].startswith("1,flood-watch,FloodWatch,River Rats,2")
    finally:
        context.close()


# -- Must show 4: axe-core ----------------------------------------------------------------


# axe-core on every console page in two colour schemes: about a minute under load.
@pytest.mark.timeout(240)
def test_the_console_passes_axe_core_with_no_violations(
    make_app: Callable[..., Flask], browser: Any, screenshots: Path
) -> None:
    from axe_playwright_python.sync_playwright import Axe
    from playwright.sync_api import expect

    app = make_app()
    make_organizer(app)
    tokens = _open_poll_with_votes(app, votes=2, results_mode="hidden")
    with app.app_context():
        polls.create_poll(
            polls.PollSpec(slug="done", title="Last year", results_mode="live"), actor="t"
        )
        polls.open_poll("done", actor="t")
        [token] = issuing.mint_tokens("done", 1, actor="t").tokens
        ballots.cast_ballot("done", token, ["crop-doctor"])
        polls.close_poll("done", actor="t")
        polls.reveal("done", actor="t")
        polls.create_poll(
            polls.PollSpec(slug="att", title="Attendees", eligibility="roster"), actor="t"
        )
        roster.import_roster("att", b"code\nA-1\nB-2\n", actor="t")

    axe = Axe()
    problems: list[str] = []
    checked: list[str] = []

    with serving(app) as base:
        for scheme in ("light", "dark"):
            context = browser.new_context(viewport=DESKTOP, color_scheme=scheme)
            page = context.new_page()

            def check(label: str, page: Any = page, scheme: str = scheme) -> None:
                page.wait_for_load_state("load")
                results = axe.run(page)
                checked.append(f"{label} [{scheme}]")
                if results.violations_count:
                    problems.append(f"{label} [{scheme}]:\n{results.generate_report()}")

            page.goto(f"{base}/admin/login")
            check("login")
            log_in(page, base)
            check("dashboard")
            page.goto(f"{base}/admin/polls/cf")
            page.get_by_text("Show the tally (the public does not see it)").click()
            page.get_by_text("Revoke links, or replace a lost card").click()
            check("poll, open, hidden counts shown")
            page.goto(f"{base}/admin/polls/done")
            check("poll, revealed")
            page.goto(f"{base}/admin/polls/att")
            check("poll, roster")
            page.get_by_label(re.compile("^Roster file")).set_input_files(
                files=[
                    {
                        "name": "roster.csv",
                        "mimeType": "text/csv",
                        "buffer": b"code,project\nC-3,nope\nD-4,\n",
                    }
                ]
            )
            page.get_by_role("button", name="Preview the roster").click()
            expect(page.get_by_text("Nothing has been written yet")).to_be_visible()
            check("roster preview")
            page.goto(f"{base}/admin/polls/cf/close")
            check("confirm close")
            page.goto(f"{base}/admin/polls/cf/batches/hall-a")
            check("batch")
            page.goto(f"{base}/admin/polls/cf")
            page.get_by_text("Revoke links, or replace a lost card").click()
            page.get_by_label("Lost card: its link or token").fill(
                tokens[-1] if scheme == "light" else tokens[-2]
            )
            page.get_by_role("button", name="Revoke it and issue a replacement").click()
            expect(page.get_by_role("heading", name="Replacement card")).to_be_visible()
            check("replacement card")
            page.goto(f"{base}/admin/polls/new")
            check("new poll")
            page.goto(f"{base}/admin/polls/att/edit")
            check("edit poll")
            page.goto(f"{base}/admin/projects")
            check("projects")
            page.get_by_label(re.compile("^CSV or JSON file")).set_input_files(
                files=[
                    {
                        "name": "p.csv",
                        "mimeType": "text/csv",
                        "buffer": b"title,category\nGood,Build\nBad,Cooking\n",
                    }
                ]
            )
            page.get_by_role("button", name="Preview the import").click()
            check("import preview")
            if scheme == "light":
                shot(page, screenshots, "import-preview")
            page.goto(f"{base}/admin/projects/flood-watch/edit")
            check("edit project")
            page.goto(f"{base}/admin/audit")
            check("audit log")
            page.goto(f"{base}/admin/polls/nope")
            check("refusal page")
            # The control: the same harness does report a page that breaks the rules.
            page.set_content("<html><body><img src='x.png'><input></body></html>")
            assert axe.run(page).violations_count >= 2
            context.close()

    assert len(checked) == 2 * 16
    assert not problems, "\n\n".join(problems)
