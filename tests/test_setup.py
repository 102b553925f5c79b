"""From an empty server to printed cards: what a new organizer meets first.

The `db` command without a key, minting on a base URL nobody can reach, the short code a
card carries for when its QR code will not scan, and the production checklist itself.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient

from tests.lengths import outside
from tests.support import SHARED_DATA, csrf_from
from voting.__main__ import cli
from voting.services import issuing
from voting.web.qrsheet import render_sheet

ROOT = Path(__file__).resolve().parent.parent


def test_db_upgrade_without_a_key_says_why_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SECRET_KEY", raising=False)
    result = CliRunner().invoke(cli, ["db", "upgrade"], prog_name="voting")
    assert result.exit_code != 0
    assert "SECRET_KEY is not set" in result.output
    assert "No such command" not in result.output


# -- the base URL printed on cards ----------------------------------------------------------


@pytest.mark.parametrize(
    "base",
    ["http://127.0.0.1:5000", "http://localhost:8000", "http://0.0.0.0:8000", "http://[::1]"],
)
def test_minting_on_a_loopback_base_url_stops_with_a_sentence(
    make_app: Callable[..., Flask], make_poll: Callable[..., str], tmp_path: Path, base: str
) -> None:
    app = make_app(BASE_URL=base)
    slug = make_poll()
    out = tmp_path / "links.csv"
    result = app.test_cli_runner().invoke(
        args=["tokens", "mint", slug, "--count", "3", "--out", str(out)]
    )
    assert result.exit_code == 1
    assert f"Voter links would point at {base}" in result.output
    assert "VOTING_BASE_URL" in result.output and "Traceback" not in result.output
    assert not out.exists()
    with app.app_context():
        assert issuing.issuance_stats(_poll(slug)).issued == 0  # nothing half-written


def _poll(slug: str) -> Any:
    from voting.services import polls

    return polls.get_poll(slug)


def test_base_url_option_or_override_lets_minting_through(
    make_app: Callable[..., Flask], make_poll: Callable[..., str], tmp_path: Path
) -> None:
    app = make_app(BASE_URL="http://127.0.0.1:5000")
    slug = make_poll()
    out = tmp_path / "links.csv"
    runner = app.test_cli_runner()
    result = runner.invoke(
        args=[
            *("tokens", "mint", slug, "--count", "2", "--out", str(out)),
            *("--base-url", "https://vote.example.org/"),
        ]
    )
    assert result.exit_code == 0, result.output
    rows = out.read_text().splitlines()[1:]
    assert len(rows) == 2 and all(",https://vote.example.org/v/" in r for r in rows)
    # A rehearsal on one laptop says so outright.
    local = make_app(BASE_URL="http://127.0.0.1:8000", ALLOW_LOCAL_BASE_URL=True)
    result = local.test_cli_runner().invoke(
        args=["tokens", "mint", slug, "--count", "1", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert ",http://127.0.0.1:8000/v/" in out.read_text()


def test_the_console_refuses_to_print_on_a_loopback_base_url(
    make_app: Callable[..., Flask], make_poll: Callable[..., str]
) -> None:
    from tests.admin_support import Console

    app = make_app(BASE_URL="http://127.0.0.1:5000")
    slug = make_poll()
    console = Console.login(app, app.test_client())
    answer = console.post(f"/admin/polls/{slug}/tokens", {"count": "5", "batch": ""})
    assert answer.status_code == 400
    assert "Voter links would point at http://127.0.0.1:5000" in answer.get_data(as_text=True)


# -- the short code on a QR card ----------------------------------------------------------------


def test_a_card_code_opens_the_same_vote_as_its_qr_code(
    app: Flask, client: FlaskClient, make_poll: Callable[..., str]
) -> None:
    slug = make_poll()
    with app.app_context():
        minted = issuing.mint_tokens(slug, 3, actor="test")
        sheet = render_sheet(minted)
    code = minted.codes[1]
    assert re.fullmatch(r"[0-9A-HJKMNP-TV-Z]{5}-[0-9A-HJKMNP-TV-Z]{5}", code)
    assert code in sheet and f"vote.test/p/{slug}/claim" in sheet
    assert len(set(minted.codes)) == 3

    form = client.get(f"/p/{slug}/claim")
    assert form.status_code == 200
    html = form.get_data(as_text=True)
    assert "code printed under the QR code" in html
    # Typed the way people type: lower case, no dash, O for 0 and I for 1.
    typed = code.replace("-", " ").lower().replace("0", "o").replace("1", "i")
    claimed = client.post(f"/p/{slug}/claim", data={"csrf_token": csrf_from(html), "code": typed})
    assert claimed.status_code == 303 and claimed.headers["Location"] == f"/p/{slug}"
    ballot = client.get(f"/p/{slug}").get_data(as_text=True)
    assert 'id="ballot"' in ballot  # the card's vote, ready to cast

    # The same card's QR link and its code are one vote: the token is the same.
    with app.app_context():
        assert issuing.claim_card(slug, code) == minted.tokens[1]
        issuing.revoke(slug, actor="test", tokens=[minted.tokens[1]])
    other = app.test_client()
    page = other.get(f"/p/{slug}/claim").get_data(as_text=True)
    for wrong in (code, "ZZZZZ-ZZZZZ", "not a code"):
        refused = other.post(
            f"/p/{slug}/claim", data={"csrf_token": csrf_from(page), "code": wrong}
        )
        assert refused.status_code == 403
        assert "No voting card of this poll has that code" in refused.get_data(as_text=True)


def test_a_reprinted_sheet_carries_the_same_codes(
    app: Flask, make_poll: Callable[..., str]
) -> None:
    from voting.services import exports

    slug = make_poll()
    with app.app_context():
        minted = issuing.mint_tokens(slug, 4, actor="test", batch="hall-a")
        again = exports.batch_tokens(slug, "hall-a", actor="test", purpose="qr")
    assert sorted(again.codes) == sorted(minted.codes)


def test_the_card_code_fits_its_printed_card(
    app: Flask, make_poll: Callable[..., str], browser: Any, tmp_path: Path
) -> None:
    from tests.lengths import LONG_TITLE

    slug = make_poll(title=LONG_TITLE)
    with app.app_context(), app.test_request_context():
        sheet = render_sheet(issuing.mint_tokens(slug, 4, actor="test"))
    path = tmp_path / "sheet.html"
    path.write_text(sheet)
    page = browser.new_page()
    try:
        page.goto(path.as_uri())
        assert outside(page, ".card", ".title", ".typed", ".code", ".n", "svg") == []
    finally:
        page.close()


# -- the production checklist -----------------------------------------------------------------


def test_gunicorn_conf_points_at_files_in_the_repository() -> None:
    text = (ROOT / "gunicorn.conf.py").read_text()
    for name in re.findall(r"\b([\w/.-]+\.md)\b", text):
        assert (ROOT / name).exists(), f"gunicorn.conf.py points at {name}, not in the repository"


def test_the_readme_walks_an_empty_server_to_a_rehearsed_poll() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Running in production", 1)[1].split("\n## ", 1)[0]
    steps = re.findall(r"^(\d+)\. ", section, flags=re.M)
    assert steps and [int(s) for s in steps] == list(range(1, len(steps) + 1))
    for needed in (
        "VOTING_BASE_URL",
        "GUNICORN_BIND",
        "secrets.token_hex",
        "VOTING_HASH_KEY",
        "voting admin create",
        "VOTING_PROXY_HOPS",
        "X-Forwarded-For",
        "redis://",
        "deploy/nginx.conf",
        "voting db upgrade",
        "voting tokens mint",
        "rehears",
    ):
        assert needed in section, needed
    assert SHARED_DATA.exists()
