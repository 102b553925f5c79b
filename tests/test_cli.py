"""The command line, end to end: import, create, open, mint, vote, close, reveal, export, verify."""

from __future__ import annotations

import csv
import json
import re
import time
from datetime import UTC, datetime
from pathlib import Path

from flask import Flask
from flask.testing import FlaskCliRunner
from sqlalchemy import func, select, update

from tests.support import SHARED_DATA, in_app
from voting.extensions import db
from voting.models import AuditEvent, Organizer, Poll, Token
from voting.services import polls


def invoke(runner: FlaskCliRunner, *args: str, input: str | None = None, code: int = 0) -> str:
    result = runner.invoke(args=list(args), input=input)
    assert result.exit_code == code, (args, result.output, result.exception)
    return result.output


def test_conference_day_from_the_cli(app: Flask, runner: FlaskCliRunner, tmp_path: Path) -> None:
    invoke(runner, "projects", "import", str(SHARED_DATA / "projects-sample.csv"))
    invoke(runner, "projects", "import", str(SHARED_DATA / "devpost-export-sample.csv"))
    out = invoke(
        runner, "polls", "create", "cf", "--title", "Community Favorite", "--results", "hidden"
    )
    assert "15 projects" in out
    out = invoke(runner, "polls", "create", "builds", "--title", "Builds", "--category", "build")
    assert "5 projects" in out
    invoke(runner, "polls", "open", "cf")
    invoke(runner, "polls", "open", "cf")  # idempotent
    links = tmp_path / "links.csv"
    sheet = tmp_path / "sheet.html"
    invoke(
        runner,
        "tokens",
        "mint",
        "cf",
        "--count",
        "12",
        "--out",
        str(links),
        "--qr-sheet",
        str(sheet),
    )
    rows = list(csv.DictReader(links.read_text(encoding="utf-8").splitlines()))
    assert len(rows) == 12 and set(rows[0]) == {"token", "url"}
    assert rows[0]["url"] == f"http://vote.test/v/{rows[0]['token']}"
    html = sheet.read_text(encoding="utf-8")
    assert html.count("<svg") == 12 and html.count('class="page"') == 2
    assert "Community Favorite" in html and "vote.test/p/cf" in html

    client = app.test_client()
    for i, row in enumerate(rows[:9]):
        choice = ["flood-watch", "rain-ready", "bias-lens"][i % 3 if i < 6 else 0]
        response = client.post(
            "/api/polls/cf/ballots", json={"token": row["token"], "choices": [choice]}
        )
        assert response.status_code == 201
    invoke(runner, "tokens", "revoke", "cf", rows[9]["url"])
    assert (
        client.post(
            "/api/polls/cf/ballots", json={"token": rows[9]["token"], "choices": ["flood-watch"]}
        ).status_code
        == 403
    )

    out = invoke(runner, "results", "cf")
    assert "9 ballots" in out and "1. FloodWatch (River Rats): 5" in out
    invoke(runner, "polls", "close", "cf")
    invoke(runner, "polls", "close", "cf")
    invoke(runner, "polls", "reveal", "cf", "--step")
    assert len(client.get("/api/polls/cf/results").get_json()["results"]) == 1
    invoke(runner, "polls", "reveal", "cf")
    data = json.loads(invoke(runner, "results", "cf", "--json"))
    assert data["status"] == "revealed" and data["results"][0]["project"] == "flood-watch"

    export = tmp_path / "export.json"
    invoke(runner, "export", "cf", "--out", str(export))
    doc = json.loads(export.read_text(encoding="utf-8"))
    assert len(doc["ballots"]) == 9 and doc["poll"]["tie_seed"]
    assert {b["receipt"] for b in doc["ballots"]} and all("token" not in b for b in doc["ballots"])
    assert "OK" in invoke(runner, "verify", str(export))

    forged = dict(
        doc, ballots=[*doc["ballots"], {"receipt": "XXXX-XXXX-XXXX", "choices": ["bias-lens"]}]
    )
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(forged), encoding="utf-8")
    assert "FAIL" in invoke(runner, "verify", str(bad), code=1)

    tampered = json.loads(export.read_text(encoding="utf-8"))
    tampered["audit"][2]["actor"] = "mallory"
    bad.write_text(json.dumps(tampered), encoding="utf-8")
    assert "does not match its hash" in invoke(runner, "verify", str(bad), code=1)


def test_every_cli_action_is_audited_once(
    app: Flask, runner: FlaskCliRunner, tmp_path: Path
) -> None:
    def audit_count() -> int:
        return int(in_app(app, select(func.count(AuditEvent.id))))

    steps: list[tuple[str, ...]] = [
        ("projects", "import", str(SHARED_DATA / "projects-sample.csv")),
        ("polls", "create", "a", "--title", "A"),
        ("polls", "open", "a"),
        ("tokens", "mint", "a", "--count", "3", "--out", str(tmp_path / "t.csv"), "--batch", "b1"),
        ("tokens", "revoke", "a", "--batch", "b1"),
        ("polls", "close", "a"),
        ("polls", "reveal", "a", "--step"),
        ("export", "a", "--out", str(tmp_path / "e.json")),
    ]
    for step in steps:
        before = audit_count()
        invoke(runner, *step)
        assert audit_count() == before + 1, step
    assert "OK: 8 audit entries chain" in invoke(runner, "audit", "verify")


