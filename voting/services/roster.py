"""Roster polls: attendees claim their one token with a ticket code or email.

Codes and emails are stored only as keyed hashes. A claim derives the token id from the
entry's hash with a second keyed hash, so claiming again (on another device) yields the
same token and therefore still one vote, while the database holds no link from an entry
to a token or a ballot: only `claimed = true`. Known and unknown codes take one path:
the same hashing and one indexed lookup.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import hmac
import io
import re
from dataclasses import dataclass, field

from flask import current_app
from sqlalchemy import insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert

from voting.database import atomic, begin_write
from voting.domain.errors import InvalidRequest, InvalidToken, NotFound
from voting.domain.statuses import Eligibility, TokenKind
from voting.domain.tokens import VoterToken, sign_voter_token
from voting.extensions import db
from voting.models import Poll, Project, RosterEntry, TeamMember, Token, utcnow
from voting.services import audit
from voting.services.hashing import email_hash, keyed_hash
from voting.services.issuing import voter_signer
from voting.services.polls import effective_status, get_poll
from voting.services.polls.fingerprint import audit_detail

CODE_COLUMNS = ("code", "ticket", "ticket_code", "email", "e-mail")
PROJECT_COLUMNS = ("project", "project_slug", "team_project")


def normalize_code(value: str) -> str:
    """Emails ignore case; ticket codes ignore case, spaces and dashes."""
    value = value.strip()
    if "@" in value:
        return value.casefold()
    return re.sub(r"[\s-]+", "", value).upper()


def code_hash(poll_id: int, value: str) -> str:
    """The stored form of a ticket code or email, per poll."""
    return keyed_hash(f"roster:{poll_id}", normalize_code(value))


def derived_token_id(poll_id: int, entry_hash: str) -> str:
    """The token id a roster entry claims: a keyed hash of its code hash, 128 bits."""
    key = current_app.config["HASH_KEY"] or current_app.config["SECRET_KEY"]
    digest = hmac.new(
        f"{key}:roster-token:{poll_id}".encode(), entry_hash.encode(), hashlib.sha256
    ).digest()
    return base64.urlsafe_b64encode(digest[:16]).rstrip(b"=").decode()


@dataclass
class RosterReport:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)
    conflicts: int = 0
    dry_run: bool = False

    def as_dict(self) -> dict[str, object]:
        return {
            "added": self.added,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "with_own_project": self.conflicts,
            "rejected": [{"line": line, "reason": reason} for line, reason in self.rejected],
            "dry_run": self.dry_run,
        }


def _column(header: list[str], names: tuple[str, ...]) -> int | None:
    folded = [h.strip().casefold() for h in header]
    for name in names:
        if name in folded:
            return folded.index(name)
    return None


@atomic
def import_roster(slug: str, data: bytes, *, actor: str, dry_run: bool = False) -> RosterReport:
    """Load ticket codes or emails (one per row, optional own-project column) as keyed hashes."""
    begin_write()
    poll = get_poll(slug)
    if poll.eligibility != Eligibility.ROSTER:
        raise InvalidRequest(
            f"Poll {slug!r} is not a roster poll (create it with --eligibility roster)."
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidRequest(
            "The roster is not UTF-8 text; save it as UTF-8 and try again."
        ) from exc
    rows = list(csv.reader(io.StringIO(text)))
    if not rows:
        raise InvalidRequest("The roster file is empty.")
    header = rows[0]
    code_col = _column(header, CODE_COLUMNS)
    start = 1
    if code_col is None:  # a bare list of codes, no header
        code_col, start = 0, 0
    project_col = _column(header, PROJECT_COLUMNS) if start == 1 else None

    projects = {p.slug: p.id for p in db.session.execute(select(Project)).scalars()}
    titles = {p.title.casefold(): p.id for p in db.session.execute(select(Project)).scalars()}
    members = dict(db.session.execute(select(TeamMember.email_hash, TeamMember.project_id)).all())

    report = RosterReport(dry_run=dry_run)
    wanted: dict[str, int | None] = {}
    for line, row in enumerate(rows[start:], start=start + 1):
        if not row or not any(cell.strip() for cell in row):
            continue
        raw = row[code_col].strip() if code_col < len(row) else ""
        if not raw:
            report.rejected.append((line, "the code or email is missing"))
            continue
        own: int | None = None
        if project_col is not None and project_col < len(row) and row[project_col].strip():
            name = row[project_col].strip()
            own = projects.get(name) or titles.get(name.casefold())
            if own is None:
                report.rejected.append((line, f"unknown project {name!r}"))
                continue
        if own is None and "@" in raw:
            own = members.get(email_hash(raw))
        wanted[code_hash(poll.id, raw)] = own

    existing = dict(
        db.session.execute(
            select(RosterEntry.code_hash, RosterEntry.project_id).where(
                RosterEntry.poll_id == poll.id
            )
        ).all()
    )
    new_rows = [
        {"poll_id": poll.id, "code_hash": h, "project_id": own, "claimed": False}
        for h, own in wanted.items()
        if h not in existing
    ]
    changed = [
        (h, own)
        for h, own in wanted.items()
        if h in existing and existing[h] != own and own is not None
    ]
    report.added = len(new_rows)
    report.updated = len(changed)
    report.unchanged = len(wanted) - len(new_rows) - len(changed)
    report.conflicts = sum(1 for own in wanted.values() if own is not None)
    if dry_run:
        db.session.rollback()
        return report
    for i in range(0, len(new_rows), 2000):
        db.session.execute(insert(RosterEntry), new_rows[i : i + 2000])
    for h, own in changed:
        db.session.execute(
            update(RosterEntry)
            .where(RosterEntry.poll_id == poll.id, RosterEntry.code_hash == h)
            .values(project_id=own)
        )
    audit.record(
        actor,
        "roster.import",
        poll.slug,
        added=report.added,
        updated=report.updated,
        rejected=len(report.rejected),
        # New entries after opening are more voters: the entry carries the new fingerprint.
        **audit_detail(poll, effective_status(poll)),
    )
    db.session.commit()
    return report


@atomic
def claim(slug: str, code: str) -> str:
    """Exchange a roster code for its signed token (the same token every time)."""
    poll = get_poll(slug)
    if poll.eligibility != Eligibility.ROSTER:
        raise NotFound("This poll has no attendee list to claim from.")
    entry_hash = code_hash(poll.id, code[:200])
    begin_write()
    entry = db.session.execute(
        select(RosterEntry.id, RosterEntry.project_id).where(
            RosterEntry.poll_id == poll.id, RosterEntry.code_hash == entry_hash
        )
    ).first()
    token_id = derived_token_id(poll.id, entry_hash)  # computed for unknown codes too
    if entry is None:
        raise InvalidToken(
            "We could not find that ticket code or email on the attendee list. Check it and try again."
        )
    _ensure_token(poll, token_id)
    db.session.execute(update(RosterEntry).where(RosterEntry.id == entry.id).values(claimed=True))
    db.session.commit()
    excluded = frozenset({entry.project_id}) if entry.project_id else frozenset()
    return sign_voter_token(
        voter_signer(), VoterToken(poll_id=poll.id, token_id=token_id, excluded=excluded)
    )


def _ensure_token(poll: Poll, token_id: str) -> None:
    values = {
        "id": token_id,
        "poll_id": poll.id,
        "kind": TokenKind.ROSTER,
        "batch": "roster",
        "issued_on": utcnow().date(),
    }
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(
            pg_insert(Token).values(**values).on_conflict_do_nothing(index_elements=["id"])
        )
    elif db.session.get(Token, token_id) is None:
        # SQLite: this transaction began IMMEDIATE, so no other writer can race us here.
        db.session.add(Token(**values))
        db.session.flush()
