"""A poll's fingerprint from the database: its definition (domain/fingerprint.py) and hash.

Nothing is stored: the fingerprint is recomputed from the poll's current definition, which
after opening changes only through audited actions (withdrawing a project, minting or
reissuing tokens, importing roster entries). Each of them records the new fingerprint in
its audit entry, as `poll.open` records the first one.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from voting.domain import fingerprint as fp
from voting.domain.statuses import Eligibility, PollStatus, TokenKind
from voting.extensions import db
from voting.models import Poll, RosterEntry, Token

# The batch of the tokens roster claims derive (services/roster.py): a claim turns an
# entry, already counted, into its token, so these are not counted twice.
CLAIM_BATCH = "roster"


def tokens_issued(poll: Poll) -> int | str:
    """The definition's `tokens_issued` (see domain/fingerprint.py for what it counts)."""
    if poll.eligibility == Eligibility.OPEN:
        return fp.PER_DEVICE
    total, claimed = db.session.execute(
        select(
            func.count(Token.id),
            func.count(Token.id).filter(Token.kind == TokenKind.ROSTER, Token.batch == CLAIM_BATCH),
        ).where(Token.poll_id == poll.id)
    ).one()
    issued = int(total) - int(claimed)
    if poll.eligibility == Eligibility.ROSTER:
        issued += int(
            db.session.execute(
                select(func.count(RosterEntry.id)).where(RosterEntry.poll_id == poll.id)
            ).scalar_one()
        )
    return issued


def definition_of(poll: Poll) -> dict[str, Any]:
    """The poll's canonical definition as it stands now."""
    return fp.definition(
        poll=poll.slug,
        choices=(c.project.slug for c in poll.choices if not c.withdrawn),
        method=poll.method,
        max_choices=poll.max_choices,
        eligibility=poll.eligibility,
        revote=poll.allow_revote,
        tie_seed_hash=poll.tie_seed_hash,
        tokens_issued=tokens_issued(poll),
    )


def fingerprint_of(poll: Poll, status: PollStatus) -> str | None:
    """The fingerprint once the poll has opened (status is its effective one); None in draft."""
    if status == PollStatus.DRAFT:
        return None
    return fp.fingerprint(definition_of(poll))


def audit_detail(poll: Poll, status: PollStatus) -> dict[str, str]:
    """`fingerprint=...` for the audit entry of a change to an opened poll; nothing in draft."""
    value = fingerprint_of(poll, status)
    return {} if value is None else {"fingerprint": value}
