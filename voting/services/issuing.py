"""Issuing voter tokens: minting in bulk, revoking, and the signed links."""

from __future__ import annotations

import csv
import io
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from flask import current_app
from sqlalchemy import insert, select, update

from voting import live
from voting.database import atomic, begin_write
from voting.domain.errors import InvalidRequest, InvalidToken, NotFound
from voting.domain.receipts import card_code, normalise_card_code
from voting.domain.statuses import FINAL, Eligibility, TokenKind
from voting.domain.tokens import (
    VOTER_TOKEN_SALT,
    TokenSigner,
    VoterToken,
    new_token_id,
    read_voter_token,
    sign_voter_token,
)
from voting.extensions import db
from voting.links import check_printable_base, voter_url
from voting.models import Poll, Token, utcnow
from voting.services import audit
from voting.services.hashing import keyed_hash
from voting.services.polls import effective_status, get_poll
from voting.services.polls.fingerprint import audit_detail

MAX_MINT = 100_000
_INSERT_CHUNK = 2_000


def voter_signer() -> TokenSigner:
    """The voter-token signer for the current app's keys (built once per app)."""
    cached: TokenSigner | None = current_app.extensions.get("voting.voter_signer")
    if cached is None:
        config = current_app.config
        cached = TokenSigner(
            config["SECRET_KEY"], config["SECRET_KEY_FALLBACKS"], salt=VOTER_TOKEN_SALT
        )
        current_app.extensions["voting.voter_signer"] = cached
    return cached


def card_code_for(token_id: str) -> str:
    """The short code printed on a token's QR card: derived from its id under the hash key,
    so a batch's sheet can be printed again with the same codes, and a copy of the database
    alone holds no code."""
    return card_code(bytes.fromhex(keyed_hash("card-code", token_id)))


def card_code_hash(poll_id: int, code: str) -> str:
    """The stored form of a card code (as printed), per poll: what a typed code is looked up by."""
    return keyed_hash(f"card:{poll_id}", code)


@dataclass
class MintedBatch:
    poll: Poll
    batch: str
    tokens: list[str]
    # The short code printed on each token's QR card, in the same order.
    codes: list[str]

    def csv_text(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["token", "url"])
        for token in self.tokens:
            writer.writerow([token, voter_url(token)])
        return out.getvalue()


@atomic
def mint_tokens(
    slug: str,
    count: int,
    *,
    actor: str,
    batch: str | None = None,
    progress: Callable[[int], None] | None = None,
) -> MintedBatch:
    """Issue `count` single-use tokens for a poll in bulk inserts; return their signed strings."""
    if not 1 <= count <= MAX_MINT:
        raise InvalidRequest(f"Mint between 1 and {MAX_MINT:,} tokens at a time.")
    begin_write()
    poll = get_poll(slug)
    if poll.status in FINAL:
        raise InvalidRequest("This poll has closed; there is no point issuing tokens for it.")
    check_printable_base()
    batch = batch or utcnow().strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(2)
    signer = voter_signer()
    ids = [new_token_id() for _ in range(count)]
    codes = [card_code_for(i) for i in ids]
    hashes = dict(zip(ids, (card_code_hash(poll.id, c) for c in codes), strict=True))
    today = utcnow().date()
    for start in range(0, count, _INSERT_CHUNK):
        chunk = ids[start : start + _INSERT_CHUNK]
        db.session.execute(
            insert(Token),
            [
                {
                    "id": i,
                    "poll_id": poll.id,
                    "kind": TokenKind.INVITE,
                    "batch": batch,
                    "issued_on": today,
                    "card_code_hash": hashes[i],
                }
                for i in chunk
            ],
        )
        if progress:
            progress(len(chunk))
    # More tokens issued changes an opened poll's definition, so its fingerprint.
    changed = audit_detail(poll, effective_status(poll))
    audit.record(actor, "tokens.mint", poll.slug, count=count, batch=batch, **changed)
    db.session.commit()
    if changed:
        live.notify(poll.slug)  # the documents carry the new fingerprint
    tokens = [sign_voter_token(signer, VoterToken(poll_id=poll.id, token_id=i)) for i in ids]
    return MintedBatch(poll=poll, batch=batch, tokens=tokens, codes=codes)


def _token_id_for(poll: Poll, raw: str) -> str:
    """The token id inside a signed token (or its voter link) of this poll."""
    raw = raw.strip()
    if raw.startswith(("http://", "https://")):
        raw = raw.rstrip("/").rsplit("/", 1)[-1]
    try:
        decoded = read_voter_token(voter_signer(), raw)
    except InvalidToken as exc:
        raise InvalidRequest(f"{raw[:12]}… is not a token of this service.") from exc
    if decoded.poll_id != poll.id:
        raise InvalidRequest(f"{raw[:12]}… belongs to another poll.")
    return decoded.token_id


