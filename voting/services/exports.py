"""The full export of a poll (its bytes and their SHA-256), results CSV and token batches."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import func, select

from voting.database import atomic, begin_write
from voting.domain.errors import NotFound, PollStateError
from voting.domain.statuses import FINAL, TokenKind
from voting.domain.timestamps import iso
from voting.domain.tokens import VoterToken, sign_voter_token
from voting.extensions import db
from voting.links import check_printable_base
from voting.models import Ballot, BallotChoice, Poll, Project, Token
from voting.services import audit, polls
from voting.services.issuing import MintedBatch, card_code_for, issuance_stats, voter_signer
from voting.services.polls.fingerprint import definition_of
from voting.services.receipts import superseded
from voting.services.verification import EXPORT_FORMAT, Board, check_export, problems_of


@atomic
def export_poll(slug: str, *, actor: str) -> dict[str, Any]:
    """Poll, projects, tally, ballots and superseded receipts (receipt + choices), audit chain."""
    poll = polls.settle_schedule(polls.get_poll(slug))
    # After the read (and any commit settling the schedule made), the audit entry needs a
    # write transaction of its own: on SQLite that means taking the write lock up front.
    begin_write()
    audit.record(actor, "poll.export", poll.slug)
    db.session.commit()
    status = polls.effective_status(poll)
    slugs = {c.project_id: c.project.slug for c in poll.choices}
    by_ballot: dict[int, list[str]] = defaultdict(list)
    rows = db.session.execute(
        select(BallotChoice.ballot_id, BallotChoice.project_id).where(
            BallotChoice.poll_id == poll.id
        )
    )
    for ballot_id, project_id in rows:
        by_ballot[ballot_id].append(slugs[project_id])
    receipts = db.session.execute(
        select(Ballot.id, Ballot.receipt).where(Ballot.poll_id == poll.id).order_by(Ballot.receipt)
    )
    projects = [c.project for c in poll.choices]
    issued = issuance_stats(poll)
    seed_public = status in FINAL
    return {
        "format": EXPORT_FORMAT,
        "poll": {
            **polls.poll_document(poll),
            "tie_seed": poll.tie_seed if seed_public else None,
            "closed_at": iso(poll.closed_at),
            # What `fingerprint` (from poll_document, null in draft) is the SHA-256 of.
            "definition": definition_of(poll),
        },
        "projects": [
            _project(p, withdrawn=c.withdrawn) for p, c in zip(projects, poll.choices, strict=True)
        ],
        "tally": polls.results_view(poll, organizer=True),
        "ballots": [{"receipt": r, "choices": sorted(by_ballot[i])} for i, r in receipts],
        # Receipts that revotes replaced: listed on the board, never counted.
        "superseded": superseded(poll),
        "tokens": {"issued": issued.issued, "used": issued.used, "revoked": issued.revoked},
        "audit": audit.all_entries(),
    }


def _project(project: Project, *, withdrawn: bool) -> dict[str, Any]:
    return {
        "slug": project.slug,
        "title": project.title,
        "team": project.team,
        "category": project.category,
        "theme": project.theme,
        "repo_url": project.repo_url,
        "demo_url": project.demo_url,
        "withdrawn": withdrawn,
    }


def verify_export(doc: Mapping[str, Any], board: Board | None = None) -> list[str]:
    """Problems found checking an export (services/verification.py); empty when all match."""
    return problems_of(check_export(doc, board))


def export_bytes(doc: Mapping[str, Any]) -> bytes:
    """The export file's bytes, the same from the CLI and the console, so one digest fits both."""
    return json.dumps(doc, indent=2, ensure_ascii=False).encode("utf-8")


def sha256_hex(data: bytes) -> str:
    """The SHA-256 of a file's bytes, as `sha256sum` prints it."""
    return hashlib.sha256(data).hexdigest()


# -- spreadsheet-safe results CSV and token batches (the organizer console) ----------------

