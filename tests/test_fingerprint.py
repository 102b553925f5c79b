"""The poll fingerprint: canonical, published at open, shown everywhere, changed only on record."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from tests.live_support import post_ballot
from tests.support import wait_for_js
from voting.domain import fingerprint as fp
from voting.extensions import db
from voting.models import AuditEvent, utcnow
from voting.services import ballots, exports, issuing, overlay, polls, roster
from voting.services.polls.fingerprint import definition_of

Change = Callable[[str], str]  # an action on a poll; returns the audit action it records


def current(app: Flask, slug: str) -> str | None:
    with app.app_context():
        value: str | None = polls.poll_document(polls.get_poll(slug))["fingerprint"]
        return value


def entries(app: Flask, slug: str, action: str) -> list[dict[str, Any]]:
    with app.app_context():
        rows = db.session.execute(
            select(AuditEvent.detail)
            .where(AuditEvent.poll_slug == slug, AuditEvent.action == action)
            .order_by(AuditEvent.id)
        ).scalars()
        return [json.loads(r) for r in rows]


def overlay_path(app: Flask, slug: str) -> str:
    with app.app_context():
        url = overlay.overlay_url(polls.get_poll(slug))
    return url.removeprefix(app.config["BASE_URL"])


# -- the pure definition -----------------------------------------------------------------------


def test_the_definition_is_canonical_and_hashed_with_sha256() -> None:
    definition = fp.definition(
        poll="cf",
        choices=["tiny-tutor", "bias-lens", "año-nuevo"],
        method="approval",
        max_choices=2,
        eligibility="invite",
        revote=False,
        tie_seed_hash="ab" * 32,
        tokens_issued=40,
    )
    assert definition["choices"] == ["año-nuevo", "bias-lens", "tiny-tutor"]
    text = fp.canonical(definition)
    # Sorted keys, no whitespace, UTF-8 (not \\u escapes): anyone can rebuild these bytes.
    assert text.startswith(b'{"choices":["a\xc3\xb1o-nuevo","bias-lens","tiny-tutor"],')
    assert b" " not in text and list(json.loads(text)) == sorted(definition)
    assert fp.fingerprint(definition) == hashlib.sha256(text).hexdigest()
    # The order choices come in does not matter (they are sorted); any field's value does.
    args = {k: v for k, v in definition.items() if k != "choices"}
    reordered = fp.definition(choices=["bias-lens", "año-nuevo", "tiny-tutor"], **args)
    assert fp.fingerprint(reordered) == fp.fingerprint(definition)
    assert fp.fingerprint({**definition, "tokens_issued": 41}) != fp.fingerprint(definition)
    assert fp.short("0123456789abcdef" * 4) == "0123-4567-89ab"
    assert fp.short(None) == "" and fp.short("") == ""


# -- published at open, shown everywhere once open -----------------------------------------------


def test_the_fingerprint_is_absent_in_draft_and_everywhere_once_open(
    app: Flask, client: FlaskClient, make_poll: Callable[..., str]
) -> None:
    slug = make_poll("cf", open_=False, results_mode="live")
    path = overlay_path(app, slug)
    assert client.get(f"/api/polls/{slug}").get_json()["fingerprint"] is None
    assert client.get(f"/api/polls/{slug}/results").get_json()["fingerprint"] is None
    assert "Poll fingerprint" not in client.get(f"/p/{slug}").get_data(as_text=True)
    assert 'id="live-fingerprint" hidden' in client.get(f"/p/{slug}/results").get_data(as_text=True)
    assert 'id="fingerprint" hidden' in client.get(path).get_data(as_text=True)
    with app.app_context():
        assert exports.export_poll(slug, actor="ana")["poll"]["fingerprint"] is None

    with app.app_context():
        polls.open_poll(slug, actor="ana")
        definition = definition_of(polls.get_poll(slug))
    full = hashlib.sha256(fp.canonical(definition)).hexdigest()
    short = f"{full[:4]}-{full[4:8]}-{full[8:12]}"
    assert definition["tokens_issued"] == 0 and definition["eligibility"] == "invite"

    assert client.get(f"/api/polls/{slug}").get_json()["fingerprint"] == full
    assert client.get(f"/api/polls/{slug}/results").get_json()["fingerprint"] == full
    assert [e["fingerprint"] for e in entries(app, slug, "poll.open")] == [full]
    ballot = client.get(f"/p/{slug}").get_data(as_text=True)
    assert f"Poll fingerprint <code>{short}</code>" in ballot
    results = client.get(f"/p/{slug}/results").get_data(as_text=True)
    assert 'id="live-fingerprint" hidden' not in results
    assert f'<code id="fingerprint-short">{short}</code>' in results and full in results
    page = client.get(path).get_data(as_text=True)
    assert (
        f'<p class="fingerprint" id="fingerprint">Poll fingerprint <code id="fingerprint-code">{short}</code>'
        in page
    )
    with app.app_context():
        doc = exports.export_poll(slug, actor="ana")
    assert doc["poll"]["fingerprint"] == full and doc["poll"]["definition"] == definition


def test_the_ballot_page_speaks_spanish_about_it(
    client: FlaskClient, make_poll: Callable[..., str]
) -> None:
    slug = make_poll()
    headers = {"Accept-Language": "es"}
    assert "Huella de la votación" in client.get(f"/p/{slug}", headers=headers).get_data(
        as_text=True
    )
    results = client.get(f"/p/{slug}/results", headers=headers).get_data(as_text=True)
    assert "Huella de la votación" in results and "SHA-256 de la definición" in results


def test_a_scheduled_open_records_the_fingerprint(
    app: Flask, make_poll: Callable[..., str]
) -> None:
    slug = make_poll(open_=False, opens_at=utcnow() + timedelta(hours=1))
    with app.app_context():
        poll = polls.get_poll(slug)
        poll.opens_at = utcnow() - timedelta(minutes=1)  # the hour has passed
        db.session.commit()
        polls.open_poll(slug, actor="ana")  # takes the lock, so writes the schedule's open down
    [opened] = entries(app, slug, "poll.open")
    assert opened["fingerprint"] == current(app, slug) and opened["at"]


# -- a changed definition changes it, on record ---------------------------------------------------


def _withdraw(slug: str) -> str:
    polls.withdraw_project(slug, "tiny-tutor", actor="ana")
    return "poll.withdraw"


def _mint(slug: str) -> str:
    issuing.mint_tokens(slug, 3, actor="ana")
    return "tokens.mint"


def _reissue(slug: str) -> str:
    lost = issuing.mint_tokens(slug, 1, actor="ana").tokens[0]
    issuing.reissue(slug, lost, actor="ana")
    return "tokens.reissue"


def _more_roster(slug: str) -> str:
    roster.import_roster(slug, b"code\nNH-1\nNH-2\nNH-3\n", actor="ana")
    return "roster.import"


@pytest.mark.parametrize(
    ("eligibility", "change"),
    [("invite", _withdraw), ("invite", _mint), ("invite", _reissue), ("roster", _more_roster)],
    ids=lambda v: v.__name__.strip("_") if callable(v) else v,
)
def test_a_changed_definition_changes_the_fingerprint_and_the_audit_carries_it(
    app: Flask, make_poll: Callable[..., str], eligibility: str, change: Change
) -> None:
    slug = make_poll(eligibility=eligibility)
    before = current(app, slug)
    with app.app_context():
        action = change(slug)
    after = current(app, slug)
    assert before and after and after != before
    assert entries(app, slug, action)[-1]["fingerprint"] == after


def test_what_is_not_a_change_leaves_it_alone(
    app: Flask, client: FlaskClient, make_poll: Callable[..., str]
) -> None:
    # A roster claim turns a counted entry into its token; a revoked token was still issued.
    slug = make_poll(eligibility="roster", open_=False)
    with app.app_context():
        roster.import_roster(slug, b"code\nNH-1\nNH-2\n", actor="ana")
        minted = issuing.mint_tokens(slug, 2, actor="ana").tokens
        polls.open_poll(slug, actor="ana")
        definition = definition_of(polls.get_poll(slug))
    assert definition["tokens_issued"] == 4  # two entries, two tokens by hand
    opened = current(app, slug)
    with app.app_context():
        token = roster.claim(slug, "nh-1")
        ballots.cast_ballot(slug, token, ["flood-watch"])
        issuing.revoke(slug, actor="ana", tokens=[minted[0]])
    assert current(app, slug) == opened


def test_an_open_polls_device_passes_do_not_change_it(
    app: Flask, live_server: str, make_poll: Callable[..., str]
) -> None:
    slug = make_poll(eligibility="open")
    opened = current(app, slug)
    with app.app_context():
        poll = polls.get_poll(slug)
        assert definition_of(poll)["tokens_issued"] == fp.PER_DEVICE == "per-device"
        passes = [issuing.issue_device_token(poll) for _ in range(3)]
    assert post_ballot(live_server, slug, passes[0], ["flood-watch"]) == 201
    assert current(app, slug) == opened


# -- the overlay's corner in Chromium -------------------------------------------------------------


@pytest.fixture
def stage(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1920, "height": 1080}, device_scale_factor=1)
    yield context
    context.close()


def _overlaps(a: dict[str, float], b: dict[str, float]) -> bool:
    return not (
        a["x"] + a["width"] <= b["x"]
        or b["x"] + b["width"] <= a["x"]
        or a["y"] + a["height"] <= b["y"]
        or b["y"] + b["height"] <= a["y"]
    )


def test_the_overlay_corner_stays_inside_and_clear_of_every_box(
    app: Flask,
    live_server: str,
    stage: Any,
    make_poll: Callable[..., str],
    mint: Callable[..., list[str]],
) -> None:
    slug = make_poll(
        results_mode="live",
        title="NumHack Community Favorite " * 3,
        closes_at=utcnow() + timedelta(minutes=25),
    )
    for n, token in enumerate(mint(slug, 12)):
        assert post_ballot(live_server, slug, token, [project_of(app, slug, n)]) == 201
    page = stage.new_page()
    base = live_server + overlay_path(app, slug)
    boxes = (".brand", ".board", ".vote", ".stats", ".winner", ".seed")
    try:
        for query, status in (
            ("", "open"),
            ("&top=20", "open"),
            ("&layout=podium", "open"),
            ("", "revealed"),
            ("&layout=podium", "revealed"),
        ):
            if status == "revealed" and current_status(app, slug) != "revealed":
                with app.app_context():
                    polls.close_poll(slug, actor="ana")
                    polls.reveal(slug, actor="ana")
            page.goto(base + query)
            page.wait_for_selector("body[data-connection='live']")
            wait_for_js(page, f"document.querySelector('.stage').dataset.status === '{status}'")
            corner = page.locator("#fingerprint")
            assert corner.is_visible(), query
            code = corner.locator("code").text_content()
            assert code == fp.short(current(app, slug))
            box = corner.bounding_box()
            assert box["x"] >= 0 and box["y"] >= 0
            assert box["x"] + box["width"] <= 1920 and box["y"] + box["height"] <= 1080
            assert box["height"] <= 40, box  # tiny
            size = page.evaluate(
                "parseFloat(getComputedStyle(document.querySelector('#fingerprint code')).fontSize)"
            )
            assert size >= 16  # still legible on a 1080p stream
            for selector in boxes:
                other = page.locator(selector)
                if other.count() and other.first.is_visible():
                    other_box = other.first.bounding_box()
                    assert not _overlaps(box, other_box), (query, status, selector, box, other_box)
    finally:
        page.close()


def project_of(app: Flask, slug: str, n: int) -> str:
    with app.app_context():
        choices = polls.poll_document(polls.get_poll(slug))["choices"]
        return str(choices[n % len(choices)]["project"])


def current_status(app: Flask, slug: str) -> str:
    with app.app_context():
        return str(polls.effective_status(polls.get_poll(slug)))