def test_audit_verify_detects_an_edited_entry(app: Flask, runner: FlaskCliRunner) -> None:
    invoke(runner, "projects", "import", str(SHARED_DATA / "projects-sample.csv"))
    invoke(runner, "polls", "create", "a", "--title", "A")
    invoke(runner, "polls", "open", "a")
    with app.app_context():
        first = db.session.execute(select(AuditEvent).order_by(AuditEvent.id)).scalars().first()
        assert first is not None
        db.session.execute(
            update(AuditEvent).where(AuditEvent.id == first.id).values(detail='{"created":99}')
        )
        db.session.commit()
    out = invoke(runner, "audit", "verify", code=1)
    assert "does not match its hash" in out


def test_minting_10000_tokens_takes_seconds(
    app: Flask, runner: FlaskCliRunner, tmp_path: Path
) -> None:
    invoke(runner, "projects", "import", str(SHARED_DATA / "projects-sample.csv"))
    invoke(runner, "polls", "create", "big", "--title", "Big")
    started = time.perf_counter()
    invoke(runner, "tokens", "mint", "big", "--count", "10000", "--out", str(tmp_path / "t.csv"))
    elapsed = time.perf_counter() - started
    assert in_app(app, select(func.count(Token.id))) == 10000
    # A generous ceiling: the point is "seconds", not a benchmark (see docs/benchmarks.md).
    assert elapsed < 30, elapsed
    lines = (tmp_path / "t.csv").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 10001 and len(set(lines)) == 10001


def test_admin_create(app: Flask, runner: FlaskCliRunner) -> None:
    invoke(runner, "admin", "create", "ana", "--password-stdin", input="correct horse battery\n")
    organizer = in_app(app, select(Organizer).where(Organizer.username == "ana"))
    assert organizer.password_hash.startswith("scrypt:")
    assert "correct horse" not in organizer.password_hash
    assert "already exists" in invoke(
        runner, "admin", "create", "ana", "--password-stdin", input="another long one\n", code=1
    )
    assert "at least 12" in invoke(
        runner, "admin", "create", "bo", "--password-stdin", input="short\n", code=1
    )
    out = invoke(runner, "admin", "create", "cy", input="prompted password\nprompted password\n")
    assert "created" in out


def test_cli_errors_are_sentences_not_tracebacks(runner: FlaskCliRunner) -> None:
    out = invoke(runner, "polls", "open", "nope", code=1)
    assert "There is no poll called 'nope'" in out
    out = invoke(runner, "polls", "create", "x", "--title", "X", code=1)
    assert "no projects" in out
    out = invoke(runner, "polls", "create", "x", "--title", "X", "--opens-at", "tomorrow", code=2)
    assert "not a date" in out


def test_cli_refuses_a_schedule_in_the_past_like_the_console(
    runner: FlaskCliRunner, app: Flask
) -> None:
    invoke(runner, "projects", "import", str(SHARED_DATA / "projects-sample.csv"))
    past, future = "2001-01-01T10:00Z", "2099-01-01T10:00Z"
    out = invoke(runner, "polls", "create", "x", "--title", "X", "--opens-at", past, code=1)
    assert "opening time has already passed" in out
    out = invoke(runner, "polls", "create", "x", "--title", "X", "--closes-at", past, code=1)
    assert "closing time has already passed" in out
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Poll)) == 0
    invoke(runner, "polls", "create", "x", "--title", "X", "--opens-at", future)
    with app.app_context():
        assert polls.get_poll("x").opens_at == datetime(2099, 1, 1, 10, 0, tzinfo=UTC)


def test_qr_sheet_opens_and_prints_ten_cards_a_page(
    runner: FlaskCliRunner, browser, tmp_path: Path, screenshots: Path
) -> None:  # type: ignore[no-untyped-def]
    invoke(runner, "projects", "import", str(SHARED_DATA / "projects-sample.csv"))
    invoke(runner, "polls", "create", "cf", "--title", "Community Favorite")
    sheet = tmp_path / "sheet.html"
    invoke(
        runner,
        "tokens",
        "mint",
        "cf",
        "--count",
        "25",
        "--out",
        str(tmp_path / "t.csv"),
        "--qr-sheet",
        str(sheet),
    )
    page = browser.new_page()
    page.goto(sheet.as_uri())
    assert page.locator(".card svg").count() == 25
    box = page.locator(".card svg").first.bounding_box()
    assert box is not None and box["width"] > 100  # 40 mm at 96 dpi is about 151 px
    pdf = page.pdf(format="A4")
    pages = len(re.findall(rb"/Type\s*/Page[^s]", pdf))
    assert pages == 3, pages  # 25 cards, ten to a page
    page.set_viewport_size({"width": 900, "height": 1200})
    page.screenshot(path=screenshots / "qr-sheet.png")
    page.close()
    # The printed codes scan: decode the screenshot and match the minted links.
    import zxingcpp
    from PIL import Image

    decoded = {r.text for r in zxingcpp.read_barcodes(Image.open(screenshots / "qr-sheet.png"))}
    minted = set(
        re.findall(r"http://vote\.test/v/\S+", (tmp_path / "t.csv").read_text(encoding="utf-8"))
    )
    assert len(decoded) >= 8 and decoded <= minted
