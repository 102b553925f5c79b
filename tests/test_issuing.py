"""voting.services.issuing on its own: minting, revoking, reissuing, device tokens, statistics."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from voting.domain.errors import InvalidRequest, NotFound
from voting.domain.tokens import VoterToken, new_token_id, read_voter_token, sign_voter_token
from voting.extensions import db
from voting.models import AuditEvent, Token, utcnow
from voting.services import ballots, issuing, polls


def token_rows(slug: str) -> list[Token]:
    poll = polls.get_poll(slug)
    rows = db.session.execute(select(Token).where(Token.poll_id == poll.id).order_by(Token.id))
    return list(rows.scalars())


def token_id(signed: str) -> str:
    return read_voter_token(issuing.voter_signer(), signed).token_id


def last_audit() -> tuple[str, dict[str, Any]]:
    event = db.session.execute(
        select(AuditEvent).order_by(AuditEvent.id.desc()).limit(1)
    ).scalar_one()
    return event.action, json.loads(event.detail)


def test_mint_tokens_stores_one_invite_row_per_token_and_audits(
    ctx: Flask, make_poll: Callable[..., str]
) -> None:
    slug = make_poll()
    minted = issuing.mint_tokens(slug, 5, actor="ana", batch="b1")

    assert minted.batch == "b1" and minted.poll.slug == slug
    assert len(minted.tokens) == len(set(minted.tokens)) == 5
    rows = token_rows(slug)
    assert {r.id for r in rows} == {token_id(t) for t in minted.tokens}
    assert {(r.kind, r.batch, r.issued_on, r.revoked_at) for r in rows} == {
        ("invite", "b1", utcnow().date(), None)
    }
    # The poll is open, so five more voters change its fingerprint: the entry carries it.
    fingerprint = polls.poll_document(polls.get_poll(slug))["fingerprint"]
    assert last_audit() == ("tokens.mint", {"batch": "b1", "count": 5, "fingerprint": fingerprint})
    lines = minted.csv_text().splitlines()
    assert lines[0] == "token,url"
    assert lines[1:] == [f"{t},http://vote.test/v/{t}" for t in minted.tokens]


def test_mint_tokens_names_a_batch_and_reports_progress_per_insert(
    ctx: Flask, make_poll: Callable[..., str]
) -> None:
    slug = make_poll(open_=False)  # a poll not open yet may be given tokens
    chunks: list[int] = []
    minted = issuing.mint_tokens(slug, 2_500, actor="ana", progress=chunks.append)
    assert re.fullmatch(r"\d{8}-\d{6}-[0-9a-f]{4}", minted.batch)
    assert chunks == [2_000, 500]
    assert db.session.execute(select(func.count(Token.id))).scalar_one() == 2_500


@pytest.mark.parametrize("count", [0, -1, issuing.MAX_MINT + 1])
def test_mint_tokens_refuses_counts_out_of_bounds(
    ctx: Flask, make_poll: Callable[..., str], count: int
) -> None:
    slug = make_poll()
    with pytest.raises(InvalidRequest, match="between 1 and 100,000"):
        issuing.mint_tokens(slug, count, actor="ana")
    db.session.rollback()
    assert token_rows(slug) == []


def test_mint_tokens_refuses_a_closed_or_unknown_poll(
    ctx: Flask, make_poll: Callable[..., str]
) -> None:
    slug = make_poll()
    polls.close_poll(slug, actor="test")
    with pytest.raises(InvalidRequest, match="has closed"):
        issuing.mint_tokens(slug, 1, actor="ana")
    db.session.rollback()
    with pytest.raises(NotFound):
        issuing.mint_tokens("no-such-poll", 1, actor="ana")
    db.session.rollback()
    assert db.session.execute(select(func.count(Token.id))).scalar_one() == 0


def test_revoke_named_tokens_and_links(ctx: Flask, make_poll: Callable[..., str]) -> None:
    slug = make_poll()
    tokens = issuing.mint_tokens(slug, 4, actor="ana").tokens
    # A token as printed, or the whole voter link with a trailing slash and spaces.
    named = [tokens[0], f"  http://vote.test/v/{tokens[1]}/ "]
    assert issuing.revoke(slug, actor="ana", tokens=named) == 2
    assert last_audit() == ("tokens.revoke", {"batch": None, "count": 2, "tokens": 2})
    revoked = {r.id for r in token_rows(slug) if r.revoked_at is not None}
    assert revoked == {token_id(tokens[0]), token_id(tokens[1])}
    # Revoking again changes nothing and says so.
    assert issuing.revoke(slug, actor="ana", tokens=[tokens[0]]) == 0
    assert sum(r.revoked_at is not None for r in token_rows(slug)) == 2


def test_revoke_a_batch_counts_only_newly_revoked_tokens(
    ctx: Flask, make_poll: Callable[..., str]
) -> None:
    slug = make_poll()
    first = issuing.mint_tokens(slug, 3, actor="ana", batch="first").tokens
    issuing.mint_tokens(slug, 2, actor="ana", batch="second")
    assert issuing.revoke(slug, actor="ana", tokens=[first[0]]) == 1
    assert issuing.revoke(slug, actor="ana", batch="first") == 2
    assert last_audit() == ("tokens.revoke", {"batch": "first", "count": 2, "tokens": 0})
    state = {(r.batch, r.revoked_at is not None) for r in token_rows(slug)}
    assert state == {("first", True), ("second", False)}
    assert issuing.revoke(slug, actor="ana", batch="first") == 0


def test_revoke_refusals(
    ctx: Flask, make_poll: Callable[..., str], mint: Callable[..., list[str]]
) -> None:
    slug = make_poll()
    other = make_poll()
    [foreign] = mint(other)
    mint(slug)
    with pytest.raises(InvalidRequest, match="Name the tokens or the batch"):
        issuing.revoke(slug, actor="ana")
    db.session.rollback()
    with pytest.raises(NotFound, match="no batch 'nope'"):
        issuing.revoke(slug, actor="ana", batch="nope")
    db.session.rollback()
    with pytest.raises(InvalidRequest, match="belongs to another poll"):
        issuing.revoke(slug, actor="ana", tokens=[foreign])
    db.session.rollback()
    with pytest.raises(InvalidRequest, match="is not a token of this service"):
        issuing.revoke(slug, actor="ana", tokens=["not-a-token"])
    db.session.rollback()
    assert (
        db.session.execute(
            select(func.count(Token.id)).where(Token.revoked_at.is_not(None))
        ).scalar_one()
        == 0
    )
    assert (
        db.session.execute(
            select(func.count(AuditEvent.id)).where(AuditEvent.action == "tokens.revoke")
        ).scalar_one()
        == 0
    )


def test_reissue_revokes_the_lost_card_and_mints_one_of_its_kind(
    ctx: Flask, make_poll: Callable[..., str], mint: Callable[..., list[str]]
) -> None:
    slug = make_poll()
    lost, kept = mint(slug, 2)
    replacement = issuing.reissue(slug, lost, actor="ana")

    [new] = replacement.tokens
    assert replacement.batch == f"reissue-{utcnow():%Y%m%d}"
    rows = {r.id: r for r in token_rows(slug)}
    assert rows[token_id(lost)].revoked_at is not None
    assert rows[token_id(kept)].revoked_at is None
    assert rows[token_id(new)].kind == "invite" and rows[token_id(new)].batch == replacement.batch
    assert rows[token_id(new)].revoked_at is None
    assert len(rows) == 3
    fingerprint = polls.poll_document(polls.get_poll(slug))["fingerprint"]
    assert last_audit() == (
        "tokens.reissue",
        {"batch": replacement.batch, "fingerprint": fingerprint},
    )
    # The replacement is a working voter token.
    assert ballots.cast_ballot(slug, new, ["flood-watch"]).receipt


def test_reissue_refuses_a_card_never_issued_here(
    ctx: Flask, make_poll: Callable[..., str], mint: Callable[..., list[str]]
) -> None:
    slug = make_poll()
    other = make_poll()
    [foreign] = mint(other)
    poll_id = polls.get_poll(slug).id
    never_stored = sign_voter_token(
        issuing.voter_signer(), VoterToken(poll_id=poll_id, token_id=new_token_id())
    )
    db.session.rollback()
    with pytest.raises(NotFound, match="never issued"):
        issuing.reissue(slug, never_stored, actor="ana")
    db.session.rollback()
    with pytest.raises(InvalidRequest, match="belongs to another poll"):
        issuing.reissue(slug, foreign, actor="ana")
    db.session.rollback()
    assert token_rows(slug) == []


def test_issue_device_token_only_for_open_polls(ctx: Flask, make_poll: Callable[..., str]) -> None:
    open_slug = make_poll(eligibility="open")
    invite_slug = make_poll()

    signed = issuing.issue_device_token(polls.get_poll(open_slug))
    decoded = read_voter_token(issuing.voter_signer(), signed)
    assert decoded.poll_id == polls.get_poll(open_slug).id
    [row] = token_rows(open_slug)
    assert (row.id, row.kind, row.batch, row.revoked_at) == (
        decoded.token_id,
        "device",
        "device",
        None,
    )
    with pytest.raises(InvalidRequest, match="does not hand out voting passes"):
        issuing.issue_device_token(polls.get_poll(invite_slug))
    db.session.rollback()
    assert token_rows(invite_slug) == []


def test_issuance_stats_counts_by_kind_revoked_and_used(
    ctx: Flask, make_poll: Callable[..., str], mint: Callable[..., list[str]]
) -> None:
    slug = make_poll(eligibility="open")
    empty = make_poll()
    invites = mint(slug, 3)
    issuing.issue_device_token(polls.get_poll(slug))
    issuing.revoke(slug, actor="ana", tokens=[invites[0]])
    ballots.cast_ballot(slug, invites[1], ["crop-doctor"])

    stats = issuing.issuance_stats(polls.get_poll(slug))
    assert stats == issuing.IssuanceStats(
        issued=4,
        revoked=1,
        used=1,
        roster_entries=0,
        claimed=0,
        by_kind={"invite": 3, "device": 1},
    )
    assert issuing.issuance_stats(polls.get_poll(empty)) == issuing.IssuanceStats(
        issued=0, revoked=0, used=0, roster_entries=0, claimed=0, by_kind={}
    )