# A cell starting with one of these is read as a formula by Excel, LibreOffice or Google
# Sheets (OWASP "CSV Injection"); the full-width forms are folded to them by some imports.
FORMULA_TRIGGERS = (
    *("=", "+", "-", "@", "\t", "\r", "\n", "|", "%"),
    *("\uff1d", "\uff0b", "\uff0d", "\uff20"),  # full-width = + - @
)


def spreadsheet_safe(value: object) -> object:
    """A CSV cell that a spreadsheet shows as text: risky text gets a leading apostrophe."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        value = "" if value is None else str(value)
    if isinstance(value, str) and value.lstrip(" \u00a0").startswith(FORMULA_TRIGGERS):
        return "'" + value
    return value


@atomic
def results_csv(slug: str, *, actor: str) -> str:
    """The tally as the organizer sees it, one row per project, safe to open in a spreadsheet."""
    poll = polls.get_poll(slug)
    doc = polls.results_view(poll, organizer=True)
    if "results" not in doc:
        raise PollStateError(
            "The counts of this poll are sealed until it closes, so there is nothing to export yet."
        )
    begin_write()
    audit.record(actor, "results.export", slug, status=doc["status"], turnout=doc["turnout"])
    db.session.commit()
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["rank", "project", "title", "team", "votes"])
    for row in doc["results"]:
        writer.writerow(
            [
                spreadsheet_safe(row["rank"]),
                spreadsheet_safe(row["project"]),
                spreadsheet_safe(row["title"]),
                spreadsheet_safe(row["team"]),
                spreadsheet_safe(row["votes"]),
            ]
        )
    return out.getvalue()


@dataclass
class BatchSummary:
    batch: str
    kind: str
    issued: int
    revoked: int
    used: int
    issued_on: date

    @property
    def downloadable(self) -> bool:
        # Only invite links can be signed again: roster and device tokens carry exclusions
        # or belong to one browser, and are never handed out as files.
        return self.kind == TokenKind.INVITE and self.revoked < self.issued


def token_batches(poll: Poll) -> list[BatchSummary]:
    """The poll's token batches with how many were issued, revoked and used; newest first."""
    rows = db.session.execute(
        select(
            Token.batch,
            Token.kind,
            func.count(Token.id),
            func.count(Token.revoked_at),
            func.count(Ballot.id),
            func.min(Token.issued_on),
        )
        .outerjoin(Ballot, Ballot.token_id == Token.id)
        .where(Token.poll_id == poll.id)
        .group_by(Token.batch, Token.kind)
        .order_by(func.min(Token.issued_on).desc(), Token.batch.desc())
    )
    return [
        BatchSummary(
            batch=batch or "",
            kind=kind,
            issued=int(issued),
            revoked=int(revoked),
            used=int(used),
            issued_on=issued_on,
        )
        for batch, kind, issued, revoked, used, issued_on in rows
    ]


@atomic
def batch_tokens(slug: str, batch: str, *, actor: str, purpose: str) -> MintedBatch:
    """Sign a batch's live invite links again (signing is deterministic), for its CSV or QR sheet.

    The signed strings are never stored; they are rebuilt from the stored token ids.
    """
    poll = polls.get_poll(slug)
    check_printable_base()
    ids = list(
        db.session.execute(
            select(Token.id)
            .where(
                Token.poll_id == poll.id,
                Token.batch == batch,
                Token.kind == TokenKind.INVITE,
                Token.revoked_at.is_(None),
            )
            .order_by(Token.id)
        ).scalars()
    )
    if not ids:
        raise NotFound(f"Batch {batch!r} has no live invite links in this poll.")
    begin_write()
    audit.record(actor, "tokens.export", poll.slug, batch=batch, count=len(ids), format=purpose)
    db.session.commit()
    signer = voter_signer()
    tokens = [sign_voter_token(signer, VoterToken(poll_id=poll.id, token_id=i)) for i in ids]
    return MintedBatch(poll=poll, batch=batch, tokens=tokens, codes=[card_code_for(i) for i in ids])
