"""voting.services.exports on its own: the full export and its verification, results CSV, batches."""

from __future__ import annotations

import copy
import csv
import io
import json
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from voting.domain import fingerprint
from voting.domain.errors import NotFound, PollStateError
from voting.domain.tokens import read_voter_token
from voting.extensions import db
from voting.models import AuditEvent, Project
from voting.services import audit, ballots, exports, issuing, polls

Mutation = Callable[[dict[str, Any]], None]


def audit_of(action: str) -> list[dict[str, Any]]:
    rows = db.session.execute(
        select(AuditEvent.detail).where(AuditEvent.action == action).order_by(AuditEvent.id)
    ).scalars()
    return [json.loads(r) for r in rows]


def voted_poll(
    make_poll: Callable[..., str],
    mint: Callable[..., list[str]],
    choices: tuple[str, ...] = ("flood-watch", "flood-watch", "crop-doctor"),
    **spec: Any,
) -> tuple[str, list[str]]:
    """An open poll with one ballot per entry of `choices`; returns its slug and receipts."""
    slug = make_poll(**spec)
    receipts = [
        ballots.cast_ballot(slug, token, [choice]).receipt
        for token, choice in zip(mint(slug, len(choices)), choices, strict=True)
    ]
    return slug, receipts


# -- export_poll and verify_export ---------------------------------------------------------


def test_export_poll_holds_poll_projects_tally_ballots_and_audit(
    ctx: Flask, make_poll: Callable[..., str], mint: Callable[..., list[str]]
) -> None:
    slug, receipts = voted_poll(make_poll, mint, results_mode="live")
    polls.close_poll(slug, actor="test")
    poll = polls.get_poll(slug)
    seed = poll.tie_seed
    db.session.rollback()

    doc = exports.export_poll(slug, actor="ana")

    assert doc["format"] == exports.EXPORT_FORMAT == "voting-export/1"
    assert doc["poll"]["slug"] == slug and doc["poll"]["status"] == "closed"
    assert doc["poll"]["tie_seed"] == seed and doc["poll"]["closed_at"]
    assert len(doc["projects"]) == 12
    flood = next(p for p in doc["projects"] if p["slug"] == "flood-watch")
    assert flood["title"] == "FloodWatch" and flood["withdrawn"] is False
    assert set(flood) == {
        *("slug", "title", "team", "category", "theme", "repo_url", "demo_url", "withdrawn")
    }
    assert doc["tally"]["turnout"] == 3
    votes = {r["project"]: r["votes"] for r in doc["tally"]["results"]}
    assert votes["flood-watch"] == 2 and votes["crop-doctor"] == 1 and sum(votes.values()) == 3
    chosen = dict(zip(receipts, (["flood-watch"], ["flood-watch"], ["crop-doctor"]), strict=True))
    assert doc["ballots"] == [{"receipt": r, "choices": chosen[r]} for r in sorted(receipts)]
    # The export is itself audited, and the entry is in the chain it carries.
    assert doc["audit"][-1]["action"] == "poll.export" and doc["audit"][-1]["actor"] == "ana"
    assert doc["audit"] == audit.all_entries()
    assert exports.verify_export(doc) == []
    assert json.loads(json.dumps(doc)) == doc  # plain JSON all the way down


def test_export_of_an_open_poll_keeps_the_seed_secret(
    ctx: Flask, make_poll: Callable[..., str], mint: Callable[..., list[str]]
) -> None:
    slug, _ = voted_poll(make_poll, mint)
    doc = exports.export_poll(slug, actor="ana")
    assert doc["poll"]["status"] == "open"
    assert doc["poll"]["tie_seed"] is None and doc["poll"]["tie_seed_hash"]
    assert doc["poll"]["closed_at"] is None
    assert exports.verify_export(doc) == []


def test_export_poll_of_an_unknown_poll(ctx: Flask) -> None:
    with pytest.raises(NotFound):
        exports.export_poll("no-such-poll", actor="ana")


def _change_a_ballot(doc: dict[str, Any]) -> None:
    doc["ballots"][0]["choices"] = ["bias-lens"]


def _drop_a_ballot(doc: dict[str, Any]) -> None:
    doc["ballots"].pop()


def _ballot_for_a_stranger(doc: dict[str, Any]) -> None:
    doc["ballots"][0]["choices"] = ["not-in-this-poll"]


def _inflate_the_tally(doc: dict[str, Any]) -> None:
    doc["tally"]["results"][0]["votes"] += 1


def _swap_the_podium(doc: dict[str, Any]) -> None:
    first, second = doc["tally"]["results"][:2]
    first["rank"], second["rank"] = second["rank"], first["rank"]