@atomic
def revoke(slug: str, *, actor: str, tokens: Iterable[str] = (), batch: str | None = None) -> int:
    """Revoke signed tokens or a whole batch; returns how many were newly revoked."""
    begin_write()
    poll = get_poll(slug)
    ids = [_token_id_for(poll, raw) for raw in tokens]
    if not ids and not batch:
        raise InvalidRequest("Name the tokens or the batch to revoke.")
    stmt = update(Token).where(Token.poll_id == poll.id, Token.revoked_at.is_(None))
    if batch:
        if not db.session.execute(
            select(Token.id).where(Token.poll_id == poll.id, Token.batch == batch).limit(1)
        ).first():
            raise NotFound(f"There is no batch {batch!r} in this poll.")
        stmt = stmt.where(Token.batch == batch)
    else:
        stmt = stmt.where(Token.id.in_(ids))
    result = db.session.execute(stmt.values(revoked_at=utcnow()))
    changed = int(getattr(result, "rowcount", 0) or 0)
    audit.record(actor, "tokens.revoke", poll.slug, count=changed, batch=batch, tokens=len(ids))
    db.session.commit()
    return changed


@atomic
def reissue(slug: str, lost: str, *, actor: str) -> MintedBatch:
    """Revoke a lost card and mint its one replacement, in one transaction."""
    begin_write()
    poll = get_poll(slug)
    check_printable_base()
    token_id = _token_id_for(poll, lost)
    token = db.session.get(Token, token_id)
    if token is None or token.poll_id != poll.id:
        raise NotFound("That card was never issued for this poll.")
    if token.revoked_at is None:
        token.revoked_at = utcnow()
    new_id = new_token_id()
    code = card_code_for(new_id)
    batch = f"reissue-{utcnow():%Y%m%d}"
    db.session.add(
        Token(
            id=new_id,
            poll_id=poll.id,
            kind=token.kind,
            batch=batch,
            issued_on=utcnow().date(),
            card_code_hash=card_code_hash(poll.id, code),
        )
    )
    changed = audit_detail(poll, effective_status(poll))
    audit.record(actor, "tokens.reissue", poll.slug, batch=batch, **changed)
    db.session.commit()
    if changed:
        live.notify(poll.slug)
    signed = sign_voter_token(voter_signer(), VoterToken(poll_id=poll.id, token_id=new_id))
    return MintedBatch(poll=poll, batch=batch, tokens=[signed], codes=[code])


def claim_card(slug: str, typed: str) -> str:
    """The signed token of the QR card whose short code was typed; InvalidToken otherwise.

    Unknown, mistyped and revoked codes get one answer, so the page says nothing about
    which codes exist.
    """
    poll = get_poll(slug)
    code = normalise_card_code(typed)
    found = None
    if code is not None:
        found = db.session.execute(
            select(Token.id).where(
                Token.card_code_hash == card_code_hash(poll.id, code),
                Token.poll_id == poll.id,
                Token.revoked_at.is_(None),
            )
        ).scalar_one_or_none()
    if found is None:
        raise InvalidToken("No voting card of this poll has that code.")
    return sign_voter_token(voter_signer(), VoterToken(poll_id=poll.id, token_id=found))


@atomic
def issue_device_token(poll: Poll) -> str:
    """An open poll's token for one browser: minted on request, no person behind it."""
    if poll.eligibility != Eligibility.OPEN:
        raise InvalidRequest(
            "This poll does not hand out voting passes; use the link you were given."
        )
    begin_write()
    token_id = new_token_id()
    db.session.add(
        Token(
            id=token_id,
            poll_id=poll.id,
            kind=TokenKind.DEVICE,
            batch="device",
            issued_on=utcnow().date(),
        )
    )
    db.session.commit()
    return sign_voter_token(voter_signer(), VoterToken(poll_id=poll.id, token_id=token_id))


@dataclass
class IssuanceStats:
    issued: int
    revoked: int
    used: int
    roster_entries: int
    claimed: int
    by_kind: dict[str, int]


def issuance_stats(poll: Poll) -> IssuanceStats:
    """How many tokens were issued, revoked, claimed (roster) and used, for the console."""
    from sqlalchemy import func

    from voting.models import Ballot, RosterEntry

    kinds = dict(
        db.session.execute(
            select(Token.kind, func.count()).where(Token.poll_id == poll.id).group_by(Token.kind)
        ).all()
    )
    revoked = db.session.execute(
        select(func.count()).where(Token.poll_id == poll.id, Token.revoked_at.is_not(None))
    ).scalar_one()
    used = db.session.execute(
        select(func.count(Ballot.id)).where(Ballot.poll_id == poll.id)
    ).scalar_one()
    entries, claimed = db.session.execute(
        select(
            func.count(RosterEntry.id),
            func.count(RosterEntry.id).filter(RosterEntry.claimed.is_(True)),
        ).where(RosterEntry.poll_id == poll.id)
    ).one()
    return IssuanceStats(
        issued=sum(kinds.values()),
        revoked=int(revoked),
        used=int(used),
        roster_entries=int(entries),
        claimed=int(claimed),
        by_kind={k: int(v) for k, v in kinds.items()},
    )