def _change_the_seed(doc: dict[str, Any]) -> None:
    doc["poll"]["tie_seed"] = "0" * len(doc["poll"]["tie_seed"])


def _edit_an_audit_entry(doc: dict[str, Any]) -> None:
    doc["audit"][1]["actor"] = "mallory"


def _drop_an_audit_entry(doc: dict[str, Any]) -> None:
    del doc["audit"][1]


@pytest.mark.parametrize(
    ("tamper", "problem"),
    [
        (_change_a_ballot, "the stated ranking does not match the ballots"),
        (_drop_a_ballot, "turnout says 3 but the export holds 2 ballots"),
        (_ballot_for_a_stranger, "a ballot names a project that is not in the poll"),
        (_inflate_the_tally, "the stated ranking does not match the ballots"),
        (_swap_the_podium, "the stated ranking does not match the ballots"),
        (_change_the_seed, "the published tie-break seed does not match its committed hash"),
        (_edit_an_audit_entry, "its content does not match its hash"),
        (_drop_an_audit_entry, "does not follow the entry before it"),
    ],
    ids=lambda v: v.__name__.strip("_") if callable(v) else "",
)
def test_verify_export_detects_tampering(
    ctx: Flask,
    make_poll: Callable[..., str],
    mint: Callable[..., list[str]],
    tamper: Mutation,
    problem: str,
) -> None:
    slug, _ = voted_poll(make_poll, mint, results_mode="live")
    polls.close_poll(slug, actor="test")
    doc = exports.export_poll(slug, actor="ana")
    assert exports.verify_export(doc) == []
    tampered = copy.deepcopy(doc)
    tamper(tampered)
    problems = exports.verify_export(tampered)
    assert any(problem in p for p in problems), problems


def test_verify_export_checks_counts_before_the_seed_is_out(
    ctx: Flask, make_poll: Callable[..., str], mint: Callable[..., list[str]]
) -> None:
    slug, _ = voted_poll(make_poll, mint, results_mode="live")
    doc = exports.export_poll(slug, actor="ana")
    _inflate_the_tally(doc)
    assert exports.verify_export(doc) == ["the stated counts do not match the ballots"]


def test_verify_export_refuses_another_format() -> None:
    assert exports.verify_export({"format": "something-else/2"}) == [
        "not a voting-export/1 document"
    ]
    assert exports.verify_export({}) == ["not a voting-export/1 document"]


# -- results_csv -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        ("=1+1", "'=1+1"),
        ("+44 20 7946 0000", "'+44 20 7946 0000"),
        ("-2", "'-2"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tTab", "'\tTab"),
        ("\rCR", "'\rCR"),
        ("|pipe", "'|pipe"),
        ("%0A", "'%0A"),
        ("  =indented", "'  =indented"),
        ("\u00a0=nbsp", "'\u00a0=nbsp"),
        ("\uff1dfullwidth", "'\uff1dfullwidth"),
        ("\uff20fullwidth", "'\uff20fullwidth"),
        ("FloodWatch", "FloodWatch"),
        ("a=b", "a=b"),
        ("", ""),
        (None, ""),
        (3, 3),
        (-3, -3),  # a number is a number, not a formula
        (2.5, 2.5),
        (True, "True"),
    ],
)
def test_spreadsheet_safe(value: object, cell: object) -> None:
    assert exports.spreadsheet_safe(value) == cell


def test_results_csv_escapes_formulas_and_audits(
    ctx: Flask, make_poll: Callable[..., str], mint: Callable[..., list[str]]
) -> None:
    slug, _ = voted_poll(make_poll, mint, results_mode="hidden")
    project = db.session.execute(select(Project).where(Project.slug == "flood-watch")).scalar_one()
    project.title = '=HYPERLINK("http://evil.example","FloodWatch")'
    project.team = "+cmd|' /C calc'!A0"
    db.session.commit()

    text = exports.results_csv(slug, actor="ana")

    assert text.endswith("\r\n")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["rank", "project", "title", "team", "votes"]
    assert len(rows) == 1 + 12
    by_project = {r[1]: r for r in rows[1:]}
    assert by_project["flood-watch"] == [
        "1",
        "flood-watch",
        '\'=HYPERLINK("http://evil.example","FloodWatch")',
        "'+cmd|' /C calc'!A0",
        "2",
    ]
    assert by_project["crop-doctor"][4] == "1"
    assert [int(r[0]) for r in rows[1:]] == list(range(1, 13))
    assert audit_of("results.export") == [{"status": "open", "turnout": 3}]


def test_results_csv_refuses_sealed_counts(
    ctx: Flask, make_poll: Callable[..., str], mint: Callable[..., list[str]]
) -> None:
    slug, _ = voted_poll(make_poll, mint, results_mode="sealed")
    with pytest.raises(PollStateError, match="sealed until it closes"):
        exports.results_csv(slug, actor="ana")
    assert audit_of("results.export") == []
    polls.close_poll(slug, actor="test")
    assert "flood-watch" in exports.results_csv(slug, actor="ana")
    assert audit_of("results.export") == [{"status": "closed", "turnout": 3}]


# -- token_batches and batch_tokens ----------------------------------------------------------


def test_token_batches_counts_issued_revoked_and_used(
    ctx: Flask, make_poll: Callable[..., str]
) -> None:
    slug = make_poll(eligibility="open")
    empty = make_poll()
    first = issuing.mint_tokens(slug, 3, actor="ana", batch="a").tokens
    second = issuing.mint_tokens(slug, 2, actor="ana", batch="b").tokens
    issuing.mint_tokens(slug, 1, actor="ana", batch="gone")
    issuing.issue_device_token(polls.get_poll(slug))
    issuing.revoke(slug, actor="ana", tokens=[first[0]])
    issuing.revoke(slug, actor="ana", batch="gone")
    ballots.cast_ballot(slug, second[0], ["flood-watch"])
    ballots.cast_ballot(slug, first[1], ["flood-watch"])

    summaries = exports.token_batches(polls.get_poll(slug))

    # Newest first; all were issued today, so by batch name, last first.
    assert [(s.batch, s.kind, s.issued, s.revoked, s.used) for s in summaries] == [
        ("gone", "invite", 1, 1, 0),
        ("device", "device", 1, 0, 0),
        ("b", "invite", 2, 0, 1),
        ("a", "invite", 3, 1, 1),
    ]
    downloadable = {s.batch: s.downloadable for s in summaries}
    assert downloadable == {"gone": False, "device": False, "b": True, "a": True}
    assert exports.token_batches(polls.get_poll(empty)) == []


def test_batch_tokens_signs_the_live_invites_again(
    ctx: Flask, make_poll: Callable[..., str]
) -> None:
    slug = make_poll()
    minted = issuing.mint_tokens(slug, 4, actor="ana", batch="a").tokens
    issuing.mint_tokens(slug, 2, actor="ana", batch="b")
    issuing.revoke(slug, actor="ana", tokens=[minted[2]])

    again = exports.batch_tokens(slug, "a", actor="bo", purpose="csv")

    assert again.batch == "a" and again.poll.slug == slug
    # Signing is deterministic: the same strings as minted, without the revoked one.
    assert sorted(again.tokens) == sorted([minted[0], minted[1], minted[3]])
    ids = [read_voter_token(issuing.voter_signer(), t).token_id for t in again.tokens]
    assert ids == sorted(ids)  # in token-id order, as stored
    assert audit_of("tokens.export") == [{"batch": "a", "count": 3, "format": "csv"}]


def test_batch_tokens_refuses_batches_without_live_invites(
    ctx: Flask, make_poll: Callable[..., str]
) -> None:
    slug = make_poll(eligibility="open")
    other = make_poll()
    issuing.mint_tokens(slug, 2, actor="ana", batch="revoked")
    issuing.revoke(slug, actor="ana", batch="revoked")
    issuing.issue_device_token(polls.get_poll(slug))
    issuing.mint_tokens(other, 1, actor="ana", batch="elsewhere")
    for batch in ("no-such-batch", "revoked", "device", "elsewhere"):
        with pytest.raises(NotFound, match="has no live invite links"):
            exports.batch_tokens(slug, batch, actor="ana", purpose="qr")
    assert audit_of("tokens.export") == []
    assert db.session.execute(select(func.count(AuditEvent.id))).scalar_one() > 0


def test_export_states_its_token_counts_and_the_fingerprints_definition(
    ctx: Flask, make_poll: Callable[..., str], mint: Callable[..., list[str]]
) -> None:
    slug, _ = voted_poll(make_poll, mint)
    issuing.revoke(slug, actor="ana", tokens=mint(slug, 1))
    doc = exports.export_poll(slug, actor="ana")
    assert doc["tokens"] == {"issued": 4, "used": 3, "revoked": 1}
    definition = doc["poll"]["definition"]
    assert definition["tokens_issued"] == 4 and len(definition["choices"]) == 12
    assert doc["poll"]["fingerprint"] == fingerprint.fingerprint(definition)
    assert exports.export_bytes(doc) == json.dumps(doc, indent=2, ensure_ascii=False).encode()
    assert exports.verify_export(doc) == []
